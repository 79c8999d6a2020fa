//! The built-in calendar: availability from rules kept with the agent, in the agent's time zone —
//! weekly working hours (several ranges a day), blocked ranges, slot length, buffers before and after
//! each booking, minimum notice and a booking horizon. DST-safe: local times a DST change skips are not
//! offered; a slot's length is always real minutes.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use super::local::{local_dates, local_to_utc, Availability};
use crate::storage::BusyRange;

/// Rules of a built-in calendar. Every field has a default, so `{}` is Monday–Friday 09:00–17:00.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Working hours per weekday (`mon` … `sun`), each a list of `["HH:MM", "HH:MM"]` ranges.
    #[serde(default = "default_hours")]
    #[schema(value_type = BTreeMap<String, Vec<Vec<String>>>, example = json!({"mon": [["09:00", "12:00"], ["13:00", "17:00"]]}))]
    pub working_hours: BTreeMap<Day, Vec<(LocalTime, LocalTime)>>,
    /// Ranges with no appointments (holidays, time off), local date-times or dates.
    #[serde(default)]
    pub blocked: Vec<Blocked>,
    /// Free minutes kept before each booking.
    #[serde(default)]
    pub buffer_before_minutes: u32,
    /// Free minutes kept after each booking.
    #[serde(default)]
    pub buffer_after_minutes: u32,
    /// Earliest booking, in minutes from now.
    #[serde(default = "default_notice")]
    pub minimum_notice_minutes: u32,
    /// Latest booking, in days from today.
    #[serde(default = "default_horizon")]
    pub horizon_days: u32,
}

impl Rules {
    /// The rules as stored with the agent (`storage::CalendarConfig::rules`): JSON text.
    pub fn to_stored(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Reads rules stored with the agent.
    pub fn from_stored(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            working_hours: default_hours(),
            blocked: Vec::new(),
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            minimum_notice_minutes: default_notice(),
            horizon_days: default_horizon(),
        }
    }
}

fn default_hours() -> BTreeMap<Day, Vec<(LocalTime, LocalTime)>> {
    let day = vec![(LocalTime(9 * 60), LocalTime(17 * 60))];
    [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri].into_iter().map(|d| (d, day.clone())).collect()
}

fn default_notice() -> u32 {
    60
}

fn default_horizon() -> u32 {
    90
}

/// A blocked range in local time; `end` is exclusive. Dates alone mean midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Blocked {
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`.
    #[schema(value_type = String, example = "2026-12-24")]
    pub start: LocalDateTime,
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (exclusive).
    #[schema(value_type = String, example = "2026-12-27")]
    pub end: LocalDateTime,
    /// Why (for admins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A weekday key of `working_hours`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl From<Weekday> for Day {
    fn from(day: Weekday) -> Self {
        match day {
            Weekday::Mon => Self::Mon,
            Weekday::Tue => Self::Tue,
            Weekday::Wed => Self::Wed,
            Weekday::Thu => Self::Thu,
            Weekday::Fri => Self::Fri,
            Weekday::Sat => Self::Sat,
            Weekday::Sun => Self::Sun,
        }
    }
}

/// A wall-clock time `HH:MM`, `24:00` allowed as an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(u32);

impl LocalTime {
    fn parse(text: &str) -> Option<Self> {
        let (h, m) = text.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0)) && text.len() == 5).then_some(Self(h * 60 + m))
    }

    /// Minutes after midnight.
    pub fn minutes(self) -> u32 {
        self.0
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a time like 09:30")))
    }
}

/// A local date-time written `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalDateTime(pub NaiveDateTime);

impl Serialize for LocalDateTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.format("%Y-%m-%dT%H:%M"))
    }
}

impl<'de> Deserialize<'de> for LocalDateTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDate::parse_from_str(&text, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN)))
            .map(LocalDateTime)
            .map_err(|_| {
                serde::de::Error::custom(format!("`{text}` is not a date like 2026-12-24 or 2026-12-24T13:00"))
            })
    }
}

impl Rules {
    /// Checks the rules make sense for `slot_minutes`; the error names the field.
    pub fn validate(&self, slot_minutes: u32) -> Result<(), (&'static str, String)> {
        for (day, ranges) in &self.working_hours {
            for (start, end) in ranges {
                if end.minutes() < start.minutes() + slot_minutes {
                    return Err((
                        "working_hours",
                        format!("{day:?} {start}-{end} is shorter than one {slot_minutes}-minute slot"),
                    ));
                }
            }
        }
        if let Some(b) = self.blocked.iter().find(|b| b.end <= b.start) {
            return Err(("blocked", format!("range starting {} ends before it starts", b.start.0)));
        }
        if self.buffer_before_minutes > 240 || self.buffer_after_minutes > 240 {
            return Err(("buffer_before_minutes", "buffers are at most 240 minutes".into()));
        }
        if self.minimum_notice_minutes > 60 * 24 * 30 {
            return Err(("minimum_notice_minutes", "at most 30 days".into()));
        }
        if !(1..=365).contains(&self.horizon_days) {
            return Err(("horizon_days", "must be between 1 and 365".into()));
        }
        Ok(())
    }
}

