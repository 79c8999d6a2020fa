//! The speech engines that are not offline, each against a local peer over real pipes and sockets:
//! the OpenAI-compatible transcription and speech engines against [`OpenAiSpeechDouble`] on loopback
//! (the multipart fields, the WAV they carry, the bearer key, the JSON body, WAV and PCM answers, and
//! how errors, hangs and bodies that are not audio fail without the key), and the text-to-speech sidecar
//! with `scripts/tts_sidecar.py` (espeak-ng behind the protocol) and with small Python sidecars that die,
//! refuse, stall and break the protocol. No whisper model needed: these run without the `whisper` feature.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use slotline::calendar::SystemClock;
use slotline::config::{
    Config, ExternalTtsConfig, OpenAiSpeechConfig, Secret, SttEngineKind, TtsAudioFormat, TtsEngineKind,
};
use slotline::speech::stt::openai::OpenAiStt;
use slotline::speech::tts;
use slotline::speech::tts::espeak::{self, EspeakTts};
use slotline::speech::tts::external::{find_command, ExternalTts};
use slotline::speech::tts::openai::OpenAiTts;
use slotline::speech::{self, Missing, SpeechError, SpeechToText, TextToSpeech};

use crate::helpers::{spawn_app_with, Db};
use crate::openai_speech_double::{OpenAiSpeechDouble, Reply};

const KEY: &str = "sk-speech-4c9e1f7a2b6d";

fn openai_config(base_url: &str, key: Option<&str>) -> OpenAiSpeechConfig {
    OpenAiSpeechConfig {
        base_url: base_url.to_string(),
        api_key: key.map(Secret::new),
        timeout_ms: 5_000,
        ..Config::default().speech.openai
    }
}

fn tone(rate: u32, hz: f64, seconds: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds) as usize;
    (0..n).map(|i| (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin()) as i16).collect()
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

/// `error` is an engine error of `engine` whose message has every one of `expected`, and neither the
/// message nor the error's text shows [`KEY`].
fn assert_engine_error(error: &SpeechError, engine: &str, expected: &[&str]) {
    let SpeechError::Engine { engine: actual, message } = error else { panic!("not an engine error: {error:?}") };
    assert_eq!(*actual, engine, "{message}");
    for part in expected {
        assert!(message.contains(part), "{message:?} does not say {part:?}");
    }
    assert!(!message.contains(KEY) && !error.to_string().contains(KEY), "the key leaked: {error}");
    assert!(!format!("{error:?}").contains(KEY), "the key leaked: {error:?}");
}

