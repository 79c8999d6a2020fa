//! The SIP gateway against a real, independent peer: sipp (Debian `sip-tester`), always on loopback
//! (`-i 127.0.0.1 -mi 127.0.0.1`). Each scenario in `tests/sipp/` asserts sipp's exit code and the
//! `calls` row slotline wrote.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotline::calendar::SystemClock;
use slotline::config::{Config, Secret, TrunkConfig};
use slotline::storage::{CallRecord, RecordFilter};

use crate::helpers::{free_sip_port, spawn_app_with, Db, TestApp};

crate::on_every_backend!(
    basic_call_with_rtp_both_ways,
    basic_call_over_tcp,
    cancel_before_answer_is_487,
    unknown_number_is_404,
    codec_mismatch_is_488,
    retransmitted_invite_is_absorbed,
    slotline_hangs_up_dead_calls,
    options_keepalive,
    digest_challenge_and_success,
    strangers_get_403,
);

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)
}

pub(crate) struct Sipp<'a> {
    app: &'a TestApp,
    scenario: &'a str,
    service: &'a str,
    extra: Vec<&'a str>,
}

impl<'a> Sipp<'a> {
    pub(crate) fn new(app: &'a TestApp, scenario: &'a str) -> Self {
        Self { app, scenario, service: "+15550100000", extra: Vec::new() }
    }

    fn service(mut self, service: &'a str) -> Self {
        self.service = service;
        self
    }

    pub(crate) fn args(mut self, args: &[&'a str]) -> Self {
        self.extra.extend_from_slice(args);
        self
    }

    /// Runs sipp for one call; returns its exit code and output.
    pub(crate) async fn run(self) -> (i32, String) {
        let target = self.app.sip_addr.to_string();
        let port = free_sip_port(std::net::Ipv4Addr::LOCALHOST.into()).to_string();
        let media_port = free_sip_port(std::net::Ipv4Addr::LOCALHOST.into()).to_string();
        let mut command = tokio::process::Command::new("sipp");
        command
            .arg(&target)
            .args(["-sf", scenario(self.scenario).to_str().expect("path")])
            .args(["-s", self.service, "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", &port, "-mp", &media_port])
            .args(["-m", "1", "-l", "1", "-nostdin", "-timeout", "30s", "-timeout_error", "-max_recv_loops", "1000"])
            .args(&self.extra)
            .kill_on_drop(true);
        let output =
            command.output().await.expect("sipp is installed (Debian package sip-tester; .ci/run installs it)");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code().unwrap_or(-1), text)
    }
}

