//! A real softphone call: baresip (Debian `baresip-core`) dials the demo number on loopback, hears the
//! greeting and presses `1234#`.
//!
//! baresip runs headless with its own config dir (`-f`): SIP on `127.0.0.1` only, the caller's voice from
//! a WAV file (`aufile`), no sound card, and what it hears recorded by the `sndfile` filter. The test
//! drives it over `ctrl_tcp` (netstring JSON commands and events): `dial`, then `sndcode 1234#` once
//! the call is established (RFC 4733 telephone-events, which baresip offers by default), `hangup`,
//! `quit`. baresip also quits by itself after 60 s (`-t`) and is killed when the test ends.
//!
//! *Then*: the recording matches slotline's greeting (normalised cross-correlation with the PCM of the
//! greeting chime, a near-pitch chime as the control), slotline logged and counted the five digits in
//! order, recorded the caller's tone, and wrote an answered `calls` row that ended with the caller's BYE.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use slotline::audio::wav;
use slotline::calendar::SystemClock;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{free_sip_port, spawn_app_with, Db};
use crate::sip::call_row;

crate::on_every_backend!(softphone_hears_the_greeting_and_its_dtmf_is_counted);

/// The caller's number, as baresip's account presents it in From.
const CALLER: &str = "+15557654321";

async fn softphone_hears_the_greeting_and_its_dtmf_is_counted(db: Db) {
    let log = captured_log();
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| c.media.record_calls = true).await;
    let mut phone = Baresip::start().await;

    phone.command("dial", &format!("sip:+15550100000@{}", app.sip_addr)).await;
    let established = phone.event("CALL_ESTABLISHED", Duration::from_secs(10)).await;
    let call_id = established["id"].as_str().unwrap_or_default().to_string();
    phone.command("sndcode", "1234#").await;

    wait_for(&phone, "slotline counts five DTMF digits", Duration::from_secs(10), || async {
        app.series("slotline_dtmf_events_total").await == 5.0
    })
    .await;
    // The greeting is 1 s; wait until baresip has recorded 2 s of what slotline sent.
    let heard = phone.recording_path();
    wait_for(&phone, "baresip records 2 s of the call", Duration::from_secs(10), || async {
        std::fs::metadata(&heard).map(|m| m.len()).unwrap_or(0) >= 44 + 2 * 8000 * 2
    })
    .await;
    // A local hangup raises no event in baresip 1.0: the calls row below shows slotline got the BYE.
    phone.command("hangup", "").await;
    phone.quit().await;

    // The call: answered, routed to the demo agent, ended by the softphone's BYE.
    let call = call_row(&app).await;
    assert_eq!(call.sip_call_id, call_id, "the Call-ID baresip reported");
    assert_eq!((call.dialed.as_str(), call.caller.as_str()), ("+15550100000", CALLER));
    assert_eq!((call.transport.as_str(), call.sip_status), ("udp", Some(200)));
    assert_eq!(call.end_reason.as_deref(), Some("caller_bye"));
    assert!(call.agent_id.is_some() && call.answered_at.is_some(), "{call:?}");
    assert_eq!(app.series("slotline_calls_total{outcome=\"answered\"}").await, 1.0);

    // DTMF: five events, each logged once with its digit, in the order pressed.
    let digits = logged_digits(&log, &call_id);
    assert_eq!(digits, "1234#", "DTMF log lines of call {call_id}");
    assert_eq!(app.series("slotline_dtmf_events_total").await, 5.0);

    // What baresip heard is slotline's greeting, then silence.
    let heard = wav::read(&heard).expect("baresip's recording is 8 kHz mono 16-bit");
    assert_greeting(&heard, &wav::greeting_chime());

    // And slotline heard the caller's tone.
    let recording = app.data_dir().join("recordings").join(format!("{}.wav", call.id));
    let caller = wav::read(&recording).expect("slotline recorded the caller");
    let first_second = &caller[..caller.len().min(8000)];
    assert!(rms(first_second) > 1000.0, "the caller's 300 Hz tone reached slotline: rms {}", rms(first_second));
    app.stop().await;
}