/// Availability of a built-in calendar.
#[derive(Debug, Clone)]
pub struct BuiltinAvailability {
    rules: Rules,
    slot_minutes: u16,
    timezone: Tz,
}

impl BuiltinAvailability {
    /// Availability from `rules` with slots of `slot_minutes`.
    pub fn new(rules: Rules, slot_minutes: u16, timezone: Tz) -> Self {
        Self { rules, slot_minutes, timezone }
    }

    fn blocked(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.rules.blocked.iter().any(|b| {
            let from = local_to_utc(self.timezone, b.start.0);
            let until = local_to_utc(self.timezone, b.end.0);
            matches!((from, until), (Some(from), Some(until)) if from < end && until > start)
        })
    }
}

impl Availability for BuiltinAvailability {
    fn slot_minutes(&self) -> u16 {
        self.slot_minutes
    }

    fn candidates(&self, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let earliest = now + Duration::minutes(i64::from(self.rules.minimum_notice_minutes));
        let last_day =
            now.with_timezone(&self.timezone).date_naive() + Duration::days(i64::from(self.rules.horizon_days));
        let length = Duration::minutes(i64::from(self.slot_minutes));
        let mut out = Vec::new();
        for date in local_dates(from, to, self.timezone) {
            if date > last_day {
                break;
            }
            let Some(ranges) = self.rules.working_hours.get(&Day::from(date.weekday())) else { continue };
            for (open, close) in ranges {
                let mut minute = open.minutes();
                while minute + u32::from(self.slot_minutes) <= close.minutes() {
                    let local = date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minute));
                    minute += u32::from(self.slot_minutes);
                    let Some(start) = local_to_utc(self.timezone, local) else { continue };
                    if start < from || start >= to || start < earliest || self.blocked(start, start + length) {
                        continue;
                    }
                    out.push(start);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn busy_range(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> BusyRange {
        BusyRange {
            from: start - Duration::minutes(i64::from(self.rules.buffer_before_minutes)),
            until: end + Duration::minutes(i64::from(self.rules.buffer_after_minutes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Timelike as _};

    use super::*;

    fn rules(json: &str) -> Rules {
        serde_json::from_str(json).expect("rules")
    }

    #[test]
    fn split_days_blocks_and_notice() {
        let tz: Tz = "Europe/Berlin".parse().expect("tz");
        let r = rules(
            r#"{"working_hours": {"mon": [["09:00","10:00"],["14:00","15:00"]], "tue": [["09:00","10:00"]]},
                "blocked": [{"start": "2026-11-24", "end": "2026-11-25", "reason": "training"}],
                "minimum_notice_minutes": 120}"#,
        );
        assert_eq!(r.validate(30), Ok(()));
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 7, 30, 0).single().expect("time"); // Mon 08:30 Berlin
        let a = BuiltinAvailability::new(r, 30, tz);
        let slots: Vec<String> = a
            .candidates(now, now + Duration::days(8), now)
            .iter()
            .map(|s| s.with_timezone(&tz).format("%a %d %H:%M").to_string())
            .collect();
        // Monday 09:00/09:30 are inside the 2 h notice; Tuesday the 24th is blocked.
        assert_eq!(
            slots,
            vec!["Mon 23 14:00", "Mon 23 14:30", "Mon 30 09:00", "Mon 30 09:30", "Mon 30 14:00", "Mon 30 14:30"]
        );
    }

    #[test]
    fn dst_gap_times_are_not_offered_and_lengths_stay_real() {
        // Lord Howe moves its clocks by 30 minutes at 02:00 on the first Sunday of October.
        let tz: Tz = "Australia/Lord_Howe".parse().expect("tz");
        let r = rules(r#"{"working_hours": {"sun": [["01:00","03:00"]]}, "minimum_notice_minutes": 0}"#);
        let now = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).single().expect("time");
        let a = BuiltinAvailability::new(r, 30, tz);
        let local: Vec<String> = a
            .candidates(now, now + Duration::days(7), now)
            .iter()
            .map(|s| s.with_timezone(&tz).format("%H:%M %z").to_string())
            .collect();
        assert_eq!(local, vec!["01:00 +1030", "01:30 +1030", "02:30 +1100"], "02:00 does not exist that day");
    }

    #[test]
    fn buffers_widen_the_busy_range_and_bad_rules_name_the_field() {
        let r = rules(r#"{"buffer_before_minutes": 10, "buffer_after_minutes": 5}"#);
        let a = BuiltinAvailability::new(r, 30, chrono_tz::UTC);
        let start = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().expect("time");
        let busy = a.busy_range(start, start + Duration::minutes(30));
        assert_eq!((busy.from.minute(), busy.until.minute()), (50, 35));
        assert_eq!(
            rules(r#"{"working_hours": {"mon": [["09:00","09:20"]]}}"#).validate(30).map_err(|e| e.0),
            Err("working_hours")
        );
        assert_eq!(rules(r#"{"horizon_days": 0}"#).validate(30).map_err(|e| e.0), Err("horizon_days"));
        assert!(serde_json::from_str::<Rules>(r#"{"working_hours": {"mon": [["9am","5pm"]]}}"#).is_err());
        assert!(serde_json::from_str::<Rules>(r#"{"holidays": []}"#).is_err());
    }
}
