//! Renders the spoken corpus: every caller line of `tests/fixtures/spoken/dialogs/*.toml` (the script, its
//! retries, its repairs of a wrong read-back, and the refusal itself) spoken by each voice below, cut as the endpointer cuts an
//! utterance (200 ms before the speech, 100 ms after), sent through G.711 μ-law as on a call, and
//! transcribed by the project's own speech to text (whisper.cpp, tiny.en, greedy, two threads). The
//! transcripts, with the words whisper was unsure of (`unsure."voice" = [...]`, where there are some), go to
//! `tests/fixtures/spoken/transcripts.toml`, which the fast test
//! (`tests/it/spoken.rs`) plays through the dialog engine.
//!
//!     cargo run --example spoken_corpus [-- --missing]
//!
//! `--missing` renders only lines without a transcript (after adding dialogs); without it everything is
//! rendered again. For a probe, `--model PATH` transcribes with another whisper.cpp model, `--voice NAME`
//! renders one voice only and `--out PATH` writes elsewhere. Needs `scripts/setup.sh --test` (the model, espeak-ng, the hibari and piper voices).
//! About three minutes on two cores.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use slotline::config::ExternalTtsConfig;
use slotline::media::g711;
use slotline::speech::stt::whisper::{WhisperOptions, WhisperStt};
use slotline::speech::tts::espeak::EspeakTts;
use slotline::speech::tts::external::ExternalTts;
use slotline::speech::{tts, SpeechToText, TextToSpeech, Transcript};

/// The caller's lines when a read-back is wrong (`tests/it/dialogs.rs` says them).
const REFUSE: &str = "No, that's not right.";
const LEAVE: &str = "Never mind, goodbye.";

/// A voice of the corpus: its name in the fixture, what it is, how to start it.
struct VoiceSpec {
    name: &'static str,
    about: &'static str,
    engine: Engine,
}

