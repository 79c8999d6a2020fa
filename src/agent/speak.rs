//! How the agent says times aloud: "Thursday, December 3rd at 2 PM", "2:30 PM", lists that read naturally
//! ("Thursday, December 3rd at 2 PM, 2:30 PM or 3 PM"), always in the agent's time zone.

use chrono::{DateTime, Datelike as _, NaiveTime, Timelike as _, Utc};
use chrono_tz::Tz;

use crate::calendar::Slot;

/// "1st", "2nd", "3rd", "4th", "11th", "22nd".
pub fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// "9 AM", "2:30 PM", "12 PM".
pub fn time(t: NaiveTime) -> String {
    let (pm, hour) = t.hour12();
    let half = if pm { "PM" } else { "AM" };
    if t.minute() == 0 {
        format!("{hour} {half}")
    } else {
        format!("{hour}:{:02} {half}", t.minute())
    }
}

/// "Tuesday, December 8th", with the year when the day is a year or more ahead ("Monday, January 3rd,
/// 2028"), both local. The month is always said: over the phone "the 8th" alone is misheard ("the ace"
/// by whisper tiny.en, 3 errors in the 32 sentences of `bench/voice_wer.sh`), "December 8th" is not, and
/// a day near the turn of a month is never ambiguous.
pub fn day(local: DateTime<Tz>, now: DateTime<Utc>) -> String {
    let today = now.with_timezone(&local.timezone());
    let weekday = weekday_name(local.weekday());
    let date = format!("{weekday}, {} {}", month_name(local.month()), ordinal(local.day()));
    if (local.year(), local.month()) >= (today.year() + 1, today.month()) {
        format!("{date}, {}", local.year())
    } else {
        date
    }
}

/// "Thursday, December 3rd at 2 PM" for an instant, in `tz`.
pub fn instant(at: DateTime<Utc>, tz: Tz, now: DateTime<Utc>) -> String {
    let local = at.with_timezone(&tz);
    format!("{} at {}", day(local, now), time(local.time()))
}

/// One slot: "Thursday, December 3rd at 2 PM".
pub fn slot(slot: &Slot, now: DateTime<Utc>) -> String {
    instant(slot.start, slot.timezone, now)
}

/// Slots as one phrase, days said once: "Thursday, December 3rd at 2 PM or 2:30 PM, or Friday, December 4th at
/// 9 AM".
pub fn slots(slots: &[Slot], now: DateTime<Utc>) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for s in slots {
        let local = s.local_start();
        let day = day(local, now);
        let time = time(local.time());
        match groups.last_mut() {
            Some((d, times)) if *d == day => times.push(time),
            _ => groups.push((day, vec![time])),
        }
    }
    let phrases: Vec<String> = groups.into_iter().map(|(day, times)| format!("{day} at {}", or_list(&times))).collect();
    match phrases.as_slice() {
        [init @ .., last] if !init.is_empty() => format!("{}, or {last}", init.join(", ")),
        _ => phrases.concat(),
    }
}

/// "a", "a or b", "a, b or c".
pub fn or_list(items: &[String]) -> String {
    join_list(items, "or")
}

/// "a", "a and b", "a, b and c".
pub fn and_list(items: &[String]) -> String {
    join_list(items, "and")
}

fn join_list(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {word} {last}", init.join(", ")),
    }
}

/// English weekday name.
pub fn weekday_name(day: chrono::Weekday) -> &'static str {
    use chrono::Weekday::*;
    match day {
        Mon => "Monday",
        Tue => "Tuesday",
        Wed => "Wednesday",
        Thu => "Thursday",
        Fri => "Friday",
        Sat => "Saturday",
        Sun => "Sunday",
    }
}

/// English month name (1 = January).
pub fn month_name(month: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    NAMES.get(month.saturating_sub(1) as usize).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn ordinals_and_times() {
        let cases = [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th")];
        for (n, want) in cases {
            assert_eq!(ordinal(n), want);
        }
        assert_eq!(ordinal(22), "22nd");
        assert_eq!(ordinal(31), "31st");
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("time");
        assert_eq!(time(t(14, 0)), "2 PM");
        assert_eq!(time(t(9, 30)), "9:30 AM");
        assert_eq!(time(t(12, 0)), "12 PM");
        assert_eq!(time(t(0, 15)), "12:15 AM");
    }

    #[test]
    fn slots_are_grouped_by_day_in_the_agents_zone() {
        let tz: Tz = "America/New_York".parse().expect("tz");
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 14, 0, 0).single().expect("now");
        let at = |d, h, m| tz.with_ymd_and_hms(2026, 12, d, h, m, 0).single().expect("local").with_timezone(&Utc);
        let slot = |d, h, m| Slot::new(Uuid::nil(), at(d, h, m), 30, tz);
        let list = [slot(3, 14, 0), slot(3, 14, 30), slot(4, 9, 0)];
        assert_eq!(slots(&list, now), "Thursday, December 3rd at 2 PM or 2:30 PM, or Friday, December 4th at 9 AM");
        assert_eq!(slots(&list[..1], now), "Thursday, December 3rd at 2 PM");
        let january = Slot::new(Uuid::nil(), Utc.with_ymd_and_hms(2027, 1, 4, 15, 0, 0).single().expect("t"), 30, tz);
        assert_eq!(super::slot(&january, now), "Monday, January 4th at 10 AM");
        let a_year_on =
            Slot::new(Uuid::nil(), Utc.with_ymd_and_hms(2027, 12, 6, 15, 0, 0).single().expect("t"), 30, tz);
        assert_eq!(super::slot(&a_year_on, now), "Monday, December 6th, 2027 at 10 AM");
        assert_eq!(or_list(&["a".into(), "b".into(), "c".into()]), "a, b or c");
    }
}
