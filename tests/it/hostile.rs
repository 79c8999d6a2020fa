//! The gateway against hostile peers, over real sockets: an intruder who injects RTP (speech and RFC 4733
//! DTMF) into a live call from a second address, a second INVITE that reuses a live call's Call-ID, and a
//! captured digest `Authorization` replayed to another number and with a used nonce count, and HTTP
//! clients that make up methods to grow the metrics; an INVITE flood from one source beside a caller on
//! another; a database that stalls under signalling, and TCP peers that idle or come in too many.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest as _, Md5};
use slotline::calendar::SystemClock;
use slotline::config::{Secret, TrunkConfig};
use slotline::storage::RecordFilter;
use tokio::net::UdpSocket;

use crate::helpers::{spawn_app_with, Db, TestApp};

crate::on_every_backend!(
    rtp_from_a_second_source_is_ignored_and_counted,
    a_second_invite_with_a_live_call_id_is_refused,
    a_captured_authorization_places_no_other_call,
    made_up_http_methods_share_one_metric_series,
    an_invite_flood_is_refused_once_each_while_another_source_calls,
    an_options_flood_draws_no_more_answers_than_the_rate_limit,
    a_stalled_database_delays_rows_not_calls,
    idle_and_surplus_tcp_connections_are_closed,
    junk_gets_a_4xx_or_silence_and_leaves_no_state,
    junk_from_sipp_gets_a_4xx_or_silence_and_leaves_no_state,
);

const NUMBER: &str = "+15550100000";
const SSRC: u32 = 0x5107_11e5;

/// One SIP request from a caller on `contact` (its SIP socket's port).
struct Invite<'a> {
    call_id: &'a str,
    from_tag: &'a str,
    branch: &'a str,
    cseq: u32,
    number: &'a str,
    contact: u16,
    /// RTP port in the SDP offer.
    media: u16,
    /// Header lines added as they are (each ending in CRLF).
    extra: &'a str,
}

impl Invite<'_> {
    fn uri(&self) -> String {
        format!("sip:{}@127.0.0.1", self.number)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0 101\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
            self.media
        );
        format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{contact};branch={branch};rport\r\n\
             From: <sip:+15551234567@127.0.0.1>;tag={from_tag}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\nMax-Forwards: 70\r\nContact: <sip:caller@127.0.0.1:{contact}>\r\n{extra}\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            uri = self.uri(),
            contact = self.contact,
            branch = self.branch,
            from_tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
            extra = self.extra,
            len = sdp.len(),
        )
        .into_bytes()
    }
}

/// An in-dialog request (ACK or BYE) for a call `invite` created, whose 200 OK carried `to_tag`.
fn in_dialog(method: &str, invite: &Invite<'_>, to_tag: &str, cseq: u32, branch: &str) -> Vec<u8> {
    format!(
        "{method} sip:slotline@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{contact};branch={branch};rport\r\n\
         From: <sip:+15551234567@127.0.0.1>;tag={from_tag}\r\nTo: <{uri}>;tag={to_tag}\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        contact = invite.contact,
        from_tag = invite.from_tag,
        uri = invite.uri(),
        call_id = invite.call_id,
    )
    .into_bytes()
}

/// The first final response on `socket` (provisional ones skipped).
async fn final_response(socket: &UdpSocket) -> String {
    let mut buf = vec![0u8; 8192];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
            .await
            .expect("a final response within 5 s")
            .expect("recv");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.starts_with("SIP/2.0 ") && !text.starts_with("SIP/2.0 1") {
            return text;
        }
    }
}

fn status(response: &str) -> &str {
    response.split_whitespace().nth(1).unwrap_or_default()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

fn to_tag(response: &str) -> String {
    header(response, "To").and_then(|to| to.split("tag=").nth(1)).unwrap_or_default().to_string()
}

/// The RTP port of slotline's SDP answer.
fn answered_port(response: &str) -> u16 {
    response
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("m=audio in the answer")
}

async fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.expect("bind")
}

fn port(socket: &UdpSocket) -> u16 {
    socket.local_addr().expect("addr").port()
}

/// Sends `invite` from `socket` and returns the final response.
async fn send_invite(app: &TestApp, socket: &UdpSocket, invite: &Invite<'_>) -> String {
    socket.send_to(&invite.to_bytes(), app.sip_addr).await.expect("send INVITE");
    final_response(socket).await
}

/// Sends BYE in the dialog and returns the status of the answer.
async fn hang_up(app: &TestApp, socket: &UdpSocket, invite: &Invite<'_>, to_tag: &str) -> String {
    let bye = in_dialog("BYE", invite, to_tag, invite.cseq + 1, &format!("z9hG4bK-bye-{}", invite.call_id));
    socket.send_to(&bye, app.sip_addr).await.expect("send BYE");
    status(&final_response(socket).await).to_string()
}

