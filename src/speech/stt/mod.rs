//! Speech-to-text engines behind [`super::SpeechToText`].
//!
//! - [`whisper`]: whisper.cpp with OpenAI's English tiny model, offline, on a bounded worker pool
//!   (feature `whisper`);
//! - [`openai`]: an OpenAI-compatible `POST /audio/transcriptions` endpoint, one request per utterance.

pub mod openai;
#[cfg(feature = "whisper")]
pub mod whisper;