enum Engine {
    /// A neural voice behind `scripts/tts_sidecar.py`: the engine and its speed.
    Sidecar(&'static str, &'static str),
    /// espeak-ng: voice and words per minute.
    Espeak(&'static str, u32),
}

const VOICES: [VoiceSpec; 5] = [
    VoiceSpec { name: "hibari", about: "hibari-tts, speed 1.0", engine: Engine::Sidecar("hibari", "1.0") },
    VoiceSpec { name: "hibari-fast", about: "hibari-tts, speed 1.25", engine: Engine::Sidecar("hibari", "1.25") },
    VoiceSpec { name: "piper-fast", about: "piper-tts en_US joe, speed 1.2", engine: Engine::Sidecar("piper", "1.2") },
    VoiceSpec { name: "espeak-slow", about: "espeak-ng en-us+m3, 130 wpm", engine: Engine::Espeak("en-us+m3", 130) },
    VoiceSpec { name: "espeak-fast", about: "espeak-ng en-us+f2, 185 wpm", engine: Engine::Espeak("en-us+f2", 185) },
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every line a caller of the corpus may say, in the order the dialogs say them.
fn caller_lines(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let mut lines: Vec<String> = Vec::new();
    let mut repairs: Vec<String> = Vec::new();
    for file in files {
        let dialog: toml::Value = toml::from_str(&std::fs::read_to_string(&file)?)?;
        for key in ["name", "email"] {
            if let Some(text) = dialog.get("repair").and_then(|r| r.get(key)).and_then(toml::Value::as_str) {
                repairs.push(text.to_string());
            }
        }
        for turn in dialog.get("turn").and_then(toml::Value::as_array).into_iter().flatten() {
            for key in ["caller", "retry"] {
                if let Some(text) = turn.get(key).and_then(toml::Value::as_str) {
                    lines.push(text.to_string());
                }
            }
        }
    }
    lines.extend(repairs);
    lines.extend([REFUSE, LEAVE, "The name.", "The email."].map(str::to_string));
    let mut unique = Vec::new();
    for line in lines {
        if !line.trim().is_empty() && !unique.contains(&line) {
            unique.push(line);
        }
    }
    Ok(unique)
}

async fn start(voice: &VoiceSpec) -> anyhow::Result<Box<dyn TextToSpeech>> {
    Ok(match voice.engine {
        Engine::Espeak(name, wpm) => Box::new(EspeakTts::new(name, wpm)?),
        Engine::Sidecar(engine, speed) => {
            let python = root().join("data").join(engine).join("python");
            anyhow::ensure!(python.is_file(), "{} is missing: run scripts/setup.sh --test", python.display());
            let script = root().join("scripts/tts_sidecar.py").display().to_string();
            let args = [script.as_str(), "--engine", engine, "--speed", speed, "--threads", "2"];
            let config = ExternalTtsConfig {
                command: Some(python),
                args: args.iter().map(|a| (*a).to_string()).collect(),
                timeout_ms: 30_000,
            };
            Box::new(ExternalTts::start(&config).await?)
        }
    })
}

/// The line as the gateway's speech to text receives it on a call: the voice's audio without its own
/// padding, 200 ms of line before and 100 ms after (the endpointer's pre-roll and tail), through μ-law.
async fn hear(voice: &dyn TextToSpeech, stt: &WhisperStt, line: &str) -> anyhow::Result<Transcript> {
    let mut speech = voice.synthesize(line).await?;
    tts::trim_silence(&mut speech);
    let mut utterance = vec![0i16; 1600];
    utterance.extend_from_slice(&speech);
    utterance.extend(std::iter::repeat_n(0i16, 800));
    let wire: Vec<i16> = utterance.iter().map(|&s| g711::ulaw_decode(g711::ulaw_encode(s))).collect();
    Ok(stt.transcribe(&wire).await?)
}

/// The value after `name` on the command line.
fn option(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// What one voice was heard as: the text and the words whisper was unsure of.
type Heard = BTreeMap<String, BTreeMap<String, (String, Vec<String>)>>;

/// The transcripts already rendered (line → voice → transcript and unsure words).
fn existing(path: &Path) -> Heard {
    let Ok(text) = std::fs::read_to_string(path) else { return Heard::new() };
    let Ok(value) = toml::from_str::<toml::Value>(&text) else { return Heard::new() };
    let mut heard = Heard::new();
    for line in value.get("line").and_then(toml::Value::as_array).into_iter().flatten() {
        let (Some(said), Some(voices)) = (line.get("said").and_then(toml::Value::as_str), line.get("heard")) else {
            continue;
        };
        let unsure = line.get("unsure").and_then(toml::Value::as_table);
        let unsure_of = |voice: &str| -> Vec<String> {
            let words = unsure.and_then(|u| u.get(voice)).and_then(toml::Value::as_array).into_iter().flatten();
            words.filter_map(|w| w.as_str().map(str::to_string)).collect()
        };
        let voices = voices.as_table().into_iter().flatten();
        let voices = voices.filter_map(|(v, t)| Some((v.clone(), (t.as_str()?.to_string(), unsure_of(v))))).collect();
        heard.insert(said.to_string(), voices);
    }
    heard
}

fn write(path: &Path, lines: &[String], heard: &Heard) -> anyhow::Result<()> {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = String::from(
        "# What the project's speech to text heard of every caller line of tests/fixtures/spoken/dialogs, per\n\
         # voice, through G.711 μ-law. Made by `cargo run --example spoken_corpus`; do not edit.\n\n[voices]\n",
    );
    for voice in &VOICES {
        writeln!(out, "{} = {}", quote(voice.name), quote(voice.about))?;
    }
    for line in lines {
        writeln!(out, "\n[[line]]\nsaid = {}", quote(line))?;
        for (voice, (text, _)) in heard.get(line).into_iter().flatten() {
            writeln!(out, "heard.{} = {}", quote(voice), quote(text))?;
        }
        for (voice, (_, unsure)) in heard.get(line).into_iter().flatten().filter(|(_, (_, u))| !u.is_empty()) {
            let words: Vec<String> = unsure.iter().map(|w| quote(w)).collect();
            writeln!(out, "unsure.{} = [{}]", quote(voice), words.join(", "))?;
        }
    }
    std::fs::write(path, out)?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let only_missing = std::env::args().any(|a| a == "--missing");
    let corpus = root().join("tests/fixtures/spoken");
    let out = option("--out").map_or_else(|| corpus.join("transcripts.toml"), PathBuf::from);
    let only_voice = option("--voice");
    let lines = caller_lines(&corpus.join("dialogs"))?;
    let mut heard = if only_missing { existing(&out) } else { Heard::new() };
    let model = option("--model").map_or_else(|| root().join("data/models/ggml-tiny.en-q8_0.bin"), PathBuf::from);
    let stt = WhisperStt::load(&model, WhisperOptions { threads: 2, ..WhisperOptions::default() }).await?;
    let started = Instant::now();
    for voice in VOICES.iter().filter(|v| only_voice.as_deref().is_none_or(|o| o == v.name)) {
        let todo: Vec<&String> =
            lines.iter().filter(|l| !heard.get(*l).is_some_and(|v| v.contains_key(voice.name))).collect();
        if todo.is_empty() {
            continue;
        }
        let tts = start(voice).await?;
        let at = Instant::now();
        for (i, line) in todo.iter().enumerate() {
            let one = Instant::now();
            let transcript = hear(tts.as_ref(), &stt, line).await?;
            if std::env::var_os("SPOKEN_VERBOSE").is_some() {
                let (text, unsure) = (&transcript.text, &transcript.unsure);
                eprintln!("{} {i} {:.1} s {line:?} -> {text:?} {unsure:?}", voice.name, one.elapsed().as_secs_f64());
            }
            heard
                .entry((*line).clone())
                .or_default()
                .insert(voice.name.to_string(), (transcript.text, transcript.unsure));
        }
        println!("{:<12} {} lines in {:.0} s ({})", voice.name, todo.len(), at.elapsed().as_secs_f64(), voice.about);
    }
    write(&out, &lines, &heard)?;
    let differ =
        |v: &str| lines.iter().filter(|l| heard.get(*l).and_then(|h| h.get(v)).is_some_and(|(t, _)| t != *l)).count();
    for voice in &VOICES {
        println!("{:<12} {} of {} lines heard otherwise than written", voice.name, differ(voice.name), lines.len());
    }
    println!("wrote {} ({} lines) in {:.0} s", out.display(), lines.len(), started.elapsed().as_secs_f64());
    Ok(())
}