#[tokio::test]
async fn openai_stt_posts_the_utterance_as_a_wav_and_returns_the_text() {
    let double = OpenAiSpeechDouble::start(vec![Reply::text("  I'd like Tuesday at two, please.  ")], vec![]).await;
    let config =
        OpenAiSpeechConfig { stt_model: "whisper-large-v3".into(), ..openai_config(&double.base_url, Some(KEY)) };
    let stt = OpenAiStt::new(&config);
    let utterance = tone(8000, 440.0, 1.5);

    let transcript = stt.transcribe(&utterance).await.expect("transcribes");
    assert_eq!(transcript.text, "I'd like Tuesday at two, please.");
    assert_eq!(transcript.audio, Duration::from_millis(1500));
    assert!(transcript.decode > Duration::ZERO && transcript.decode < Duration::from_secs(5), "{transcript:?}");

    let requests = double.transcriptions();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    let fields: BTreeMap<String, String> =
        [("language", "en"), ("model", "whisper-large-v3"), ("response_format", "json")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(request.fields, fields);
    let file = request.file.as_ref().expect("a file part");
    assert!(file.file_name.as_deref().is_some_and(|name| name.ends_with(".wav")), "{:?}", file.file_name);
    assert_eq!(file.content_type.as_deref(), Some("audio/wav"));
    let wav = file.wav().expect("a valid WAV");
    assert_eq!((wav.rate, wav.channels, wav.bits), (8000, 1, 16));
    assert_eq!(wav.samples.len(), 12_000);
    assert_eq!(wav.samples, utterance);

    // Nothing said, nothing sent.
    let silent = stt.transcribe(&[]).await.expect("empty utterance");
    assert_eq!((silent.text.as_str(), silent.audio), ("", Duration::ZERO));
    assert_eq!(double.transcriptions().len(), 1);
}

#[tokio::test]
async fn openai_tts_wav_answers_at_any_rate_become_8khz() {
    let second = tone(24_000, 440.0, 1.0);
    let half = tone(22_050, 440.0, 0.5);
    let quarter = tone(8_000, 440.0, 0.25);
    let script = vec![
        Reply::streamed_wav(24_000, &second),
        Reply::streamed_wav(22_050, &half),
        Reply::streamed_wav(8_000, &quarter),
    ];
    let double = OpenAiSpeechDouble::start(vec![], script).await;
    let config = OpenAiSpeechConfig {
        tts_model: "tts-1-hd".into(),
        tts_voice: "nova".into(),
        tts_format: TtsAudioFormat::Wav,
        ..openai_config(&double.base_url, None)
    };
    let tts = OpenAiTts::new(&config);

    let audio = tts.synthesize("Your appointment is booked.").await.expect("speaks");
    assert_eq!(audio.len(), 8000);
    let level = rms(&audio[1000..7000]);
    assert!((level - 8000.0 / 2f64.sqrt()).abs() < 300.0, "a 440 Hz tone at rms {level}");
    assert_eq!(tts.synthesize("See you then.").await.expect("speaks").len(), 4000);
    assert_eq!(tts.synthesize("Bye.").await.expect("speaks"), quarter, "8 kHz passes through unchanged");
    assert_eq!(tts.synthesize("  ").await.expect("nothing to say"), Vec::<i16>::new());

    let requests = double.speeches();
    assert_eq!(requests.len(), 3, "blank text sends nothing");
    assert_eq!(
        requests[0].body,
        json!({"model": "tts-1-hd", "input": "Your appointment is booked.", "voice": "nova", "response_format": "wav"})
    );
    assert_eq!(requests[2].body["input"], "Bye.");
    assert!(requests[0].content_type.as_deref().is_some_and(|t| t.starts_with("application/json")));
    assert_eq!(requests[0].authorization, None, "no key configured, no Authorization header");
}

#[tokio::test]
async fn openai_tts_pcm_answers_are_24khz_samples() {
    let double = OpenAiSpeechDouble::start(vec![], vec![Reply::pcm(&tone(24_000, 300.0, 0.75))]).await;
    let config = OpenAiSpeechConfig { tts_format: TtsAudioFormat::Pcm, ..openai_config(&double.base_url, Some(KEY)) };
    let audio = OpenAiTts::new(&config).synthesize("One moment.").await.expect("speaks");
    assert_eq!(audio.len(), 6000);
    assert!(rms(&audio[500..5500]) > 5000.0, "the tone survives: rms {}", rms(&audio[500..5500]));
    let requests = double.speeches();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body,
        json!({"model": "tts-1", "input": "One moment.", "voice": "alloy", "response_format": "pcm"})
    );
    assert_eq!(requests[0].authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
}

#[tokio::test]
async fn openai_failures_say_what_happened_without_the_key() {
    let rejected = format!("Incorrect API key provided: {KEY}. You can find your API key at the dashboard.");
    let outage = "The server had an error while processing your request. Sorry about that!".to_string();
    let stt_script =
        vec![Reply::Status(401, rejected.clone()), Reply::Status(500, outage.clone()), Reply::Malformed, Reply::Hang];
    let tts_script = vec![
        Reply::Status(401, rejected),
        Reply::Status(500, outage),
        Reply::Hang,
        Reply::Audio("text/html", b"<html><body>502 Bad Gateway</body></html>".to_vec()),
        Reply::Audio("audio/pcm", vec![1, 2, 3]),
    ];
    let double = OpenAiSpeechDouble::start(stt_script, tts_script).await;
    let config = OpenAiSpeechConfig { timeout_ms: 300, ..openai_config(&double.base_url, Some(KEY)) };
    let utterance = tone(8000, 440.0, 0.5);

    let stt = OpenAiStt::new(&config);
    let error = stt.transcribe(&utterance).await.expect_err("401");
    assert_engine_error(&error, "openai-stt", &["HTTP 401", "Incorrect API key provided: [redacted]"]);
    let error = stt.transcribe(&utterance).await.expect_err("500");
    assert_engine_error(&error, "openai-stt", &["HTTP 500", "The server had an error"]);
    let error = stt.transcribe(&utterance).await.expect_err("not JSON");
    assert_engine_error(&error, "openai-stt", &["the answer is not {\"text\": ...}", "{\"text\": oops"]);
    let started = Instant::now();
    let error = stt.transcribe(&utterance).await.expect_err("hang");
    assert_engine_error(&error, "openai-stt", &["no answer within the timeout of 300 ms"]);
    assert!(started.elapsed() < Duration::from_secs(3), "gave up after {:?}", started.elapsed());

    let tts = OpenAiTts::new(&config);
    let error = tts.synthesize("Hello.").await.expect_err("401");
    assert_engine_error(&error, "openai-tts", &["HTTP 401", "[redacted]"]);
    let error = tts.synthesize("Hello.").await.expect_err("500");
    assert_engine_error(&error, "openai-tts", &["HTTP 500", "processing your request"]);
    let started = Instant::now();
    let error = tts.synthesize("Hello.").await.expect_err("hang");
    assert_engine_error(&error, "openai-tts", &["no answer within the timeout of 300 ms"]);
    assert!(started.elapsed() < Duration::from_secs(3), "gave up after {:?}", started.elapsed());
    let error = tts.synthesize("Hello.").await.expect_err("HTML instead of a WAV");
    assert_engine_error(&error, "openai-tts", &["not a 16-bit PCM WAV", "502 Bad Gateway"]);
    let pcm = OpenAiTts::new(&OpenAiSpeechConfig { tts_format: TtsAudioFormat::Pcm, ..config.clone() });
    let error = pcm.synthesize("Hello.").await.expect_err("3 bytes of 16-bit PCM");
    assert_engine_error(&error, "openai-tts", &["odd length (3 bytes)"]);
    assert_eq!((double.transcriptions().len(), double.speeches().len()), (4, 5));

    // Nobody listening.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let error = OpenAiStt::new(&openai_config(&format!("http://{addr}/v1"), Some(KEY)))
        .transcribe(&utterance)
        .await
        .expect_err("connection refused");
    assert_engine_error(&error, "openai-stt", &["request failed"]);
}

fn python() -> PathBuf {
    find_command(Path::new("python3")).expect("python3 is installed by scripts/setup.sh")
}

fn sidecar(args: Vec<String>, timeout_ms: u64) -> ExternalTtsConfig {
    ExternalTtsConfig { command: Some(python()), args, timeout_ms }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_sidecar_speaks_espeak_ng_audio_from_one_process() {
    if espeak::find_program().is_none() {
        eprintln!("skipped: espeak-ng is not installed (scripts/setup.sh installs it)");
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/tts_sidecar.py");
    let tts = ExternalTts::start(&sidecar(vec![script.display().to_string()], 20_000)).await.expect("starts");
    let pid = tts.process_id().await.expect("running");

    let sentence = "Your appointment is booked for Tuesday at two.";
    let first = tts.synthesize(sentence).await.expect("speaks");
    assert!((8_000..80_000).contains(&first.len()), "{} samples at 8 kHz", first.len());
    assert!(rms(&first) > 500.0, "audible: rms {}", rms(&first));
    let second = tts.synthesize("Goodbye.").await.expect("speaks again");
    assert!(second.len() > 1_600 && second.len() < first.len(), "{} samples", second.len());
    assert_eq!(tts.process_id().await, Some(pid), "the same sidecar answered both");

    // The same espeak-ng, voice and rate run directly: the protocol carries the audio unchanged.
    let direct = EspeakTts::new("en-us", 160).expect("espeak-ng").synthesize(sentence).await.expect("speaks");
    assert_eq!(first.len(), direct.len());
    assert_eq!(first, direct);
}

/// A neural voice of the reference sidecar: `hibari` or `piper`, run by the Python that
/// `scripts/setup.sh --test` makes for it (`data/<voice>/python`; `IT_HIBARI_PYTHON` or
/// `IT_PIPER_PYTHON` overrides) as `scripts/tts_sidecar.py --engine <voice>`.
pub(crate) fn voice_sidecar(voice: &str) -> ExternalTtsConfig {
    let python = crate::helpers::setup_file(&format!("IT_{}_PYTHON", voice.to_uppercase()), &format!("{voice}/python"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/tts_sidecar.py");
    ExternalTtsConfig {
        command: Some(python),
        args: vec![script.display().to_string(), "--engine".into(), voice.into()],
        timeout_ms: 20_000,
    }
}

/// Given the reference sidecar with `--engine hibari`, when it speaks two sentences, then both come
/// from one process loaded once, as 8 kHz audio (from hibari's 24 kHz) with its padding trimmed to
/// what slotline keeps, and the same text gives the same audio (the sidecar's fixed noise seed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_sidecar_speaks_hibari_tts_audio_at_8_khz() {
    let tts = ExternalTts::start(&voice_sidecar("hibari")).await.expect("starts");
    let pid = tts.process_id().await.expect("running");

    let sentence = "Your appointment is booked for Tuesday at two.";
    let mut first = tts.synthesize(sentence).await.expect("speaks");
    // hibari pads about 300 ms before the words and 450 ms after them, at 24 kHz.
    let padded = first.len();
    assert!((16_000..48_000).contains(&padded), "{padded} samples at 8 kHz");
    assert!(first[..1_600].iter().all(|s| s.abs() < 64), "hibari's own lead-in is silent");
    tts::trim_silence(&mut first);
    assert!(padded - first.len() > 4_000, "about 0.5 s of padding goes: {padded} → {}", first.len());
    assert!(rms(&first) > 500.0, "audible: rms {}", rms(&first));

    let again = tts.synthesize(sentence).await.expect("speaks again");
    assert_eq!(again.len(), padded, "the same text, the same audio");
    assert_eq!(tts.process_id().await, Some(pid), "the same sidecar answered both");
}

/// Given the reference sidecar with `--engine piper`, when it speaks two sentences, then both come
/// from one process loaded once, as audible 8 kHz audio resampled from piper's 22.05 kHz, each as long
/// as its words (piper's sentences are joined into one answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_sidecar_speaks_piper_audio_at_8_khz() {
    let tts = ExternalTts::start(&voice_sidecar("piper")).await.expect("starts");
    let pid = tts.process_id().await.expect("running");

    let two = tts.synthesize("Your appointment is booked. It is on Tuesday at two.").await.expect("speaks");
    // About 3.5 s of speech: two sentences in one answer, at 8 kHz.
    assert!((16_000..48_000).contains(&two.len()), "{} samples at 8 kHz", two.len());
    assert!(rms(&two) > 500.0, "audible: rms {}", rms(&two));
    let one = tts.synthesize("Your appointment is booked.").await.expect("speaks again");
    assert!(one.len() > 4_000 && one.len() * 3 < two.len() * 2, "{} against {} samples", one.len(), two.len());
    assert_eq!(tts.process_id().await, Some(pid), "the same sidecar answered both");
}

/// A sidecar for the failure tests: 16 000 samples at 16 kHz (a square wave) for any text, except
/// `crash` (the first time: half an answer, a last word on stderr, exit 3), `refuse` (an error answer),
/// `stall` (sleeps 60 s), `slow` (answers after 1 s) and `wrong id` (answers another id).
const FLAKY_SIDECAR: &str = r#"
import json, os, struct, sys, time
marker = sys.argv[1]
out = sys.stdout.buffer
def send(header, pcm=b""):
    out.write(json.dumps(header).encode() + b"\n" + pcm)
    out.flush()
for line in sys.stdin.buffer:
    request = json.loads(line)
    text, rid = request["text"], request["id"]
    if text == "crash" and not os.path.exists(marker):
        open(marker, "w").close()
        out.write(json.dumps({"id": rid, "rate": 16000, "samples": 16000}).encode() + b"\n" + bytes(1000))
        out.flush()
        print("flaky sidecar: giving up mid-answer", file=sys.stderr, flush=True)
        os._exit(3)
    if text == "refuse":
        send({"id": rid, "error": "no voice for this text"})
        continue
    if text == "stall":
        time.sleep(60)
    if text == "slow":
        time.sleep(1)
    if text == "wrong id":
        rid += 100
    send({"id": rid, "rate": 16000, "samples": 16000}, struct.pack("<16000h", *([6000] * 8 + [-6000] * 8) * 1000))
"#;

struct Flaky {
    _dir: tempfile::TempDir,
    tts: ExternalTts,
}

async fn flaky_sidecar(timeout_ms: u64) -> Flaky {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("flaky_sidecar.py");
    std::fs::write(&script, FLAKY_SIDECAR).expect("write the sidecar");
    let marker = dir.path().join("crashed-once");
    let args = vec![script.display().to_string(), marker.display().to_string()];
    let tts = ExternalTts::start(&sidecar(args, timeout_ms)).await.expect("starts");
    Flaky { _dir: dir, tts }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_that_dies_mid_answer_fails_that_request_and_is_restarted() {
    let Flaky { tts, _dir } = flaky_sidecar(10_000).await;
    let first_pid = tts.process_id().await.expect("running");

    let error = tts.synthesize("crash").await.expect_err("the sidecar died");
    assert_engine_error(
        &error,
        "external-tts",
        &["exited before answering", "exit status: 3", "giving up mid-answer", "restarted for the next request"],
    );

    let audio = tts.synthesize("Hello again.").await.expect("a new sidecar answers");
    assert_eq!(audio.len(), 8000, "16 000 samples at 16 kHz are one second at 8 kHz");
    assert!(rms(&audio[500..7500]) > 3000.0, "rms {}", rms(&audio[500..7500]));
    let second_pid = tts.process_id().await.expect("running again");
    assert_ne!(second_pid, first_pid);

    // An error answer leaves the sidecar in step: the same process speaks the next sentence.
    let error = tts.synthesize("refuse").await.expect_err("refused");
    assert_engine_error(&error, "external-tts", &["could not speak the text: no voice for this text"]);
    assert_eq!(tts.synthesize("Still there?").await.expect("speaks").len(), 8000);
    assert_eq!(tts.process_id().await, Some(second_pid));

    // Requests at once take turns on the one sidecar.
    let tts = Arc::new(tts);
    let (a, b) = tokio::join!(tts.synthesize("One."), tts.synthesize("Two."));
    assert_eq!((a.expect("one").len(), b.expect("two").len()), (8000, 8000));
    assert_eq!(tts.process_id().await, Some(second_pid));

    // An answer to another request breaks the protocol: that sidecar is replaced.
    let error = tts.synthesize("wrong id").await.expect_err("out of step");
    assert_engine_error(&error, "external-tts", &["broke the protocol", "while request"]);
    assert_eq!(tts.synthesize("And now?").await.expect("speaks").len(), 8000);
    assert_ne!(tts.process_id().await, Some(second_pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_or_abandoned_request_costs_the_sidecar_not_the_next_request() {
    let Flaky { tts, _dir } = flaky_sidecar(500).await;
    let pid = tts.process_id().await.expect("running");
    // A new sidecar's first answer may take longer (loading its voice); the timeout holds from the second.
    assert_eq!(tts.synthesize("Ready?").await.expect("speaks").len(), 8000);

    let started = Instant::now();
    let error = tts.synthesize("stall").await.expect_err("timed out");
    assert_engine_error(&error, "external-tts", &["no answer within the timeout of 500 ms", "restarted"]);
    assert!(started.elapsed() < Duration::from_secs(3), "gave up after {:?}", started.elapsed());
    assert_eq!(tts.process_id().await, None, "the stalled sidecar is gone");
    assert_eq!(tts.synthesize("Hello.").await.expect("a new sidecar answers").len(), 8000);
    let restarted = tts.process_id().await.expect("running");
    assert_ne!(restarted, pid);
    let error = tts.synthesize("stall").await.expect_err("timed out again");
    assert_engine_error(&error, "external-tts", &["no answer within the timeout of 500 ms"]);
    assert_eq!(tts.synthesize("Hello.").await.expect("speaks").len(), 8000);
    let restarted = tts.process_id().await.expect("running");

    // A caller that stops waiting half-way (a barge-in) leaves the pipes out of step; the next request
    // gets a fresh sidecar rather than the stale answer.
    let abandoned = tokio::time::timeout(Duration::from_millis(200), tts.synthesize("slow")).await;
    assert!(abandoned.is_err(), "the slow answer was abandoned");
    assert_eq!(tts.synthesize("Hello.").await.expect("speaks").len(), 8000);
    assert_ne!(tts.process_id().await, Some(restarted));
}

#[tokio::test]
async fn a_sidecar_that_is_not_there_is_reported_missing() {
    let config = ExternalTtsConfig { command: Some("/nonexistent/sidecar".into()), args: vec![], timeout_ms: 1000 };
    let Err(SpeechError::Missing(missing)) = ExternalTts::start(&config).await else { panic!("started nothing?") };
    let expected = Missing::Command { setting: "speech.external.command", command: "/nonexistent/sidecar".into() };
    assert_eq!(missing, [expected]);
    assert!(missing[0].to_string().contains("speech.external.command"), "{}", missing[0]);
}

#[test]
fn check_asks_only_for_what_the_chosen_engines_need() {
    let mut config = Config { data_dir: "/nonexistent".into(), ..Config::default() };
    config.speech.stt_engine = SttEngineKind::Openai;
    config.speech.tts_engine = TtsEngineKind::Openai;
    speech::check(&config).expect("remote engines need nothing here");

    config.speech.tts_engine = TtsEngineKind::External;
    config.speech.external.command = Some("/nonexistent/sidecar".into());
    let Err(SpeechError::Missing(missing)) = speech::check(&config) else { panic!("the sidecar is missing") };
    assert_eq!(
        missing,
        [Missing::Command { setting: "speech.external.command", command: "/nonexistent/sidecar".into() }]
    );
    config.speech.external.command = Some("python3".into());
    speech::check(&config).expect("python3 is on PATH");

    config.speech.stt_engine = SttEngineKind::Whisper;
    let Err(SpeechError::Missing(missing)) = speech::check(&config) else { panic!("the model is missing") };
    assert_eq!(missing, [Missing::Model { path: "/nonexistent/models/ggml-tiny.en-q8_0.bin".into() }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_voice_pipeline_on_openai_engines_without_whisper() {
    let double = OpenAiSpeechDouble::start(vec![], vec![Reply::pcm(&tone(24_000, 440.0, 0.5))]).await;
    let base_url = double.base_url.clone();
    let app = spawn_app_with(Db::Sqlite, Arc::new(SystemClock), move |config| {
        config.voice.enabled = true;
        config.speech.model_path = Some("/nonexistent/ggml-tiny.en.bin".into());
        config.speech.stt_engine = SttEngineKind::Openai;
        config.speech.tts_engine = TtsEngineKind::Openai;
        config.speech.openai = OpenAiSpeechConfig {
            tts_format: TtsAudioFormat::Pcm,
            tts_voice: "shimmer".into(),
            ..openai_config(&base_url, Some(KEY))
        };
    })
    .await;
    // The greetings are spoken ahead of the first call: the first sentence reaches the double.
    let deadline = Instant::now() + Duration::from_secs(10);
    while double.speeches().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let speeches = double.speeches();
    assert!(!speeches.is_empty(), "no greeting was pre-synthesised");
    assert_eq!(speeches[0].body["voice"], "shimmer");
    assert_eq!(speeches[0].body["response_format"], "pcm");
    assert!(speeches[0].body["input"].as_str().is_some_and(|text| !text.trim().is_empty()));
    assert_eq!(speeches[0].authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(double.transcriptions().len(), 0, "a remote transcriber is not warmed up with silence");
    app.stop().await;
}

/// A sidecar that answers a request only once another process of the pool has one too: each request
/// leaves the process id in the shared directory and waits (up to `wait` seconds) for a second one there,
/// then answers two samples at 8 kHz carrying its process id; alone it refuses.
const RENDEZVOUS_SIDECAR: &str = r#"
import json, os, struct, sys, time
shared, wait = sys.argv[1], float(sys.argv[2])
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    request = json.loads(line)
    open(os.path.join(shared, str(os.getpid())), "w").close()
    deadline = time.monotonic() + wait
    while len(os.listdir(shared)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    if len(os.listdir(shared)) < 2:
        out.write(json.dumps({"id": request["id"], "error": "alone"}).encode() + b"\n")
    else:
        pid = os.getpid()
        header = {"id": request["id"], "rate": 8000, "samples": 2}
        out.write(json.dumps(header).encode() + b"\n" + struct.pack("<2h", pid & 0x7FFF, pid >> 15))
    out.flush()
"#;

/// The process id a [`RENDEZVOUS_SIDECAR`] answer carries.
fn answering_pid(answer: &[i16]) -> u32 {
    let [low, high] = answer else { panic!("not a rendezvous answer: {answer:?}") };
    u32::try_from(*low).expect("low bits") | (u32::try_from(*high).expect("high bits") << 15)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentences_spoken_at_once_run_on_distinct_sidecar_processes_of_the_pool() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("rendezvous_sidecar.py");
    std::fs::write(&script, RENDEZVOUS_SIDECAR).expect("write the sidecar");
    let shared = dir.path().join("requests");
    std::fs::create_dir(&shared).expect("shared directory");
    // Each request waits for the other: one process answering both in turn would leave the first alone.
    let args = vec![script.display().to_string(), shared.display().to_string(), "60".into()];
    let tts = ExternalTts::start_pool(&sidecar(args, 90_000), 2).await.expect("starts");
    assert_eq!(tts.processes(), 2);
    let pids: Vec<u32> = tts.process_ids().into_iter().map(|p| p.expect("running")).collect();
    assert_ne!(pids[0], pids[1], "two processes");

    let (first, second) = tokio::join!(tts.synthesize("One."), tts.synthesize("Two."));
    let (first, second) = (first.expect("answered together"), second.expect("answered together"));
    let (first, second) = (answering_pid(&first), answering_pid(&second));
    assert_ne!(first, second, "each sentence had a process of its own");
    for pid in [first, second] {
        assert!(pids.contains(&pid), "{pid} is one of the pool's {pids:?}");
    }
    assert_eq!(tts.process_ids().into_iter().flatten().collect::<Vec<_>>(), pids, "both still run");
}
