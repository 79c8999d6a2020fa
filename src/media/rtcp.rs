//! RTCP (RFC 3550 §6): the compound report slotline sends every few seconds (SR when it has sent RTP,
//! RR otherwise, each with one report block and an SDES CNAME) and the report blocks it reads from the
//! caller's reports. Written into a caller's buffer; parsing borrows the datagram.

use std::time::{SystemTime, UNIX_EPOCH};

/// What we report about the caller's stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The caller's SSRC.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24 bits).
    pub cumulative_lost: u32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
}

/// Our sending side, for a sender report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// RTP timestamp matching now.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
}

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;

/// NTP timestamp (RFC 3550 §4) of now.
fn ntp_now() -> (u32, u32) {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs() + 2_208_988_800;
    let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds as u32, fraction as u32)
}

/// Writes SR (with `sender`) or RR, one report block (when given) and SDES CNAME; returns the length.
pub fn write_report(
    buf: &mut [u8],
    ssrc: u32,
    sender: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &str,
) -> usize {
    let count = u8::from(block.is_some());
    let mut at = 0;
    let words = 1 + if sender.is_some() { 5 } else { 0 } + 6 * usize::from(count);
    buf[at] = 0x80 | count;
    buf[at + 1] = if sender.is_some() { SR } else { RR };
    buf[at + 2..at + 4].copy_from_slice(&(words as u16).to_be_bytes());
    buf[at + 4..at + 8].copy_from_slice(&ssrc.to_be_bytes());
    at += 8;
    if let Some(info) = sender {
        let (seconds, fraction) = ntp_now();
        for value in [seconds, fraction, info.rtp_timestamp, info.packets, info.octets] {
            buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
            at += 4;
        }
    }
    if let Some(b) = block {
        buf[at..at + 4].copy_from_slice(&b.ssrc.to_be_bytes());
        buf[at + 4] = b.fraction_lost;
        buf[at + 5..at + 8].copy_from_slice(&b.cumulative_lost.min(0x7f_ffff).to_be_bytes()[1..]);
        buf[at + 8..at + 12].copy_from_slice(&b.highest_sequence.to_be_bytes());
        buf[at + 12..at + 16].copy_from_slice(&b.jitter.to_be_bytes());
        // LSR and DLSR: we do not track the caller's SR timing.
        buf[at + 16..at + 24].fill(0);
        at += 24;
    }
    // SDES: one chunk, CNAME item, END, padded to 32 bits.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let chunk = 4 + 2 + cname.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    buf[at] = 0x81;
    buf[at + 1] = SDES;
    buf[at + 2..at + 4].copy_from_slice(&((padded / 4) as u16).to_be_bytes());
    buf[at + 4..at + 8].copy_from_slice(&ssrc.to_be_bytes());
    buf[at + 8] = 1;
    buf[at + 9] = cname.len() as u8;
    buf[at + 10..at + 10 + cname.len()].copy_from_slice(cname);
    buf[at + 10 + cname.len()..at + 4 + padded].fill(0);
    at + 4 + padded
}

/// The report blocks in a compound RTCP packet (what the caller says about our stream).
pub fn report_blocks(datagram: &[u8]) -> Vec<ReportBlock> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= datagram.len() {
        if datagram[at] >> 6 != 2 {
            break;
        }
        let count = usize::from(datagram[at] & 0x1f);
        let kind = datagram[at + 1];
        let length = (usize::from(u16::from_be_bytes([datagram[at + 2], datagram[at + 3]])) + 1) * 4;
        if at + length > datagram.len() {
            break;
        }
        let first_block = match kind {
            SR => Some(at + 28),
            RR => Some(at + 8),
            _ => None,
        };
        if let Some(mut b) = first_block {
            for _ in 0..count {
                if b + 24 > at + length {
                    break;
                }
                let word =
                    |i: usize| u32::from_be_bytes([datagram[i], datagram[i + 1], datagram[i + 2], datagram[i + 3]]);
                out.push(ReportBlock {
                    ssrc: word(b),
                    fraction_lost: datagram[b + 4],
                    cumulative_lost: word(b + 4) & 0x00ff_ffff,
                    highest_sequence: word(b + 8),
                    jitter: word(b + 12),
                });
                b += 24;
            }
        }
        at += length;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_are_word_aligned() {
        let block =
            ReportBlock { ssrc: 7, fraction_lost: 25, cumulative_lost: 3, highest_sequence: 70_000, jitter: 40 };
        let mut buf = [0u8; 256];
        let sr = write_report(
            &mut buf,
            99,
            Some(SenderInfo { rtp_timestamp: 1, packets: 2, octets: 320 }),
            Some(block),
            "slotline@127.0.0.1",
        );
        assert_eq!(sr % 4, 0);
        assert_eq!(buf[1], SR);
        assert_eq!(report_blocks(&buf[..sr]), vec![block]);
        let rr = write_report(&mut buf, 99, None, Some(block), "x");
        assert_eq!(buf[1], RR);
        assert_eq!(report_blocks(&buf[..rr]), vec![block]);
        assert!(report_blocks(&buf[..rr - 3]).len() <= 1);
        assert!(report_blocks(b"garbage").is_empty());
    }
}
