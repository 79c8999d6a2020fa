//! Text-to-speech engines behind [`super::TextToSpeech`], and sentence splitting for speaking a reply
//! as it is ready.
//!
//! - [`espeak`]: the `espeak-ng` program (run as a separate process: its library is GPL-3.0);
//! - [`openai`]: an OpenAI-compatible `POST /audio/speech` endpoint (WAV or 24 kHz PCM);
//! - [`external`]: a long-running sidecar process (piper, hibari-tts, or `scripts/tts_sidecar.py`)
//!   speaking a line protocol on its standard input and output.
//!
//! Engines speak at their own rate; [`to_telephone`] brings their audio to 8 kHz off the async runtime.

pub mod espeak;
pub mod external;
pub mod openai;

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
    use super::sentences;

    #[test]
    fn replies_split_into_sentences() {
        let reply = "I have 2.30 pm free. Shall I book it?  Great!  Bye";
        assert_eq!(sentences(reply).collect::<Vec<_>>(), ["I have 2.30 pm free.", "Shall I book it?", "Great!", "Bye"]);
        assert_eq!(sentences("  ").count(), 0);
        assert_eq!(sentences("Wait... what?").collect::<Vec<_>>(), ["Wait...", "what?"]);
    }
}
