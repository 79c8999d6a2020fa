//! Day and time expressions, relative to today in the agent's time zone: "tomorrow at 2", "next Tuesday
//! afternoon", "the 3rd", "December 3rd", "any time Friday", "earliest possible", "2:30 PM", "half past
//! ten", "noon", "after 3", "next week".
//!
//! An hour without AM/PM is read as office hours: 1–7 are afternoon, 8–11 morning, 12 noon, unless a part
//! of the day ("in the morning") says otherwise. Times come as speech recognisers write them too: "930",
//! "9 30", "9.30", "nine thirty". A correction inside the turn ("at ten, actually no, make it eleven")
//! replaces what it names. A weekday heard as a near-miss ("no, thirsty instead") is read, and marked
//! [`When::loose`] so the engine reads it back.

use chrono::{Datelike as _, Duration, NaiveDate, NaiveTime, Weekday};

use super::{number, ordinal, sounds_like, Utterance};

/// Part of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayPart {
    /// Before noon.
    Morning,
    /// Noon to 5 PM.
    Afternoon,
    /// From 5 PM.
    Evening,
}

impl DayPart {
    /// `[from, until)` hours of the part.
    pub fn hours(self) -> (u32, u32) {
        match self {
            Self::Morning => (0, 12),
            Self::Afternoon => (12, 17),
            Self::Evening => (17, 24),
        }
    }
}

/// Which days the caller means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Days {
    /// One date.
    On(NaiveDate),
    /// Any day from the first to the last (inclusive), e.g. "next week".
    Between(NaiveDate, NaiveDate),
}

impl Days {
    /// `true` when `date` is one of the days.
    pub fn contains(self, date: NaiveDate) -> bool {
        match self {
            Self::On(d) => d == date,
            Self::Between(a, b) => a <= date && date <= b,
        }
    }

    /// The last day meant.
    pub fn last(self) -> NaiveDate {
        match self {
            Self::On(d) | Self::Between(_, d) => d,
        }
    }

    /// The first day meant.
    pub fn first(self) -> NaiveDate {
        match self {
            Self::On(d) | Self::Between(d, _) => d,
        }
    }
}

/// Which times of day the caller means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// Exactly this time.
    At(NaiveTime),
    /// A part of the day.
    Part(DayPart),
    /// At or after.
    After(NaiveTime),
    /// Before.
    Before(NaiveTime),
}

impl Times {
    /// `true` when `t` fits.
    pub fn contains(self, t: NaiveTime) -> bool {
        use chrono::Timelike as _;
        match self {
            Self::At(at) => at == t,
            Self::Part(part) => {
                let (from, until) = part.hours();
                (from..until).contains(&t.hour())
            }
            Self::After(at) => t >= at,
            Self::Before(at) => t < at,
        }
    }
}

/// A caller's wish for when.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct When {
    /// The days, when said.
    pub days: Option<Days>,
    /// The times, when said.
    pub times: Option<Times>,
    /// "earliest possible", "as soon as possible", "first available".
    pub earliest: bool,
    /// The day was read from a near-miss of its name ("thirsty" for Thursday): read it back.
    pub loose: bool,
}

impl When {
    /// `true` when nothing about time was said.
    pub fn is_empty(&self) -> bool {
        self.days.is_none() && self.times.is_none() && !self.earliest
    }

