//! `POST /v1/webhooks/calcom/{agent_id}`: Cal.com webhook deliveries, authenticated by
//! `X-Cal-Signature-256` (HMAC-SHA256 of the raw body under the agent's webhook secret) instead of a
//! bearer token. A bad signature is 401 and changes nothing.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::error::{ApiError, ErrorBody};
use crate::api::AppState;
use crate::calendar::calcom::webhook::{self, Delivery, SIGNATURE_HEADER};
use crate::calendar::{calcom_webhook_context, CalendarKind};
use crate::metrics::CALCOM_WEBHOOKS_TOTAL;

/// What a delivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResult {
    /// `created`, `cancelled`, `rescheduled` or `ignored`.
    pub result: &'static str,
}

fn count(trigger: &str, result: &'static str) {
    let trigger = match trigger {
        "BOOKING_CREATED" | "BOOKING_CANCELLED" | "BOOKING_RESCHEDULED" => trigger.to_string(),
        _ => "other".to_string(),
    };
    metrics::counter!(CALCOM_WEBHOOKS_TOTAL, "trigger" => trigger, "result" => result).increment(1);
}

/// Receives a Cal.com webhook for an agent.
#[utoipa::path(
    post,
    path = "/v1/webhooks/calcom/{agent_id}",
    tag = "webhooks",
    params(
        ("agent_id" = Uuid, Path, description = "Agent id"),
        ("X-Cal-Signature-256" = String, Header, description = "hex HMAC-SHA256 of the raw body")
    ),
    request_body(content = String, content_type = "application/json", description = "Cal.com delivery `{triggerEvent, createdAt, payload}`"),
    responses(
        (status = 200, body = WebhookResult),
        (status = 401, description = "missing or bad signature", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn calcom_webhook(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookResult>, ApiError> {
    let agent_id = Uuid::parse_str(&agent_id).map_err(|_| ApiError::NotFound("agent"))?;
    let agent = state.store.get_agent(agent_id).await?.ok_or(ApiError::NotFound("agent"))?;
    let secret = match (&agent.calendar.kind, &agent.calendar.calcom_webhook_secret) {
        (CalendarKind::Calcom, Some(sealed)) => state
            .master_key
            .open(&calcom_webhook_context(agent.id), sealed)
            .map_err(|e| ApiError::Internal(e.into()))?,
        _ => return Err(ApiError::NotFound("Cal.com webhook for this agent")),
    };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !webhook::verify_signature(&secret, &body, signature) {
        count("unknown", "bad_signature");
        tracing::warn!(agent_id = %agent.id, "Cal.com webhook with a bad signature refused");
        return Err(ApiError::Unauthorized("bad or missing X-Cal-Signature-256"));
    }
    let delivery: Delivery = serde_json::from_slice(&body)
        .map_err(|e| ApiError::validation("triggerEvent", format!("not a Cal.com delivery: {e}")))?;
    let applied = match webhook::apply(state.store.as_ref(), agent.id, &delivery).await {
        Ok(applied) => applied,
        Err(webhook::WebhookError::Payload(message)) => {
            count(&delivery.trigger_event, "invalid");
            return Err(ApiError::validation("payload", message));
        }
        Err(webhook::WebhookError::Store(e)) => return Err(e.into()),
    };
    count(&delivery.trigger_event, applied.as_str());
    tracing::info!(agent_id = %agent.id, trigger = %delivery.trigger_event, result = applied.as_str(), "Cal.com webhook applied");
    Ok(Json(WebhookResult { result: applied.as_str() }))
}
