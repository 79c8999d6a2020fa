//! The offline speech engines on real audio: espeak-ng speaks a caller's request, the audio crosses
//! G.711 as on a call, whisper.cpp transcribes it; the sidecar's neural voices are heard word for word; the WebRTC VAD finds speech inside line noise; STT
//! decodes off the async runtime, one utterance at a time.
//!
//! The model comes from `scripts/setup.sh --test` (`data/models/ggml-tiny.en-q8_0.bin`, the default, or
//! `IT_WHISPER_MODEL`); espeak-ng from the Debian package the same script installs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use slotline::agent::nlu::Utterance;
use slotline::call::{Frame, FRAME};
use slotline::config::Config;
use slotline::media::codec::Codec;
use slotline::media::g711;
use slotline::speech::stt::whisper::{WhisperOptions, WhisperStt};
use slotline::speech::tts;
use slotline::speech::tts::espeak::EspeakTts;
use slotline::speech::tts::external::ExternalTts;
use slotline::speech::vad::{Endpoint, EndpointSettings, EndpointerThread};
use slotline::speech::{self, Missing, SpeechError, SpeechToText, TextToSpeech};

use crate::speech_engines::voice_sidecar;

/// The whisper model slotline uses by default, Q8_0, which `scripts/setup.sh --test` makes
/// (`IT_WHISPER_MODEL` overrides).
pub(crate) fn model_path() -> PathBuf {
    crate::helpers::setup_file("IT_WHISPER_MODEL", "models/ggml-tiny.en-q8_0.bin")
}

/// The caller: espeak-ng's male US variant speaking slowly and clearly (its robotic default voice at
/// full speed costs whisper tiny words it gets right from people).
fn espeak() -> EspeakTts {
    EspeakTts::new("en-us+m3", 130).expect("espeak-ng is installed by scripts/setup.sh")
}

/// Encodes and decodes 20 ms frames as the RTP path of a call does.
pub(crate) fn through_g711(codec: Codec, samples: &[i16]) -> Vec<i16> {
    let mut out = Vec::with_capacity(samples.len());
    let (mut wire, mut decoded) = ([0u8; FRAME], [0i16; FRAME]);
    for chunk in samples.chunks(FRAME) {
        let n = g711::encode(codec, chunk, &mut wire);
        let n = g711::decode(codec, &wire[..n], &mut decoded);
        out.extend_from_slice(&decoded[..n]);
    }
    out
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_booking_request_through_g711_is_transcribed() {
    let stt = WhisperStt::load(&model_path(), WhisperOptions::default()).await.expect("model loads");
    let caller = espeak().synthesize("I would like to book an appointment tomorrow at two.").await.expect("speaks");
    assert!(caller.len() > 8000, "espeak-ng spoke {} samples", caller.len());
    for codec in [Codec::Pcmu, Codec::Pcma] {
        let heard = through_g711(codec, &caller);
        let transcript = stt.transcribe(&heard).await.expect("transcribes");
        let words = words(&transcript.text);
        for expected in ["appointment", "tomorrow"] {
            assert!(
                words.iter().any(|w| w.starts_with(expected)),
                "{codec:?}: no `{expected}` in {:?}",
                transcript.text
            );
        }
        assert!(words.iter().any(|w| w == "two" || w == "2"), "{codec:?}: no `two` in {:?}", transcript.text);
        assert_eq!(transcript.audio, speech::duration_of(heard.len()));
        assert!(transcript.decode > Duration::ZERO);
    }
    // Nothing said, nothing heard.
    assert_eq!(stt.transcribe(&[]).await.expect("empty").text, "");
}

/// Given the Q8_0 quantization `scripts/whisper_model.py` makes from the fp16 model (the default), when
/// whisper.cpp loads it (it checks every tensor's type and size against the header's file type) and
/// transcribes the same request through G.711, then it hears the same words as the fp16 model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quantized_model_hears_what_the_model_hears() {
    let quantized = model_path();
    let fp16_model = crate::helpers::setup_file("IT_WHISPER_FP16_MODEL", "models/ggml-tiny.en.bin");
    let q8 = WhisperStt::load(&quantized, WhisperOptions::default()).await.expect("the Q8_0 model loads");
    let fp16 = WhisperStt::load(&fp16_model, WhisperOptions::default()).await.expect("the fp16 model loads");
    let caller = espeak().synthesize("I would like to book an appointment tomorrow at two.").await.expect("speaks");
    let heard = through_g711(Codec::Pcmu, &caller);
    let (q8_words, fp16_words) = (
        words(&q8.transcribe(&heard).await.expect("Q8_0 transcribes").text),
        words(&fp16.transcribe(&heard).await.expect("fp16 transcribes").text),
    );
    for expected in ["appointment", "tomorrow"] {
        assert!(q8_words.iter().any(|w| w.starts_with(expected)), "no `{expected}` in {q8_words:?}");
    }
    assert_eq!(q8_words, fp16_words, "the same words from both models");
    assert!(
        std::fs::metadata(&quantized).expect("Q8_0 file").len() < std::fs::metadata(&fp16_model).expect("file").len()
    );
}