    /// This wish completed by an earlier one: a new time alone keeps the earlier day ("no, at 3"), a new
    /// day drops the earlier time unless it was a part of the day.
    pub fn refine(self, earlier: When) -> When {
        match (self.days, self.times) {
            (None, Some(_)) => When { days: earlier.days, ..self },
            _ => self,
        }
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month(word: &str) -> Option<u32> {
    const SHORT: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let word = if word == "sept" { "sep" } else { word };
    MONTHS.iter().position(|m| *m == word).or_else(|| SHORT.iter().position(|m| *m == word)).map(|i| i as u32 + 1)
}

/// `true` for a month name or its abbreviation.
pub fn is_month(word: &str) -> bool {
    month(word).is_some()
}

const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

fn weekday(word: &str) -> Option<Weekday> {
    let w = word.trim_end_matches('s');
    Some(match w {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" | "tues" => Weekday::Tue,
        "wednesday" | "wed" => Weekday::Wed,
        "thursday" | "thu" | "thur" | "thurs" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        _ => return None,
    })
}

/// Words with which callers correct themselves inside a turn.
const CORRECTIONS: &[&str] =
    &["actually", "no", "nope", "sorry", "make it", "i mean", "rather", "wait", "change it to", "change that to"];

/// Reads a wish from `u`, relative to `today` (the agent's local date). When the caller corrects
/// themselves inside the turn, what follows the last correction wins for what it says, and the rest of
/// the earlier wish stays ("Monday at ten, no, Tuesday" is Tuesday at ten).
pub fn parse(u: &Utterance, today: NaiveDate) -> When {
    let mut points: Vec<(usize, usize)> = Vec::new();
    for marker in CORRECTIONS {
        let len = marker.split_whitespace().count();
        for i in 0..u.words.len().saturating_sub(len - 1) {
            if u.words[i..i + len].join(" ") == *marker {
                points.push((i, i + len));
            }
        }
    }
    points.sort_unstable();
    for &(start, end) in points.iter().rev() {
        if start == 0 || end >= u.words.len() {
            continue;
        }
        let before = read(&Utterance::from_words(&u.words[..start]), today, false);
        if before.is_empty() {
            continue;
        }
        let after = read(&Utterance::from_words(&u.words[end..]), today, before.times.is_some());
        if after.is_empty() {
            continue;
        }
        return When {
            days: after.days.or(before.days),
            times: after.times.or(before.times),
            earliest: after.earliest,
            loose: after.loose || (after.days.is_none() && before.loose),
        };
    }
    let whole = read(u, today, false);
    // "Actually, make it three": a lone hour after a correction that opens the turn.
    match points.last() {
        Some(&(_, end)) if whole.is_empty() && end < u.words.len() => {
            read(&Utterance::from_words(&u.words[end..]), today, true)
        }
        _ => whole,
    }
}

/// One wish without corrections; `bare_hour` reads a lone number as the hour ("… no, eleven").
fn read(u: &Utterance, today: NaiveDate, bare_hour: bool) -> When {
    // "Good morning" greets; it asks for no part of the day.
    let greeting = ["good morning", "good afternoon", "good evening"];
    let ungreeted = Utterance::new(&greeting.iter().fold(u.text.clone(), |t, g| t.replace(g, " ")));
    let part = if ungreeted.has("morning") && !u.has("afternoon") {
        Some(DayPart::Morning)
    } else if ungreeted.has_any(&["afternoon", "after lunch"]) {
        Some(DayPart::Afternoon)
    } else if ungreeted.has_any(&["evening", "tonight", "after work"]) {
        Some(DayPart::Evening)
    } else {
        None
    };
    let earliest = u.has_any(&[
        "earliest",
        "soonest",
        "as soon as possible",
        "asap",
        "first available",
        "next available",
        "first opening",
        "next opening",
        "soon as",
    ]);
    let mut times = clock_time(u, part).or(part.map(Times::Part));
    if times.is_none() && bare_hour {
        times = lone_hour(u, part);
    }
    let (days, loose) = days(u, today);
    When { days, times, earliest, loose }
}

/// A lone hour in a correction: "eleven", "make it 3".
fn lone_hour(u: &Utterance, part: Option<DayPart>) -> Option<Times> {
    let content: Vec<&String> =
        u.words.iter().filter(|w| !matches!(w.as_str(), "please" | "then" | "the" | "at" | "um" | "uh")).collect();
    match content.as_slice() {
        [only] => {
            let hour = number(only).filter(|h| (1..=12).contains(h))?;
            with_meridiem(hour, 0, None, part).map(Times::At)
        }
        _ => None,
    }
}

/// The days said, and whether they were read from a near-miss of a weekday's name.
fn days(u: &Utterance, today: NaiveDate) -> (Option<Days>, bool) {
    if u.has("day after tomorrow") {
        return (Some(Days::On(today + Duration::days(2))), false);
    }
    if u.has_any(&["tomorrow", "tmrw"]) {
        return (Some(Days::On(today + Duration::days(1))), false);
    }
    if u.has_any(&["today", "tonight", "this afternoon", "this morning", "this evening"]) {
        return (Some(Days::On(today)), false);
    }
    let words = &u.words;
    for (i, word) in words.iter().enumerate() {
        if let Some(day) = weekday(word) {
            return (Some(Days::On(weekday_date(day, words, i, today))), false);
        }
    }
    if u.has("next week") {
        let monday = today + Duration::days(7 - today.weekday().num_days_from_monday() as i64);
        return (Some(Days::Between(monday, monday + Duration::days(6))), false);
    }
    if u.has("this week") {
        let sunday = today + Duration::days(6 - today.weekday().num_days_from_monday() as i64);
        return (Some(Days::Between(today, sunday)), false);
    }
    if let Some(date) = day_of_month(words, today) {
        return (Some(Days::On(date)), false);
    }
    for (i, word) in words.iter().enumerate() {
        let Some(day) = sounds_like(word, &WEEKDAYS).and_then(weekday) else { continue };
        if where_a_day_goes(words, i) {
            return (Some(Days::On(weekday_date(day, words, i, today))), true);
        }
    }
    (None, false)
}

/// The date of weekday `day` said as `words[i]`: the coming one, "next Wednesday" said on a Tuesday the
/// one of next week, "this Tuesday" said on a Tuesday today.
fn weekday_date(day: Weekday, words: &[String], i: usize, today: NaiveDate) -> NaiveDate {
    let ahead = (7 + day.num_days_from_monday() as i64 - today.weekday().num_days_from_monday() as i64) % 7;
    let mut ahead = if ahead == 0 { 7 } else { ahead };
    if i > 0 && words[i - 1] == "next" && ahead == 1 {
        ahead += 7;
    }
    if i > 0 && words[i - 1] == "this" && ahead == 7 {
        ahead = 0;
    }
    today + Duration::days(ahead)
}

/// Whether `words[i]` stands where a day is said: after "on", "no", "next", "actually", before "instead",
/// "at", a part of the day, or nearly alone. A near-miss anywhere else is left alone.
fn where_a_day_goes(words: &[String], i: usize) -> bool {
    let prev = i.checked_sub(1).map(|j| words[j].as_str());
    let next = words.get(i + 1).map(String::as_str);
    matches!(prev, Some("on" | "no" | "next" | "this" | "sorry" | "actually" | "it" | "say" | "maybe" | "try"))
        || matches!(next, Some("instead" | "at" | "morning" | "afternoon" | "evening" | "then" | "please" | "would"))
        || words.len() <= 2
}

/// "the 3rd", "December 3rd", "3rd of December", "the twenty first", "Dec 3".
fn day_of_month(words: &[String], today: NaiveDate) -> Option<NaiveDate> {
    for (i, word) in words.iter().enumerate() {
        let (day, used) = match (ordinal(word), words.get(i + 1).and_then(|w| ordinal(w))) {
            (Some(20), Some(n)) if n < 10 => (20 + n, 2),
            (_, _) if word == "twenty" || word == "thirty" => match words.get(i + 1).and_then(|w| ordinal(w)) {
                Some(n) if n < 10 => (number(word).unwrap_or(0) + n, 2),
                _ => continue,
            },
            (Some(n), _) => (n, 1),
            (None, _) => {
                // "December 3" / "Dec 3".
                match (month(word), words.get(i + 1).and_then(|w| w.parse::<u32>().ok())) {
                    (Some(m), Some(d)) => return resolve(today, Some(m), d),
                    _ => continue,
                }
            }
        };
        let month_before = i.checked_sub(1).and_then(|j| month(&words[j]));
        let month_after = match (words.get(i + used).map(String::as_str), words.get(i + used + 1)) {
            (Some("of"), Some(m)) => month(m),
            (Some(m), _) => month(m),
            _ => None,
        };
        // An ordinal without a month counts only after "the"/"on" ("the third"), not "the third one".
        let said_as_date = month_before.is_some()
            || month_after.is_some()
            || (i > 0
                && matches!(words[i - 1].as_str(), "the" | "on")
                && words.get(i + used).map(String::as_str) != Some("one"));
        if said_as_date {
            return resolve(today, month_before.or(month_after), day);
        }
    }
    None
}

fn resolve(today: NaiveDate, month: Option<u32>, day: u32) -> Option<NaiveDate> {
    match month {
        Some(m) => {
            let this_year = NaiveDate::from_ymd_opt(today.year(), m, day)?;
            if this_year >= today {
                Some(this_year)
            } else {
                NaiveDate::from_ymd_opt(today.year() + 1, m, day)
            }
        }
        None => {
            if day >= today.day() {
                NaiveDate::from_ymd_opt(today.year(), today.month(), day)
            } else {
                let (y, m) =
                    if today.month() == 12 { (today.year() + 1, 1) } else { (today.year(), today.month() + 1) };
                NaiveDate::from_ymd_opt(y, m, day)
            }
        }
    }
}

/// A clock time: "2 pm", "2:30", "14:00", "two thirty", "half past ten", "quarter to three", "noon", "at 2",
/// "10 o'clock", with "after"/"before" making a bound.
fn clock_time(u: &Utterance, part: Option<DayPart>) -> Option<Times> {
    if u.has_any(&["noon", "midday", "lunchtime"]) {
        let t = NaiveTime::from_hms_opt(12, 0, 0)?;
        return Some(bound(u, "noon", t).unwrap_or(Times::At(t)));
    }
    let words = &u.words;
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).map(String::as_str);
        let prev = i.checked_sub(1).map(|j| words[j].as_str());
        // "half past ten", "quarter past 2", "quarter to three".
        if matches!(word.as_str(), "half" | "quarter") && matches!(next, Some("past" | "after" | "to")) {
            // Where only an hour can stand, "you", "to" and "too" are a recogniser's "two".
            let hour_word = |w: &String| number(w).or_else(|| matches!(w.as_str(), "you" | "to" | "too").then_some(2));
            let Some(hour) = words.get(i + 2).and_then(hour_word).filter(|h| (1..=12).contains(h)) else {
                continue;
            };
            let minutes = if word == "half" { 30 } else { 15 };
            let (hour, minute) =
                if next == Some("to") { (hour.checked_sub(1)?.max(1), 60 - minutes) } else { (hour, minutes) };
            let t = with_meridiem(hour, minute, meridiem(words.get(i + 3).map(String::as_str)), part)?;
            return Some(bounded(prev, t));
        }
        // "14:00", "2:30", "9.30".
        if let Some((h, m)) = word.split_once(':').or_else(|| word.split_once('.')) {
            let (Ok(hour), Ok(minute)) = (h.parse::<u32>(), m.parse::<u32>()) else { continue };
            let t = if hour > 12 {
                NaiveTime::from_hms_opt(hour, minute, 0)?
            } else {
                with_meridiem(hour, minute, meridiem(next), part)?
            };
            return Some(bounded(prev, t));
        }
        // "2pm", "2 pm", "2 p.m", "at 2", "two thirty", "10 o'clock".
        let (digits, glued) = split_glued_meridiem(word);
        // "930", "1030am": a recogniser's "nine thirty".
        if let Some((hour, minute)) = run_together(digits) {
            let t = with_meridiem(hour, minute, glued.or_else(|| meridiem(next)), part)?;
            return Some(bounded(prev, t));
        }
        let Some(hour) = number(digits).filter(|h| (1..=23).contains(h)) else { continue };
        let (minute, after) = match next.and_then(number) {
            // "two thirty", "two forty five".
            Some(m) if (10..60).contains(&m) => {
                let unit =
                    words.get(i + 2).and_then(|w| number(w)).filter(|n| (1..10).contains(n) && m % 10 == 0 && m >= 20);
                (m + unit.unwrap_or(0), i + 2 + usize::from(unit.is_some()))
            }
            // "two oh five".
            Some(0) if next == Some("oh") => match words.get(i + 2).and_then(|w| number(w)).filter(|n| *n < 10) {
                Some(unit) => (unit, i + 3),
                None => (0, i + 1),
            },
            _ => (0, i + 1),
        };
        let after_word = words.get(after).map(String::as_str);
        let half = glued.or_else(|| meridiem(after_word));
        let oclock = matches!(after_word, Some("o'clock" | "oclock"));
        let cued =
            half.is_some() || oclock || matches!(prev, Some("at" | "around" | "after" | "before" | "by")) || minute > 0;
        if !cued || (hour > 12 && half.is_some()) {
            continue;
        }
        let t = if hour > 12 {
            NaiveTime::from_hms_opt(hour, minute, 0)?
        } else {
            with_meridiem(hour, minute, half, part)?
        };
        return Some(bounded(prev, t));
    }
    None
}

