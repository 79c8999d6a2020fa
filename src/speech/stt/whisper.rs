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
//!
//! Whisper's own confidence comes with the words: after a decode the segment's tokens (special ones
//! left out) are joined into words (a token starting with a space begins one) and each word gets the
//! lowest probability of its tokens. The words below [`UNSURE_BELOW`] are [`Transcript::unsure`]; the
//! dialog asks the caller to spell a name whisper was unsure of. Reading the probabilities costs
//! nothing beyond the decode.
//!
//! The encoder's matrix products are most of a decode. `.cargo/config.toml` builds whisper.cpp with
//! llamafile's tiled kernels (`GGML_LLAMAFILE`), which take about 60 % of the time of ggml's default
//! ones here; [`system_info`] says what the build uses, and is logged when the model loads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
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
/// Measured again with Q8_0 on the spoken corpus and the agent's sentences (`docs/speech.md`): 448
/// saves a sixth of a short decode but repeated a phrase of an agent sentence, 384 and less repeat more.
const MIN_AUDIO_CTX: u32 = 512;
/// Utterances shorter than this (16 kHz samples, 1 s) are padded with silence.
const MIN_SAMPLES: usize = WHISPER_RATE as usize;

/// A word whose least likely token whisper gave less than this is one it was unsure of. Measured with
/// tiny.en (greedy, through μ-law) on hibari-tts and espeak-ng saying names and times (`docs/speech.md`):
/// unusual surnames came out at 0.04–0.34 whether whisper spelled them right or not (Kowalczyk 0.09,
/// Szczepanski 0.17, Raghunathan 0.10, Okafor 0.25), words it misheard mostly below 0.35, while words it
/// heard right stayed above 0.45 (Jane 0.48, Garcia 0.58, Monday 0.95–0.99, Hopper 0.87). 0.4 sits
/// in that gap; a common name below it is still not asked for (the dialog checks its lexicon).
pub const UNSURE_BELOW: f32 = 0.4;

/// What whisper.cpp was built to use on this CPU (`CPU : SSE3 = 1 | … | AVX512 = 1 | LLAMAFILE = 1 |`),
/// read once and logged: whisper.cpp writes it into a static buffer, which concurrent calls would race on.
pub fn system_info() -> &'static str {
    static INFO: OnceLock<String> = OnceLock::new();
    INFO.get_or_init(|| {
        let info = whisper_rs::print_system_info().trim().to_string();
        tracing::info!(system = %info, "whisper.cpp build");
        info
    })
}

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
        system_info();
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
                unsure: Vec::new(),
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
        let (Decoded { text, words }, decode) = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            shared.decode(&utterance, audio_ctx)
        })
        .await
        .map_err(|e| SpeechError::Engine { engine: "whisper", message: format!("decoder stopped: {e}") })??;
        let unsure = unsure(&words, UNSURE_BELOW);
        Ok(Transcript { text, audio, queued, decode, unsure })
    }
}

/// One decode: the text and its words with whisper's confidence in each.
struct Decoded {
    text: String,
    words: Vec<HeardWord>,
}

/// A word as whisper wrote it (with any punctuation its tokens carry) and the lowest probability of its
/// tokens (punctuation-only tokens left out: a doubtful full stop does not make a word doubtful).
#[derive(Debug, Clone, PartialEq)]
struct HeardWord {
    text: String,
    probability: f32,
}

/// Joins tokens (their text and probability, special tokens already left out) into words: a token
/// starting with a space begins a word, any other continues the one before.
fn join_words<'a>(tokens: impl IntoIterator<Item = (&'a [u8], f32)>) -> Vec<HeardWord> {
    let mut words: Vec<(Vec<u8>, f32)> = Vec::new();
    for (bytes, probability) in tokens {
        let starts = bytes.first() == Some(&b' ') || words.is_empty();
        if starts {
            words.push((Vec::new(), 1.0));
        }
        let Some((word, lowest)) = words.last_mut() else { continue };
        word.extend_from_slice(bytes);
        // Pieces of one UTF-8 character carry no letters of their own but belong to a word: they count.
        let punctuation = bytes.iter().all(|b| b.is_ascii() && !b.is_ascii_alphanumeric());
        if !punctuation {
            *lowest = lowest.min(probability);
        }
    }
    words
        .into_iter()
        .map(|(bytes, probability)| HeardWord { text: String::from_utf8_lossy(&bytes).trim().to_string(), probability })
        .filter(|w| !w.text.is_empty())
        .collect()
}