fn rtp_packet(payload_type: u8, sequence: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x80, (u8::from(marker) << 7) | payload_type];
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&SSRC.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// 20 ms of speech-like μ-law audio: a 140 Hz voice with its harmonics, its loudness moving at syllable
/// rate.
fn speech_frame(frame: u32) -> Vec<u8> {
    (0..160u32)
        .map(|i| {
            let t = f64::from(frame * 160 + i) / 8000.0;
            let envelope = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 4.0 * t).sin();
            let voice: f64 = [1.0, 0.5, 0.3, 0.2]
                .iter()
                .enumerate()
                .map(|(h, gain)| gain * (2.0 * std::f64::consts::PI * 140.0 * (h as f64 + 1.0) * t).sin())
                .sum();
            slotline::media::g711::ulaw_encode((6000.0 * envelope * voice) as i16)
        })
        .collect()
}

/// The six packets of one RFC 4733 digit (three updates, the end three times), from `sequence` on.
fn dtmf_digit(event: u8, sequence: u16, timestamp: u32) -> Vec<Vec<u8>> {
    [(1u16, false), (2, false), (3, false), (4, true), (4, true), (4, true)]
        .iter()
        .enumerate()
        .map(|(i, &(k, end))| {
            let duration = (k * 160).to_be_bytes();
            let payload = [event, if end { 0x80 | 10 } else { 10 }, duration[0], duration[1]];
            rtp_packet(101, sequence.wrapping_add(i as u16), timestamp, i == 0, &payload)
        })
        .collect()
}

async fn an_options_flood_draws_no_more_answers_than_the_rate_limit(db: Db) {
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| c.sip.invites_per_second = 5).await;
    let flooder = bind().await;
    let prober = UdpSocket::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
    let flood = 100;
    let started = std::time::Instant::now();
    for i in 0..flood {
        let request = options(port(&flooder), &format!("options-flood-{i}"));
        flooder.send_to(request.as_bytes(), app.sip_addr).await.expect("flood");
    }
    // Another source is still answered in the middle of the flood.
    prober.send_to(options(port(&prober), "options-beside").as_bytes(), app.sip_addr).await.expect("OPTIONS");
    assert_eq!(status(&final_response(&prober).await), "200");
    // Every flooded OPTIONS is either answered or counted as refused.
    let mut answered = 0;
    let mut refused = 0.0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while answered + (refused as usize) < flood {
        answered += drain(&flooder).await;
        refused = app
            .metric("slotline_sip_requests_refused_total", &["method=\"OPTIONS\"", "reason=\"rate_limited\""])
            .await
            .unwrap_or(0.0);
        assert!(tokio::time::Instant::now() < deadline, "{answered} answered, {refused} refused of {flood}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The source's allowance is a burst of 10 and 5 a second after that.
    let allowance = 10 + 5 * (started.elapsed().as_secs() as usize + 1);
    assert!(answered <= allowance, "{answered} answers to a flood of {flood}; allowance {allowance}");
    assert_eq!(answered + refused as usize, flood);
    assert_eq!(drain(&flooder).await, 0, "the refused ones draw nothing later either");
    app.stop().await;
}

/// Packets waiting on `socket` now.
async fn drain(socket: &UdpSocket) -> usize {
    let mut buf = [0u8; 1500];
    let mut count = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::ZERO, socket.recv_from(&mut buf)).await {
        count += 1;
    }
    count
}

