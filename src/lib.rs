//! slotline: a telephony-first SIP voice gateway whose AI voice agents book appointments.
//!
//! Module map (see `docs/ARCHITECTURE.md` for the whole architecture):
//! - [`config`]: layered settings (defaults → `slotline.toml` → `SLOTLINE_*` env → flags);
//! - [`app`]: builds the running system (storage, API, metrics) and runs it until shutdown;
//! - [`cli`]: the `slotline` subcommands, called by the thin `main.rs`;
//! - [`telemetry`] / [`metrics`]: tracing setup and every Prometheus metric, declared once;
//! - [`storage`]: the [`storage::Store`] trait on SQLite and PostgreSQL, secrets sealed at rest;
//! - [`phone`]: the one E.164 phone-number normaliser, a value type every part may use;
//! - [`dialplan`]: number → agent routing, dialplan files;
//! - [`calendar`]: the calendars agents book into;
//! - [`call`]: the call leg, the one seam between a way in and the agent (audio, DTMF, hang-up, numbers);
//! - [`audio`]: plain telephone audio (8 kHz rate, 20 ms frames, WAV files) that every layer may use;
//! - [`sip`] / [`media`]: the SIP user agent server and RTP media of calls;
//! - [`livekit`]: the LiveKit way in: SIP sync, agent tokens, webhooks, the agent worker;
//! - [`agent`]: the scheduling conversation: tools, dialog engines (rules, LLM), language understanding,
//!   the booking funnel each conversation is counted in;
//! - [`speech`]: the speech engines (WebRTC VAD; whisper.cpp or OpenAI-compatible speech to text;
//!   espeak-ng, OpenAI-compatible or sidecar speech) behind the `Vad`, `SpeechToText` and `TextToSpeech` traits;
//! - [`api`]: the authenticated admin HTTP API (axum) and its OpenAPI document;
//! - [`console`]: the admin console in the browser, static files served by the API under `/console`.

pub mod agent;
pub mod api;
pub mod app;
pub mod audio;
pub mod calendar;
pub mod call;
pub mod cli;
pub mod config;
pub mod console;
pub mod dialplan;
pub mod livekit;
pub mod media;
pub mod metrics;
pub mod phone;
pub mod sip;
pub mod speech;
pub mod storage;
pub mod telemetry;