/// The words below `threshold`, without the punctuation around them, in order.
fn unsure(words: &[HeardWord], threshold: f32) -> Vec<String> {
    words
        .iter()
        .filter(|w| w.probability < threshold)
        .map(|w| w.text.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

impl Shared {
    /// Runs on a blocking thread, holding a permit.
    fn decode(&self, utterance: &[i16], audio_ctx: AudioContext) -> Result<(Decoded, Duration), SpeechError> {
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
        let eot = self.context.token_eot();
        let mut run = |positions: u32| {
            state.full(params(positions), &audio).map_err(|e| engine_error("decoding", e))?;
            let (mut text, mut tokens, mut pieces) = (String::new(), 0, Vec::new());
            for segment in state.as_iter() {
                tokens += segment.n_tokens();
                if let Ok(words) = segment.to_str_lossy() {
                    text.push_str(&words);
                }
                for i in 0..segment.n_tokens() {
                    let Some(token) = segment.get_token(i) else { continue };
                    // [_BEG_], [_TT_…], [_SOT_] and the like: ids from the end-of-text token on.
                    if token.token_id() >= eot {
                        continue;
                    }
                    if let Ok(bytes) = token.to_bytes() {
                        pieces.push((bytes.to_vec(), token.token_probability()));
                    }
                }
            }
            let words = join_words(pieces.iter().map(|(b, p)| (b.as_slice(), *p)));
            Ok::<_, SpeechError>((Decoded { text: text.trim().to_string(), words }, tokens))
        };
        // A cut window occasionally sends tiny.en into a loop (it runs into the token budget); the full
        // 30 s window, which the model was trained on, then decodes the turn once more.
        let result = match run(positions) {
            Ok((_, tokens)) if tokens >= budget && positions < FULL_AUDIO_CTX => {
                tracing::debug!(positions, tokens, "whisper looped with a scaled window; decoding with the full one");
                run(FULL_AUDIO_CTX).map(|(decoded, _)| decoded)
            }
            other => other.map(|(decoded, _)| decoded),
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

    #[test]
    fn whisper_cpp_is_built_with_llamafile_kernels() {
        // whisper-rs-sys does not rebuild when a GGML_* variable changes: a target dir that built it
        // before `.cargo/config.toml` set GGML_LLAMAFILE needs `cargo clean -p whisper-rs-sys`.
        assert!(system_info().contains("LLAMAFILE = 1"), "whisper.cpp without llamafile's kernels: {}", system_info());
    }

    fn word(text: &str, probability: f32) -> HeardWord {
        HeardWord { text: text.into(), probability }
    }

    #[test]
    fn tokens_join_into_words_with_their_least_likely_token() {
        let tokens: [(&[u8], f32); 7] = [
            (b" My", 0.9),
            (b" name", 0.99),
            (b" is", 0.98),
            (b" Cow", 0.7),
            (b"elk", 0.2),
            (b"syk", 0.5),
            (b".", 0.01),
        ];
        let words = join_words(tokens);
        assert_eq!(words, vec![word("My", 0.9), word("name", 0.99), word("is", 0.98), word("Cowelksyk.", 0.2)]);
        assert_eq!(unsure(&words, UNSURE_BELOW), vec!["Cowelksyk".to_string()]);
        // The first token of a turn may lack its space; a doubtful comma does not make a word doubtful.
        let words = join_words([(b"Monday".as_slice(), 0.95), (b",", 0.1), (b" 10", 0.3)]);
        assert_eq!(words, vec![word("Monday,", 0.95), word("10", 0.3)]);
        assert_eq!(unsure(&words, UNSURE_BELOW), vec!["10".to_string()]);
        // Pieces of one UTF-8 character are joined before the text is read.
        let words = join_words([(b" Jos".as_slice(), 0.8), (&[0xC3], 0.3), (&[0xA9], 0.9)]);
        assert_eq!(words, vec![word("José", 0.3)]);
        assert!(join_words(std::iter::empty()).is_empty());
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
