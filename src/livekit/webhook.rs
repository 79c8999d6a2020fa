//! LiveKit's webhooks: room and participant events, verified and turned into `calls` rows.
//!
//! LiveKit signs each delivery with a JWT in `Authorization` (issued under the API key, signed with the
//! secret) whose `sha256` claim is the body's hash; `livekit-api`'s receiver checks both. A SIP
//! participant joining is a call: a `calls` row with transport `livekit`, the dialed and calling numbers
//! from its attributes, the agent its dialed number routes to, and the room's name and sid. The SIP
//! participant leaving ends it (`caller_left`), and so does the room finishing (`room_finished`). The
//! worker records the same call through [`super::record`], so whichever comes first writes the row.

use super::job::SipCaller;
use super::{record, LivekitSettings};
use crate::storage::{Store, StoreError};
use livekit_api::access_token::TokenVerifier;
use livekit_api::webhooks::{WebhookError, WebhookReceiver};
use livekit_protocol as proto;

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
            record::start(store, &room.name, &room.sid, &caller, None).await?;
            "call_started"
        }
        ("participant_left", Some(room), Some(_)) => ended(record::end(store, &room.sid, "caller_left").await?),
        ("room_finished", Some(room), _) => ended(record::end(store, &room.sid, "room_finished").await?),
        _ => "ignored",
    };
    Ok(result)
}

fn ended(closed: bool) -> &'static str {
    if closed {
        "call_ended"
    } else {
        "ignored"
    }
}
