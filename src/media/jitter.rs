//! A jitter buffer for 20 ms G.711 frames: packets go in as they arrive (out of order, duplicated, late),
//! frames come out in sequence order, or [`Pulled::Missing`] where a packet never came (the caller
//! conceals it). Fixed capacity, no allocation after construction.
//!
//! The listener is the agent's endpointer, not a human ear, so frames are not paced out at a fixed delay:
//! [`JitterBuffer::pop`] hands out the next frame as soon as it is here, and holds back only behind a
//! gap, until the missing packet arrives (reordering) or `target` later ones have (a loss). On a clean
//! network this adds no delay to the caller's audio, so none to the turn gap. Output starts once
//! `target` frames are buffered; packets older than the output point are late and dropped; a jump of
//! more than the capacity (new SSRC, long gap) restarts the buffer.

use crate::call::FRAME;

const CAPACITY: usize = 32;

/// What one [`JitterBuffer::pop`] yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulled<'a> {
    /// The next frame's encoded payload.
    Frame(&'a [u8]),
    /// Its packet is lost: `target` later packets arrived without it.
    Missing,
    /// Nothing to hand out yet (filling up, waiting behind a gap, or nothing received).
    Idle,
}

/// Counters for metrics and RTCP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Arrived after their playout time.
    pub late: u64,
    /// Arrived twice.
    pub duplicate: u64,
    /// Handed out as missing.
    pub missing: u64,
    /// Restarts after a jump.
    pub resets: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    seq: u64,
    len: usize,
    payload: [u8; FRAME],
}

/// The buffer.
pub struct JitterBuffer {
    slots: [Option<Slot>; CAPACITY],
    target: usize,
    next: Option<u64>,
    highest: Option<u64>,
    unwrap: Option<u64>,
    stats: JitterStats,
    out: [u8; FRAME],
}

