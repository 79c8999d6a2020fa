//! A local OpenAI speech double on 127.0.0.1 port 0: `POST /v1/audio/transcriptions` (multipart) and
//! `POST /v1/audio/speech` (JSON).
//!
//! Each endpoint answers from its own script: step *n* answers request *n* to that endpoint, with
//! JSON, audio bytes, an error status (whose body may echo the bearer key, as a careless server would),
//! a body that is not what was asked for, or no answer at all (for timeouts); a request past the end of
//! the script gets a 500. Every request is recorded: the `Authorization` header, and for transcriptions
//! every multipart field (the `file` part with its file name, content type and bytes, parsed by a strict
//! WAV reader of the double's own), for speech the content type and the JSON body.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// What the double answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(Value),
    /// 200 with these bytes and this content type.
    Audio(&'static str, Vec<u8>),
    /// This status with an OpenAI-style error body carrying this message.
    Status(u16, String),
    /// 200 whose body is not what the endpoint promises.
    Malformed,
    /// Never answers (until the client gives up).
    Hang,
}

impl Reply {
    /// A transcription: `{"text": text}`.
    pub fn text(text: &str) -> Self {
        Self::Json(json!({ "text": text }))
    }

    /// A WAV as OpenAI streams it: the RIFF and data lengths are `0xFFFFFFFF` because the header is
    /// written before the audio's length is known.
    pub fn streamed_wav(rate: u32, samples: &[i16]) -> Self {
        let mut bytes = Vec::with_capacity(44 + samples.len() * 2);
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&rate.to_le_bytes());
        bytes.extend_from_slice(&(rate * 2).to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&16u16.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
        Self::Audio("audio/wav", bytes)
    }

    /// Headerless 16-bit little-endian PCM.
    pub fn pcm(samples: &[i16]) -> Self {
        Self::Audio("audio/pcm", samples.iter().flat_map(|s| s.to_le_bytes()).collect())
    }
}

/// The `file` part of a transcription request.
#[derive(Debug, Clone)]
pub struct FilePart {
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// A WAV file read strictly: RIFF/WAVE, a 16-byte PCM `fmt ` chunk, and a `data` chunk whose length is
/// exactly what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictWav {
    pub rate: u32,
    pub channels: u16,
    pub bits: u16,
    pub samples: Vec<i16>,
}

impl FilePart {
    /// The file as a strict WAV, or what is wrong with it.
    pub fn wav(&self) -> Result<StrictWav, String> {
        let b = &self.bytes;
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        if b.len() < 44 || &b[..4] != b"RIFF" || &b[8..16] != b"WAVEfmt " {
            return Err("no RIFF/WAVE header with a leading fmt chunk".into());
        }
        if u32_at(4) as usize != b.len() - 8 {
            return Err(format!("RIFF length {} but {} bytes follow it", u32_at(4), b.len() - 8));
        }
        if u32_at(16) != 16 || u16_at(20) != 1 {
            return Err("fmt is not 16-byte PCM".into());
        }
        let (channels, rate, byte_rate, align, bits) = (u16_at(22), u32_at(24), u32_at(28), u16_at(32), u16_at(34));
        if byte_rate != rate * u32::from(align) || align != channels * bits / 8 {
            return Err("inconsistent byte rate or block align".into());
        }
        if &b[36..40] != b"data" || u32_at(40) as usize != b.len() - 44 {
            return Err("data chunk length does not match the file".into());
        }
        let samples = b[44..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
        Ok(StrictWav { rate, channels, bits, samples })
    }
}

/// One transcription request as the double saw it.
#[derive(Debug, Clone)]
pub struct Transcription {
    pub authorization: Option<String>,
    /// The text fields (`model`, `response_format`, `language`, ...).
    pub fields: BTreeMap<String, String>,
    pub file: Option<FilePart>,
}

/// One speech request as the double saw it.
#[derive(Debug, Clone)]
pub struct Speech {
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    transcription_script: Vec<Reply>,
    speech_script: Vec<Reply>,
    transcriptions: Mutex<Vec<Transcription>>,
    speeches: Mutex<Vec<Speech>>,
}

/// The running double; stops when dropped.
pub struct OpenAiSpeechDouble {
    /// `http://127.0.0.1:port/v1`, what `speech.openai.base_url` takes.
    pub base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for OpenAiSpeechDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl OpenAiSpeechDouble {
    /// A double answering transcriptions from `transcriptions` and speech from `speech`, in order.
    pub async fn start(transcriptions: Vec<Reply>, speech: Vec<Reply>) -> Self {
        let shared =
            Arc::new(Shared { transcription_script: transcriptions, speech_script: speech, ..Shared::default() });
        let app = Router::new()
            .route("/v1/audio/transcriptions", post(transcribe))
            .route("/v1/audio/speech", post(speak))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind double");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base_url: format!("http://{addr}/v1"), shared, server }
    }

    /// Every transcription request so far, in order.
    pub fn transcriptions(&self) -> Vec<Transcription> {
        self.shared.transcriptions.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every speech request so far, in order.
    pub fn speeches(&self) -> Vec<Speech> {
        self.shared.speeches.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn authorization(headers: &HeaderMap) -> Option<String> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(String::from)
}

async fn transcribe(State(shared): State<Arc<Shared>>, headers: HeaderMap, mut multipart: Multipart) -> Response {
    let mut request = Transcription { authorization: authorization(&headers), fields: BTreeMap::new(), file: None };
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let file_name = field.file_name().map(String::from);
                let content_type = field.content_type().map(String::from);
                let Ok(bytes) = field.bytes().await else {
                    return (StatusCode::BAD_REQUEST, "unreadable multipart field").into_response();
                };
                if name == "file" {
                    request.file = Some(FilePart { file_name, content_type, bytes: bytes.to_vec() });
                } else {
                    request.fields.insert(name, String::from_utf8_lossy(&bytes).into_owned());
                }
            }
            Ok(None) => break,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("not multipart/form-data: {e}")).into_response(),
        }
    }
    let index = {
        let mut requests = shared.transcriptions.lock().unwrap_or_else(|e| e.into_inner());
        requests.push(request);
        requests.len() - 1
    };
    respond(shared.transcription_script.get(index).cloned(), index).await
}

async fn speak(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from);
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let index = {
        let mut requests = shared.speeches.lock().unwrap_or_else(|e| e.into_inner());
        requests.push(Speech { authorization: authorization(&headers), content_type, body });
        requests.len() - 1
    };
    respond(shared.speech_script.get(index).cloned(), index).await
}

async fn respond(reply: Option<Reply>, index: usize) -> Response {
    match reply.unwrap_or_else(|| Reply::Status(500, format!("script exhausted at request {}", index + 1))) {
        Reply::Json(body) => Json(body).into_response(),
        Reply::Audio(content_type, bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Reply::Status(code, message) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(json!({"error": {"message": message, "type": "double_error"}}))).into_response()
        }
        Reply::Malformed => ([(header::CONTENT_TYPE, "application/json")], "{\"text\": oops").into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}
