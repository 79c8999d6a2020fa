//! Fuzzes the RFC 4733 telephone-event reader (`media::dtmf`) with a stream of (timestamp, payload)
//! packets cut from the input: 4 bytes of timestamp, 1 byte of length, then the payload. Every digit it
//! reports must be a DTMF key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slotline::media::dtmf::{self, DtmfReceiver};

fuzz_target!(|data: &[u8]| {
    let mut receiver = DtmfReceiver::default();
    let mut rest = data;
    while let [a, b, c, d, len, tail @ ..] = rest {
        let timestamp = u32::from_be_bytes([*a, *b, *c, *d]);
        let (payload, next) = tail.split_at(usize::from(*len).min(tail.len()));
        if let Some(digit) = receiver.on_packet(timestamp, payload) {
            assert!("0123456789*#ABCD".contains(digit.key), "{digit:?}");
        }
        rest = next;
    }
    for event in 0..=255u8 {
        let _ = dtmf::key(event);
    }
});