impl JitterBuffer {
    /// A buffer that starts once `target_frames` are queued and declares a packet lost when that many
    /// later ones have arrived (clamped to 1..=capacity/2).
    pub fn new(target_frames: usize) -> Self {
        Self {
            slots: [None; CAPACITY],
            target: target_frames.clamp(1, CAPACITY / 2),
            next: None,
            highest: None,
            unwrap: None,
            stats: JitterStats::default(),
            out: [0; FRAME],
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Extends a 16-bit sequence number to 64 bits around the last one seen (RFC 3550 A.1).
    fn extend(&mut self, sequence: u16) -> u64 {
        let extended = match self.unwrap {
            None => u64::from(sequence) + (1 << 16),
            Some(last) => {
                let candidates = [(last >> 16).saturating_sub(1), last >> 16, (last >> 16) + 1]
                    .map(|cycle| (cycle << 16) | u64::from(sequence));
                candidates.into_iter().min_by_key(|c| c.abs_diff(last)).unwrap_or(last)
            }
        };
        self.unwrap = Some(self.unwrap.map_or(extended, |last| last.max(extended)));
        extended
    }

    fn reset(&mut self) {
        self.slots = [None; CAPACITY];
        self.next = None;
        self.highest = None;
        self.stats.resets += 1;
    }

    fn buffered(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Adds a packet's payload (at most one frame is kept).
    pub fn insert(&mut self, sequence: u16, payload: &[u8]) {
        let seq = self.extend(sequence);
        if let Some(highest) = self.highest {
            if seq > highest + CAPACITY as u64 || seq + (CAPACITY as u64) * 4 < highest {
                self.reset();
            }
        }
        if let Some(next) = self.next {
            if seq < next {
                self.stats.late += 1;
                return;
            }
            if seq >= next + CAPACITY as u64 {
                self.reset();
            }
        }
        let index = (seq % CAPACITY as u64) as usize;
        if let Some(existing) = &self.slots[index] {
            if existing.seq == seq {
                self.stats.duplicate += 1;
                return;
            }
        }
        let len = payload.len().min(FRAME);
        let mut slot = Slot { seq, len, payload: [0; FRAME] };
        slot.payload[..len].copy_from_slice(&payload[..len]);
        self.slots[index] = Some(slot);
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
    }

    /// The next frame in sequence as soon as it is known: call after every [`JitterBuffer::insert`]
    /// until it says [`Pulled::Idle`].
    pub fn pop(&mut self) -> Pulled<'_> {
        let next = match self.next {
            Some(next) => next,
            None => {
                if self.buffered() < self.target {
                    return Pulled::Idle;
                }
                let first = self.slots.iter().flatten().map(|s| s.seq).min().unwrap_or(0);
                self.next = Some(first);
                first
            }
        };
        let index = (next % CAPACITY as u64) as usize;
        match self.slots[index].take() {
            Some(slot) if slot.seq == next => {
                self.next = Some(next + 1);
                self.out = slot.payload;
                Pulled::Frame(&self.out[..slot.len])
            }
            other => {
                self.slots[index] = other;
                if self.highest.is_some_and(|highest| highest >= next + self.target as u64) {
                    self.next = Some(next + 1);
                    self.stats.missing += 1;
                    Pulled::Missing
                } else {
                    Pulled::Idle
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8) -> [u8; FRAME] {
        [tag; FRAME]
    }

    /// Everything the buffer hands out now: a frame's tag, or `None` for a missing one.
    fn pop_tags(buffer: &mut JitterBuffer) -> Vec<Option<u8>> {
        let mut tags = Vec::new();
        loop {
            match buffer.pop() {
                Pulled::Frame(f) => tags.push(Some(f[0])),
                Pulled::Missing => tags.push(None),
                Pulled::Idle => return tags,
            }
        }
    }

    #[test]
    fn reorders_at_the_start_and_then_hands_out_each_packet_on_arrival() {
        let mut b = JitterBuffer::new(3);
        b.insert(11, &frame(11));
        assert_eq!(b.pop(), Pulled::Idle);
        b.insert(10, &frame(10));
        b.insert(12, &frame(12));
        b.insert(12, &frame(12));
        assert_eq!(pop_tags(&mut b), vec![Some(10), Some(11), Some(12)]);
        assert_eq!(b.stats().duplicate, 1);
        // In order from now on: no waiting.
        b.insert(13, &frame(13));
        assert_eq!(pop_tags(&mut b), vec![Some(13)]);
    }

    #[test]
    fn a_gap_holds_later_packets_until_it_fills_or_enough_arrive() {
        let mut b = JitterBuffer::new(2);
        for seq in [1u16, 2] {
            b.insert(seq, &frame(seq as u8));
        }
        assert_eq!(pop_tags(&mut b), vec![Some(1), Some(2)]);
        // 4 before 3: held back until 3 arrives.
        b.insert(4, &frame(4));
        assert_eq!(pop_tags(&mut b), vec![]);
        b.insert(3, &frame(3));
        assert_eq!(pop_tags(&mut b), vec![Some(3), Some(4)]);
        // 5 never comes: lost once 6 and 7 are here.
        b.insert(6, &frame(6));
        assert_eq!(pop_tags(&mut b), vec![]);
        b.insert(7, &frame(7));
        assert_eq!(pop_tags(&mut b), vec![None, Some(6), Some(7)]);
        b.insert(5, &frame(5));
        assert_eq!(b.stats().late, 1);
        assert_eq!(b.stats().missing, 1);
    }

    #[test]
    fn survives_sequence_wrap_and_resyncs_after_a_jump() {
        let mut b = JitterBuffer::new(2);
        for seq in [65534u16, 65535, 0, 1] {
            b.insert(seq, &frame((seq % 250) as u8));
        }
        assert_eq!(pop_tags(&mut b), vec![Some(34), Some(35), Some(0), Some(1)]);
        // A new stream far away: restart, not thousands of missing frames.
        b.insert(30000, &frame(7));
        b.insert(30001, &frame(8));
        assert_eq!(pop_tags(&mut b), vec![Some(7), Some(8)]);
        assert!(b.stats().resets >= 1);
    }
}
