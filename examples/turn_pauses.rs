//! Pauses inside callers' turns, measured the way the endpointer sees them, to choose `voice.pause_ms`
//! and `voice.end_silence_ms` from data rather than by guess. Run by `bench/pauses.sh`.
//!
//! Every caller line of the dialog corpus (`tests/fixtures/dialogs/*.toml`) is spoken by espeak-ng in
//! several voices and rates; the WebRTC VAD (aggressiveness 2, 20 ms frames at 8 kHz, as in calls)
//! decides each frame, and a pause is a run of non-speech frames between two speech frames of one line.
//! The report gives the pause distribution and, for each candidate end-of-turn silence, the share of
//! lines it would have cut in two.
//!
//!     cargo run --release --example turn_pauses -- [DIALOG_DIR]

use std::path::PathBuf;

use slotline::speech::tts::espeak::EspeakTts;
use slotline::speech::vad::WebRtcVad;
use slotline::speech::{TextToSpeech, Vad, FRAME};

/// (espeak-ng voice, words per minute): slotline's default, slower and faster speakers, other accents.
const VOICES: [(&str, u32); 5] = [("en-us", 160), ("en-us", 130), ("en-us", 200), ("en-gb", 150), ("en-us+f3", 145)];
/// Candidate end-of-turn silences (ms); the shorter ones are where a speculative transcript would start.
const END_SILENCES: [u32; 10] = [100, 140, 200, 300, 400, 500, 600, 700, 800, 1000];

fn caller_lines(dir: &PathBuf) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    for file in files.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        let dialog: toml::Value = toml::from_str(&std::fs::read_to_string(file)?)?;
        for turn in dialog.get("turn").and_then(toml::Value::as_array).into_iter().flatten() {
            if let Some(text) = turn.get("caller").and_then(toml::Value::as_str) {
                if text.split_whitespace().count() >= 2 && !lines.iter().any(|l| l == text) {
                    lines.push(text.to_string());
                }
            }
        }
    }
    Ok(lines)
}

/// Lengths (frames) of the non-speech runs between speech frames.
fn pauses(vad: &mut WebRtcVad, pcm: &[i16]) -> anyhow::Result<Vec<u32>> {
    vad.reset();
    // Half a second of silence first, as on a call, so the detector has settled.
    let mut decisions = Vec::new();
    for frame in std::iter::repeat_n(&[0i16; FRAME][..], 25).chain(pcm.chunks_exact(FRAME)) {
        decisions.push(vad.is_speech(frame)?);
    }
    let (mut runs, mut gap, mut seen) = (Vec::new(), 0, false);
    for speech in decisions {
        match (speech, seen) {
            (true, true) if gap > 0 => {
                runs.push(gap);
                gap = 0;
            }
            (true, _) => seen = true,
            (false, true) => gap += 1,
            (false, false) => {}
        }
    }
    Ok(runs)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).map_or_else(|| PathBuf::from("tests/fixtures/dialogs"), PathBuf::from);
    let lines = caller_lines(&dir)?;
    let mut vad = WebRtcVad::new(2)?;
    let mut all = Vec::new();
    let mut longest_per_line = Vec::new();
    for (voice, rate) in VOICES {
        let tts = EspeakTts::new(voice, rate)?;
        for line in &lines {
            let pcm = tts.synthesize(line).await?;
            let runs = pauses(&mut vad, &pcm)?;
            longest_per_line.push((runs.iter().copied().max().unwrap_or(0), voice, rate, line.clone()));
            all.extend(runs);
        }
    }
    all.sort_unstable();
    let ms = |frames: u32| frames * 20;
    println!(
        "{} caller lines × {} voices = {} turns; {} pauses inside turns",
        lines.len(),
        VOICES.len(),
        longest_per_line.len(),
        all.len()
    );
    println!(
        "pause length (ms): p50 {}  p90 {}  p99 {}  max {}",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.9)),
        ms(percentile(&all, 0.99)),
        ms(all.last().copied().unwrap_or(0))
    );
    println!();
    println!("{:>16}  {:>18}", "end silence (ms)", "turns cut in two");
    for end in END_SILENCES {
        let cut = longest_per_line.iter().filter(|(longest, ..)| ms(*longest) >= end).count();
        println!("{end:>16}  {:>8} ({:>5.1} %)", cut, 100.0 * cut as f64 / longest_per_line.len() as f64);
    }
    longest_per_line.sort_by_key(|line| std::cmp::Reverse(line.0));
    println!();
    println!("longest pauses:");
    for (longest, voice, rate, line) in longest_per_line.iter().take(5) {
        println!("  {:>4} ms  {voice} {rate} wpm  {line:?}", ms(*longest));
    }
    Ok(())
}
