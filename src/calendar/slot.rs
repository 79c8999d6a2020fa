//! Appointment slots and their ids.
//!
//! A [`SlotId`] is `ST_` and 13 base32 characters encoding the slot's UTC start (minutes since the Unix
//! epoch), its length and a 16-bit tag of the calendar it came from. The same slot therefore has the
//! same id in every listing, on every instance and after restarts, and an id can be read back without a
//! cache; an id made by another calendar, or garbage, is refused as unknown.

use std::fmt;

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

const PREFIX: &str = "ST_";
/// RFC 4648 base32 alphabet, lower case.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const ENCODED_LEN: usize = 13;

/// A short, opaque, stable slot id, e.g. `ST_aebagbaf2fqaa`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SlotId(String);

impl SlotId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Builds the id of the slot `[start, start + minutes)` of the calendar `calendar`.
    pub fn new(calendar: Uuid, start: DateTime<Utc>, minutes: u16) -> Self {
        let start_minutes = u32::try_from(start.timestamp().div_euclid(60)).unwrap_or(0);
        let tag = tag(calendar, start_minutes, minutes);
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&start_minutes.to_be_bytes());
        bytes[4..6].copy_from_slice(&minutes.to_be_bytes());
        bytes[6..].copy_from_slice(&tag.to_be_bytes());
        Self(format!("{PREFIX}{}", encode(&bytes)))
    }

    /// Reads the start and length back, checking the id was made by `calendar`.
    pub fn decode(&self, calendar: Uuid) -> Option<(DateTime<Utc>, u16)> {
        let body = self.0.trim().strip_prefix(PREFIX)?;
        let bytes = decode(body)?;
        let start_minutes = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let minutes = u16::from_be_bytes([bytes[4], bytes[5]]);
        let tag_read = u16::from_be_bytes([bytes[6], bytes[7]]);
        if minutes == 0 || tag_read != tag(calendar, start_minutes, minutes) {
            return None;
        }
        let start = Utc.timestamp_opt(i64::from(start_minutes) * 60, 0).single()?;
        Some((start, minutes))
    }
}

impl From<String> for SlotId {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SlotId {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn tag(calendar: Uuid, start_minutes: u32, minutes: u16) -> u16 {
    let mut hasher = Sha256::new();
    hasher.update(calendar.as_bytes());
    hasher.update(start_minutes.to_be_bytes());
    hasher.update(minutes.to_be_bytes());
    let digest = hasher.finalize();
    u16::from_be_bytes([digest[0], digest[1]])
}

fn encode(bytes: &[u8; 8]) -> String {
    let bits = u64::from_be_bytes(*bytes);
    // 64 bits in 13 groups of 5 (the last group is padded with one zero bit).
    (0..ENCODED_LEN)
        .map(|i| {
            let shift = 64i32 - 5 * (i as i32 + 1);
            let group = if shift >= 0 { (bits >> shift) & 0x1f } else { (bits << -shift) & 0x1f };
            ALPHABET[group as usize] as char
        })
        .collect()
}

fn decode(text: &str) -> Option<[u8; 8]> {
    if text.len() != ENCODED_LEN {
        return None;
    }
    let mut bits: u64 = 0;
    for (i, c) in text.bytes().enumerate() {
        let value = ALPHABET.iter().position(|&a| a == c.to_ascii_lowercase())? as u64;
        let shift = 64i32 - 5 * (i as i32 + 1);
        if shift >= 0 {
            bits |= value << shift;
        } else if value & 1 != 0 {
            return None; // the padding bit must be zero
        } else {
            bits |= value >> -shift;
        }
    }
    Some(bits.to_be_bytes())
}

/// A free appointment slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Stable id.
    pub id: SlotId,
    /// Start, UTC.
    pub start: DateTime<Utc>,
    /// End, UTC.
    pub end: DateTime<Utc>,
    /// The agent's time zone.
    pub timezone: Tz,
}

impl Slot {
    /// The slot `[start, start + minutes)` of `calendar`.
    pub fn new(calendar: Uuid, start: DateTime<Utc>, minutes: u16, timezone: Tz) -> Self {
        Self {
            id: SlotId::new(calendar, start, minutes),
            start,
            end: start + Duration::minutes(i64::from(minutes)),
            timezone,
        }
    }

    /// Start in the agent's time zone.
    pub fn local_start(&self) -> DateTime<Tz> {
        self.start.with_timezone(&self.timezone)
    }

    /// Length in minutes.
    pub fn minutes(&self) -> i64 {
        (self.end - self.start).num_minutes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_stable_and_reversible() {
        let calendar = Uuid::from_u128(42);
        let start = Utc.with_ymd_and_hms(2026, 3, 9, 14, 0, 0).single().expect("time");
        let id = SlotId::new(calendar, start, 30);
        assert_eq!(id, SlotId::new(calendar, start, 30));
        assert_eq!(id.as_str().len(), 3 + 13);
        assert!(id.as_str().starts_with("ST_"));
        assert_eq!(id.decode(calendar), Some((start, 30)));
        assert_ne!(id, SlotId::new(calendar, start, 45));
        assert_ne!(id, SlotId::new(calendar, start + Duration::minutes(30), 30));
    }

    #[test]
    fn foreign_and_garbage_ids_are_unknown() {
        let start = Utc.with_ymd_and_hms(2026, 3, 9, 14, 0, 0).single().expect("time");
        let id = SlotId::new(Uuid::from_u128(1), start, 30);
        assert_eq!(id.decode(Uuid::from_u128(2)), None, "another calendar's id");
        for garbage in ["", "ST_", "ST_!!!!!!!!!!!!!", "slot-1", "ST_aaaaaaaaaaaaaaaaaaaa", "ST_aaaaaaaaaaaab"] {
            assert_eq!(SlotId::from(garbage).decode(Uuid::from_u128(1)), None, "{garbage}");
        }
        let mut tampered = id.as_str().to_string();
        tampered.replace_range(5..6, if &tampered[5..6] == "a" { "b" } else { "a" });
        assert_eq!(SlotId::from(tampered).decode(Uuid::from_u128(1)), None);
    }
}
