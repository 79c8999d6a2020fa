//! Speech engine timings: whisper.cpp on 1, 2 and 4 s utterances with the encoder window scaled to the
//! utterance vs. Whisper's full 1500 positions, and espeak-ng per sentence. Medians over bounded runs,
//! both variants in the same process so the ratio holds on a noisy machine. Run by `bench/stt.sh`.
//!
//!     cargo run --example speech_bench -- [MODEL] [RUNS]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use slotline::speech::resample::resample;
use slotline::speech::stt::whisper::{AudioContext, WhisperOptions, WhisperStt};
use slotline::speech::tts::espeak::EspeakTts;
use slotline::speech::TextToSpeech;

/// Utterances: (seconds of audio, what the caller says; espeak-ng at 160 wpm fits it in the time).
const UTTERANCES: [(u32, &str); 3] =
    [(1, "Yes, please."), (2, "Tomorrow at two works."), (4, "I would like to book an appointment tomorrow at two.")];
const SENTENCE: &str = "Your appointment is booked for tomorrow at two in the afternoon.";

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().map_or_else(|| PathBuf::from("data/models/ggml-tiny.en-q8_0.bin"), PathBuf::from);
    let runs: usize = args.next().map_or(Ok(5), |r| r.parse())?.clamp(1, 50);

    let tts = EspeakTts::new("en-us", 160)?;
    let loaded = Instant::now();
    let stt = WhisperStt::load(&model, WhisperOptions::default()).await?;
    println!(
        "model {} loaded in {:.0} ms; {runs} runs per figure (after one warm-up)",
        model.display(),
        ms(loaded.elapsed())
    );
    println!();
    println!("{:<10} {:>12} {:>12} {:>7}  transcript (scaled | full)", "utterance", "scaled ms", "full ms", "ratio");
    for (seconds, text) in UTTERANCES {
        let mut audio = tts.synthesize(text).await?;
        let spoken = audio.len() as f64 / 8000.0;
        audio.resize(seconds as usize * 8000, 0);
        let mut medians = Vec::new();
        let mut transcripts = Vec::new();
        for window in [AudioContext::Scaled, AudioContext::Full] {
            let warm = stt.transcribe_with(&audio, window).await?;
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs {
                times.push(stt.transcribe_with(&audio, window).await?.decode);
            }
            medians.push(median(times));
            transcripts.push(warm.text);
        }
        println!(
            "{:<10} {:>12.0} {:>12.0} {:>6.1}×  {} | {}   (speech {spoken:.1} s, scaled window {} positions)",
            format!("{seconds} s"),
            ms(medians[0]),
            ms(medians[1]),
            medians[1].as_secs_f64() / medians[0].as_secs_f64(),
            transcripts[0],
            transcripts[1],
            AudioContext::Scaled.positions(seconds as usize * 16_000)
        );
    }
    println!();
    tts.synthesize(SENTENCE).await?;
    let mut times = Vec::with_capacity(runs);
    let mut samples = 0;
    for _ in 0..runs {
        let started = Instant::now();
        samples = tts.synthesize(SENTENCE).await?.len();
        times.push(started.elapsed());
    }
    let speech_22k = vec![0i16; samples * 22050 / 8000];
    let mut resampling = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(resample(22050, 8000, &speech_22k));
        resampling.push(started.elapsed());
    }
    println!(
        "espeak-ng: {:.1} ms median for one sentence ({:.1} s of 8 kHz audio), of which {:.1} ms resampling \
         22.05 → 8 kHz (this build's optimisation level)",
        ms(median(times)),
        samples as f64 / 8000.0,
        ms(median(resampling))
    );
    Ok(())
}