/// Waits until metric `name{labels}` reads `want` (it may still be on its way), then returns it.
async fn metric_reaches(app: &TestApp, name: &str, labels: &[&str], want: f64) -> Option<f64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let value = app.metric(name, labels).await;
        if value == Some(want) || tokio::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rtp_from_a_second_source_is_ignored_and_counted(db: Db) {
    let app = spawn_app_with(db, Arc::new(SystemClock), |_| {}).await;
    let sip = bind().await;
    let caller_rtp = bind().await;
    let intruder = bind().await;
    let invite = Invite {
        call_id: "hijack",
        from_tag: "caller",
        branch: "z9hG4bK-hijack",
        cseq: 1,
        number: NUMBER,
        contact: port(&sip),
        media: port(&caller_rtp),
        extra: "",
    };
    let ok = send_invite(&app, &sip, &invite).await;
    assert_eq!(status(&ok), "200", "{ok}");
    let tag = to_tag(&ok);
    sip.send_to(&in_dialog("ACK", &invite, &tag, 1, "z9hG4bK-hijack-ack"), app.sip_addr).await.expect("ACK");
    let slotline_rtp = SocketAddr::from(([127, 0, 0, 1], answered_port(&ok)));

    // Given a call whose caller speaks first (the session latches on them) ...
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut seq, mut ts) = (1000u16, 80_000u32);
    for frame in 0..25 {
        tick.tick().await;
        caller_rtp.send_to(&rtp_packet(0, seq, ts, frame == 0, &speech_frame(frame)), slotline_rtp).await.expect("rtp");
        (seq, ts) = (seq.wrapping_add(1), ts.wrapping_add(160));
    }
    // ... when an intruder on another port sends speech and the digit 9 with the caller's SSRC and
    // sequence numbers, in step with the caller ...
    let mut intruder_sent = 0usize;
    let mut intruder_dtmf = dtmf_digit(9, seq.wrapping_add(20), ts + 20 * 160).into_iter();
    for frame in 25..75 {
        tick.tick().await;
        caller_rtp.send_to(&rtp_packet(0, seq, ts, false, &speech_frame(frame)), slotline_rtp).await.expect("rtp");
        let injected = match frame {
            45..=50 => intruder_dtmf.next().expect("six DTMF packets"),
            _ => rtp_packet(0, seq, ts, false, &speech_frame(frame + 1000)),
        };
        intruder.send_to(&injected, slotline_rtp).await.expect("inject");
        intruder_sent += 1;
        (seq, ts) = (seq.wrapping_add(1), ts.wrapping_add(160));
    }
    // ... and the caller then presses 1.
    for packet in dtmf_digit(1, seq, ts) {
        tick.tick().await;
        caller_rtp.send_to(&packet, slotline_rtp).await.expect("dtmf");
    }

    // Then every injected packet is counted as ignored, and only the caller's digit arrived.
    assert_eq!(
        metric_reaches(&app, "slotline_rtp_packets_ignored_total", &["reason=\"source\""], intruder_sent as f64).await,
        Some(intruder_sent as f64),
        "each of the intruder's packets is counted"
    );
    assert_eq!(
        metric_reaches(&app, "slotline_dtmf_events_total", &[], 1.0).await,
        Some(1.0),
        "the caller's 1, not the intruder's 9"
    );
    // The agent's audio still goes to the caller: wait for more of it, then nothing went to the intruder.
    let before = drain(&caller_rtp).await;
    let mut buf = [0u8; 1500];
    for _ in 0..25 {
        tokio::time::timeout(Duration::from_secs(5), caller_rtp.recv_from(&mut buf))
            .await
            .expect("slotline keeps sending to the caller")
            .expect("recv");
    }
    assert!(before > 0, "the caller heard slotline during the intrusion");
    assert_eq!(drain(&intruder).await, 0, "the intruder hears nothing");
    assert_eq!(hang_up(&app, &sip, &invite, &tag).await, "200");
    app.stop().await;
}

/// `count` consecutive free UDP ports from an even one (an RTP range of `count / 2` pairs).
fn free_udp_range(count: u16) -> u16 {
    loop {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let base = probe.local_addr().expect("addr").port() & !1;
        drop(probe);
        if base.checked_add(count).is_some()
            && (base..base + count).all(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok())
        {
            return base;
        }
    }
}

async fn a_second_invite_with_a_live_call_id_is_refused(db: Db) {
    let rtp_base = free_udp_range(4);
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| {
        c.rtp.port_min = rtp_base;
        c.rtp.port_max = rtp_base + 3;
    })
    .await;
    // Given a live call ...
    let caller = bind().await;
    let original = Invite {
        call_id: "dup",
        from_tag: "caller",
        branch: "z9hG4bK-dup-1",
        cseq: 1,
        number: NUMBER,
        contact: port(&caller),
        media: 9,
        extra: "",
    };
    let ok = send_invite(&app, &caller, &original).await;
    assert_eq!(status(&ok), "200", "{ok}");
    let tag = to_tag(&ok);
    caller.send_to(&in_dialog("ACK", &original, &tag, 1, "z9hG4bK-dup-ack"), app.sip_addr).await.expect("ACK");

    // ... when someone else sends an INVITE with its Call-ID, then 400: the Call-ID is in use ...
    let other = bind().await;
    let collision = Invite { from_tag: "other", branch: "z9hG4bK-dup-2", contact: port(&other), ..original };
    let refused = send_invite(&app, &other, &collision).await;
    assert_eq!(status(&refused), "400", "{refused}");
    assert!(refused.contains("Call-ID in use"), "{refused}");
    // ... and the same INVITE arriving again on another branch (a merged request) gets 482.
    let path = bind().await;
    let merged = Invite { branch: "z9hG4bK-dup-3", contact: port(&path), ..original };
    let looped = send_invite(&app, &path, &merged).await;
    assert_eq!(status(&looped), "482", "{looped}");

    // The live call is untouched: its dialog still ends with the caller's BYE.
    assert_eq!(hang_up(&app, &caller, &original, &tag).await, "200", "the original dialog survived");
    assert_eq!(app.metric("slotline_calls_total", &["outcome=\"answered\""]).await, Some(1.0));
    assert_eq!(app.metric("slotline_calls_total", &["outcome=\"call_id_in_use\""]).await, Some(1.0));
    assert_eq!(app.metric("slotline_calls_total", &["outcome=\"merged_request\""]).await, Some(1.0));
    // Both RTP pairs of the range are free again: two new calls get them.
    let mut calls = Vec::new();
    for (call_id, branch) in [("next-1", "z9hG4bK-next-1"), ("next-2", "z9hG4bK-next-2")] {
        let socket = bind().await;
        let invite = Invite { call_id, branch, contact: port(&socket), ..original };
        let ok = send_invite(&app, &socket, &invite).await;
        assert_eq!(status(&ok), "200", "no RTP port leaked: {ok}");
        let tag = to_tag(&ok);
        socket.send_to(&in_dialog("ACK", &invite, &tag, 1, &format!("{branch}-ack")), app.sip_addr).await.expect("ACK");
        calls.push((socket, invite, tag));
    }
    for (socket, invite, tag) in &calls {
        assert_eq!(hang_up(&app, socket, invite, tag).await, "200");
    }
    app.stop().await;
}

