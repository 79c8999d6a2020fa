//! slotline-lkffi against the real thing: LiveKit's FFI library (`scripts/setup.sh --livekit`) and a real
//! `livekit-server`, with participants in one process talking through the server.
//!
//! WebRTC gathers candidates on every non-loopback interface, and nothing may leave the machine, so the
//! server and the participants run inside a network namespace this test makes: the outer test
//! re-executes this binary under `unshare --net --pid --fork --kill-child` (the new PID namespace takes
//! the server down with the test however it ends) to run the inner, ignored test, which brings up `lo`
//! and a veth pair whose both ends stay inside (192.0.2.1/24 and 192.0.2.2/24), starts livekit-server on
//! 192.0.2.1 with keys of its own and STUN pointed at itself, and runs the scenarios. Making the
//! namespace needs root (CI runs as root); elsewhere the test fails saying so.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use slotline_lkffi::{AudioSource, AudioStream, Ffi, ParticipantKind, RemoteAudioTrack, Room, RoomEvent, RoomOptions};
use tokio::sync::mpsc::UnboundedReceiver;

/// Set for the inner run, inside the namespace.
const INSIDE: &str = "IT_LKFFI_NETNS";
const INNER_TEST: &str = "inside_the_namespace";
const SERVER_IP: &str = "192.0.2.1";
const URL: &str = "ws://192.0.2.1:7880";
/// Bound of every wait for something the server or the library does (generous: two shared cores).
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn participants_talk_through_a_real_livekit_server_in_a_network_namespace() {
    let library = setup_file("IT_LIVEKIT_FFI", "livekit/liblivekit_ffi.so");
    let server = setup_file("IT_LIVEKIT_SERVER", "livekit/livekit-server");
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new("unshare")
        .args(["--net", "--pid", "--fork", "--kill-child", "--"])
        .arg(exe)
        .args(["--exact", INNER_TEST, "--ignored", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .env("IT_LIVEKIT_FFI", library)
        .env("IT_LIVEKIT_SERVER", server)
        .stdin(Stdio::null())
        .output()
        .expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("--- inside the network namespace: stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    if stderr.contains("unshare failed") || stderr.contains("Operation not permitted") {
        panic!(
            "this test needs a network namespace of its own (unshare --net), which takes root: run it as root \
             (CI does). unshare said: {}",
            stderr.trim()
        );
    }
    assert!(output.status.success(), "the scenarios inside the namespace failed ({})", output.status);
    assert!(stdout.contains("1 passed"), "the inner test did not run");
}

#[test]
#[ignore = "runs inside the network namespace that participants_talk_through_a_real_livekit_server_in_a_network_namespace makes"]
fn inside_the_namespace() {
    assert!(
        std::env::var_os(INSIDE).is_some(),
        "run participants_talk_through_a_real_livekit_server_in_a_network_namespace: it makes the namespace"
    );
    bring_up_the_network();
    let server = LivekitServer::start();
    let ffi = Ffi::load(setup_file("IT_LIVEKIT_FFI", "livekit/liblivekit_ffi.so")).expect("load the library");
    assert_eq!(ffi.version(), "0.13.2");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(async {
        // Two rooms at once in one process: each pair must hear its own tones only.
        tokio::join!(
            conversation(&ffi, &server, "call-a", 440.0, 1000.0, Leaves::CallerHangsUp),
            conversation(&ffi, &server, "call-b", 600.0, 1500.0, Leaves::AgentDropsTheRoom),
        );
        barge_in(&ffi, &server, "call-c").await;
    });
    drop(runtime);

    // At the end of the process the library is disposed (from a plain thread); nothing works after that.
    ffi.dispose_blocking();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let after =
        runtime.block_on(Room::connect(&ffi, URL, &server.token("late", "agent", None), RoomOptions::default()));
    assert!(matches!(after, Err(slotline_lkffi::FfiError::Stopped(_))), "{after:?}");
    println!("server log:\n{}", server.log_tail());
}

/// Who ends a conversation, and how.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Leaves {
    /// The caller calls `disconnect()`; the agent sees it leave.
    CallerHangsUp,
    /// The agent's `Room` is dropped without `disconnect()`; the caller sees it leave.
    AgentDropsTheRoom,
}

/// Given an agent in a room (16 kHz, a queued source) and a SIP-like caller joining it (48 kHz, paced
/// 10 ms frames), each hears the other's tone, the agent gets the caller's DTMF and data, and whoever
/// leaves is seen leaving.
#[allow(clippy::too_many_lines, reason = "a scripted two-party scenario, read top to bottom")]
async fn conversation(ffi: &Ffi, server: &LivekitServer, room: &str, caller_hz: f64, agent_hz: f64, leaves: Leaves) {
    let (agent, agent_events) =
        Room::connect(ffi, URL, &server.token(room, "agent", None), RoomOptions::default()).await.expect("agent joins");
    let mut agent_events = Events::new(agent_events, room, "agent");
    assert_eq!(agent.name(), room);
    assert_eq!(agent.local_identity(), "agent");
    assert!(agent.participants_at_connect().is_empty());
    let agent_voice = Tone::start(agent.local_audio(16000, 200).await.expect("agent publishes"), agent_hz, 20);

    let attributes = HashMap::from([("sip.phoneNumber".to_string(), "+15550100".to_string())]);
    let (caller, caller_events) =
        Room::connect(ffi, URL, &server.token(room, "caller", Some(&attributes)), RoomOptions::default())
            .await
            .expect("caller joins");
    let mut caller_events = Events::new(caller_events, room, "caller");
    let present: Vec<_> = caller.participants_at_connect().iter().map(|p| (p.identity.as_str(), p.kind)).collect();
    assert_eq!(present, [("agent", ParticipantKind::Standard)]);
    let caller_voice = Tone::start(caller.local_audio(48000, 0).await.expect("caller publishes"), caller_hz, 10);

    // The agent sees a SIP participant with its attributes (ParticipantInfo's 0.13 field numbers).
    let joined = agent_events
        .expect("the caller joins", |e| matches!(e, RoomEvent::ParticipantConnected(p) if p.identity == "caller"))
        .await;
    let RoomEvent::ParticipantConnected(joined) = joined else { unreachable!() };
    assert_eq!(joined.kind, ParticipantKind::Sip);
    assert_eq!(joined.attributes.get("sip.phoneNumber").map(String::as_str), Some("+15550100"));

    // Each hears the other, at the rate and frame length it asked for.
    let caller_track = subscribed(&mut agent_events, "caller").await;
    let agent_track = subscribed(&mut caller_events, "agent").await;
    assert_eq!(caller_track.participant_identity(), "caller");
    let mut agent_hears = agent.audio_stream(&caller_track, 16000, 20).expect("agent listens");
    let mut caller_hears = caller.audio_stream(&agent_track, 48000, 10).expect("caller listens");
    let (heard_by_agent, heard_by_caller) = tokio::join!(listen(&mut agent_hears), listen(&mut caller_hears));
    println!("{room}: agent hears {heard_by_agent:?}; caller hears {heard_by_caller:?}");
    heard_by_agent.assert_tone(caller_hz, 16000, 320);
    heard_by_caller.assert_tone(agent_hz, 48000, 480);

    // The caller presses keys and sends data.
    caller.publish_sip_dtmf(1, "1").await.expect("dtmf 1");
    caller.publish_sip_dtmf(11, "#").await.expect("dtmf #");
    caller.publish_data("slotline.test", b"hello agent", true).await.expect("data");
    let mut keys = Vec::new();
    for _ in 0..2 {
        match agent_events.expect("a DTMF key", |e| matches!(e, RoomEvent::SipDtmf { .. })).await {
            RoomEvent::SipDtmf { participant_identity, code, digit } => keys.push((participant_identity, code, digit)),
            _ => unreachable!(),
        }
    }
    assert_eq!(keys, [("caller".into(), 1, "1".into()), ("caller".into(), 11, "#".into())]);
    match agent_events.expect("the data packet", |e| matches!(e, RoomEvent::Data { .. })).await {
        RoomEvent::Data { participant_identity, topic, bytes } => {
            assert_eq!((participant_identity.as_str(), topic.as_deref()), ("caller", Some("slotline.test")));
            assert_eq!(bytes, b"hello agent");
        }
        _ => unreachable!(),
    }

    match leaves {
        Leaves::CallerHangsUp => {
            drop(caller_hears);
            drop(caller_voice.stop().await);
            caller.disconnect().await.expect("caller disconnects");
            caller.disconnect().await.expect("a second disconnect does nothing");
            assert!(matches!(caller.publish_sip_dtmf(1, "1").await, Err(slotline_lkffi::FfiError::Disconnected)));
            caller_events.expect_disconnected("CLIENT_INITIATED").await;
            caller_events.expect_end().await;
            agent_events
                .expect(
                    "the caller leaves",
                    |e| matches!(e, RoomEvent::ParticipantDisconnected { identity, .. } if identity == "caller"),
                )
                .await;
            drop(agent_hears);
            drop(agent_voice.stop().await);
            agent.disconnect().await.expect("agent disconnects");
            agent_events.expect_disconnected("CLIENT_INITIATED").await;
            agent_events.expect_end().await;
        }
        Leaves::AgentDropsTheRoom => {
            drop(agent_hears);
            drop(agent_voice.stop().await);
            drop(agent);
            caller_events
                .expect(
                    "the agent leaves",
                    |e| matches!(e, RoomEvent::ParticipantDisconnected { identity, .. } if identity == "agent"),
                )
                .await;
            agent_events.expect_end().await;
            drop(caller_hears);
            drop(caller_voice.stop().await);
            caller.disconnect().await.expect("caller disconnects");
            caller_events.expect_disconnected("CLIENT_INITIATED").await;
            caller_events.expect_end().await;
        }
    }
}

/// Given an agent speaking from a queue that holds 1.5 s of tone, when the caller hears it and the agent
/// clears the queue (barge-in), then the caller hears silence soon after, not the rest of the tone.
async fn barge_in(ffi: &Ffi, server: &LivekitServer, room: &str) {
    let (agent, agent_events) =
        Room::connect(ffi, URL, &server.token(room, "agent", None), RoomOptions::default()).await.expect("agent joins");
    let _agent_events = Events::new(agent_events, room, "agent");
    let source = agent.local_audio(16000, 3000).await.expect("agent publishes");
    let (caller, caller_events) = Room::connect(ffi, URL, &server.token(room, "caller", None), RoomOptions::default())
        .await
        .expect("caller joins");
    let mut caller_events = Events::new(caller_events, room, "caller");
    let track = subscribed(&mut caller_events, "agent").await;
    let mut hears = caller.audio_stream(&track, 16000, 10).expect("caller listens");

    // The agent queues 1.5 s of tone at once (the queue takes it without waiting).
    let pushed_ms = 1500;
    let tone = tone_samples(1000.0, 16000, 0, 16 * pushed_ms);
    for chunk in tone.chunks(1600) {
        source.capture(chunk).await.expect("tone into the queue");
    }
    // The caller hears it start; the agent clears the queue, then sends silence so frames keep coming.
    let mut heard = Loudness::default();
    while heard.loud == 0 {
        heard.add(&next_frame(&mut hears).await);
        assert!(heard.total < 16000 * 20, "20 s of audio without the agent's tone");
    }
    source.clear().expect("clear the queue");
    let silence = tokio::spawn(async move {
        for _ in 0..20 {
            if source.capture(&[0; 1600]).await.is_err() {
                break;
            }
        }
        source
    });
    while heard.quiet_after_loud < 16000 {
        heard.add(&next_frame(&mut hears).await);
        assert!(heard.total < 16000 * 40, "40 s of audio without a second of silence after the clear");
    }
    let heard_ms = heard.loud / 16;
    println!("{room}: the agent queued {pushed_ms} ms of tone and cleared it once the caller heard it; the caller heard {heard_ms} ms");
    assert!(heard_ms < 1000, "the clear did not cut the queued tone: {heard_ms} ms of {pushed_ms} ms heard");

    drop(hears);
    drop(silence.await.expect("silence task"));
    caller.disconnect().await.expect("caller disconnects");
    agent.disconnect().await.expect("agent disconnects");
}

/// Loud (tone) and quiet samples counted in 10 ms pieces.
#[derive(Default)]
struct Loudness {
    loud: usize,
    quiet_after_loud: usize,
    total: usize,
}

impl Loudness {
    fn add(&mut self, samples: &[i16]) {
        self.total += samples.len();
        for piece in samples.chunks(160) {
            if rms(piece) > 1000.0 {
                self.loud += piece.len();
                self.quiet_after_loud = 0;
            } else if self.loud > 0 {
                self.quiet_after_loud += piece.len();
            }
        }
    }
}

async fn next_frame(stream: &mut AudioStream) -> Vec<i16> {
    tokio::time::timeout(WAIT, stream.recv()).await.expect("a frame in time").expect("the stream goes on").samples
}

/// What a listener heard.
#[derive(Debug)]
struct Heard {
    frequency: f64,
    sample_rates: Vec<u32>,
    frame_lengths: Vec<usize>,
}

impl Heard {
    fn assert_tone(&self, hz: f64, rate: u32, frame_len: usize) {
        assert!((self.frequency - hz).abs() < hz * 0.03, "heard {:.1} Hz, expected {hz} Hz", self.frequency);
        assert_eq!(self.sample_rates, [rate]);
        assert_eq!(self.frame_lengths, [frame_len]);
    }
}

/// Reads a stream until it has 1 s of tone (after 200 ms of it to settle) and measures its frequency by
/// rising zero crossings.
async fn listen(stream: &mut AudioStream) -> Heard {
    let mut heard = Heard { frequency: 0.0, sample_rates: Vec::new(), frame_lengths: Vec::new() };
    let rate = stream.sample_rate() as usize;
    let (mut settle, mut samples) = (rate / 5, Vec::with_capacity(rate));
    let mut total = 0;
    while samples.len() < rate {
        let frame =
            tokio::time::timeout(WAIT, stream.recv()).await.expect("a frame in time").expect("the stream goes on");
        total += frame.samples.len();
        assert!(total < rate * 30, "30 s of audio without 1 s of tone");
        if !heard.sample_rates.contains(&frame.sample_rate) {
            heard.sample_rates.push(frame.sample_rate);
        }
        if !heard.frame_lengths.contains(&frame.samples.len()) {
            heard.frame_lengths.push(frame.samples.len());
        }
        if rms(&frame.samples) < 1000.0 {
            continue;
        }
        let skip = settle.min(frame.samples.len());
        settle -= skip;
        samples.extend_from_slice(&frame.samples[skip..]);
    }
    let crossings = samples.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    heard.frequency = crossings as f64 * rate as f64 / samples.len() as f64;
    heard
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

fn tone_samples(hz: f64, rate: u32, from: usize, len: usize) -> Vec<i16> {
    (from..from + len)
        .map(|n| (0.3 * 32767.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / f64::from(rate)).sin()) as i16)
        .collect()
}

/// A participant's voice: a tone sent in frames of `frame_ms` until stopped. Without a queue the frames
/// are paced by the clock; with one, by the queue's backpressure.
struct Tone {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<AudioSource>,
}

impl Tone {
    fn start(source: AudioSource, hz: f64, frame_ms: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let rate = source.sample_rate();
            let len = source.samples_per_10ms() * frame_ms / 10;
            let mut clock = tokio::time::interval(Duration::from_millis(frame_ms as u64));
            let mut position = 0;
            while !stopped.load(Ordering::Relaxed) {
                if source.queue_ms() == 0 {
                    clock.tick().await;
                }
                let frame = tone_samples(hz, rate, position, len);
                position += len;
                source.capture(&frame).await.expect("capture");
            }
            source
        });
        Self { stop, task }
    }

    async fn stop(self) -> AudioSource {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("tone task")
    }
}