/// Asserts that `heard` starts (within 1 s) with `greeting`, sample for sample up to G.711 noise, and is
/// silent afterwards.
fn assert_greeting(heard: &[i16], greeting: &[i16]) {
    // The chime's audible part (two 0.4 s notes); the rest of the greeting is silence.
    let audible = &greeting[..6400];
    assert!(heard.len() >= 8000 + audible.len(), "baresip recorded {} samples", heard.len());
    // Where sound starts (20 ms frames), then the best sample alignment around it.
    let onset = heard.chunks(160).position(|frame| rms(frame) > 500.0).expect("baresip heard sound") * 160;
    let lags = onset.saturating_sub(400)..=(onset + 400).min(heard.len() - audible.len());
    assert!(onset <= 8000, "the greeting starts within 1 s of the first packet, not at {onset}");
    let (lag, score) = best_alignment(heard, audible, lags.clone());
    assert!(score > 0.9, "the recording correlates with the greeting: {score:.3} at lag {lag}");
    // Control: the same chime a few semitones off does not match, so the score above means something.
    let (_, control) = best_alignment(heard, &chime(600.0, 800.0), lags);
    assert!(control < 0.3, "a different chime must not match: {control:.3}");
    let window = &heard[lag..lag + audible.len()];
    assert!(rms(window) > 1000.0, "the greeting is audible: rms {}", rms(window));
    // Energy envelope, note by note (0.1 s frames): within 3 dB of what slotline sent.
    for (frame, (got, sent)) in window.chunks(800).zip(audible.chunks(800)).enumerate() {
        let (got, sent) = (rms(got), rms(sent));
        assert!(got > sent / 1.41 && got < sent * 1.41, "frame {frame}: heard rms {got:.0}, greeting rms {sent:.0}");
    }
    let after = &heard[(lag + 8000).min(heard.len())..];
    assert!(!after.is_empty() && rms(after) < 100.0, "silence after the greeting: rms {}", rms(after));
}

/// The greeting chime's shape with other pitches (0.4 s each).
fn chime(first: f64, second: f64) -> Vec<i16> {
    let note = |frequency: f64| {
        (0..3200).map(move |i| {
            let t = f64::from(i) / 8000.0;
            let envelope = (t / 0.02).min(1.0) * ((0.4 - t) / 0.05).clamp(0.0, 1.0);
            (8000.0 * envelope * (2.0 * std::f64::consts::PI * frequency * t).sin()) as i16
        })
    };
    note(first).chain(note(second)).collect()
}

/// The lag (samples into `signal`, among `lags`) where `template` fits best, and its normalised
/// cross-correlation there (1.0 = identical shape).
fn best_alignment(signal: &[i16], template: &[i16], lags: std::ops::RangeInclusive<usize>) -> (usize, f64) {
    let template: Vec<f64> = template.iter().map(|s| f64::from(*s)).collect();
    let template_norm = template.iter().map(|s| s * s).sum::<f64>().sqrt();
    let signal: Vec<f64> = signal.iter().map(|s| f64::from(*s)).collect();
    let last = signal.len().saturating_sub(template.len());
    lags.filter(|lag| *lag <= last)
        .map(|lag| {
            let window = &signal[lag..lag + template.len()];
            let dot: f64 = window.iter().zip(&template).map(|(a, b)| a * b).sum();
            let norm = window.iter().map(|s| s * s).sum::<f64>().sqrt() * template_norm;
            (lag, if norm > 0.0 { dot / norm } else { 0.0 })
        })
        .fold((0, f64::MIN), |best, candidate| if candidate.1 > best.1 { candidate } else { best })
}

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// Polls `condition` every 50 ms until it holds; fails with baresip's log after `timeout`.
async fn wait_for<F, Fut>(phone: &Baresip, what: &str, timeout: Duration, condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}\n{}", phone.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- slotline's log ------------------------------------------------------------------------------

