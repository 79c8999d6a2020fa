//! Text-to-speech engines behind [`super::TextToSpeech`], and sentence splitting for speaking a reply
//! as it is ready.
//!
//! - [`espeak`]: the `espeak-ng` program (run as a separate process: its library is GPL-3.0);
//! - [`openai`]: an OpenAI-compatible `POST /audio/speech` endpoint (WAV or 24 kHz PCM);
//! - [`external`]: a long-running sidecar process (piper, hibari-tts, or `scripts/tts_sidecar.py`)
//!   speaking a line protocol on its standard input and output;
//! - [`voices`]: the voices agents may have of their own, and the engines calls speak with.
//!
//! Engines speak at their own rate; [`to_telephone`] brings their audio to 8 kHz off the async runtime,
//! and [`trim_silence`] cuts the silence engines pad their sentences with (neural voices add a third of
//! a second before the first word, which the caller would wait through on every turn).

pub mod espeak;
pub mod external;
pub mod hibari;
pub mod openai;
pub mod voices;

use crate::speech::resample::Resampler;
use crate::speech::RATE;

/// Lowest sample rate an engine may answer with.
pub const MIN_ENGINE_RATE: u32 = 8_000;
/// Highest sample rate an engine may answer with (the resampler's filter grows with the rate).
pub const MAX_ENGINE_RATE: u32 = 192_000;

/// `samples` at `rate` converted to 8 kHz on a blocking thread: with a clone of `prebuilt` when it
/// converts from `rate` (`prebuilt_rate`), else with a converter built for `rate`. Rates outside
/// [`MIN_ENGINE_RATE`]..=[`MAX_ENGINE_RATE`] are refused, since a network peer chooses them.
pub(crate) async fn to_telephone(
    samples: Vec<i16>,
    rate: u32,
    prebuilt: &Resampler,
    prebuilt_rate: u32,
) -> Result<Vec<i16>, String> {
    if !(MIN_ENGINE_RATE..=MAX_ENGINE_RATE).contains(&rate) {
        return Err(format!("unsupported sample rate {rate} Hz (must be {MIN_ENGINE_RATE} to {MAX_ENGINE_RATE})"));
    }
    if rate == RATE || samples.is_empty() {
        return Ok(samples);
    }
    let prebuilt = (rate == prebuilt_rate).then(|| prebuilt.clone());
    tokio::task::spawn_blocking(move || {
        let mut resampler = prebuilt.unwrap_or_else(|| Resampler::new(rate, RATE));
        resampler.convert(&samples)
    })
    .await
    .map_err(|e| format!("resampling stopped: {e}"))
}

/// Silence kept before a sentence's first sound (a soft onset, not a click).
pub const LEAD_KEPT_MS: usize = 20;
/// Silence kept after a sentence's last sound: the pause before the next sentence of a reply.
pub const TRAIL_KEPT_MS: usize = 200;

/// Cuts 8 kHz `samples` to their sound with [`LEAD_KEPT_MS`] of silence before it and [`TRAIL_KEPT_MS`]
/// after. Sound is a 10 ms window whose mean magnitude is at least 1/100 (-40 dB) of the loudest
/// window's, and at least 16; audio with no sound is left as it is.
pub fn trim_silence(samples: &mut Vec<i16>) {
    const WINDOW: usize = RATE as usize / 100;
    let level = |w: &[i16]| w.iter().map(|&s| i64::from(s).unsigned_abs()).sum::<u64>() / w.len() as u64;
    let loudest = samples.chunks(WINDOW).map(level).max().unwrap_or(0);
    let floor = (loudest / 100).max(16);
    let mut sound = samples.chunks(WINDOW).enumerate().filter(|(_, w)| level(w) >= floor).map(|(i, _)| i);
    let Some(first) = sound.next() else { return };
    let last = sound.next_back().unwrap_or(first);
    let per_ms = RATE as usize / 1000;
    let start = (first * WINDOW).saturating_sub(LEAD_KEPT_MS * per_ms);
    let end = ((last + 1) * WINDOW + TRAIL_KEPT_MS * per_ms).min(samples.len());
    samples.truncate(end);
    samples.drain(..start);
}