/// Low-level line noise (about −50 dBFS), the same every run.
/// Given the agent's confirmation spoken by each neural voice of the reference sidecar (hibari-tts and
/// piper-tts), when it crosses G.711 and whisper transcribes it, then every word is heard, "all set"
/// included (whisper tiny hears espeak-ng's voices say "all fair").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_neural_voices_are_heard_word_for_word() {
    let stt = WhisperStt::load(&model_path(), WhisperOptions::default()).await.expect("model loads");
    let sentence = "You're all set, Jane! Your appointment is booked for Tuesday, December 8 at 10:30 AM.";
    for voice in ["hibari", "piper"] {
        // piper draws fresh noise on every run unless seeded: seeded, the sentence is the same audio each
        // time, so what is checked is one rendition of it, not a draw (unseeded, whisper tiny hears "Jane"
        // as "Jang" in about one run in eight).
        let mut sidecar = voice_sidecar(voice);
        sidecar.args.extend(["--seed".to_string(), "0".to_string()]);
        let tts = ExternalTts::start(&sidecar).await.expect("the sidecar starts");
        let mut audio = tts.synthesize(sentence).await.expect("speaks");
        tts::trim_silence(&mut audio);
        let heard = stt.transcribe(&through_g711(Codec::Pcmu, &audio)).await.expect("transcribes");
        let said = words(&heard.text).join(" ");
        for expected in ["all set jane", "your appointment is booked for tuesday", "december"] {
            assert!(said.contains(expected), "{voice}: no `{expected}` in {:?}", heard.text);
        }
    }
}