/// slotline's media log lines of this test process, debug included: the DTMF digits are logged at debug
/// only (a global subscriber, installed once: nextest runs each test in its own process, and lines are
/// told apart by Call-ID anyway).
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("slotline::media=debug")
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other test installs a global subscriber");
        buffer
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The digits of the `DTMF` lines slotline logged for `call_id`, in order.
fn logged_digits(log: &Mutex<Vec<u8>>, call_id: &str) -> String {
    let text = String::from_utf8_lossy(&log.lock().unwrap_or_else(|e| e.into_inner())).to_string();
    let call = format!("call_id={call_id} ");
    text.lines()
        .filter(|line| line.contains(" DTMF ") && line.contains(&call))
        .filter_map(|line| line.split(" digit=").nth(1).and_then(|rest| rest.chars().next()))
        .collect()
}

// ---- baresip -------------------------------------------------------------------------------------

/// One headless baresip with a control connection.
struct Baresip {
    dir: tempfile::TempDir,
    child: tokio::process::Child,
    control: TcpStream,
    buffer: Vec<u8>,
    token: u32,
}

impl Baresip {
    /// Writes the config into a temp dir, starts baresip and connects to its `ctrl_tcp`.
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (sip_port, rtp_port, control_port) = (
            free_sip_port(std::net::Ipv4Addr::LOCALHOST.into()),
            rtp_port(),
            free_sip_port(std::net::Ipv4Addr::LOCALHOST.into()),
        );
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::create_dir_all(dir.path().join("heard")).expect("recording dir");
        let tone: Vec<i16> = (0..8000 * 3)
            .map(|i| (6000.0 * (2.0 * std::f64::consts::PI * 300.0 * f64::from(i) / 8000.0).sin()) as i16)
            .collect();
        wav::write(&dir.path().join("caller.wav"), &tone).expect("caller audio");
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip_port}\n\
             net_interface 127.0.0.1\n\
             rtp_ports {rtp_port}-{}\n\
             audio_source aufile,{}\n\
             ausrc_srate 8000\n\
             audio_channels 1\n\
             snd_path {}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module sndfile.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{control_port}\n",
            rtp_port + 1,
            path("caller.wav"),
            path("heard"),
        );
        std::fs::write(dir.path().join("config"), config).expect("config");
        // No registration; PCMU only, so the recording is the G.711 slotline sends.
        std::fs::write(dir.path().join("accounts"), format!("<sip:{CALLER}@127.0.0.1>;regint=0;audio_codecs=PCMU\n"))
            .expect("accounts");
        let log = std::fs::File::create(dir.path().join("baresip.log")).expect("log file");
        // Line-buffered output (stdbuf), so the log is complete when a test fails.
        let mut child = tokio::process::Command::new("stdbuf")
            .args(["-oL", "-eL", "baresip", "-f", &dir.path().display().to_string(), "-t", "60"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("baresip is installed (Debian package baresip-core; scripts/setup.sh --test installs it)");
        let control = match connect(control_port, &mut child).await {
            Ok(control) => control,
            Err(why) => panic!("{why}\n{}", log_tail(dir.path())),
        };
        Self { dir, child, control, buffer: Vec::new(), token: 0 }
    }

    /// The file the `sndfile` filter writes what baresip receives (decoded) into.
    fn recording_path(&self) -> PathBuf {
        find_recording(&self.dir.path().join("heard")).unwrap_or_else(|| self.dir.path().join("heard/none-dec.wav"))
    }

    /// The end of baresip's console output (for failure messages).
    fn log(&self) -> String {
        log_tail(self.dir.path())
    }

    /// Sends a command and waits for its response (events arriving meanwhile are kept).
    async fn command(&mut self, command: &str, params: &str) {
        self.token += 1;
        let token = self.token.to_string();
        let mut body = serde_json::json!({"command": command, "token": token});
        if !params.is_empty() {
            body["params"] = params.into();
        }
        let body = body.to_string();
        let frame = format!("{}:{body},", body.len());
        self.control.write_all(frame.as_bytes()).await.expect("send to ctrl_tcp");
        let response =
            self.next_matching(Duration::from_secs(5), |m| m["response"] == true && m["token"] == token.as_str()).await;
        assert_eq!(response["ok"], true, "baresip refused `{command} {params}`: {response}\n{}", self.log());
    }

    /// Waits for an event of `kind` (e.g. `CALL_ESTABLISHED`).
    async fn event(&mut self, kind: &str, timeout: Duration) -> serde_json::Value {
        self.next_matching(timeout, |m| m["event"] == true && m["type"] == kind).await
    }

    async fn next_matching(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        loop {
            while let Some(message) = self.take_netstring() {
                if wanted(&message) {
                    return message;
                }
            }
            match tokio::time::timeout_at(deadline, self.control.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buffer.extend_from_slice(&chunk[..n]),
                Ok(_) => panic!("baresip closed its control connection\n{}", self.log()),
                Err(_) => panic!("no matching message from baresip within {timeout:?}\n{}", self.log()),
            }
        }
    }

    /// One complete `LEN:JSON,` netstring from the buffer.
    fn take_netstring(&mut self) -> Option<serde_json::Value> {
        let colon = self.buffer.iter().position(|b| *b == b':')?;
        let len: usize = std::str::from_utf8(&self.buffer[..colon]).ok()?.parse().ok()?;
        let end = colon + 1 + len;
        if self.buffer.len() <= end {
            return None;
        }
        let message = serde_json::from_slice(&self.buffer[colon + 1..end]).expect("ctrl_tcp sends JSON");
        self.buffer.drain(..=end);
        Some(message)
    }

    /// Asks baresip to quit; kills it if it has not within 5 s (its files stay until it is dropped).
    async fn quit(&mut self) {
        self.token += 1;
        let body = serde_json::json!({"command": "quit", "token": self.token.to_string()}).to_string();
        let _ = self.control.write_all(format!("{}:{body},", body.len()).as_bytes()).await;
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(status) => assert!(status.is_ok_and(|s| s.success()), "baresip exit status\n{}", self.log()),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!("baresip did not quit\n{}", self.log());
            }
        }
    }
}

