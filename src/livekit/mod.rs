//! LiveKit, the scale-out way in: LiveKit SIP turns phone calls into rooms, and slotline's worker joins them.
//!
//! - [`sync`]: reconciles slotline's numbers → agents with LiveKit SIP (one inbound trunk, dispatch rules
//!   that give each call its own room and dispatch the worker with the agent's id);
//! - [`token`]: join tokens for an agent's room (the dispatch metadata carries the agent id and its
//!   non-secret calendar settings, never a Cal.com key) and the worker's own token;
//! - [`webhook`]: LiveKit's signed webhooks keep the `calls` table and metrics up to date;
//! - [`record`]: the `calls` row of a LiveKit call, shared by the webhook and the worker;
//! - [`worker`]: the agent worker protocol (`/agent` WebSocket): register, answer job offers by load,
//!   accept jobs, report status, reconnect, drain;
//! - [`job`]: what an accepted job does: resolve its agent (dispatch metadata, else the SIP participant's
//!   dialed number) and run it through a [`job::JobRunner`];
//! - [`media`]: the runner that joins the room through LiveKit's FFI library (`slotline-lkffi`) and hands
//!   the caller to the agent as a call leg.
//!
//! LiveKit's API is reached through the `livekit-api` crate (Twirp over HTTP), its messages are the
//! `livekit-protocol` types. Nothing else in slotline imports either crate.

pub mod job;
pub mod media;
pub mod record;
pub mod sync;
pub mod token;
pub mod webhook;
pub mod worker;

use std::time::Duration;

use livekit_api::services::agent_dispatch::AgentDispatchClient;
use livekit_api::services::room::RoomClient;
use livekit_api::services::sip::SIPClient;
use livekit_api::services::ServiceError;

use crate::config::{LivekitConfig, LivekitDispatch, Secret};

/// Timeout of each LiveKit API request.
const API_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong talking to LiveKit.
#[derive(Debug, thiserror::Error)]
pub enum LivekitError {
    /// `livekit.url`, `livekit.api_key` or `livekit.api_secret` is missing.
    #[error("LiveKit is not configured: set livekit.url, livekit.api_key and livekit.api_secret")]
    NotConfigured,
    /// The LiveKit API answered with an error or could not be reached.
    #[error("LiveKit API: {0}")]
    Api(#[from] ServiceError),
    /// A token could not be made or read.
    #[error("LiveKit token: {0}")]
    Token(#[from] livekit_api::access_token::AccessTokenError),
    /// LiveKit could not be reached.
    #[error("LiveKit unreachable: {0}")]
    Socket(String),
    /// LiveKit refused a request.
    #[error("LiveKit refused: {0}")]
    Rejected(String),
    /// The room's media (the FFI library) failed.
    #[error("LiveKit room media: {0}")]
    Media(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
}

/// The LiveKit connection settings in effect.
#[derive(Debug, Clone)]
pub struct LivekitSettings {
    /// The server's HTTP(S) base URL (API).
    pub http_url: String,
    /// The server's WS(S) base URL (agent socket).
    pub ws_url: String,
    /// API key.
    pub api_key: String,
    /// API secret.
    pub api_secret: Secret,
    /// The rest of `livekit.*`.
    pub config: LivekitConfig,
}

impl LivekitSettings {
    /// The settings when LiveKit is configured.
    pub fn from_config(config: &LivekitConfig) -> Result<Self, LivekitError> {
        let (Some(url), Some(api_key), Some(api_secret)) = (&config.url, &config.api_key, &config.api_secret) else {
            return Err(LivekitError::NotConfigured);
        };
        let url = url.trim_end_matches('/');
        let (http_url, ws_url) = if let Some(rest) = url.strip_prefix("ws://") {
            (format!("http://{rest}"), url.to_string())
        } else if let Some(rest) = url.strip_prefix("wss://") {
            (format!("https://{rest}"), url.to_string())
        } else if let Some(rest) = url.strip_prefix("http://") {
            (url.to_string(), format!("ws://{rest}"))
        } else if let Some(rest) = url.strip_prefix("https://") {
            (url.to_string(), format!("wss://{rest}"))
        } else {
            return Err(LivekitError::NotConfigured);
        };
        install_crypto_provider();
        Ok(Self { http_url, ws_url, api_key: api_key.clone(), api_secret: api_secret.clone(), config: config.clone() })
    }

    /// The dispatch mode.
    pub fn dispatch(&self) -> LivekitDispatch {
        self.config.dispatch
    }

    /// A client of the SIP service.
    pub fn sip(&self) -> SIPClient {
        SIPClient::with_api_key(&self.http_url, &self.api_key, self.api_secret.expose())
            .with_request_timeout(API_TIMEOUT)
    }

    /// A client of the room service.
    pub fn rooms(&self) -> RoomClient {
        RoomClient::with_api_key(&self.http_url, &self.api_key, self.api_secret.expose())
            .with_request_timeout(API_TIMEOUT)
    }

    /// A client of the agent dispatch service.
    pub fn dispatches(&self) -> AgentDispatchClient {
        AgentDispatchClient::with_api_key(&self.http_url, &self.api_key, self.api_secret.expose())
            .with_request_timeout(API_TIMEOUT)
    }
}

/// `livekit-api` reaches `https://` servers through rustls without choosing a crypto provider; slotline
/// uses ring (as its other HTTPS clients do). Installing twice is harmless.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The JSON slotline writes into the metadata of LiveKit objects it owns, and reads back to tell them
/// from objects it must not touch.
pub const OWNER: &str = "slotline";