fn line_noise(n: usize, seed: &mut u32) -> impl Iterator<Item = i16> + '_ {
    (0..n).map(move |_| {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        ((*seed >> 16) as i16 % 200) - 100
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vad_finds_where_speech_starts_and_ends_inside_silence() {
    let speech = espeak().synthesize("Yes, tomorrow at two works for me.").await.expect("speaks");
    let loud = |s: &i16| s.unsigned_abs() > 600;
    let first = speech.iter().position(loud).expect("speech is audible");
    let last = speech.iter().rposition(loud).expect("speech is audible");
    let (lead, trail) = (8000 + 480, 12000); // 1.06 s before, 1.5 s after
    let mut seed = 7;
    let mut line: Vec<i16> = line_noise(lead, &mut seed).collect();
    line.extend(speech.iter().zip(line_noise(speech.len(), &mut seed)).map(|(s, n)| s.saturating_add(n)));
    line.extend(line_noise(trail, &mut seed));
    let heard = through_g711(Codec::Pcmu, &line);
    let (truth_start, truth_end) = ((lead + first) as i64, (lead + last + 1) as i64);

    let mut endpointer = EndpointerThread::spawn(2, EndpointSettings::default()).expect("vad");
    feed(&endpointer, &heard).await;
    let events = &mut endpointer.events;
    let Some(Endpoint::Started { at }) = next_event(events).await else { panic!("no start") };
    // Pauses inside the sentence (speculation points) may come first; the end follows them.
    let utterance = loop {
        match next_event(events).await {
            Some(Endpoint::Paused(_) | Endpoint::Resumed) => continue,
            Some(Endpoint::Ended(utterance)) => break utterance,
            other => panic!("no end: {other:?}"),
        }
    };
    let ms = |samples: i64| samples / 8;
    assert!(
        ms((at as i64 - truth_start).abs()) <= 100,
        "start at {} ms, speech at {} ms",
        ms(at as i64),
        ms(truth_start)
    );
    assert_eq!(utterance.start, at);
    assert!(
        ms((utterance.end as i64 - truth_end).abs()) <= 100,
        "end at {} ms, speech until {} ms",
        ms(utterance.end as i64),
        ms(truth_end)
    );
    // The utterance holds the speech, with a little before and after.
    assert!(utterance.samples.len() as i64 >= truth_end - truth_start);
    assert!(utterance.samples.len() < speech.len() + 8000);
}

/// Sends `audio` to the endpointer in 20 ms frames.
async fn feed(endpointer: &EndpointerThread, audio: &[i16]) {
    for chunk in audio.chunks_exact(FRAME) {
        let mut frame: Frame = [0; FRAME];
        frame.copy_from_slice(chunk);
        assert!(endpointer.send(frame).await, "the VAD thread is running");
    }
}

async fn next_event(events: &mut tokio::sync::mpsc::Receiver<Endpoint>) -> Option<Endpoint> {
    tokio::time::timeout(Duration::from_secs(5), events.recv()).await.expect("an event in time")
}

#[tokio::test(flavor = "current_thread")]
async fn transcription_waits_for_the_one_worker_and_never_stalls_the_runtime() {
    let stt = WhisperStt::load(&model_path(), WhisperOptions::default()).await.expect("model loads");
    let utterance = through_g711(Codec::Pcmu, &espeak().synthesize("Friday morning please.").await.expect("speaks"));
    // A 10 ms ticker on the same single-threaded runtime keeps ticking while two decodes run.
    let ticker = tokio::spawn(async {
        let (mut interval, mut last, mut worst) =
            (tokio::time::interval(Duration::from_millis(10)), Instant::now(), Duration::ZERO);
        for _ in 0..60 {
            interval.tick().await;
            worst = worst.max(last.elapsed());
            last = Instant::now();
        }
        worst
    });
    let (a, b) = tokio::join!(stt.transcribe(&utterance), stt.transcribe(&utterance));
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.text, b.text, "greedy decoding is deterministic");
    let (first, second) = if a.queued < b.queued { (a, b) } else { (b, a) };
    assert!(second.queued >= first.decode / 2, "the second waited {:?} for a {:?} decode", second.queued, first.decode);
    // A decode run on the runtime's thread would hold the ticker for a whole decode.
    let worst = ticker.await.expect("ticker");
    assert!(worst < first.decode / 2, "the runtime stalled for {worst:?} during a {:?} decode", first.decode);
}

#[test]
fn the_startup_check_says_what_is_missing_and_how_to_get_it() {
    let mut config = Config::default();
    config.speech.model_path = Some(PathBuf::from("/nonexistent/models/ggml-tiny.en.bin"));
    let Err(SpeechError::Missing(missing)) = speech::check(&config) else { panic!("the model is missing") };
    assert_eq!(missing, [Missing::Model { path: PathBuf::from("/nonexistent/models/ggml-tiny.en.bin") }]);
    let message = SpeechError::Missing(missing).to_string();
    assert!(
        message.contains("/nonexistent/models/ggml-tiny.en.bin") && message.contains("scripts/setup.sh"),
        "{message}"
    );
    let program = Missing::Program { program: "espeak-ng", package: "espeak-ng" }.to_string();
    assert!(program.contains("Debian package `espeak-ng`"), "{program}");

    config.speech.model_path = Some(model_path());
    speech::check(&config).expect("model and espeak-ng are installed");
}

/// Given hibari-tts saying an unusual surname and a plain request, when whisper transcribes them
/// through G.711, then its own token probabilities mark the surname as a word it was unsure of and
/// leave "Monday" and "name" alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_says_which_words_it_was_unsure_of() {
    let stt = WhisperStt::load(&model_path(), WhisperOptions::default()).await.expect("model loads");
    let mut sidecar = voice_sidecar("hibari");
    sidecar.args.extend(["--seed".to_string(), "0".to_string()]);
    let tts = ExternalTts::start(&sidecar).await.expect("the sidecar starts");
    let hear = async |line: &str| {
        let mut speech = tts.synthesize(line).await.expect("speaks");
        tts::trim_silence(&mut speech);
        stt.transcribe(&through_g711(Codec::Pcmu, &speech)).await.expect("transcribes")
    };
    let surname = hear("My last name is Szczepanski.").await;
    let text = words(&surname.text);
    assert!(text.starts_with(&words("My last name is")), "{:?}", surname.text);
    let last = text.last().expect("a surname");
    assert!(
        surname.unsure.iter().any(|w| &w.to_lowercase() == last),
        "{:?}: unsure {:?}",
        surname.text,
        surname.unsure
    );
    assert!(!surname.unsure.iter().any(|w| w == "name"), "{:?}", surname.unsure);
    let monday = hear("Could I come in on Monday morning?").await;
    assert!(words(&monday.text).contains(&"monday".to_string()), "{:?}", monday.text);
    assert!(!monday.unsure.iter().any(|w| w == "Monday"), "{:?}: unsure {:?}", monday.text, monday.unsure);
}