fn find_recording(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("-dec.wav")))
}

/// The end of the console output baresip wrote into `dir` (for failure messages).
fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("baresip.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("audio=")).collect();
    format!("--- baresip log (last lines) ---\n{}", lines[lines.len().saturating_sub(40)..].join("\n"))
}

/// Connects to baresip's control port, retrying while baresip starts (up to 20 s: the suite runs it
/// beside whisper on two cores); says so at once if baresip exits instead.
async fn connect(port: u16, child: &mut tokio::process::Child) -> Result<TcpStream, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() >= deadline => return Err(format!("baresip's ctrl_tcp on {port}: {e}")),
            Err(_) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("baresip exited at start ({status})"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An even UDP port whose odd sibling (RTCP) is free too.
fn rtp_port() -> u16 {
    for _ in 0..100 {
        let rtp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = rtp.local_addr().expect("addr").port();
        if port % 2 == 0 && port < u16::MAX && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free RTP port pair");
}

#[test]
fn alignment_and_log_helpers() {
    let greeting = wav::greeting_chime();
    let mut delayed = vec![0i16; 123];
    delayed.extend_from_slice(&greeting);
    let (lag, score) = best_alignment(&delayed, &greeting[..6400], 0..=400);
    assert_eq!(lag, 123);
    assert!(score > 0.999);
    let log = Mutex::new(
        b"INFO slotline::media::session: DTMF call_id=a digit=1 end_lost=false\n\
          INFO slotline::media::session: DTMF call_id=b digit=9 end_lost=false\n\
          INFO slotline::media::session: DTMF call_id=a digit=# end_lost=false\n"
            .to_vec(),
    );
    assert_eq!(logged_digits(&log, "a"), "1#");
}
