//! SIGTERM in the middle of a spoken call, on the real binary: the call goes on for
//! `sip.drain_timeout_secs` (the agent answers the caller it was hearing), then slotline hangs up, waits
//! for the voice session and its transcript writes, and exits 0. Every line the agent spoke is in the
//! database after the process is gone, and the call's row is closed with the reason `shutdown`. The log
//! at info never holds what the caller said.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotline::storage::{self, RecordFilter, Store};
use tokio::net::UdpSocket;

use crate::helpers::{command, free_sip_port, ServeProcess};
use crate::speech::model_path;
use crate::voice_call::turns;
use crate::voice_caller::{self, CallSpec, Cue};

const DEMO_NUMBER: &str = "+15550100000";

/// Waits until slotline answers an OPTIONS on `sip` (it is up, with the demo agent seeded).
async fn wait_for_sip(sip: std::net::SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let mut buf = vec![0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0.. {
        assert!(Instant::now() < deadline, "slotline did not start answering SIP");
        let probe = format!(
            "OPTIONS sip:slotline@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-up-{n}\r\n\
             From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:slotline@127.0.0.1>\r\nCall-ID: up-{n}\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        socket.send_to(probe.as_bytes(), sip).await.expect("probe");
        if let Ok(Ok((len, _))) = tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await {
            if buf[..len].starts_with(b"SIP/2.0 200") {
                return;
            }
        }
    }
}

/// The one call's transcript once it has a line by the caller.
async fn caller_heard(store: &dyn Store) -> uuid::Uuid {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let calls = store.list_calls(&RecordFilter { limit: 5, ..Default::default() }).await.expect("calls");
        if let [call] = calls.as_slice() {
            let lines = store.list_transcript(call.id).await.expect("transcript");
            if lines.iter().any(|l| l.speaker == "caller") {
                return call.id;
            }
        }
        assert!(Instant::now() < deadline, "the caller's first turn was never transcribed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_call_keeps_every_line_of_the_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sip: std::net::SocketAddr =
        format!("127.0.0.1:{}", free_sip_port(std::net::Ipv4Addr::LOCALHOST.into())).parse().expect("addr");
    let mut serve = command();
    serve
        .env("SLOTLINE_DATA_DIR", dir.path())
        .env("SLOTLINE_SIP__ADDR", sip.to_string())
        .env("SLOTLINE_SIP__DRAIN_TIMEOUT_SECS", "4")
        .env("SLOTLINE_VOICE__ENABLED", "true")
        .env("SLOTLINE_SPEECH__MODEL_PATH", model_path())
        .env("SLOTLINE_SPEECH__TTS_ENGINE", "espeak")
        .env("SLOTLINE_LOG__LEVEL", "info");
    let server = ServeProcess::start(serve, &["--api-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"]);
    wait_for_sip(sip).await;

    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/voice_caller.xml");
    let script = turns(&[("I'd like to book an appointment", Cue::AfterPrompt)]).await;
    let call = tokio::spawn(async move {
        let spec = CallSpec {
            local_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            sip,
            caller: "+15551234567",
            service: DEMO_NUMBER,
            scenario: &scenario,
            turns: script,
            deadline: Duration::from_secs(120),
        };
        voice_caller::call(spec).await
    });

    // Once the caller's turn is in the transcript, slotline is told to stop.
    let url = format!("sqlite://{}", dir.path().join("slotline.db").display());
    let store: Arc<dyn Store> = storage::connect(&url, 2).await.expect("open the database");
    let call_id = caller_heard(store.as_ref()).await;
    server.terminate();

    // The caller is hung up on after the drain, and the process exits cleanly.
    let log = call.await.expect("the call task");
    assert_eq!(log.sipp_code, 0, "slotline hung up (sipp answered its BYE): {:?}\n{}", log.error, log.sipp_output);
    let (status, stderr) = server.exit(Duration::from_secs(60)).await;
    assert!(status.success(), "exit 0 after SIGTERM: {status}\n{stderr}");
    assert!(!stderr.contains("voice sessions still running"), "every session ended within the drain:\n{stderr}");

    // After the process is gone: the greeting, the caller's turn and the agent's answer to it, in order.
    let lines = store.list_transcript(call_id).await.expect("transcript");
    let speakers: Vec<&str> = lines.iter().map(|l| l.speaker.as_str()).collect();
    let caller_at = speakers.iter().position(|s| *s == "caller").expect("the caller's line");
    assert!(speakers[..caller_at].contains(&"agent"), "the greeting comes first: {lines:?}");
    assert!(speakers[caller_at..].contains(&"agent"), "the agent's answer spoken during the drain is kept: {lines:?}");
    // What the caller said stays out of the log at info.
    let said = lines[caller_at].text.trim();
    assert!(!said.is_empty() && !stderr.contains(said), "the caller's words ({said}) are logged at info:\n{stderr}");
    let row = store.list_calls(&RecordFilter { limit: 5, ..Default::default() }).await.expect("calls");
    assert_eq!(row.len(), 1, "{row:?}");
    assert_eq!(row[0].end_reason.as_deref(), Some("shutdown"), "{row:?}");
    assert!(row[0].ended_at.is_some(), "{row:?}");
}
