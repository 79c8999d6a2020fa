//! LiveKit: `POST /v1/agents/{id}/livekit-token` signs a join token for a room with an agent (admin
//! scope), and `POST /v1/webhooks/livekit` takes LiveKit's signed webhooks (no bearer token: the JWT in
//! `Authorization` is LiveKit's own). Both answer 503 while `livekit.*` is not configured.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::auth::WriteAccess;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::ApiJson;
use crate::api::AppState;
use crate::livekit::token::{self, AgentMetadata};
use crate::livekit::webhook::{self, DeliveryError};
use crate::livekit::LivekitSettings;
use crate::metrics;

/// Body of `POST /v1/agents/{id}/livekit-token`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The participant identity (1–128 characters).
    pub identity: String,
    /// The participant's display name.
    pub name: Option<String>,
    /// The room to join; a new room name when absent.
    pub room: Option<String>,
    /// Lifetime in seconds (60–86400, default 3600).
    pub ttl: Option<u64>,
}

/// A signed join token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// The JWT to join with.
    pub token: String,
    /// The LiveKit server URL to connect to.
    pub url: String,
    /// The room.
    pub room: String,
    /// The participant identity.
    pub identity: String,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
    /// What the room's agent dispatch carries (agent id, non-secret calendar settings).
    #[schema(value_type = Object)]
    pub metadata: AgentMetadata,
}

fn livekit(state: &AppState) -> Result<&LivekitSettings, ApiError> {
    state
        .livekit
        .as_deref()
        .ok_or(ApiError::NotConfigured("LiveKit (livekit.url, livekit.api_key, livekit.api_secret)"))
}

/// Signs a token that joins a room where the agent answers.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/livekit-token",
    tag = "livekit",
    params(("id" = Uuid, Path, description = "Agent id")),
    request_body = TokenRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = TokenView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, description = "LiveKit is not configured", body = ErrorBody)
    )
)]
pub async fn create_token(
    _access: WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TokenRequest>,
) -> Result<Json<TokenView>, ApiError> {
    let settings = livekit(&state)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("agent"))?;
    let agent = state.store.get_agent(id).await?.ok_or(ApiError::NotFound("agent"))?;
    let identity = input.identity.trim();
    if identity.is_empty() || identity.len() > 128 {
        return Err(ApiError::validation("identity", "must be 1 to 128 characters"));
    }
    if let Some(room) = &input.room {
        if room.is_empty() || room.len() > 128 || room.chars().any(char::is_control) {
            return Err(ApiError::validation("room", "must be 1 to 128 printable characters"));
        }
    }
    let ttl = match input.ttl {
        None => token::DEFAULT_TTL,
        Some(seconds) if (60..=token::MAX_TTL.as_secs()).contains(&seconds) => Duration::from_secs(seconds),
        Some(_) => return Err(ApiError::validation("ttl", "must be between 60 and 86400 seconds")),
    };
    let signed = token::agent_join_token(settings, &agent, identity, input.name.as_deref(), input.room.as_deref(), ttl)
        .map_err(|e| ApiError::Internal(e.into()))?;
    tracing::info!(agent_id = %agent.id, ttl_secs = ttl.as_secs(), "livekit join token signed");
    Ok(Json(TokenView {
        token: signed.token,
        url: settings.ws_url.clone(),
        room: signed.room,
        identity: signed.identity,
        expires_at: signed.expires_at,
        metadata: AgentMetadata::of(&agent),
    }))
}

/// What a LiveKit webhook delivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LivekitWebhookResult {
    /// `call_started`, `call_ended` or `ignored`.
    pub result: &'static str,
}

/// Receives a LiveKit webhook.
#[utoipa::path(
    post,
    path = "/v1/webhooks/livekit",
    tag = "webhooks",
    params(("Authorization" = String, Header, description = "LiveKit's JWT carrying the body's SHA-256")),
    request_body(content = String, content_type = "application/webhook+json", description = "LiveKit WebhookEvent"),
    responses(
        (status = 200, body = LivekitWebhookResult),
        (status = 401, description = "missing or bad signature", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, description = "LiveKit is not configured", body = ErrorBody)
    )
)]
pub async fn livekit_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<LivekitWebhookResult>, ApiError> {
    let settings = livekit(&state)?;
    let Ok(body) = std::str::from_utf8(&body) else {
        metrics::livekit_webhook("other", "refused");
        return Err(ApiError::validation("body", "must be UTF-8 JSON"));
    };
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let event = match webhook::verify(settings, body, authorization) {
        Ok(event) => event,
        Err(e) => {
            metrics::livekit_webhook("other", "refused");
            return Err(match e {
                DeliveryError::Invalid(message) => ApiError::validation("body", message),
                _ => ApiError::Unauthorized("LiveKit webhook signature does not verify"),
            });
        }
    };
    let result = webhook::apply(state.store.as_ref(), &event).await.map_err(|e| match e {
        DeliveryError::Store(e) => ApiError::from(e),
        other => ApiError::Internal(other.into()),
    })?;
    metrics::livekit_webhook(&event.event, result);
    Ok(Json(LivekitWebhookResult { result }))
}