/// Hour and minute of digits run together: "930" is 9:30, "1145" 11:45 (minutes on the five).
fn run_together(digits: &str) -> Option<(u32, u32)> {
    if !(3..=4).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    let (hour, minute) = (n / 100, n % 100);
    ((1..=12).contains(&hour) && minute < 60 && minute % 5 == 0).then_some((hour, minute))
}

fn split_glued_meridiem(word: &str) -> (&str, Option<bool>) {
    if let Some(d) = word.strip_suffix("pm").or_else(|| word.strip_suffix("p.m")) {
        if !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()) {
            return (d, Some(true));
        }
    }
    if let Some(d) = word.strip_suffix("am").or_else(|| word.strip_suffix("a.m")) {
        if !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()) {
            return (d, Some(false));
        }
    }
    (word, None)
}

/// `Some(true)` for PM, `Some(false)` for AM.
fn meridiem(word: Option<&str>) -> Option<bool> {
    match word? {
        "pm" | "p.m" | "p" => Some(true),
        "am" | "a.m" | "a" => Some(false),
        _ => None,
    }
}

fn with_meridiem(hour: u32, minute: u32, pm: Option<bool>, part: Option<DayPart>) -> Option<NaiveTime> {
    let hour = hour % 12;
    let pm = pm.unwrap_or(match part {
        Some(DayPart::Morning) => false,
        Some(DayPart::Afternoon | DayPart::Evening) => true,
        None => hour == 0 || hour <= 7,
    });
    let hour = if pm { hour + 12 } else { hour };
    NaiveTime::from_hms_opt(hour % 24, minute, 0)
}

