//! Cal.com webhooks: `X-Cal-Signature-256` is the lower-case hex HMAC-SHA256 of the raw body under the
//! agent's webhook secret. Verified deliveries of BOOKING_CREATED, BOOKING_CANCELLED and
//! BOOKING_RESCHEDULED keep the local booking mirror in step with changes made on Cal.com itself.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

use crate::storage::{self, BookingRecord, BusyRange, Store, StoreError};

/// The header Cal.com signs deliveries with.
pub const SIGNATURE_HEADER: &str = "x-cal-signature-256";

/// `true` when `signature` (hex) is the HMAC-SHA256 of `body` under `secret` (constant-time check).
pub fn verify_signature(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// A webhook delivery.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// e.g. `BOOKING_CREATED`.
    pub trigger_event: String,
    /// The event's payload.
    #[serde(default)]
    pub payload: Value,
}

/// What a delivery changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A booking made on Cal.com was added to the mirror.
    Created,
    /// A mirrored booking was cancelled.
    Cancelled,
    /// A mirrored booking was moved (old one `rescheduled`, new one added).
    Rescheduled,
    /// Already in this state, or a trigger slotline does not track.
    Ignored,
}

impl Applied {
    /// Label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Cancelled => "cancelled",
            Self::Rescheduled => "rescheduled",
            Self::Ignored => "ignored",
        }
    }
}

/// Why a delivery cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The payload lacks a field the trigger needs.
    #[error("webhook payload: {0}")]
    Payload(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn text(payload: &Value, field: &str) -> Result<String, WebhookError> {
    payload[field].as_str().map(str::to_string).ok_or_else(|| WebhookError::Payload(format!("missing `{field}`")))
}

fn instant(payload: &Value, field: &str) -> Result<DateTime<Utc>, WebhookError> {
    DateTime::parse_from_rfc3339(&text(payload, field)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| WebhookError::Payload(format!("`{field}`: {e}")))
}

fn mirror_of(agent_id: Uuid, payload: &Value, uid: String) -> Result<BookingRecord, WebhookError> {
    let attendee = &payload["attendees"][0];
    let now = storage::now();
    Ok(BookingRecord {
        id: Uuid::new_v4(),
        agent_id: Some(agent_id),
        calendar_kind: "calcom".into(),
        external_uid: Some(uid),
        start_at: instant(payload, "startTime")?,
        end_at: instant(payload, "endTime")?,
        attendee_name: attendee["name"].as_str().unwrap_or("Cal.com attendee").to_string(),
        attendee_email: attendee["email"].as_str().map(str::to_lowercase),
        attendee_phone: attendee["phoneNumber"].as_str().map(str::to_string),
        notes: None,
        status: "confirmed".into(),
        source_call_id: None,
        idempotency_key: None,
        cancel_reason: None,
        rescheduled_from: None,
        created_at: now,
        updated_at: now,
    })
}

/// Applies a verified delivery to the mirror of `agent_id`.
pub async fn apply(store: &dyn Store, agent_id: Uuid, delivery: &Delivery) -> Result<Applied, WebhookError> {
    let payload = &delivery.payload;
    match delivery.trigger_event.as_str() {
        "BOOKING_CREATED" => {
            let uid = text(payload, "uid")?;
            if store.find_booking_by_external_uid(agent_id, &uid).await?.is_some() {
                return Ok(Applied::Ignored);
            }
            let booking = mirror_of(agent_id, payload, uid)?;
            match store.insert_booking(&booking, BusyRange { from: booking.start_at, until: booking.end_at }).await {
                Ok(()) => Ok(Applied::Created),
                // A booking slotline made itself raced its own webhook.
                Err(StoreError::Conflict { .. }) => Ok(Applied::Ignored),
                Err(e) => Err(e.into()),
            }
        }
        "BOOKING_CANCELLED" => {
            let uid = text(payload, "uid")?;
            let Some(booking) = store.find_booking_by_external_uid(agent_id, &uid).await? else {
                return Ok(Applied::Ignored);
            };
            let reason = payload["cancellationReason"].as_str();
            match store.close_booking(booking.id, "cancelled", reason).await? {
                Some(_) => Ok(Applied::Cancelled),
                None => Ok(Applied::Ignored),
            }
        }
        "BOOKING_RESCHEDULED" => {
            let new_uid = text(payload, "uid")?;
            if store.find_booking_by_external_uid(agent_id, &new_uid).await?.is_some() {
                return Ok(Applied::Ignored);
            }
            let mut new = mirror_of(agent_id, payload, new_uid)?;
            let busy = BusyRange { from: new.start_at, until: new.end_at };
            let old = match payload["rescheduleUid"].as_str().or_else(|| payload["rescheduledFromUid"].as_str()) {
                Some(old_uid) => store.find_booking_by_external_uid(agent_id, old_uid).await?,
                None => None,
            };
            match old {
                Some(old) => {
                    new.attendee_name = old.attendee_name.clone();
                    new.source_call_id = old.source_call_id.clone();
                    new.rescheduled_from = Some(old.id);
                    if !store.reschedule_booking(old.id, &new, busy).await? {
                        store.insert_booking(&new, busy).await?;
                    }
                }
                None => store.insert_booking(&new, busy).await?,
            }
            Ok(Applied::Rescheduled)
        }
        _ => Ok(Applied::Ignored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256_of_the_raw_body() {
        let body = br#"{"triggerEvent":"BOOKING_CREATED"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec").expect("key");
        mac.update(body);
        let good = hex::encode(mac.finalize().into_bytes());
        assert!(verify_signature(b"whsec", body, &good));
        assert!(!verify_signature(b"other", body, &good));
        assert!(!verify_signature(b"whsec", b"{}", &good));
        assert!(!verify_signature(b"whsec", body, "no-secret-provided"));
        assert!(!verify_signature(b"whsec", body, ""));
    }
}
