//! The speech engines of the voice pipeline, behind three traits: offline engines by default, an
//! OpenAI-compatible endpoint or a sidecar process where `speech.stt_engine` / `speech.tts_engine` say so.
//!
//! - [`Vad`]: a voice decision per 20 ms frame of 8 kHz audio; [`vad`] has the WebRTC detector and the
//!   [`vad::Endpointer`] that turns decisions into utterances;
//! - [`SpeechToText`]: an utterance of 8 kHz PCM → text; [`stt::whisper`] runs whisper.cpp (tiny.en) on a
//!   bounded pool of blocking workers, [`stt::openai`] posts the utterance to `/audio/transcriptions`;
//! - [`TextToSpeech`]: text → 8 kHz PCM; [`tts::espeak`] runs the `espeak-ng` program, [`tts::openai`]
//!   posts to `/audio/speech`, [`tts::external`] talks with a long-running sidecar over its pipes;
//! - [`resample`]: the rate changes between the telephone (8 kHz) and the engines (16 kHz, 22.05 kHz,
//!   24 kHz);
//! - [`openai`]: the HTTP exchange both OpenAI-compatible engines share.
//!
//! [`check`] tells an operator, before the first call, what the configured engines still need.

pub mod openai;
pub mod resample;
pub mod stt;
pub mod tts;
pub mod vad;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{Config, SttEngineKind, TtsEngineKind};

/// Sample rate of the telephone side, and of every PCM buffer these traits take or return; a 20 ms
/// frame, the unit a [`Vad`] decides on.
pub use crate::audio::{FRAME, RATE};

/// Why a speech engine could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// Something an engine needs is not installed; each entry says what and how to get it.
    #[error("speech engines are not ready: {}", join(.0))]
    Missing(Vec<Missing>),
    /// The model file exists but whisper.cpp cannot load it.
    #[error("cannot load the speech model {path}: {reason}")]
    ModelLoad {
        /// The model file.
        path: PathBuf,
        /// What whisper.cpp said.
        reason: String,
    },
    /// Audio given to an engine is not what it takes.
    #[error("invalid audio: {0}")]
    InvalidAudio(String),
    /// An engine failed on this input.
    #[error("{engine} failed: {message}")]
    Engine {
        /// `whisper`, `espeak-ng`, `webrtc-vad`, `openai-stt`, `openai-tts`, `external-tts`.
        engine: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// One thing a speech engine needs that this machine lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The speech-to-text model file.
    Model {
        /// Where `speech.model_path` points.
        path: PathBuf,
    },
    /// A program that must be on `PATH`.
    Program {
        /// The program's name.
        program: &'static str,
        /// The Debian package that installs it.
        package: &'static str,
    },
    /// A program a setting names that is neither a file nor on `PATH`.
    Command {
        /// The setting, e.g. `speech.external.command`.
        setting: &'static str,
        /// What it names.
        command: PathBuf,
    },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Model { path } => write!(
                f,
                "the speech-to-text model {} does not exist (create it with `scripts/setup.sh`, or \
                 `python3 scripts/whisper_model.py --data-dir DIR` for `DIR/models/ggml-tiny.en-q8_0.bin`)",
                path.display()
            ),
            Self::Program { program, package } => {
                write!(f, "`{program}` is not on PATH (install the Debian package `{package}`)")
            }
            Self::Command { setting, command } => {
                write!(f, "`{}` ({setting}) is neither a file nor a program on PATH", command.display())
            }
        }
    }
}

fn join(missing: &[Missing]) -> String {
    missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// A per-frame voice decision. Detectors keep state from frame to frame (noise estimates), so one
/// instance follows one call. Not `Send`: the WebRTC detector holds a C pointer, so a detector lives on
/// the thread that made it (see [`vad::EndpointerThread`]).
pub trait Vad {
    /// Whether this 20 ms frame ([`FRAME`] samples at 8 kHz) holds speech.
    fn is_speech(&mut self, frame: &[i16]) -> Result<bool, SpeechError>;
    /// Forgets what earlier frames taught the detector (a new call).
    fn reset(&mut self);
}

/// What a speech-to-text engine heard in one utterance, and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The words, trimmed; empty when nothing was said.
    pub text: String,
    /// Length of the utterance.
    pub audio: Duration,
    /// Time spent waiting for a free decoder.
    pub queued: Duration,
    /// Time spent decoding.
    pub decode: Duration,
    /// Words of `text` the recognizer was unsure of (as written in `text`, without the punctuation
    /// around them), in order; empty when the engine does not say (see
    /// [`stt::whisper::UNSURE_BELOW`]).
    pub unsure: Vec<String>,
}

/// Speech to text, one utterance at a time (the endpointer decides where utterances end).
#[async_trait]
pub trait SpeechToText: Send + Sync {
    /// Transcribes an utterance of 8 kHz mono PCM.
    async fn transcribe(&self, utterance: &[i16]) -> Result<Transcript, SpeechError>;
}

/// Text to speech. Engines speak whatever they are given; a caller that wants the first words out
/// early speaks a reply sentence by sentence ([`tts::sentences`]) and plays each as it arrives.
#[async_trait]
pub trait TextToSpeech: Send + Sync {
    /// Speaks `text` as 8 kHz mono PCM.
    async fn synthesize(&self, text: &str) -> Result<Vec<i16>, SpeechError>;
}

/// Checks that the configured speech engines can run here: the whisper model file exists (when
/// `speech.stt_engine` is `whisper`), `espeak-ng` is on `PATH` (when `speech.tts_engine` is `espeak`), the
/// sidecar program exists (when it is `external`). The OpenAI-compatible engines need nothing local. The
/// error lists everything missing, each with the command or package that provides it.
pub fn check(config: &Config) -> Result<(), SpeechError> {
    let mut missing = Vec::new();
    if config.speech.stt_engine == SttEngineKind::Whisper {
        let model = config.speech_model_path();
        if !model.is_file() {
            missing.push(Missing::Model { path: model });
        }
    }
    match config.speech.tts_engine {
        TtsEngineKind::Espeak | TtsEngineKind::Hibari
            if tts::espeak::find_program().is_none()
                && (config.speech.tts_engine == TtsEngineKind::Espeak || !config.hibari_python().is_file()) =>
        {
            missing.push(Missing::Program { program: tts::espeak::PROGRAM, package: tts::espeak::PACKAGE });
        }
        TtsEngineKind::External => {
            let command = config.speech.external.command.clone().unwrap_or_default();
            if tts::external::find_command(&command).is_none() {
                missing.push(Missing::Command { setting: tts::external::COMMAND_SETTING, command });
            }
        }
        TtsEngineKind::Espeak | TtsEngineKind::Hibari | TtsEngineKind::Openai => {}
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SpeechError::Missing(missing))
    }
}

/// Length of `samples` at [`RATE`].
pub fn duration_of(samples: usize) -> Duration {
    Duration::from_secs_f64(samples as f64 / f64::from(RATE))
}