async fn subscribed(events: &mut Events, from: &str) -> RemoteAudioTrack {
    let event = events
        .expect(
            "a subscribed audio track",
            |e| matches!(e, RoomEvent::TrackSubscribed { participant_identity, .. } if participant_identity == from),
        )
        .await;
    let RoomEvent::TrackSubscribed { track, .. } = event else { unreachable!() };
    track
}

/// A room's events, waited for by what they are; events passed over are kept for later waits.
struct Events {
    rx: UnboundedReceiver<RoomEvent>,
    seen: VecDeque<RoomEvent>,
    who: String,
}

impl Events {
    fn new(rx: UnboundedReceiver<RoomEvent>, room: &str, identity: &str) -> Self {
        Self { rx, seen: VecDeque::new(), who: format!("{room}/{identity}") }
    }

    async fn expect(&mut self, what: &str, wanted: impl Fn(&RoomEvent) -> bool) -> RoomEvent {
        if let Some(i) = self.seen.iter().position(&wanted) {
            return self.seen.remove(i).expect("the event just found");
        }
        loop {
            let event = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("{}: waited {WAIT:?} for {what}; passed over {:?}", self.who, self.seen))
                .unwrap_or_else(|| panic!("{}: the events ended before {what}; passed over {:?}", self.who, self.seen));
            if wanted(&event) {
                return event;
            }
            self.seen.push_back(event);
        }
    }

    async fn expect_disconnected(&mut self, reason: &str) {
        let event = self.expect("disconnected", |e| matches!(e, RoomEvent::Disconnected { .. })).await;
        assert!(matches!(&event, RoomEvent::Disconnected { reason: r } if r == reason), "{event:?}");
    }

    /// The receiver ends once the library closed the room.
    async fn expect_end(&mut self) {
        loop {
            match tokio::time::timeout(WAIT, self.rx.recv()).await {
                Ok(Some(_)) => continue,
                Ok(None) => return,
                Err(_) => panic!("{}: the room's events did not end", self.who),
            }
        }
    }
}