/// The single call row once it has `ended_at` (the end is written right after the BYE exchange).
pub(crate) async fn call_row(app: &TestApp) -> CallRecord {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let calls = app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls");
        if let [call] = calls.as_slice() {
            if call.ended_at.is_some() {
                return call.clone();
            }
        }
        assert!(Instant::now() < deadline, "expected one ended call row, found {calls:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn app_with(db: Db, configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(db, Arc::new(SystemClock), configure).await
}

async fn basic_call_with_rtp_both_ways(db: Db) {
    let app = app_with(db, |_| {}).await;
    let (code, output) = Sipp::new(&app, "basic_call.xml").args(&["-rtp_echo"]).run().await;
    assert_eq!(code, 0, "{output}");
    let call = call_row(&app).await;
    assert_eq!(call.dialed, "+15550100000");
    assert_eq!(call.caller, "+15551234567");
    assert_eq!(call.transport, "udp");
    assert_eq!(call.sip_status, Some(200));
    assert_eq!(call.end_reason.as_deref(), Some("caller_bye"));
    assert!(call.agent_id.is_some() && call.answered_at.is_some());
    let sent = app.series("slotline_rtp_packets_total{direction=\"sent\"}").await;
    let received = app.series("slotline_rtp_packets_total{direction=\"received\"}").await;
    assert!(sent >= 50.0, "about 100 packets in 2 s, sent {sent}");
    assert!(received >= 25.0, "sipp echoed our RTP back, received {received}");
    assert_eq!(app.series("slotline_calls_total{outcome=\"answered\"}").await, 1.0);
    assert_eq!(app.series("slotline_active_calls").await, 0.0);
    app.stop().await;
}

async fn basic_call_over_tcp(db: Db) {
    let app = app_with(db, |_| {}).await;
    let (code, output) = Sipp::new(&app, "basic_call.xml").args(&["-t", "t1"]).run().await;
    assert_eq!(code, 0, "{output}");
    let call = call_row(&app).await;
    assert_eq!((call.transport.as_str(), call.sip_status), ("tcp", Some(200)));
    assert_eq!(call.end_reason.as_deref(), Some("caller_bye"));
    app.stop().await;
}

async fn cancel_before_answer_is_487(db: Db) {
    let app = app_with(db, |c| c.sip.answer_after_ms = 3000).await;
    let (code, output) = Sipp::new(&app, "cancel.xml").run().await;
    assert_eq!(code, 0, "{output}");
    let call = call_row(&app).await;
    assert_eq!(call.sip_status, Some(487));
    assert_eq!(call.end_reason.as_deref(), Some("cancelled"));
    assert!(call.answered_at.is_none());
    // The answer timer fires after the CANCEL and must not answer the cancelled INVITE.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls").len(), 1);
    assert_eq!(app.series("slotline_calls_total{outcome=\"answered\"}").await, 0.0);
    app.stop().await;
}

async fn unknown_number_is_404(db: Db) {
    let app = app_with(db, |_| {}).await;
    let (code, output) = Sipp::new(&app, "unknown_number.xml").service("+15559999999").run().await;
    assert_eq!(code, 0, "{output}");
    let call = call_row(&app).await;
    assert_eq!((call.sip_status, call.dialed.as_str()), (Some(404), "+15559999999"));
    assert_eq!(call.agent_id, None);
    app.stop().await;
}

async fn codec_mismatch_is_488(db: Db) {
    let app = app_with(db, |_| {}).await;
    let (code, output) = Sipp::new(&app, "codec_mismatch.xml").run().await;
    assert_eq!(code, 0, "{output}");
    let call = call_row(&app).await;
    assert_eq!((call.sip_status, call.end_reason.as_deref()), (Some(488), Some("codec_mismatch")));
    app.stop().await;
}

async fn retransmitted_invite_is_absorbed(db: Db) {
    let app = app_with(db, |c| c.sip.answer_after_ms = 500).await;
    // -nr: sipp must not answer our repeated 180 by resending its INVITE again (a ping-pong).
    let (code, output) = Sipp::new(&app, "retransmitted_invite.xml").args(&["-nr"]).run().await;
    assert_eq!(code, 0, "{output}");
    let call = call_row(&app).await;
    assert_eq!(call.sip_status, Some(200), "one call, answered once");
    assert_eq!(app.series("slotline_sip_requests_total{method=\"INVITE\"}").await, 2.0);
    // The retransmission was answered by repeating the last provisional response, not as a new call.
    assert_eq!(app.series("slotline_sip_retransmissions_absorbed_total{method=\"INVITE\"}").await, 1.0);
    assert_eq!(app.series("slotline_sip_responses_total{method=\"INVITE\",code=\"200\"}").await, 1.0);
    assert_eq!(app.series("slotline_calls_total{outcome=\"answered\"}").await, 1.0);
    app.stop().await;
}

async fn slotline_hangs_up_dead_calls(db: Db) {
    let app = app_with(db, |c| c.rtp.timeout_secs = 1).await;
    let (code, output) = Sipp::new(&app, "bye_from_slotline.xml").run().await;
    assert_eq!(code, 0, "{output}");
    let call = call_row(&app).await;
    assert_eq!(call.end_reason.as_deref(), Some("media_timeout"));
    assert_eq!(app.series("slotline_sip_requests_sent_total{method=\"BYE\"}").await, 1.0);
    app.stop().await;
}

async fn options_keepalive(db: Db) {
    let app = app_with(db, |_| {}).await;
    let (code, output) = Sipp::new(&app, "options.xml").run().await;
    assert_eq!(code, 0, "{output}");
    assert!(app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls").is_empty());
    assert_eq!(app.series("slotline_sip_responses_total{method=\"OPTIONS\",code=\"200\"}").await, 1.0);
    app.stop().await;
}

async fn digest_challenge_and_success(db: Db) {
    let app = app_with(db, |c| {
        c.sip.trunks = vec![TrunkConfig {
            name: "carrier".into(),
            allow: vec!["127.0.0.0/8".parse().expect("net")],
            username: Some("trunk".into()),
            password: Some(Secret::new("s3cret")),
        }]
    })
    .await;
    // sipp signs `sip:<remote_ip>:<remote_port>` unless told otherwise; slotline wants the Request-URI.
    let auth_uri = format!("+15550100000@{}", app.sip_addr);
    let (code, output) =
        Sipp::new(&app, "digest_auth.xml").args(&["-au", "trunk", "-ap", "s3cret", "-auth_uri", &auth_uri]).run().await;
    assert_eq!(code, 0, "{output}");
    // The challenge is counted, not stored: the one row is the call.
    assert_eq!(call_row(&app).await.sip_status, Some(200));
    assert_eq!(app.series("slotline_calls_total{outcome=\"auth_required\"}").await, 1.0);
    // Wrong password: challenged, then refused.
    let (code, _) =
        Sipp::new(&app, "digest_auth.xml").args(&["-au", "trunk", "-ap", "wrong", "-auth_uri", &auth_uri]).run().await;
    assert_ne!(code, 0);
    assert_eq!(app.series("slotline_calls_total{outcome=\"auth_failed\"}").await, 1.0);
    app.stop().await;
}

async fn strangers_get_403(db: Db) {
    let app = app_with(db, |c| {
        c.sip.trunks = vec![TrunkConfig {
            name: "elsewhere".into(),
            allow: vec!["127.0.0.9/32".parse().expect("net")],
            username: None,
            password: None,
        }]
    })
    .await;
    let (code, output) = Sipp::new(&app, "stranger.xml").run().await;
    assert_eq!(code, 0, "{output}");
    // Refused once, statelessly, and counted instead of stored.
    assert_eq!(app.series("slotline_sip_requests_refused_total{method=\"INVITE\",reason=\"forbidden\"}").await, 1.0);
    assert!(app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls").is_empty());
    assert_eq!(app.series("slotline_rtp_packets_total{direction=\"sent\"}").await, 0.0, "never reaches media");
    app.stop().await;
}

mod raw {
    //! Requests sipp cannot send (broken ones, unusual methods), over a plain UDP socket.

    use std::time::Duration;

    use super::*;

    fn request(method: &str, call_id: &str, extra: &str) -> String {
        format!(
            "{method} sip:+15550100000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{call_id};rport\r\n\
From: <sip:+15551234567@127.0.0.1>;tag=t{call_id}\r\nTo: <sip:+15550100000@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
CSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    }

    async fn exchange(app: &TestApp, bytes: &[u8]) -> Option<String> {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        socket.send_to(bytes, app.sip_addr).await.expect("send");
        let mut buf = vec![0u8; 4096];
        let mut last = None;
        // Skip provisional responses; return the final one.
        while let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(700), socket.recv_from(&mut buf)).await {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let provisional = text.starts_with("SIP/2.0 1");
            last = Some(text);
            if !provisional {
                break;
            }
        }
        last
    }

    fn status(response: &Option<String>) -> Option<&str> {
        response.as_deref().and_then(|r| r.split_whitespace().nth(1))
    }

    crate::on_every_backend!(
        bad_input_gets_the_right_4xx_and_the_server_stays_up,
        the_call_limit_answers_503,
        shutdown_refuses_new_calls_and_hangs_up_after_the_drain,
        media_jitter_dtmf_recording_and_rtcp
    );

    /// An even RTP port whose RTCP sibling is free too.
    async fn rtp_pair() -> (tokio::net::UdpSocket, tokio::net::UdpSocket, u16) {
        loop {
            let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            let port = rtp.local_addr().expect("addr").port();
            if port % 2 != 0 {
                continue;
            }
            if let Ok(rtcp) = tokio::net::UdpSocket::bind(("127.0.0.1", port + 1)).await {
                return (rtp, rtcp, port);
            }
        }
    }

    fn rtp_packet(pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, (u8::from(marker) << 7) | pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x5107_11e5u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[allow(clippy::too_many_lines, reason = "a scripted call scenario, read top to bottom")]
    async fn media_jitter_dtmf_recording_and_rtcp(db: Db) {
        let app = app_with(db, |c| c.media.record_calls = true).await;
        let signalling = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let (rtp, rtcp, media_port) = rtp_pair().await;
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {media_port} RTP/AVP 0 101\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
        );
        let contact = signalling.local_addr().expect("addr").port();
        let invite = request(
            "INVITE",
            "m1",
            &format!("Content-Type: application/sdp\r\nContact: <sip:x@127.0.0.1:{contact}>\r\n"),
        )
        .replace("Content-Length: 0\r\n\r\n", &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()));
        signalling.send_to(invite.as_bytes(), app.sip_addr).await.expect("invite");
        let mut buf = vec![0u8; 4096];
        let (answer, to_tag) = loop {
            let (n, _) = tokio::time::timeout(Duration::from_secs(2), signalling.recv_from(&mut buf))
                .await
                .expect("200")
                .expect("recv");
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("SIP/2.0 200") {
                let tag = text
                    .lines()
                    .find(|l| l.starts_with("To:"))
                    .and_then(|l| l.split("tag=").nth(1))
                    .unwrap_or_default()
                    .to_string();
                break (text, tag);
            }
        };
        let our_port: u16 = answer
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next())
            .and_then(|p| p.parse().ok())
            .expect("m=audio in the answer");
        let to_tag_header = format!("To: <sip:+15550100000@127.0.0.1>;tag={to_tag}");
        let ack = request("ACK", "m1", "").replace("To: <sip:+15550100000@127.0.0.1>", &to_tag_header);
        signalling.send_to(ack.as_bytes(), app.sip_addr).await.expect("ack");

        // 5.6 s of a 440 Hz tone (one packet lost, two swapped), then "1234#" as RFC 4733 events.
        let target = std::net::SocketAddr::from(([127, 0, 0, 1], our_port));
        let tone: Vec<u8> = (0..160)
            .map(|i| {
                slotline::media::g711::ulaw_encode(
                    (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin()) as i16,
                )
            })
            .collect();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let (mut seq, mut ts) = (1000u16, 50_000u32);
        let mut from_slotline = 0usize;
        let mut reports = Vec::new();
        let mut rtcp_buf = [0u8; 512];
        let mut deferred = None;
        for i in 0..280 {
            tick.tick().await;
            let packet = rtp_packet(0, seq, ts, i == 0, &tone);
            match i {
                50 => {}
                100 => deferred = Some(packet),
                101 => {
                    rtp.send_to(&packet, target).await.expect("rtp");
                    if let Some(late) = deferred.take() {
                        rtp.send_to(&late, target).await.expect("rtp");
                    }
                }
                _ => {
                    rtp.send_to(&packet, target).await.expect("rtp");
                }
            }
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            while let Ok(Ok(_)) = tokio::time::timeout(Duration::ZERO, rtp.recv_from(&mut buf)).await {
                from_slotline += 1;
            }
            while let Ok(Ok((n, _))) = tokio::time::timeout(Duration::ZERO, rtcp.recv_from(&mut rtcp_buf)).await {
                reports.extend(slotline::media::rtcp::report_blocks(&rtcp_buf[..n]));
            }
        }
        // The recording is streamed to disk while the call goes on (not held in memory to its end):
        // at least 4 s of the tone are in the file before the call ends.
        let recordings = app.data_dir().join("recordings");
        let deadline = Instant::now() + Duration::from_secs(5);
        let streamed = loop {
            let size = std::fs::read_dir(&recordings)
                .ok()
                .and_then(|mut files| files.next())
                .and_then(|file| file.ok()?.metadata().ok())
                .map_or(0, |meta| meta.len());
            if size >= 44 + 2 * 8000 * 4 || Instant::now() > deadline {
                break size;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(streamed >= 44 + 2 * 8000 * 4, "the live call's recording holds {streamed} bytes");
        for (digit, event) in [('1', 1u8), ('2', 2), ('3', 3), ('4', 4), ('#', 11)] {
            let _ = digit;
            for (k, end) in [(1u16, false), (2, false), (3, false), (4, true), (4, true), (4, true)] {
                tick.tick().await;
                let duration = (k * 160).to_be_bytes();
                let payload = [event, if end { 0x80 | 10 } else { 10 }, duration[0], duration[1]];
                rtp.send_to(&rtp_packet(101, seq, ts, k == 1 && !end, &payload), target).await.expect("dtmf");
                seq = seq.wrapping_add(1);
            }
            ts = ts.wrapping_add(800);
        }
        let bye = request("BYE", "m1", "")
            .replace("CSeq: 1 BYE", "CSeq: 2 BYE")
            .replace("To: <sip:+15550100000@127.0.0.1>", &to_tag_header);
        assert_eq!(status(&exchange(&app, bye.as_bytes()).await), Some("200"));

        assert!(from_slotline > 100, "slotline sent RTP (greeting, then silence): {from_slotline}");
        assert!(reports.iter().any(|r| r.ssrc == 0x5107_11e5), "an RTCP report about our stream: {reports:?}");
        assert_eq!(app.series("slotline_dtmf_events_total").await, 5.0, "1234# once each");
        assert_eq!(app.series("slotline_rtp_packets_total{direction=\"lost\"}").await, 1.0, "the one dropped packet");
        let call = call_row(&app).await;
        let recording = app.data_dir().join("recordings").join(format!("{}.wav", call.id));
        let samples = slotline::audio::wav::read(&recording).expect("the caller was recorded");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&recording).expect("meta").permissions());
        assert_eq!(mode & 0o777, 0o600, "a recording is readable by its owner only: {mode:o}");
        assert!(samples.len() >= 8000 * 5, "about 5.6 s recorded, got {}", samples.len());
        let rms = (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt();
        assert!(rms > 1000.0, "the recording is the tone, not silence: rms {rms}");
        app.stop().await;
    }

    fn invite(id: &str, contact_port: u16) -> String {
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
        request(
            "INVITE",
            id,
            &format!("Content-Type: application/sdp\r\nContact: <sip:x@127.0.0.1:{contact_port}>\r\n"),
        )
        .replace("Content-Length: 0\r\n\r\n", &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()))
    }

    async fn shutdown_refuses_new_calls_and_hangs_up_after_the_drain(db: Db) {
        let app = app_with(db, |c| c.sip.drain_timeout_secs = 1).await;
        let caller = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let port = caller.local_addr().expect("addr").port();
        caller.send_to(invite("s1", port).as_bytes(), app.sip_addr).await.expect("send");
        let mut buf = vec![0u8; 4096];
        let to_tag = loop {
            let (n, _) = tokio::time::timeout(Duration::from_secs(2), caller.recv_from(&mut buf))
                .await
                .expect("answer")
                .expect("recv");
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("SIP/2.0 200") {
                break text
                    .lines()
                    .find(|l| l.starts_with("To:"))
                    .and_then(|l| l.split("tag=").nth(1))
                    .unwrap_or_default()
                    .to_string();
            }
        };
        let ack = request("ACK", "s1", "")
            .replace("To: <sip:+15550100000@127.0.0.1>", &format!("To: <sip:+15550100000@127.0.0.1>;tag={to_tag}"));
        caller.send_to(ack.as_bytes(), app.sip_addr).await.expect("ack");
        app.begin_shutdown();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            status(&exchange(&app, invite("s2", 9).as_bytes()).await),
            Some("503"),
            "draining refuses new calls"
        );
        // After the drain timeout slotline hangs up the call it still has.
        let bye = loop {
            let (n, from) = tokio::time::timeout(Duration::from_secs(5), caller.recv_from(&mut buf))
                .await
                .expect("BYE")
                .expect("recv");
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("BYE ") {
                break (text, from);
            }
        };
        let via = bye.0.lines().find(|l| l.starts_with("Via:")).expect("via");
        let ok = format!(
            "SIP/2.0 200 OK\r\n{via}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: s1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
            bye.0.lines().find(|l| l.starts_with("From:")).map(|l| l[5..].trim()).unwrap_or_default(),
            bye.0.lines().find(|l| l.starts_with("To:")).map(|l| l[3..].trim()).unwrap_or_default()
        );
        caller.send_to(ok.as_bytes(), bye.1).await.expect("200 to BYE");
        let deadline = Instant::now() + Duration::from_secs(3);
        let calls = loop {
            let calls = app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls");
            let ended = calls.iter().any(|c| c.sip_call_id == "s1" && c.ended_at.is_some());
            if ended || Instant::now() > deadline {
                break calls;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let answered = calls.iter().find(|c| c.sip_call_id == "s1").expect("the answered call");
        assert_eq!(answered.end_reason.as_deref(), Some("shutdown"));
        // The INVITE refused while draining was answered statelessly, not stored.
        assert!(!calls.iter().any(|c| c.sip_call_id == "s2"), "{calls:?}");
        app.stop().await;
    }

    async fn bad_input_gets_the_right_4xx_and_the_server_stays_up(db: Db) {
        let app = app_with(db, |_| {}).await;
        let unknown = request("FROBNICATE", "u1", "");
        assert_eq!(status(&exchange(&app, unknown.as_bytes()).await), Some("501"));
        let register = request("REGISTER", "r1", "");
        let answer = exchange(&app, register.as_bytes()).await;
        assert_eq!(status(&answer), Some("405"));
        assert!(answer.as_deref().is_some_and(|a| a.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS")));
        let short_body = request("OPTIONS", "c1", "").replace("Content-Length: 0", "Content-Length: 500");
        assert_eq!(status(&exchange(&app, short_body.as_bytes()).await), Some("400"));
        let bad_length = request("OPTIONS", "c2", "").replace("Content-Length: 0", "Content-Length: lots");
        assert_eq!(status(&exchange(&app, bad_length.as_bytes()).await), Some("400"));
        let no_call_id = request("INVITE", "n1", "").replace("Call-ID: n1\r\n", "");
        assert_eq!(exchange(&app, no_call_id.as_bytes()).await, None, "nothing to answer with: silence, no crash");
        let bye_unknown = request("BYE", "b1", "")
            .replace("To: <sip:+15550100000@127.0.0.1>", "To: <sip:+15550100000@127.0.0.1>;tag=x");
        assert_eq!(status(&exchange(&app, bye_unknown.as_bytes()).await), Some("481"));
        for garbage in [&b"\x00\x01\x02garbage"[..], b"INVITE", b"SIP/2.0 200 OK\r\n\r\n", &[0xffu8; 2000][..]] {
            exchange(&app, garbage).await;
        }
        // Still serving.
        assert_eq!(status(&exchange(&app, request("OPTIONS", "o1", "").as_bytes()).await), Some("200"));
        assert!(app.series("slotline_sip_requests_total{method=\"malformed\"}").await >= 3.0);
        app.stop().await;
    }

    async fn the_call_limit_answers_503(db: Db) {
        let app = app_with(db, |c| c.sip.max_calls = 1).await;
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
        let invite = |id: &str| {
            request("INVITE", id, "Content-Type: application/sdp\r\nContact: <sip:x@127.0.0.1:9>\r\n")
                .replace("Content-Length: 0\r\n\r\n", &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()))
        };
        assert_eq!(status(&exchange(&app, invite("l1").as_bytes()).await), Some("200"));
        let refused = exchange(&app, invite("l2").as_bytes()).await;
        assert_eq!(status(&refused), Some("503"));
        assert!(refused.as_deref().is_some_and(|r| r.contains("Retry-After: 5")), "{refused:?}");
        // The row is written beside signalling: wait for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let calls = app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls");
            if calls.iter().any(|c| c.sip_status == Some(503) && c.end_reason.as_deref() == Some("call_limit")) {
                break;
            }
            assert!(Instant::now() < deadline, "a call_limit row: {calls:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.stop().await;
    }
}
