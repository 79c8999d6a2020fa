//! The demo calendar: 30-minute slots from 09:00 to 18:00 local time, Monday to Friday, over the next 90
//! days, each free or not at random — but the randomness is a hash of the agent id and the slot's local
//! date and time, so every listing, instance and restart sees the same availability. Bookings are real
//! rows in the database, so a booked slot disappears from later listings, also across restarts.

use chrono::{DateTime, Datelike as _, Duration, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::local::{local_dates, local_to_utc, Availability};

/// Slot length of the demo calendar.
pub const SLOT_MINUTES: u16 = 30;
/// Days ahead the demo calendar offers.
pub const HORIZON_DAYS: i64 = 90;
const OPEN_HOUR: u32 = 9;
const CLOSE_HOUR: u32 = 18;
/// Share of slots that are free, in percent.
const FREE_PERCENT: u8 = 40;

/// Availability of the demo calendar of one agent.
#[derive(Debug, Clone)]
pub struct DemoAvailability {
    seed: Uuid,
    timezone: Tz,
}

impl DemoAvailability {
    /// The demo availability seeded by `agent_id`.
    pub fn new(agent_id: Uuid, timezone: Tz) -> Self {
        Self { seed: agent_id, timezone }
    }

    fn is_free(&self, local: chrono::NaiveDateTime) -> bool {
        let mut hasher = Sha256::new();
        hasher.update(self.seed.as_bytes());
        hasher.update(local.format("%Y-%m-%dT%H:%M").to_string().as_bytes());
        hasher.finalize()[0] % 100 < FREE_PERCENT
    }
}

impl Availability for DemoAvailability {
    fn slot_minutes(&self) -> u16 {
        SLOT_MINUTES
    }

    fn candidates(&self, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        // From tomorrow (local) for 90 days, as the seed's fake calendar did.
        let today = now.with_timezone(&self.timezone).date_naive();
        let (first_day, last_day) = (today + Duration::days(1), today + Duration::days(HORIZON_DAYS));
        let mut out = Vec::new();
        for date in local_dates(from, to, self.timezone) {
            if date < first_day || date > last_day || matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                continue;
            }
            for half_hour in 0..(CLOSE_HOUR - OPEN_HOUR) * 2 {
                let time = NaiveTime::from_hms_opt(OPEN_HOUR + half_hour / 2, (half_hour % 2) * 30, 0);
                let Some(local) = time.map(|t| date.and_time(t)) else { continue };
                if !self.is_free(local) {
                    continue;
                }
                if let Some(start) = local_to_utc(self.timezone, local) {
                    if start >= from && start < to && start > now {
                        out.push(start);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Timelike as _};

    use super::*;

    #[test]
    fn weekday_half_hours_from_nine_to_six_reproducibly() {
        let tz: Tz = "America/New_York".parse().expect("tz");
        let now = Utc.with_ymd_and_hms(2026, 11, 20, 15, 0, 0).single().expect("time"); // a Friday
        let demo = DemoAvailability::new(Uuid::from_u128(7), tz);
        let slots = demo.candidates(now, now + Duration::days(14), now);
        assert!(!slots.is_empty());
        assert_eq!(slots, DemoAvailability::new(Uuid::from_u128(7), tz).candidates(now, now + Duration::days(14), now));
        assert_ne!(slots, DemoAvailability::new(Uuid::from_u128(8), tz).candidates(now, now + Duration::days(14), now));
        for slot in &slots {
            let local = slot.with_timezone(&tz);
            assert!(!matches!(local.weekday(), Weekday::Sat | Weekday::Sun), "{local}");
            assert!((9..18).contains(&local.hour()) && local.minute() % 30 == 0, "{local}");
            assert!(local.date_naive() > now.with_timezone(&tz).date_naive(), "from tomorrow on");
        }
        let days: std::collections::BTreeSet<_> = slots.iter().map(|s| s.with_timezone(&tz).date_naive()).collect();
        assert!(days.len() >= 9, "nearly every weekday of two weeks has free slots: {days:?}");
        let later = demo.candidates(now + Duration::days(100), now + Duration::days(120), now);
        assert!(later.is_empty(), "nothing beyond 90 days");
    }
}
