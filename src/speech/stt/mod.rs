//! Speech-to-text engines behind [`super::SpeechToText`].
//!
//! - [`whisper`]: whisper.cpp with OpenAI's English tiny model, offline, on a bounded worker pool.

#[cfg(feature = "whisper")]
pub mod whisper;
