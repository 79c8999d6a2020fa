//! LiveKit's webhooks: room and participant events, verified and turned into `calls` rows.
//!
//! LiveKit signs each delivery with a JWT in `Authorization` (issued under the API key, signed with the
//! secret) whose `sha256` claim is the body's hash; `livekit-api`'s receiver checks both. A SIP
//! participant joining is a call: a `calls` row with transport `livekit`, the dialed and calling numbers
//! from its attributes, the agent its dialed number routes to, and the room's name and sid. The SIP
//! participant leaving ends it (`caller_left`), and so does the room finishing (`room_finished`). The
//! worker records the same call through [`record_room_call`], so whichever comes first writes the row.

use livekit_api::access_token::TokenVerifier;
use livekit_api::webhooks::{WebhookError, WebhookReceiver};
use livekit_protocol as proto;
use uuid::Uuid;

use super::job::SipCaller;
use super::LivekitSettings;
use crate::dialplan::e164;
use crate::metrics;
use crate::storage::{self, CallRecord, Store, StoreError};

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Missing or bad signature, or a body that does not match it.
    #[error("webhook signature does not verify")]
    Unauthorized,
    /// The signature verified but the body is not a webhook event.
    #[error("webhook body is not a LiveKit event: {0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verifies a delivery and returns its event.
pub fn verify(
    settings: &LivekitSettings,
    body: &str,
    authorization: &str,
) -> Result<proto::WebhookEvent, DeliveryError> {
    let token = authorization.strip_prefix("Bearer ").unwrap_or(authorization).trim();
    if token.is_empty() {
        return Err(DeliveryError::Unauthorized);
    }
    let receiver = WebhookReceiver::new(TokenVerifier::with_api_key(&settings.api_key, settings.api_secret.expose()));
    receiver.receive(body, token).map_err(|e| match e {
        WebhookError::InvalidData(e) => DeliveryError::Invalid(e.to_string()),
        _ => DeliveryError::Unauthorized,
    })
}

/// Applies a verified event to the `calls` table; returns what it did (`call_started`, `call_ended`,
/// `ignored`).
pub async fn apply(store: &dyn Store, event: &proto::WebhookEvent) -> Result<&'static str, DeliveryError> {
    let room = event.room.as_ref();
    let sip = event.participant.as_ref().filter(|p| p.kind == proto::participant_info::Kind::Sip as i32);
    let result = match (event.event.as_str(), room, sip) {
        ("participant_joined", Some(room), Some(participant)) => {
            let caller = SipCaller::from_attributes(&participant.identity, &participant.attributes);
            record_room_call(store, &room.name, &room.sid, &caller).await?;
            "call_started"
        }
        ("participant_left", Some(room), Some(_)) => end_room_call(store, &room.sid, "caller_left").await?,
        ("room_finished", Some(room), _) => end_room_call(store, &room.sid, "room_finished").await?,
        _ => "ignored",
    };
    Ok(result)
}

/// The `calls` row of a LiveKit room's SIP call, written when it is the first to know of the call.
pub async fn record_room_call(
    store: &dyn Store,
    room: &str,
    room_sid: &str,
    caller: &SipCaller,
) -> Result<CallRecord, StoreError> {
    if let Some(existing) = store.find_room_call(room_sid).await? {
        return Ok(existing);
    }
    let dialed = e164::normalize(&caller.dialed).map(|n| n.as_str().to_string()).unwrap_or(caller.dialed.clone());
    let agent_id = store.route_number(&dialed).await?;
    let now = storage::now();
    let record = CallRecord {
        id: Uuid::new_v4(),
        sip_call_id: if caller.call_id.is_empty() { room.to_string() } else { caller.call_id.clone() },
        agent_id,
        dialed,
        caller: caller.caller.clone(),
        transport: "livekit".into(),
        started_at: now,
        answered_at: Some(now),
        ended_at: None,
        end_reason: None,
        sip_status: None,
        room: Some(room.to_string()),
        room_sid: Some(room_sid.to_string()),
    };
    let stored = store.insert_room_call(&record).await?;
    if stored.id == record.id {
        metrics::livekit_call("started");
        tracing::info!(call_id = %stored.id, agent_id = ?stored.agent_id, "livekit call recorded");
    }
    Ok(stored)
}

/// Ends the room's call if it is still open.
async fn end_room_call(store: &dyn Store, room_sid: &str, reason: &str) -> Result<&'static str, StoreError> {
    let Some(mut call) = store.find_room_call(room_sid).await? else { return Ok("ignored") };
    if call.ended_at.is_some() {
        return Ok("ignored");
    }
    call.ended_at = Some(storage::now());
    call.end_reason = Some(reason.to_string());
    store.update_call(&call).await?;
    metrics::livekit_call("ended");
    Ok("call_ended")
}
