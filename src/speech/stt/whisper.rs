//! whisper.cpp (through `whisper-rs`) with OpenAI's English tiny model: offline speech to text.
//!
//! The model is loaded once per process ([`WhisperStt::load`]) and shared by every call through an
//! `Arc`. Decoding is CPU-bound for hundreds of milliseconds, so it never runs on the async runtime:
//! each utterance waits for one of `workers` permits (a semaphore), then decodes on tokio's blocking
//! pool with one of `workers` preallocated whisper states. With one worker (the default), calls take
//! turns and the runtime keeps both cores for SIP and media.
//!
//! Decoding is tuned for short telephone turns: one thread, greedy, one segment, no timestamps,
//! English, a token budget proportional to the audio. Whisper's encoder normally looks at 30 s (1500 positions of 20 ms);
//! [`AudioContext::Scaled`] gives it only the utterance plus a margin, which makes short turns several
//! times cheaper.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

use crate::speech::resample::Resampler;
use crate::speech::{duration_of, Missing, SpeechError, SpeechToText, Transcript, RATE};

/// Whisper's input rate.
const WHISPER_RATE: u32 = 16_000;
/// Encoder positions for Whisper's full 30 s window.
pub const FULL_AUDIO_CTX: u32 = 1500;
/// Samples at 16 kHz per encoder position (20 ms).
const SAMPLES_PER_POSITION: usize = 320;
/// Positions added to the utterance's own length: the model was trained on 30 s windows and
/// hallucinates or drops the last word when the context is cut right at the speech.
const AUDIO_CTX_MARGIN: u32 = 64;
/// Fewest positions a scaled context gets (10.24 s). With 256 tiny.en fell into repetition loops on
/// short turns (a 1.7 s turn looped, and its full-window retry cost 2.9 s in release); 384 stopped the
/// loop but misheard; 512 decodes 1.5–3 s turns in ~0.6 s with the full window's words (`bench/stt.sh`).
const MIN_AUDIO_CTX: u32 = 512;
/// Utterances shorter than this (16 kHz samples, 1 s) are padded with silence.
const MIN_SAMPLES: usize = WHISPER_RATE as usize;

/// Tokens one utterance of `samples` (16 kHz) may produce: 8 a second plus 16.
fn max_tokens(samples: usize) -> i32 {
    i32::try_from(samples / (WHISPER_RATE as usize / 8)).unwrap_or(i32::MAX / 2).saturating_add(16)
}

/// How much audio the encoder attends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioContext {
    /// Whisper's own 30 s window, whatever the utterance's length.
    Full,
    /// The utterance's length plus a margin (at least 512 positions).
    Scaled,
    /// A fixed number of 20 ms positions (1–1500).
    Fixed(u32),
}

impl AudioContext {
    /// Encoder positions for an utterance of `samples` at 16 kHz.
    pub fn positions(self, samples: usize) -> u32 {
        match self {
            Self::Full => FULL_AUDIO_CTX,
            Self::Fixed(n) => n.clamp(1, FULL_AUDIO_CTX),
            Self::Scaled => {
                let speech = u32::try_from(samples.div_ceil(SAMPLES_PER_POSITION)).unwrap_or(FULL_AUDIO_CTX);
                (speech + AUDIO_CTX_MARGIN).clamp(MIN_AUDIO_CTX, FULL_AUDIO_CTX)
            }
        }
    }
}

/// How [`WhisperStt`] decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperOptions {
    /// Utterances decoded at once (each on its own blocking thread, with its own whisper state).
    pub workers: usize,
    /// CPU threads whisper.cpp uses for one utterance.
    pub threads: u16,
    /// Encoder window.
    pub audio_ctx: AudioContext,
}

impl Default for WhisperOptions {
    fn default() -> Self {
        Self { workers: 1, threads: 1, audio_ctx: AudioContext::Scaled }
    }
}