/// Sounds of a line on which nobody speaks, 8 kHz, made from a fixed seed: a loud line hiss, three
/// breaths (band-limited noise swelling and fading), and a door (a low thump, then the latch's click).
pub(crate) fn noises() -> [(&'static str, Vec<i16>); 3] {
    let mut seed = 11u32;
    let mut white = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        f32::from((seed >> 16) as u16 as i16) / 32768.0
    };
    let hiss: Vec<i16> = (0..16_000).map(|_| (white() * 1_200.0) as i16).collect();
    let mut breaths = Vec::new();
    for _ in 0..3 {
        let (mut fast, mut slow) = (0.0f32, 0.0f32);
        let n = 7_200; // 0.9 s in, out
        for i in 0..n {
            let x = white();
            fast += 0.35 * (x - fast);
            slow += 0.02 * (x - slow);
            let swell = (std::f32::consts::PI * i as f32 / n as f32).sin();
            breaths.push(((fast - slow) * swell * 9_000.0) as i16);
        }
        breaths.extend(std::iter::repeat_n(0, 4_000));
    }
    let mut door = Vec::with_capacity(8_000);
    for i in 0..8_000 {
        let t = i as f32 / 8_000.0;
        let thump = (2.0 * std::f32::consts::PI * 70.0 * t).sin() * (-t / 0.06).exp() * 14_000.0;
        let crack = if i < 160 { white() * 9_000.0 } else { 0.0 };
        let latch = if (1_800..1_880).contains(&i) { white() * 6_000.0 } else { 0.0 };
        door.push((thump + crack + latch).clamp(-32_000.0, 32_000.0) as i16);
    }
    [("line hiss", hiss), ("breathing", breaths), ("a door", door)]
}

/// Given a line hiss, breathing and a door, each through G.711 between silences, when the voice detector
/// takes some of it for speech (it does: every sound starts an utterance), then whisper finds no words
/// in those utterances: it writes nothing, or a note ("[Music]", "(click)") that is no caller's word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sounds_without_words_are_heard_as_no_words() {
    let stt = WhisperStt::load(&model_path(), WhisperOptions::default()).await.expect("model loads");
    for (name, sound) in noises() {
        let mut line = vec![0i16; 8_000];
        line.extend(through_g711(Codec::Pcmu, &sound));
        line.extend(std::iter::repeat_n(0, 16_000));
        let mut endpointer = EndpointerThread::spawn(2, EndpointSettings::default()).expect("vad");
        feed(&endpointer, &line).await;
        // Without its frame sender the thread ends after the queued frames, and then the events end.
        let (_, closed) = tokio::sync::mpsc::channel(1);
        let mut events = std::mem::replace(&mut endpointer.events, closed);
        drop(endpointer);
        let mut utterances = 0;
        while let Some(event) = events.recv().await {
            if let Endpoint::Ended(utterance) = event {
                utterances += 1;
                let heard = stt.transcribe(&utterance.samples).await.expect("transcribes");
                let words = Utterance::new(&heard.text).words;
                assert!(
                    words.is_empty(),
                    "{name}: whisper heard {:?} in {} ms",
                    heard.text,
                    utterance.samples.len() / 8
                );
            }
        }
        assert!(utterances > 0, "{name}: the detector took none of it for speech, so this proves nothing");
    }
}
