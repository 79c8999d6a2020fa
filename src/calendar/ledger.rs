//! The `bookings` table as every calendar writes it: one place that turns a booked slot into a
//! [`BookingRecord`], honours idempotency keys, and finds nearby alternatives when a slot is taken.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Attendee, Booking, BookingRequest, CalendarError, CalendarKind, Slot};
use crate::storage::{self, BusyRange, Store, StoreError};

/// How many alternatives a "slot taken" answer offers.
pub const ALTERNATIVES: usize = 3;

/// A confirmed booking of `slot` for `request`, not yet stored.
pub fn new_booking(
    agent_id: Uuid,
    kind: CalendarKind,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    attendee: &Attendee,
    request: &BookingRequest,
) -> Booking {
    let now = storage::now();
    Booking {
        id: Uuid::new_v4(),
        agent_id: Some(agent_id),
        calendar_kind: kind.as_str().to_string(),
        external_uid: None,
        start_at: start,
        end_at: end,
        attendee_name: attendee.name.clone(),
        attendee_email: attendee.email.clone(),
        attendee_phone: attendee.phone.clone(),
        notes: request.notes.clone(),
        status: "confirmed".to_string(),
        source_call_id: request.source_call_id.clone(),
        idempotency_key: request.idempotency_key.clone(),
        cancel_reason: None,
        rescheduled_from: None,
        created_at: now,
        updated_at: now,
    }
}

/// The booking already made under `request`'s idempotency key, if any.
pub async fn replay(
    store: &Arc<dyn Store>,
    agent_id: Uuid,
    request: &BookingRequest,
) -> Result<Option<Booking>, CalendarError> {
    match &request.idempotency_key {
        Some(key) => Ok(store.find_booking_by_key(agent_id, key).await?),
        None => Ok(None),
    }
}

/// Stores `booking`; a concurrent request with the same idempotency key returns the winner's booking.
pub async fn record(store: &Arc<dyn Store>, booking: &Booking, busy: BusyRange) -> Result<Booking, CalendarError> {
    match store.insert_booking(booking, busy).await {
        Ok(()) => Ok(booking.clone()),
        Err(StoreError::Conflict { .. }) if booking.idempotency_key.is_some() => {
            let key = booking.idempotency_key.as_deref().unwrap_or_default();
            let agent = booking.agent_id.unwrap_or_default();
            store
                .find_booking_by_key(agent, key)
                .await?
                .ok_or(CalendarError::Storage(StoreError::Conflict { what: "booking" }))
        }
        Err(e) => Err(e.into()),
    }
}

/// The free slots nearest to `wanted`, soonest first.
pub fn nearest(mut free: Vec<Slot>, wanted: DateTime<Utc>) -> Vec<Slot> {
    free.sort_by_key(|slot| (slot.start - wanted).num_seconds().abs());
    free.truncate(ALTERNATIVES);
    free.sort_by_key(|slot| slot.start);
    free
}

/// A confirmed booking of this agent, or the error a caller should hear.
pub async fn active_booking(
    store: &Arc<dyn Store>,
    agent_id: Uuid,
    booking_id: Uuid,
) -> Result<Booking, CalendarError> {
    let booking = store.get_booking(booking_id).await?.filter(|b| b.agent_id == Some(agent_id));
    match booking {
        None => Err(CalendarError::BookingNotFound),
        Some(b) if b.status != "confirmed" => Err(CalendarError::NotActive),
        Some(b) => Ok(b),
    }
}
