//! Fuzzes SDP offer/answer: any offer `sdp::negotiate` accepts gets an answer from `sdp::answer` that
//! itself negotiates to the same codec, payload types and the mirrored direction (what the caller
//! reads back from our 200 OK).
#![no_main]

use libfuzzer_sys::fuzz_target;
use slotline::sip::sdp::{self, Direction};

fuzz_target!(|data: &[u8]| {
    // The server reads bodies lossily, as here.
    let offer = String::from_utf8_lossy(data);
    let Ok(negotiated) = sdp::negotiate(&offer) else { return };
    let _ = (negotiated.on_hold(), negotiated.we_send());
    for host in ["127.0.0.1", "::1"] {
        let answer = sdp::answer(&negotiated, host, 20000);
        let back = sdp::negotiate(&answer).unwrap_or_else(|e| panic!("our answer does not negotiate: {e}\n{answer}"));
        assert_eq!(back.codec, negotiated.codec, "{answer}");
        assert_eq!(back.payload_type, negotiated.payload_type, "{answer}");
        assert_eq!(back.dtmf_payload_type, negotiated.dtmf_payload_type, "{answer}");
        let direction = if negotiated.we_offer { Direction::SendRecv } else { negotiated.direction.answer() };
        assert_eq!(back.direction, direction, "{answer}");
        assert_eq!(back.remote.map(|r| r.port()), Some(20000));
    }
});