/// The whisper.cpp engine; cheap to clone (one model behind an `Arc`).
#[derive(Clone)]
pub struct WhisperStt {
    shared: Arc<Shared>,
}

struct Shared {
    context: WhisperContext,
    /// One state per worker; a worker takes one while it decodes.
    states: Mutex<Vec<WhisperState>>,
    permits: Arc<Semaphore>,
    options: WhisperOptions,
}

impl std::fmt::Debug for WhisperStt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperStt").field("options", &self.shared.options).finish_non_exhaustive()
    }
}

impl WhisperStt {
    /// Loads the ggml model at `path` (on the blocking pool: it reads ~78 MB) and prepares one whisper
    /// state per worker.
    pub async fn load(path: &Path, options: WhisperOptions) -> Result<Self, SpeechError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::load_blocking(&path, options))
            .await
            .map_err(|e| SpeechError::Engine { engine: "whisper", message: format!("model loading stopped: {e}") })?
    }

    fn load_blocking(path: &Path, options: WhisperOptions) -> Result<Self, SpeechError> {
        if !path.is_file() {
            return Err(SpeechError::Missing(vec![Missing::Model { path: path.to_path_buf() }]));
        }
        if options.workers == 0 || options.threads == 0 {
            return Err(SpeechError::Engine { engine: "whisper", message: "workers and threads must be ≥ 1".into() });
        }
        // whisper.cpp and ggml log through tracing (target `whisper_rs`) instead of stderr.
        whisper_rs::install_logging_hooks();
        let load_error = |reason: String| SpeechError::ModelLoad { path: PathBuf::from(path), reason };
        let mut parameters = WhisperContextParameters::default();
        parameters.use_gpu(false);
        let context = WhisperContext::new_with_params(path, parameters).map_err(|e| load_error(format!("{e:?}")))?;
        if context.is_multilingual() {
            return Err(load_error("expected an English-only (.en) model".into()));
        }
        let states = (0..options.workers)
            .map(|_| context.create_state().map_err(|e| load_error(format!("no decoder state: {e:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let permits = Arc::new(Semaphore::new(options.workers));
        Ok(Self { shared: Arc::new(Shared { context, states: Mutex::new(states), permits, options }) })
    }

    /// The options the engine was loaded with.
    pub fn options(&self) -> WhisperOptions {
        self.shared.options
    }

    /// Transcribes with another encoder window (benchmarks compare them on the same loaded model).
    pub async fn transcribe_with(&self, utterance: &[i16], audio_ctx: AudioContext) -> Result<Transcript, SpeechError> {
        if utterance.is_empty() {
            return Ok(Transcript {
                text: String::new(),
                audio: Duration::ZERO,
                queued: Duration::ZERO,
                decode: Duration::ZERO,
            });
        }
        let asked = Instant::now();
        let permit = Arc::clone(&self.shared.permits)
            .acquire_owned()
            .await
            .map_err(|_| SpeechError::Engine { engine: "whisper", message: "the decoder pool is closed".into() })?;
        let queued = asked.elapsed();
        let shared = Arc::clone(&self.shared);
        let audio = duration_of(utterance.len());
        let utterance = utterance.to_vec();
        let (text, decode) = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            shared.decode(&utterance, audio_ctx)
        })
        .await
        .map_err(|e| SpeechError::Engine { engine: "whisper", message: format!("decoder stopped: {e}") })??;
        Ok(Transcript { text, audio, queued, decode })
    }
}

impl Shared {
    /// Runs on a blocking thread, holding a permit.
    fn decode(&self, utterance: &[i16], audio_ctx: AudioContext) -> Result<(String, Duration), SpeechError> {
        let started = Instant::now();
        let mut pcm = Vec::with_capacity(utterance.len() * 2 + MIN_SAMPLES);
        let mut resampler = Resampler::new(RATE, WHISPER_RATE);
        resampler.process(utterance, &mut pcm);
        resampler.flush(&mut pcm);
        let audio: Vec<f32> = pcm
            .iter()
            .map(|s| f32::from(*s) / 32768.0)
            .chain(std::iter::repeat(0.0))
            .take(pcm.len().max(MIN_SAMPLES))
            .collect();
        let positions = audio_ctx.positions(audio.len());

        let budget = max_tokens(audio.len());
        let params = |positions: u32| {
            let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
            params.set_n_threads(i32::from(self.options.threads));
            params.set_language(Some("en"));
            params.set_translate(false);
            params.set_no_context(true);
            params.set_single_segment(true);
            params.set_no_timestamps(true);
            // Greedy at temperature 0 without whisper.cpp's fallback to warmer re-decodes: on a short
            // turn that loops, each retry costs a full decode and the retries loop too.
            params.set_temperature(0.0);
            params.set_temperature_inc(0.0);
            // People say at most ~4 tokens a second: more is a repetition loop; the cap bounds its cost.
            params.set_max_tokens(budget);
            params.set_suppress_blank(true);
            params.set_audio_ctx(positions as i32);
            params.set_print_special(false);
            params.set_print_progress(false);
            params.set_print_realtime(false);
            params.set_print_timestamps(false);
            params
        };

        let engine_error = |what: &str, e: whisper_rs::WhisperError| SpeechError::Engine {
            engine: "whisper",
            message: format!("{what}: {e:?}"),
        };
        let taken = self.states.lock().map(|mut states| states.pop()).unwrap_or(None);
        let mut state = match taken {
            Some(state) => state,
            // A worker that panicked took its state with it.
            None => self.context.create_state().map_err(|e| engine_error("no decoder state", e))?,
        };
        let mut run = |positions: u32| {
            state.full(params(positions), &audio).map_err(|e| engine_error("decoding", e))?;
            let (mut text, mut tokens) = (String::new(), 0);
            for segment in state.as_iter() {
                tokens += segment.n_tokens();
                if let Ok(words) = segment.to_str_lossy() {
                    text.push_str(&words);
                }
            }
            Ok::<_, SpeechError>((text.trim().to_string(), tokens))
        };
        // A cut window occasionally sends tiny.en into a loop (it runs into the token budget); the full
        // 30 s window, which the model was trained on, then decodes the turn once more.
        let result = match run(positions) {
            Ok((_, tokens)) if tokens >= budget && positions < FULL_AUDIO_CTX => {
                tracing::debug!(positions, tokens, "whisper looped with a scaled window; decoding with the full one");
                run(FULL_AUDIO_CTX).map(|(text, _)| text)
            }
            other => other.map(|(text, _)| text),
        };
        if let Ok(mut states) = self.states.lock() {
            states.push(state);
        }
        Ok((result?, started.elapsed()))
    }
}

#[async_trait]
impl SpeechToText for WhisperStt {
    async fn transcribe(&self, utterance: &[i16]) -> Result<Transcript, SpeechError> {
        self.transcribe_with(utterance, self.shared.options.audio_ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_audio_context_follows_the_utterance() {
        assert_eq!(AudioContext::Scaled.positions(16_000), MIN_AUDIO_CTX);
        assert_eq!(AudioContext::Scaled.positions(4 * 16_000), MIN_AUDIO_CTX);
        assert_eq!(AudioContext::Scaled.positions(20 * 16_000), 1000 + AUDIO_CTX_MARGIN);
        assert_eq!(AudioContext::Scaled.positions(60 * 16_000), FULL_AUDIO_CTX);
        assert_eq!(AudioContext::Full.positions(16_000), 1500);
        assert_eq!(AudioContext::Fixed(0).positions(16_000), 1);
    }

    #[tokio::test]
    async fn a_missing_model_names_its_path() {
        let err = WhisperStt::load(Path::new("/nonexistent/ggml.bin"), WhisperOptions::default())
            .await
            .expect_err("no model");
        assert!(err.to_string().contains("/nonexistent/ggml.bin"), "{err}");
        assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
    }
}