/// The sentences of `text`, each with its closing punctuation: a reply can be spoken sentence by
/// sentence, so the caller hears the first one while the rest is synthesized. A sentence ends at `.`,
/// `!` or `?` followed by white space or the end (so `2.30` and `e.g.x` stay whole).
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            return None;
        }
        let end = trimmed
            .char_indices()
            .find(|&(i, c)| {
                matches!(c, '.' | '!' | '?')
                    && trimmed[i + c.len_utf8()..].chars().next().is_none_or(char::is_whitespace)
            })
            .map_or(trimmed.len(), |(i, c)| i + c.len_utf8());
        let (sentence, after) = trimmed.split_at(end);
        rest = after;
        let sentence = sentence.trim();
        if !sentence.is_empty() {
            return Some(sentence);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{sentences, trim_silence, LEAD_KEPT_MS, TRAIL_KEPT_MS};

    const PER_MS: usize = 8;

    /// `lead` ms of digital silence, `sound` ms of a 400 Hz tone, `trail` ms of silence.
    fn padded(lead: usize, sound: usize, trail: usize) -> Vec<i16> {
        let tone =
            (0..sound * PER_MS).map(|i| ((i as f64 * 400.0 * std::f64::consts::TAU / 8000.0).sin() * 8000.0) as i16);
        std::iter::repeat_n(0, lead * PER_MS).chain(tone).chain(std::iter::repeat_n(0, trail * PER_MS)).collect()
    }

    #[test]
    fn padding_around_a_sentence_is_cut_to_what_is_kept() {
        let mut audio = padded(320, 500, 450);
        trim_silence(&mut audio);
        assert_eq!(audio.len(), (LEAD_KEPT_MS + 500 + TRAIL_KEPT_MS) * PER_MS);
        assert!(audio[..LEAD_KEPT_MS * PER_MS].iter().all(|&s| s == 0));
        assert_ne!(audio[LEAD_KEPT_MS * PER_MS + 1], 0, "the sound starts after the kept lead");

        // Short padding stays as it is; silence inside the sentence is not touched.
        let mut short = padded(10, 200, 50);
        short.extend(padded(300, 200, 0));
        let before = short.clone();
        trim_silence(&mut short);
        assert_eq!(short, before);
    }

    #[test]
    fn quiet_sound_near_the_loud_part_is_kept_and_silence_alone_is_left_alone() {
        let mut audio = padded(300, 300, 0);
        // A soft ending (a fricative) 30 dB below the vowel: still the sentence.
        audio.extend((0..80 * PER_MS).map(|i| if i % 2 == 0 { 250 } else { -250 }));
        audio.extend(std::iter::repeat_n(0, 400 * PER_MS));
        trim_silence(&mut audio);
        assert_eq!(audio.len(), (LEAD_KEPT_MS + 300 + 80 + TRAIL_KEPT_MS) * PER_MS);

        let mut silence = vec![0i16; 800];
        trim_silence(&mut silence);
        assert_eq!(silence.len(), 800);
        let mut empty = Vec::new();
        trim_silence(&mut empty);
        assert!(empty.is_empty());
    }

    #[test]
    fn replies_split_into_sentences() {
        let reply = "I have 2.30 pm free. Shall I book it?  Great!  Bye";
        assert_eq!(sentences(reply).collect::<Vec<_>>(), ["I have 2.30 pm free.", "Shall I book it?", "Great!", "Bye"]);
        assert_eq!(sentences("  ").count(), 0);
        assert_eq!(sentences("Wait... what?").collect::<Vec<_>>(), ["Wait...", "what?"]);
    }
}