fn bounded(prev: Option<&str>, t: NaiveTime) -> Times {
    match prev {
        Some("after") => Times::After(t),
        Some("before" | "by") => Times::Before(t),
        _ => Times::At(t),
    }
}

fn bound(u: &Utterance, word: &str, t: NaiveTime) -> Option<Times> {
    if u.has(&format!("after {word}")) {
        Some(Times::After(t))
    } else if u.has(&format!("before {word}")) {
        Some(Times::Before(t))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tuesday, December 1st 2026.
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).expect("date")
    }

    fn when(text: &str) -> When {
        parse(&Utterance::new(text), today())
    }

    fn date(m: u32, d: u32) -> Option<Days> {
        Some(Days::On(NaiveDate::from_ymd_opt(if m == 1 { 2027 } else { 2026 }, m, d).expect("date")))
    }

    fn at(h: u32, m: u32) -> Option<Times> {
        Some(Times::At(NaiveTime::from_hms_opt(h, m, 0).expect("time")))
    }

    #[test]
    fn days_relative_to_today() {
        assert_eq!(when("tomorrow at 2").days, date(12, 2));
        assert_eq!(when("the day after tomorrow").days, date(12, 3));
        assert_eq!(when("next Tuesday afternoon").days, date(12, 8));
        assert_eq!(when("Friday").days, date(12, 4));
        assert_eq!(when("any time Friday").days, date(12, 4));
        assert_eq!(when("next friday").days, date(12, 4));
        assert_eq!(when("on Wednesday").days, date(12, 2));
        assert_eq!(when("the 3rd").days, date(12, 3));
        assert_eq!(when("on the third").days, date(12, 3));
        assert_eq!(when("december 15th").days, date(12, 15));
        assert_eq!(when("the 4th of january").days, date(1, 4));
        assert_eq!(when("dec 9").days, date(12, 9));
        assert_eq!(when("the twenty first").days, date(12, 21));
        assert_eq!(when("the first one").days, None, "a choice, not a date");
        let next_week = when("sometime next week").days;
        assert_eq!(
            next_week,
            Some(Days::Between(
                NaiveDate::from_ymd_opt(2026, 12, 7).expect("d"),
                NaiveDate::from_ymd_opt(2026, 12, 13).expect("d")
            ))
        );
        assert!(when("earliest possible").earliest);
        assert!(when("as soon as possible please").earliest);
    }

    #[test]
    fn times_of_day() {
        assert_eq!(when("tomorrow at 2").times, at(14, 0));
        assert_eq!(when("I'll take the 2 PM slot tomorrow").times, at(14, 0));
        assert_eq!(when("2pm").times, at(14, 0));
        assert_eq!(when("at 10").times, at(10, 0));
        assert_eq!(when("at two thirty").times, at(14, 30));
        assert_eq!(when("9:30 in the morning").times, at(9, 30));
        assert_eq!(when("14:00").times, at(14, 0));
        assert_eq!(when("half past ten").times, at(10, 30));
        assert_eq!(when("quarter past 2").times, at(14, 15));
        assert_eq!(when("at noon").times, at(12, 0));
        assert_eq!(when("11 a.m.").times, at(11, 0));
        assert_eq!(when("3 o'clock").times, at(15, 0));
        assert_eq!(when("at 9 in the evening").times, at(21, 0));
        assert_eq!(when("next Tuesday afternoon").times, Some(Times::Part(DayPart::Afternoon)));
        assert_eq!(when("after 3").times, Some(Times::After(NaiveTime::from_hms_opt(15, 0, 0).expect("t"))));
        assert_eq!(when("the 3rd").times, None);
        assert_eq!(when("option 2").times, None);
    }

    #[test]
    fn times_as_a_recogniser_writes_them() {
        assert_eq!(when("930").times, at(9, 30));
        assert_eq!(when("930.").times, at(9, 30));
        assert_eq!(when("9 30").times, at(9, 30));
        assert_eq!(when("9.30").times, at(9, 30));
        assert_eq!(when("nine thirty").times, at(9, 30));
        assert_eq!(when("1030 please").times, at(10, 30));
        assert_eq!(when("230pm").times, at(14, 30));
        assert_eq!(when("half past nine").times, at(9, 30));
        assert_eq!(when("quarter to ten").times, at(9, 45));
        assert_eq!(when("Can I book Friday at half past you?").times, at(14, 30), "'two' as whisper wrote it");
        assert_eq!(when("noon").times, at(12, 0));
        assert_eq!(when("2026").times, None, "a year is not a time");
        assert_eq!(when("the 10 o'clock").times, at(10, 0));
    }

    #[test]
    fn dates_as_callers_say_them() {
        assert_eq!(when("the 9th").days, date(12, 9));
        assert_eq!(when("December ninth").days, date(12, 9));
        assert_eq!(when("next Monday").days, date(12, 7));
        assert_eq!(when("this Friday").days, date(12, 4));
        let w = when("tomorrow afternoon");
        assert_eq!((w.days, w.times), (date(12, 2), Some(Times::Part(DayPart::Afternoon))));
    }

    #[test]
    fn a_correction_inside_the_turn_wins() {
        let w = when("Monday at ten, actually no, make it eleven");
        assert_eq!((w.days, w.times), (date(12, 7), at(11, 0)));
        let w = when("Wednesday at 10, no sorry, Thursday");
        assert_eq!((w.days, w.times), (date(12, 3), at(10, 0)));
        assert_eq!(when("no, Thursday").days, date(12, 3));
        assert_eq!(when("at 2, or rather 3").times, at(15, 0));
        assert_eq!(when("Actually, make it three.").times, at(15, 0));
        assert_eq!(when("no").times, None);
        assert_eq!(when("no thanks").days, None);
        assert!(when("Good morning!").is_empty(), "a greeting");
    }

    #[test]
    fn a_weekday_near_miss_is_read_loosely_where_a_day_goes() {
        let w = when("No, sorry, thirsty instead");
        assert_eq!((w.days, w.loose), (date(12, 3), true));
        assert!(!when("on Thursday").loose);
        assert_eq!(when("I am thirsty today").days, date(12, 1), "today, not Thursday");
        assert_eq!(when("a thirsty dog barked loudly").days, None);
    }
}
