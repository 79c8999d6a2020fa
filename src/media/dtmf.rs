//! RFC 4733 telephone-events: each key press is reported once, at its end — the three redundant
//! end packets carry the same RTP timestamp and are deduplicated; an event whose end packets were all
//! lost is reported when the next event starts.

/// One key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// `0`–`9`, `*`, `#`, `A`–`D`.
    pub key: char,
    /// Length in RTP timestamp units (1/8000 s).
    pub duration: u16,
    /// The end was never seen.
    pub end_lost: bool,
}

/// Maps an event code to its key.
pub fn key(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// Turns telephone-event packets into digits.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    current: Option<(u32, u8, u16)>,
    last_ended: Option<u32>,
}

impl DtmfReceiver {
    /// Feeds one telephone-event payload with its RTP timestamp; returns a finished digit, if any.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<Digit> {
        if payload.len() < 4 {
            return None;
        }
        let (event, end) = (payload[0], payload[1] & 0x80 != 0);
        let duration = u16::from_be_bytes([payload[2], payload[3]]);
        if self.last_ended == Some(timestamp) {
            return None; // redundant end packet
        }
        let mut finished = None;
        if let Some((ts, previous, last_duration)) = self.current {
            if ts != timestamp {
                finished = key(previous).map(|key| Digit { key, duration: last_duration, end_lost: true });
                self.current = None;
            }
        }
        if end {
            self.current = None;
            self.last_ended = Some(timestamp);
            return key(event).map(|key| Digit { key, duration, end_lost: false }).or(finished);
        }
        self.current = Some((timestamp, event, duration));
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
    }

    #[test]
    fn one_digit_per_press_despite_redundant_ends() {
        let mut rx = DtmfReceiver::default();
        let mut digits = Vec::new();
        for (ts, event) in [(1000u32, 1u8), (3000, 2), (5000, 3), (7000, 4), (9000, 11)] {
            for d in [160, 320, 480] {
                digits.extend(rx.on_packet(ts, &packet(event, false, d)));
            }
            for _ in 0..3 {
                digits.extend(rx.on_packet(ts, &packet(event, true, 640)));
            }
        }
        let keys: String = digits.iter().map(|d| d.key).collect();
        assert_eq!(keys, "1234#");
        assert!(digits.iter().all(|d| !d.end_lost && d.duration == 640));
    }

    #[test]
    fn lost_end_is_reported_when_the_next_press_starts() {
        let mut rx = DtmfReceiver::default();
        assert_eq!(rx.on_packet(100, &packet(5, false, 160)), None);
        let lost = rx.on_packet(900, &packet(6, false, 160)).expect("previous digit");
        assert_eq!((lost.key, lost.end_lost), ('5', true));
        assert_eq!(rx.on_packet(900, &packet(6, true, 320)).map(|d| d.key), Some('6'));
        assert_eq!(rx.on_packet(0, &[1, 2]), None);
    }
}