/// `lo` and a veth pair whose both ends stay inside the namespace; no route leads anywhere else.
fn bring_up_the_network() {
    let commands: [&[&str]; 6] = [
        &["link", "set", "lo", "up"],
        &["link", "add", "lkv0", "type", "veth", "peer", "name", "lkv1"],
        &["addr", "add", "192.0.2.1/24", "dev", "lkv0"],
        &["addr", "add", "192.0.2.2/24", "dev", "lkv1"],
        &["link", "set", "lkv0", "up"],
        &["link", "set", "lkv1", "up"],
    ];
    for args in commands {
        let status = Command::new("ip").args(args).status().expect("run ip (iproute2)");
        assert!(status.success(), "ip {} failed", args.join(" "));
    }
}

/// livekit-server on 192.0.2.1 with keys of this run's own; killed when dropped (and by the PID
/// namespace's end in any case).
struct LivekitServer {
    child: std::process::Child,
    key: String,
    secret: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LivekitServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = format!("key{:016x}", random());
        let secret = format!("{:016x}{:016x}{:016x}", random(), random(), random());
        let config = dir.path().join("livekit.yaml");
        std::fs::write(
            &config,
            format!(
                "port: 7880\nbind_addresses: [\"{SERVER_IP}\"]\nkeys:\n  {key}: {secret}\n\
                 rtc:\n  tcp_port: 7881\n  udp_port: 7882\n  node_ip: {SERVER_IP}\n  use_external_ip: false\n  \
                 stun_servers: [\"{SERVER_IP}:3478\"]\n  enable_loopback_candidate: false\n  \
                 interfaces:\n    includes: [\"lkv0\"]\nlogging:\n  level: info\n"
            ),
        )
        .expect("write the server's config");
        let log = dir.path().join("livekit.log");
        let out = std::fs::File::create(&log).expect("server log");
        let child = Command::new(setup_file("IT_LIVEKIT_SERVER", "livekit/livekit-server"))
            .arg("--config")
            .arg(&config)
            .stdout(out.try_clone().expect("server log"))
            .stderr(out)
            .spawn()
            .expect("start livekit-server");
        let server = Self { child, key, secret, log, _dir: dir };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect((SERVER_IP, 7880)).is_err() {
            assert!(std::time::Instant::now() < deadline, "livekit-server did not start:\n{}", server.log_tail());
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// A join token for `identity` in `room` (HS256 JWT), with participant attributes; an identity with
    /// attributes joins as a SIP participant, as LiveKit SIP's callers do.
    fn token(&self, room: &str, identity: &str, attributes: Option<&HashMap<String, String>>) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970").as_secs();
        let mut claims = serde_json::json!({
            "iss": self.key, "sub": identity, "name": identity, "nbf": now - 10, "exp": now + 3600,
            "video": {"room": room, "roomJoin": true, "canPublish": true, "canSubscribe": true, "canPublishData": true},
        });
        if let Some(attributes) = attributes {
            claims["attributes"] = serde_json::json!(attributes);
            claims["kind"] = serde_json::json!("sip");
        }
        let signing_input =
            format!("{}.{}", B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#), B64.encode(claims.to_string()));
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.secret.as_bytes()).expect("HMAC takes any key");
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<_> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for LivekitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn random() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}

/// A file `scripts/setup.sh --livekit` makes under the repository's `data/` (`relative`), or the path in
/// the environment variable `variable`; fails the test naming the fix when it is missing.
fn setup_file(variable: &str, relative: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data").join(relative));
    assert!(path.is_file(), "{} is missing: run scripts/setup.sh --livekit (or set {variable})", path.display());
    path
}