/// The `Authorization` value answering the MD5 challenge in `challenge_response` for `uri`.
fn authorization(challenge_response: &str, uri: &str, nc: &str) -> String {
    let challenge = challenge_response
        .lines()
        .filter_map(|l| l.strip_prefix("WWW-Authenticate:"))
        .find(|l| l.contains("algorithm=MD5"))
        .expect("an MD5 challenge");
    let param = |name: &str| {
        challenge.split(&format!("{name}=\"")).nth(1).and_then(|rest| rest.split('"').next()).expect(name).to_string()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let md5 = |text: String| hex::encode(Md5::digest(text.as_bytes()));
    let ha1 = md5(format!("trunk:{realm}:s3cret"));
    let ha2 = md5(format!("INVITE:{uri}"));
    let response = md5(format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
    format!(
        "Authorization: Digest username=\"trunk\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"c0ffee\", opaque=\"slotline\"\r\n"
    )
}

async fn a_captured_authorization_places_no_other_call(db: Db) {
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| {
        c.sip.trunks = vec![TrunkConfig {
            name: "carrier".into(),
            allow: vec!["127.0.0.0/8".parse().expect("net")],
            username: Some("trunk".into()),
            password: Some(Secret::new("s3cret")),
        }]
    })
    .await;
    // A second number, on an agent of its own: a replay to it would be answered if let through.
    let agent = app.create_agent("Second line").await;
    let (code, body) = app.put("/v1/numbers/+15550100999", serde_json::json!({"agent_id": agent})).await;
    assert_eq!(code, 201, "{body}");

    // Given a call that authenticated: challenged, then answered with nonce count 1 ...
    let socket = bind().await;
    let first = Invite {
        call_id: "auth-1",
        from_tag: "trunk",
        branch: "z9hG4bK-auth-1",
        cseq: 1,
        number: NUMBER,
        contact: port(&socket),
        media: 9,
        extra: "",
    };
    let challenge = send_invite(&app, &socket, &first).await;
    assert_eq!(status(&challenge), "401", "{challenge}");
    let captured = authorization(&challenge, &first.uri(), "00000001");
    let authorised = Invite { branch: "z9hG4bK-auth-2", cseq: 2, extra: &captured, ..first };
    let socket = bind().await;
    let authorised = Invite { contact: port(&socket), ..authorised };
    let ok = send_invite(&app, &socket, &authorised).await;
    assert_eq!(status(&ok), "200", "{ok}");
    let tag = to_tag(&ok);
    socket.send_to(&in_dialog("ACK", &authorised, &tag, 2, "z9hG4bK-auth-ack"), app.sip_addr).await.expect("ACK");
    assert_eq!(hang_up(&app, &socket, &authorised, &tag).await, "200");

    // ... when an eavesdropper re-sends the captured header to another number, then 403 ...
    let eavesdropper = bind().await;
    let elsewhere = Invite {
        call_id: "replay-1",
        from_tag: "eve",
        branch: "z9hG4bK-replay-1",
        cseq: 1,
        number: "+15550100999",
        contact: port(&eavesdropper),
        media: 9,
        extra: &captured,
    };
    let refused = send_invite(&app, &eavesdropper, &elsewhere).await;
    assert_eq!(status(&refused), "403", "the digest uri is not this Request-URI: {refused}");
    // ... and to the same number with the used nonce count, a fresh challenge.
    let again = bind().await;
    let replay =
        Invite { call_id: "replay-2", branch: "z9hG4bK-replay-2", number: NUMBER, contact: port(&again), ..elsewhere };
    let challenged = send_invite(&app, &again, &replay).await;
    assert_eq!(status(&challenged), "401", "a used (nonce, nc) is refused: {challenged}");
    assert!(challenged.contains("WWW-Authenticate: Digest"), "{challenged}");

    // The trunk itself goes on with the next nonce count.
    let trunk = bind().await;
    let counted = authorization(&challenge, &first.uri(), "00000002");
    let next = Invite { call_id: "auth-3", branch: "z9hG4bK-auth-3", contact: port(&trunk), extra: &counted, ..first };
    let ok = send_invite(&app, &trunk, &next).await;
    assert_eq!(status(&ok), "200", "{ok}");
    let tag = to_tag(&ok);
    trunk.send_to(&in_dialog("ACK", &next, &tag, 1, "z9hG4bK-auth-3-ack"), app.sip_addr).await.expect("ACK");
    assert_eq!(hang_up(&app, &trunk, &next, &tag).await, "200");

    assert_eq!(app.metric("slotline_calls_total", &["outcome=\"answered\""]).await, Some(2.0));
    assert_eq!(app.metric("slotline_calls_total", &["outcome=\"auth_failed\""]).await, Some(1.0));
    assert_eq!(app.metric("slotline_calls_total", &["outcome=\"auth_replayed\""]).await, Some(1.0));
    app.stop().await;
}

async fn made_up_http_methods_share_one_metric_series(db: Db) {
    let app = spawn_app_with(db, Arc::new(SystemClock), |_| {}).await;
    // Any token is a valid HTTP method: a scanner can send as many as it likes ...
    let made_up = 40;
    for i in 0..made_up {
        let method = reqwest::Method::from_bytes(format!("PROBE{i}").as_bytes()).expect("a method token");
        let path = if i % 2 == 0 { "/v1/agents" } else { "/no/such/route" };
        let response = app.http.request(method, app.url(path)).bearer_auth(&app.admin).send().await.expect("send");
        assert!(response.status().is_client_error(), "{path}: {}", response.status());
    }
    app.get("/v1/agents").await;
    // ... and they all land in one `other` series, beside the real methods.
    let text = app.http.get(&app.metrics_url).send().await.expect("scrape").text().await.expect("text");
    assert!(!text.contains("PROBE"), "a made-up method became a label value:\n{text}");
    assert_eq!(
        app.metric("slotline_http_requests_total", &["method=\"other\""]).await,
        Some(f64::from(made_up)),
        "{text}"
    );
    assert_eq!(
        app.metric("slotline_http_requests_total", &["method=\"GET\"", "route=\"/v1/agents\""]).await,
        Some(1.0)
    );
    app.stop().await;
}

/// Every SIP message waiting on `socket` until `done` says the collected ones are enough (5 s at most
/// between two messages).
async fn collect_until(socket: &UdpSocket, seen: &mut Vec<String>, done: impl Fn(&[String]) -> bool) {
    let mut buf = vec![0u8; 8192];
    while !done(seen) {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("more SIP within 5 s; {} so far", seen.len()))
            .expect("recv");
        seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
}

#[allow(clippy::too_many_lines, reason = "a scripted scenario, read top to bottom")]
async fn an_invite_flood_is_refused_once_each_while_another_source_calls(db: Db) {
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| c.sip.invites_per_second = 5).await;
    let flooder = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let caller = UdpSocket::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
    let flood = 200;
    let call_ids: Vec<String> = (0..flood).map(|i| format!("flood-{i}")).collect();
    let branches: Vec<String> = (0..flood).map(|i| format!("z9hG4bK-flood-{i}")).collect();
    let flood_invite = |i: usize| Invite {
        call_id: &call_ids[i],
        from_tag: "flood",
        branch: &branches[i],
        cseq: 1,
        number: "+15550100999",
        contact: port(&flooder),
        media: 9,
        extra: "",
    };
    let finals = |seen: &[String]| {
        let mut answered: Vec<&str> = seen
            .iter()
            .filter(|m| m.starts_with("SIP/2.0 ") && !m.starts_with("SIP/2.0 1"))
            .filter_map(|m| header(m, "Call-ID"))
            .collect();
        answered.sort_unstable();
        answered.dedup();
        answered.len()
    };
    let invite = Invite {
        call_id: "beside-the-flood",
        from_tag: "caller",
        branch: "z9hG4bK-beside",
        cseq: 1,
        number: NUMBER,
        contact: port(&caller),
        media: 9,
        extra: "",
    };
    // Given one source sending INVITEs far above its 5/s (burst 10), in bursts of 20 as fast as its
    // answers come (so that no datagram is lost to a full socket buffer and each can be accounted for) ...
    let mut seen = Vec::new();
    for batch in 0..flood / 20 {
        for i in batch * 20..(batch + 1) * 20 {
            flooder.send_to(&flood_invite(i).to_bytes(), app.sip_addr).await.expect("flood");
        }
        // ... when a second source places a normal call in the middle of the flood ...
        if batch == flood / 40 {
            caller.send_to(&invite.to_bytes(), app.sip_addr).await.expect("INVITE");
        }
        collect_until(&flooder, &mut seen, |seen| finals(seen) == (batch + 1) * 20).await;
    }
    // ... then that call completes, and every flooded INVITE got a final answer: most 503, the few within
    // the limit 404 ...
    let ok = final_response(&caller).await;
    assert_eq!(status(&ok), "200", "{ok}");
    let tag = to_tag(&ok);
    caller.send_to(&in_dialog("ACK", &invite, &tag, 1, "z9hG4bK-beside-ack"), app.sip_addr).await.expect("ACK");
    assert_eq!(hang_up(&app, &caller, &invite, &tag).await, "200");

    // A probe from a third source, refused statefully (404, retransmitted until ACKed), marks the time:
    // once its 404 came twice, any stateful 503 sent before it would have been retransmitted too.
    let probe = UdpSocket::bind("127.0.0.3:0").await.expect("bind 127.0.0.3");
    let marker = Invite {
        call_id: "probe",
        from_tag: "probe",
        branch: "z9hG4bK-probe",
        cseq: 1,
        number: "+15550100999",
        contact: port(&probe),
        media: 9,
        extra: "",
    };
    probe.send_to(&marker.to_bytes(), app.sip_addr).await.expect("probe");
    let mut probed = Vec::new();
    collect_until(&probe, &mut probed, |seen| seen.iter().filter(|m| m.starts_with("SIP/2.0 404")).count() >= 2).await;
    let mut buf = vec![0u8; 8192];
    while let Ok(Ok((n, _))) = tokio::time::timeout(Duration::ZERO, flooder.recv_from(&mut buf)).await {
        seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    let refused: Vec<&String> = seen.iter().filter(|m| m.starts_with("SIP/2.0 503")).collect();
    let admitted = flood - refused.len();
    assert!(refused.len() >= flood - 20, "{} of {flood} refused", refused.len());
    for response in &refused {
        assert!(response.contains("Retry-After: 1"), "{response}");
        let call_id = header(response, "Call-ID").expect("Call-ID");
        let about: Vec<&String> = seen.iter().filter(|m| header(m, "Call-ID") == Some(call_id)).collect();
        assert_eq!(about.len(), 1, "a refused INVITE gets exactly one response, no 100 Trying: {about:?}");
    }
    assert_eq!(
        app.metric("slotline_sip_requests_refused_total", &["method=\"INVITE\"", "reason=\"rate_limited\""]).await,
        Some(refused.len() as f64)
    );
    // The database holds the caller's call and the flood INVITEs within the limit, none of the refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let calls = app.store.list_calls(&RecordFilter { limit: 1000, ..Default::default() }).await.expect("calls");
        let flooded = calls.iter().filter(|c| c.sip_call_id.starts_with("flood-")).count();
        if flooded >= admitted && calls.iter().any(|c| c.sip_call_id == "beside-the-flood" && c.ended_at.is_some()) {
            break calls;
        }
        assert!(tokio::time::Instant::now() < deadline, "rows within 10 s: {calls:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let flooded: Vec<_> = rows.iter().filter(|c| c.sip_call_id.starts_with("flood-")).collect();
    assert_eq!(flooded.len(), admitted, "rows only for the admitted flood INVITEs");
    assert!(flooded.iter().all(|c| c.sip_status == Some(404)), "{flooded:?}");
    app.stop().await;
}

/// A transaction of the test's own that holds the write lock on `calls` until it is dropped.
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    async fn take(app: &TestApp, db: Db) -> Self {
        use sqlx::{Connection as _, Executor as _};
        match db {
            Db::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(app.database_url()).await.expect("connect");
                // WAL: the lock stops every writer, not the readers (routing goes on).
                conn.execute("BEGIN IMMEDIATE").await.expect("BEGIN IMMEDIATE");
                Self::Sqlite(conn)
            }
            Db::Postgres => {
                let mut conn = sqlx::PgConnection::connect(app.database_url()).await.expect("connect");
                conn.execute("BEGIN").await.expect("BEGIN");
                conn.execute("LOCK TABLE calls IN EXCLUSIVE MODE").await.expect("LOCK TABLE");
                Self::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        use sqlx::Executor as _;
        match self {
            Self::Sqlite(mut conn) => conn.execute("ROLLBACK").await.map(drop),
            Self::Postgres(mut conn) => conn.execute("ROLLBACK").await.map(drop),
        }
        .expect("ROLLBACK");
    }
}

async fn a_stalled_database_delays_rows_not_calls(db: Db) {
    let app = spawn_app_with(db, Arc::new(SystemClock), |_| {}).await;
    // Given a database whose `calls` table nobody can write to ...
    let lock = WriteLock::take(&app, db).await;
    // ... when a call is placed and ended, and a second one placed, then both are answered at once ...
    let first_socket = bind().await;
    let first = Invite {
        call_id: "stalled-1",
        from_tag: "caller",
        branch: "z9hG4bK-stalled-1",
        cseq: 1,
        number: NUMBER,
        contact: port(&first_socket),
        media: 9,
        extra: "",
    };
    let ok = send_invite(&app, &first_socket, &first).await;
    assert_eq!(status(&ok), "200", "{ok}");
    let tag = to_tag(&ok);
    first_socket.send_to(&in_dialog("ACK", &first, &tag, 1, "z9hG4bK-stalled-1-ack"), app.sip_addr).await.expect("ACK");
    assert_eq!(hang_up(&app, &first_socket, &first, &tag).await, "200");
    let second_socket = bind().await;
    let second = Invite { call_id: "stalled-2", branch: "z9hG4bK-stalled-2", contact: port(&second_socket), ..first };
    let ok = send_invite(&app, &second_socket, &second).await;
    assert_eq!(status(&ok), "200", "the core answers while the database stalls: {ok}");
    let tag = to_tag(&ok);
    second_socket
        .send_to(&in_dialog("ACK", &second, &tag, 1, "z9hG4bK-stalled-2-ack"), app.sip_addr)
        .await
        .expect("ACK");
    // ... and once the database moves again, every row is written, in order.
    lock.release().await;
    assert_eq!(hang_up(&app, &second_socket, &second, &tag).await, "200");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let calls = app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls");
        let ended = calls.iter().filter(|c| c.sip_call_id.starts_with("stalled-") && c.ended_at.is_some()).count();
        if ended == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "both calls recorded and ended: {calls:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.metric("slotline_call_records_dropped_total", &[]).await, Some(0.0));
    app.stop().await;
}

/// An OPTIONS over `stream`; the status of its answer, or `None` when the connection closed first.
async fn options_over_tcp(stream: &mut tokio::net::TcpStream, n: u32) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let local = stream.local_addr().expect("addr");
    let request = format!(
        "OPTIONS sip:slotline@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-tcp-{n}\r\n\
         From: <sip:probe@127.0.0.1>;tag=t{n}\r\nTo: <sip:slotline@127.0.0.1>\r\nCall-ID: tcp-{n}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer or a close within 5 s")
        .ok()?;
    (n > 0).then(|| status(&String::from_utf8_lossy(&buf[..n])).to_string())
}

async fn idle_and_surplus_tcp_connections_are_closed(db: Db) {
    use tokio::io::AsyncReadExt as _;
    use tokio::net::TcpStream;
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| {
        c.sip.tcp_max_connections = 2;
        c.sip.tcp_idle_timeout_secs = 2;
    })
    .await;
    // Given two TCP peers in use (the limit) ...
    let mut first = TcpStream::connect(app.sip_addr).await.expect("connect");
    let mut second = TcpStream::connect(app.sip_addr).await.expect("connect");
    assert_eq!(options_over_tcp(&mut first, 1).await.as_deref(), Some("200"));
    assert_eq!(options_over_tcp(&mut second, 2).await.as_deref(), Some("200"));
    // ... a third is closed unanswered ...
    let mut third = TcpStream::connect(app.sip_addr).await.expect("connect");
    assert_eq!(options_over_tcp(&mut third, 3).await, None, "beyond tcp_max_connections");
    // ... and a peer that then says nothing is disconnected after the idle timeout, which frees its place.
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), first.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the idle peer is disconnected: {read:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = TcpStream::connect(app.sip_addr).await.expect("connect");
        if options_over_tcp(&mut again, 4).await.as_deref() == Some("200") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "a place frees up once idle peers are closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

/// An OPTIONS from `socket`'s port with `call_id`, as bytes.
fn options(socket_port: u16, call_id: &str) -> String {
    format!(
        "OPTIONS sip:slotline@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{socket_port};branch=z9hG4bK-{call_id};rport\r\n\
         From: <sip:probe@127.0.0.1>;tag=j\r\nTo: <sip:slotline@127.0.0.1>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn junk_gets_a_4xx_or_silence_and_leaves_no_state(db: Db) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| c.sip.tcp_idle_timeout_secs = 2).await;
    let socket = bind().await;
    let me = port(&socket);
    let good = options(me, "junk-ok");
    // Each junk datagram, and what it deserves: `Some(status)` or silence.
    // Within the 64 KiB a message may have: served like any other.
    let huge = options(me, "junk-huge").replace("Max-Forwards: 70\r\n", &format!("X-Pad: {}\r\n", "a".repeat(60_000)));
    let invite = Invite {
        call_id: "junk-invite",
        from_tag: "junk",
        branch: "z9hG4bK-junk-invite",
        cseq: 1,
        number: NUMBER,
        contact: me,
        media: 9,
        extra: "",
    };
    let invite = String::from_utf8(invite.to_bytes()).expect("utf8");
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("start line without a version", good.replacen(" SIP/2.0\r\n", "\r\n", 1), None),
        ("start line with another version", good.replacen(" SIP/2.0\r\n", " SIP/3.0\r\n", 1), None),
        ("a method that is no token", good.replacen("OPTIONS sip:", "OPT(ONS sip:", 1), None),
        ("a header name with a space", good.replace("Max-Forwards:", "Max Forwards:"), Some("400")),
        ("huge headers", huge, Some("200")),
        ("missing Call-ID", invite.replace("Call-ID: junk-invite\r\n", ""), None),
        ("Content-Length beyond the body", invite.replacen("Content-Length: ", "Content-Length: 9", 1), Some("400")),
        ("Content-Length not a number", good.replace("Content-Length: 0", "Content-Length: -1"), Some("400")),
        ("binary", String::from_utf8_lossy(&[0xc3, 0x28, 0xa0, 0xa1, 0x0d, 0x0a, 0x0d, 0x0a]).to_string(), None),
    ];
    let mut buf = vec![0u8; 65_536];
    for (what, junk, deserves) in &cases {
        socket.send_to(junk.as_bytes(), app.sip_addr).await.expect("send junk");
        // A good request after each: its answer comes after any answer to the junk (one core, in order).
        socket.send_to(good.as_bytes(), app.sip_addr).await.expect("send OPTIONS");
        let mut answers = Vec::new();
        loop {
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("{what}: the server still answers"))
                .expect("recv");
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if header(&text, "Call-ID") == Some("junk-ok") && status(&text) == "200" {
                break;
            }
            answers.push(status(&text).to_string());
        }
        let expected: Vec<String> = deserves.iter().map(|s| s.to_string()).collect();
        assert_eq!(answers, expected, "{what}");
    }
    // A TCP stream cut off inside a message: no answer, the connection closes at the idle timeout.
    let mut tcp = tokio::net::TcpStream::connect(app.sip_addr).await.expect("connect");
    tcp.write_all(&invite.as_bytes()[..invite.len() / 2]).await.expect("half an INVITE");
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed without an answer: {read:?}");
    // Headers beyond 64 KiB on a stream: closed at once.
    let mut tcp = tokio::net::TcpStream::connect(app.sip_addr).await.expect("connect");
    let endless = format!("{}X-Pad: {}", good.trim_end(), "a".repeat(70_000));
    let _ = tcp.write_all(endless.as_bytes()).await;
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed without an answer: {read:?}");
    // A TCP stream without Content-Length cannot be framed: closed at once.
    let mut tcp = tokio::net::TcpStream::connect(app.sip_addr).await.expect("connect");
    let unframed = good.replace("Content-Length: 0\r\n", "");
    tcp.write_all(unframed.as_bytes()).await.expect("unframed");
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed without an answer: {read:?}");
    // No state left behind: no call, no row.
    assert_eq!(app.metric("slotline_active_calls", &[]).await, Some(0.0));
    let calls = app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls");
    assert!(calls.is_empty(), "{calls:?}");
    app.stop().await;
}

/// The same kinds of junk from a real SIP tool (tests/sipp/junk.xml): sipp fails unless each message gets
/// exactly the answer the scenario expects, or silence where it waits for none.
async fn junk_from_sipp_gets_a_4xx_or_silence_and_leaves_no_state(db: Db) {
    let app = spawn_app_with(db, Arc::new(SystemClock), |_| {}).await;
    let (code, output) = crate::sip::Sipp::new(&app, "junk.xml").run().await;
    assert_eq!(code, 0, "{output}");
    assert_eq!(app.metric("slotline_active_calls", &[]).await, Some(0.0));
    let calls = app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls");
    assert!(calls.is_empty(), "{calls:?}");
    let malformed = app.metric("slotline_sip_requests_total", &["method=\"malformed\""]).await;
    assert!(malformed.is_some_and(|n| n >= 4.0), "the junk is counted as malformed: {malformed:?}");
    app.stop().await;
}
