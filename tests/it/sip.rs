//! The SIP gateway against a real, independent peer: sipp (Debian `sip-tester`), always on loopback
//! (`-i 127.0.0.1 -mi 127.0.0.1`). Each scenario in `tests/sipp/` asserts sipp's exit code and the
//! `calls` row slotline wrote.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotline::calendar::SystemClock;
use slotline::config::{Config, Secret, TrunkConfig};
use slotline::storage::{CallRecord, RecordFilter};

use crate::helpers::{spawn_app_with, Db, TestApp};

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

fn free_port() -> u16 {
    // A port free for both UDP and TCP (sipp binds both for -t t1).
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port + 2)).is_ok()
        {
            return port;
        }
    }
}

struct Sipp<'a> {
    app: &'a TestApp,
    scenario: &'a str,
    service: &'a str,
    extra: Vec<&'a str>,
}

impl<'a> Sipp<'a> {
    fn new(app: &'a TestApp, scenario: &'a str) -> Self {
        Self { app, scenario, service: "+15550100000", extra: Vec::new() }
    }

    fn service(mut self, service: &'a str) -> Self {
        self.service = service;
        self
    }

    fn args(mut self, args: &[&'a str]) -> Self {
        self.extra.extend_from_slice(args);
        self
    }

    /// Runs sipp for one call; returns its exit code and output.
    async fn run(self) -> (i32, String) {
        let target = self.app.sip_addr.to_string();
        let port = free_port().to_string();
        let media_port = free_port().to_string();
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
async fn call_row(app: &TestApp) -> CallRecord {
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

async fn metric(app: &TestApp, line_prefix: &str) -> f64 {
    let text = app.http.get(&app.metrics_url).send().await.expect("scrape").text().await.expect("text");
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
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
    let sent = metric(&app, "slotline_rtp_packets_total{direction=\"sent\"}").await;
    let received = metric(&app, "slotline_rtp_packets_total{direction=\"received\"}").await;
    assert!(sent >= 50.0, "about 100 packets in 2 s, sent {sent}");
    assert!(received >= 25.0, "sipp echoed our RTP back, received {received}");
    assert_eq!(metric(&app, "slotline_calls_total{outcome=\"answered\"}").await, 1.0);
    assert_eq!(metric(&app, "slotline_active_calls").await, 0.0);
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
    assert_eq!(metric(&app, "slotline_calls_total{outcome=\"answered\"}").await, 0.0);
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
    assert_eq!(metric(&app, "slotline_sip_requests_total{method=\"INVITE\"}").await, 2.0);
    // The retransmission was answered by repeating the last provisional response, not as a new call.
    assert_eq!(metric(&app, "slotline_sip_retransmissions_absorbed_total{method=\"INVITE\"}").await, 1.0);
    assert_eq!(metric(&app, "slotline_sip_responses_total{method=\"INVITE\",code=\"200\"}").await, 1.0);
    assert_eq!(metric(&app, "slotline_calls_total{outcome=\"answered\"}").await, 1.0);
    app.stop().await;
}

async fn slotline_hangs_up_dead_calls(db: Db) {
    let app = app_with(db, |c| c.rtp.timeout_secs = 1).await;
    let (code, output) = Sipp::new(&app, "bye_from_slotline.xml").run().await;
    assert_eq!(code, 0, "{output}");
    let call = call_row(&app).await;
    assert_eq!(call.end_reason.as_deref(), Some("media_timeout"));
    assert_eq!(metric(&app, "slotline_sip_requests_sent_total{method=\"BYE\"}").await, 1.0);
    app.stop().await;
}

async fn options_keepalive(db: Db) {
    let app = app_with(db, |_| {}).await;
    let (code, output) = Sipp::new(&app, "options.xml").run().await;
    assert_eq!(code, 0, "{output}");
    assert!(app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls").is_empty());
    assert_eq!(metric(&app, "slotline_sip_responses_total{method=\"OPTIONS\",code=\"200\"}").await, 1.0);
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
    let (code, output) = Sipp::new(&app, "digest_auth.xml").args(&["-au", "trunk", "-ap", "s3cret"]).run().await;
    assert_eq!(code, 0, "{output}");
    let calls = app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls");
    let statuses: Vec<Option<i32>> = calls.iter().map(|c| c.sip_status).collect();
    assert!(statuses.contains(&Some(401)) && statuses.contains(&Some(200)), "{statuses:?}");
    // Wrong password: challenged, then refused.
    let (code, _) = Sipp::new(&app, "digest_auth.xml").args(&["-au", "trunk", "-ap", "wrong"]).run().await;
    assert_ne!(code, 0);
    assert_eq!(metric(&app, "slotline_calls_total{outcome=\"auth_failed\"}").await, 1.0);
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
    let call = call_row(&app).await;
    assert_eq!((call.sip_status, call.agent_id), (Some(403), None));
    assert_eq!(metric(&app, "slotline_rtp_packets_total{direction=\"sent\"}").await, 0.0, "never reaches media");
    app.stop().await;
}
