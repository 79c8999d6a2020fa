//! Text to speech through an OpenAI-compatible speech endpoint (OpenAI, or a local server such as
//! LocalAI, Kokoro-FastAPI or openedai-speech speaking the same API).
//!
//! Each sentence is one `POST {speech.openai.base_url}/audio/speech` with the JSON body
//! `{"model", "input", "voice", "response_format"}` (`speech.openai.tts_model`, the text,
//! `speech.openai.tts_voice`, `speech.openai.tts_format`) and `Authorization: Bearer <key>` when a key is
//! configured. `wav` answers a 16-bit PCM WAV at any rate (OpenAI: 24 kHz, written as a stream, so the
//! data length in its header is not the real one, which [`wav::parse`] allows); `pcm` answers headerless
//! 16-bit little-endian mono samples at 24 kHz, as OpenAI documents. Either is resampled to 8 kHz off the
//! async runtime. Failures are [`SpeechError::Engine`] with `engine = "openai-tts"`, the status and a
//! short excerpt of the body, never the key.

use async_trait::async_trait;
use serde_json::json;

use crate::audio::wav;
use crate::config::{OpenAiSpeechConfig, TtsAudioFormat};
use crate::speech::openai::{excerpt, Endpoint};
use crate::speech::resample::Resampler;
use crate::speech::tts::to_telephone;
use crate::speech::{SpeechError, TextToSpeech, RATE};

/// The engine's name in errors.
pub const ENGINE: &str = "openai-tts";

/// The rate of OpenAI's `pcm` (and of its `wav`).
pub const PCM_RATE: u32 = 24_000;

/// An OpenAI-compatible speech endpoint with one model, voice and audio format.
#[derive(Debug, Clone)]
pub struct OpenAiTts {
    endpoint: Endpoint,
    model: String,
    voice: String,
    format: TtsAudioFormat,
    /// 24 → 8 kHz, built once and cloned per sentence.
    resampler: Resampler,
}

impl OpenAiTts {
    /// The engine for `speech.openai.*`.
    pub fn new(config: &OpenAiSpeechConfig) -> Self {
        Self {
            endpoint: Endpoint::new(config),
            model: config.tts_model.clone(),
            voice: config.tts_voice.clone(),
            format: config.tts_format,
            resampler: Resampler::new(PCM_RATE, RATE),
        }
    }

    /// The samples and their rate in an answer body.
    fn decode(&self, body: &[u8]) -> Result<(Vec<i16>, u32), String> {
        match self.format {
            TtsAudioFormat::Wav => {
                let pcm = wav::parse(body).map_err(|e| {
                    self.endpoint.redact(format!("the answer is not a 16-bit PCM WAV ({e}): {}", excerpt(body)))
                })?;
                Ok((pcm.samples, pcm.rate))
            }
            TtsAudioFormat::Pcm => {
                if body.len() % 2 != 0 {
                    return Err(format!("the 16-bit PCM answer has an odd length ({} bytes)", body.len()));
                }
                Ok((body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(), PCM_RATE))
            }
        }
    }
}

fn failed(message: String) -> SpeechError {
    SpeechError::Engine { engine: ENGINE, message }
}

#[async_trait]
impl TextToSpeech for OpenAiTts {
    async fn synthesize(&self, text: &str) -> Result<Vec<i16>, SpeechError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let body = json!({
            "model": self.model,
            "input": text,
            "voice": self.voice,
            "response_format": self.format.as_str(),
        });
        let answer = self.endpoint.send(self.endpoint.post("audio/speech").json(&body)).await.map_err(failed)?;
        let (samples, rate) = self.decode(&answer).map_err(failed)?;
        to_telephone(samples, rate, &self.resampler, PCM_RATE).await.map_err(failed)
    }
}
