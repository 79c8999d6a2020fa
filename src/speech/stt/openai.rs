//! Speech to text through an OpenAI-compatible transcription endpoint (OpenAI, or a local server
//! such as faster-whisper-server, LocalAI or vLLM speaking the same API).
//!
//! Each utterance is one `POST {speech.openai.base_url}/audio/transcriptions`, `multipart/form-data` with
//! the fields `file` (the utterance as a 16-bit PCM WAV at 8 kHz, `utterance.wav`, `audio/wav`), `model`
//! (`speech.openai.stt_model`), `response_format=json` and `language=en`, and
//! `Authorization: Bearer <speech.openai.api_key>` when a key is configured. The answer is
//! `{"text": "..."}`. Failures (an error status, no answer within `speech.openai.timeout_ms`, a body
//! that is not that JSON) are [`SpeechError::Engine`] with `engine = "openai-stt"`, the status and a
//! short excerpt of the body, never the key.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use crate::audio::wav;
use crate::config::OpenAiSpeechConfig;
use crate::speech::openai::{excerpt, Endpoint};
use crate::speech::{duration_of, SpeechError, SpeechToText, Transcript, RATE};

/// The engine's name in errors.
pub const ENGINE: &str = "openai-stt";

/// The answer of `response_format=json`.
#[derive(Debug, Deserialize)]
struct Transcription {
    text: String,
}

/// An OpenAI-compatible transcription endpoint with one model.
#[derive(Debug, Clone)]
pub struct OpenAiStt {
    endpoint: Endpoint,
    model: String,
}

impl OpenAiStt {
    /// The engine for `speech.openai.*`.
    pub fn new(config: &OpenAiSpeechConfig) -> Self {
        Self { endpoint: Endpoint::new(config), model: config.stt_model.clone() }
    }
}

fn failed(message: String) -> SpeechError {
    SpeechError::Engine { engine: ENGINE, message }
}

#[async_trait]
impl SpeechToText for OpenAiStt {
    async fn transcribe(&self, utterance: &[i16]) -> Result<Transcript, SpeechError> {
        let audio = duration_of(utterance.len());
        if utterance.is_empty() {
            return Ok(Transcript {
                text: String::new(),
                audio,
                queued: Duration::ZERO,
                decode: Duration::ZERO,
                unsure: Vec::new(),
            });
        }
        let started = Instant::now();
        let file = Part::bytes(wav::encode(RATE, utterance))
            .file_name("utterance.wav")
            .mime_str("audio/wav")
            .map_err(|e| failed(e.to_string()))?;
        let form = Form::new()
            .part("file", file)
            .text("model", self.model.clone())
            .text("response_format", "json")
            .text("language", "en");
        let body =
            self.endpoint.send(self.endpoint.post("audio/transcriptions").multipart(form)).await.map_err(failed)?;
        let transcription: Transcription = serde_json::from_slice(&body).map_err(|e| {
            failed(self.endpoint.redact(format!("the answer is not {{\"text\": ...}} ({e}): {}", excerpt(&body))))
        })?;
        Ok(Transcript {
            text: transcription.text.trim().to_string(),
            audio,
            queued: Duration::ZERO,
            decode: started.elapsed(),
            // The JSON answer carries no token probabilities.
            unsure: Vec::new(),
        })
    }
}
