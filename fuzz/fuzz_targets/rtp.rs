//! Fuzzes what slotline does with a datagram on a call's RTP or RTCP port: the RTP header reader
//! (`media::rtp::parse`), the jitter buffer and RFC 4733 telephone-event reader fed with what it finds,
//! and the RTCP report-block reader. Nothing may panic; what is read must lie inside the datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slotline::media::dtmf::DtmfReceiver;
use slotline::media::jitter::JitterBuffer;
use slotline::media::{rtcp, rtp};

fuzz_target!(|data: &[u8]| {
    let _ = rtcp::report_blocks(data);
    let mut jitter = JitterBuffer::new(3);
    let mut dtmf = DtmfReceiver::default();
    // The datagram as one packet, then as a run of 172-byte packets (one 20 ms PCMU frame each).
    for packet in std::iter::once(data).chain(data.chunks(172)) {
        let Some(parsed) = rtp::parse(packet) else { continue };
        assert!(parsed.payload.len() <= packet.len().saturating_sub(12), "payload inside the datagram");
        if parsed.payload_type == 101 {
            let _ = dtmf.on_packet(parsed.timestamp, parsed.payload);
        } else {
            jitter.insert(parsed.sequence, parsed.payload);
            let _ = jitter.pop();
        }
    }
    let _ = jitter.stats();
});
