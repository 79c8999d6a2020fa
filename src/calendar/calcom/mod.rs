//! The Cal.com calendar (API v2) of one agent.
//!
//! - [`api`]: the HTTP client (versions, envelopes, timeouts, retries for reads);
//! - [`limiter`]: each API key stays under its per-minute budget;
//! - [`webhook`]: `X-Cal-Signature-256` verification and the booking mirror updates.
//!
//! Initialisation (`GET /v2/me` → username; find the event type by slug under it, create it with the
//! agent's slot length when missing) runs once per agent and its result is stored with the agent.
//! Every booking is mirrored in slotline's `bookings` table with Cal.com's uid. A booking `POST` whose
//! outcome is unknown (timeout, connection lost) is looked up by its slotline id (sent as metadata) and
//! by attendee and start before it is sent again, so a slow Cal.com never yields two bookings.

pub mod api;
pub mod limiter;
pub mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use tokio::sync::OnceCell;
use uuid::Uuid;

use self::api::{ApiError, CalBooking, CalcomApi, CreateBooking};
use super::{
    ledger, AttendeeQuery, Booking, BookingRequest, Calendar, CalendarError, CalendarKind, Clock, Slot, SlotId,
};
use crate::storage::{AgentRecord, BusyRange, Store, StoreError};

/// Metadata key carrying slotline's booking id on Cal.com bookings.
pub const METADATA_BOOKING_ID: &str = "slotline_booking_id";
/// Metadata key carrying the call that booked.
pub const METADATA_CALL_ID: &str = "slotline_call_id";

/// What initialisation learned.
#[derive(Debug, Clone)]
struct Identity {
    event_type_id: i64,
}

/// The Cal.com calendar of one agent.
pub struct CalcomCalendar {
    agent_id: Uuid,
    agent_name: String,
    timezone: Tz,
    slot_minutes: u16,
    slug: String,
    configured_username: Option<String>,
    stored: Option<Identity>,
    api: CalcomApi,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    identity: OnceCell<Identity>,
}

impl CalcomCalendar {
    /// The calendar of `agent` (whose config is `calcom`), talking to Cal.com through `api`.
    pub fn new(
        agent: &AgentRecord,
        timezone: Tz,
        api: CalcomApi,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CalendarError> {
        let cal = &agent.calendar;
        let slug = cal.event_type_slug.clone().ok_or(CalendarError::NotConfigured)?;
        let stored = match (&cal.username, cal.event_type_id) {
            (Some(_), Some(event_type_id)) => Some(Identity { event_type_id }),
            _ => None,
        };
        Ok(Self {
            agent_id: agent.id,
            agent_name: agent.name.clone(),
            timezone,
            slot_minutes: u16::try_from(cal.slot_minutes).unwrap_or(30),
            slug,
            configured_username: cal.username.clone(),
            stored,
            api,
            store,
            clock,
            identity: OnceCell::new(),
        })
    }

    async fn identity(&self) -> Result<&Identity, CalendarError> {
        self.identity.get_or_try_init(|| self.initialise()).await
    }

    async fn initialise(&self) -> Result<Identity, CalendarError> {
        if let Some(stored) = &self.stored {
            return Ok(stored.clone());
        }
        let me = self.api.me().await.map_err(init_error)?;
        if let Some(configured) = &self.configured_username {
            if configured != &me.username {
                return Err(CalendarError::InitFailed(format!(
                    "the API key belongs to user `{}`, not `{configured}`",
                    me.username
                )));
            }
        }
        let existing = self.api.event_types(&me.username, &self.slug).await.map_err(init_error)?;
        let event_type = match existing.into_iter().find(|t| t.slug == self.slug) {
            Some(found) => found,
            None => {
                tracing::info!(agent_id = %self.agent_id, slug = %self.slug, "creating the Cal.com event type");
                self.api.create_event_type(&self.agent_name, &self.slug, i64::from(self.slot_minutes)).await.map_err(
                    |e| match init_error(e) {
                        CalendarError::InitFailed(reason) => {
                            CalendarError::InitFailed(format!("cannot create event type `{}`: {reason}", self.slug))
                        }
                        other => other,
                    },
                )?
            }
        };
        self.store.set_calcom_ids(self.agent_id, &me.username, event_type.id).await?;
        tracing::info!(agent_id = %self.agent_id, username = %me.username, event_type_id = event_type.id, "Cal.com calendar ready");
        Ok(Identity { event_type_id: event_type.id })
    }

    async fn free_slots(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Slot>, CalendarError> {
        let identity = self.identity().await?;
        let now = self.clock.now();
        let slots = self
            .api
            .slots(identity.event_type_id, from.max(now), to, self.timezone.name())
            .await
            .map_err(call_error)?;
        Ok(slots
            .into_iter()
            .filter(|(start, _)| *start > now)
            .map(|(start, end)| {
                let minutes = end
                    .map(|end| (end - start).num_minutes())
                    .and_then(|m| u16::try_from(m).ok())
                    .filter(|m| *m > 0)
                    .unwrap_or(self.slot_minutes);
                Slot::new(self.agent_id, start, minutes, self.timezone)
            })
            .collect())
    }

    async fn taken(&self, wanted: DateTime<Utc>) -> CalendarError {
        let free = self.free_slots(wanted - Duration::days(3), wanted + Duration::days(7)).await.unwrap_or_default();
        CalendarError::SlotTaken { alternatives: ledger::nearest(free, wanted) }
    }

    /// The Cal.com booking made for slotline booking `id` (or by this attendee at this start), if any.
    async fn lookup(
        &self,
        event_type_id: i64,
        body: &CreateBooking,
        id: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Option<CalBooking>, CalendarError> {
        let found = self
            .api
            .bookings(
                event_type_id,
                start - Duration::minutes(1),
                end + Duration::minutes(1),
                body.attendee.email.as_deref(),
            )
            .await
            .map_err(call_error)?;
        let id = id.to_string();
        Ok(found.into_iter().find(|b| {
            let ours = b.metadata.as_ref().and_then(|m| m.get(METADATA_BOOKING_ID)).and_then(Value::as_str)
                == Some(id.as_str());
            let same_attendee = b.attendees.iter().any(|a| {
                a.name == body.attendee.name
                    && (a.email.is_some() && a.email == body.attendee.email
                        || a.phone_number.is_some() && a.phone_number == body.attendee.phone_number)
            });
            b.status != "cancelled" && b.start == start && (ours || same_attendee)
        }))
    }

    /// Records a Cal.com booking in the local mirror (idempotent on the uid).
    async fn mirror(&self, booking: Booking) -> Result<Booking, CalendarError> {
        let busy = BusyRange { from: booking.start_at, until: booking.end_at };
        match self.store.insert_booking(&booking, busy).await {
            Ok(()) => Ok(booking),
            Err(StoreError::Conflict { .. }) => {
                let uid = booking.external_uid.as_deref().unwrap_or_default();
                if let Some(existing) = self.store.find_booking_by_external_uid(self.agent_id, uid).await? {
                    return Ok(existing);
                }
                ledger::record(&self.store, &booking, busy).await
            }
            Err(e) => {
                tracing::error!(agent_id = %self.agent_id, uid = ?booking.external_uid, error = %e,
                    "booked on Cal.com but could not record it locally; the webhook will reconcile it");
                Err(e.into())
            }
        }
    }

    fn booking_from(&self, cal: &CalBooking, template: &Booking) -> Booking {
        let mut booking = template.clone();
        booking.external_uid = Some(cal.uid.clone());
        booking.start_at = cal.start;
        booking.end_at = cal.end;
        booking
    }
}

#[async_trait]
impl Calendar for CalcomCalendar {
    fn kind(&self) -> CalendarKind {
        CalendarKind::Calcom
    }

    fn timezone(&self) -> Tz {
        self.timezone
    }

    async fn list_available_slots(&self, range_days: u32) -> Result<Vec<Slot>, CalendarError> {
        let now = self.clock.now();
        let slots = self.free_slots(now, now + Duration::days(i64::from(range_days.max(1)))).await?;
        if slots.is_empty() {
            return Err(CalendarError::NoSlots);
        }
        Ok(slots)
    }

    async fn schedule(&self, request: BookingRequest) -> Result<Booking, CalendarError> {
        if let Some(done) = ledger::replay(&self.store, self.agent_id, &request).await? {
            return Ok(done);
        }
        let unknown = || CalendarError::UnknownSlot(request.slot_id.to_string());
        let (start, minutes) = request.slot_id.decode(self.agent_id).ok_or_else(unknown)?;
        if start <= self.clock.now() {
            return Err(unknown());
        }
        let end = start + Duration::minutes(i64::from(minutes));
        let identity = self.identity().await?;
        let template =
            ledger::new_booking(self.agent_id, CalendarKind::Calcom, start, end, &request.attendee, &request);
        let mut metadata = serde_json::Map::new();
        metadata.insert(METADATA_BOOKING_ID.into(), Value::String(template.id.to_string()));
        if let Some(call) = &request.source_call_id {
            metadata.insert(METADATA_CALL_ID.into(), Value::String(call.chars().take(500).collect()));
        }
        let body = CreateBooking {
            start: api::iso(start),
            event_type_id: identity.event_type_id,
            attendee: api::Attendee {
                name: request.attendee.name.clone(),
                email: request.attendee.email.clone(),
                time_zone: self.timezone.name().to_string(),
                phone_number: request.attendee.phone.clone(),
            },
            booking_fields_responses: request.notes.as_ref().map(|n| serde_json::json!({"notes": n})),
            metadata,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = self.api.create_booking(&body).await;
            let unknown_outcome = matches!(outcome, Err(ApiError::Timeout(_) | ApiError::Unavailable(_)));
            // A taken slot after an unknown outcome may be our own first attempt.
            let check = unknown_outcome || (attempts > 1 && matches!(outcome, Err(ApiError::SlotTaken)));
            if check {
                tracing::warn!(agent_id = %self.agent_id, attempt = attempts, "booking outcome unknown; looking it up before retrying");
                if let Some(found) = self.lookup(identity.event_type_id, &body, template.id, start, end).await? {
                    return self.mirror(self.booking_from(&found, &template)).await;
                }
            }
            match outcome {
                Ok(created) => return self.mirror(self.booking_from(&created, &template)).await,
                Err(_) if unknown_outcome && attempts < 2 => continue,
                Err(ApiError::SlotTaken) => return Err(self.taken(start).await),
                Err(ApiError::BadRequest(message))
                    if message.contains("in the past") || message.contains("out of bounds") =>
                {
                    return Err(unknown())
                }
                Err(ApiError::BadRequest(message)) if message.to_lowercase().contains("attendee") => {
                    return Err(CalendarError::InvalidAttendee { field: "attendee_email", message })
                }
                Err(e) => return Err(call_error(e)),
            }
        }
    }

    async fn cancel(&self, booking_id: Uuid, reason: Option<String>) -> Result<Booking, CalendarError> {
        let booking = ledger::active_booking(&self.store, self.agent_id, booking_id).await?;
        let uid = booking.external_uid.clone().ok_or(CalendarError::BookingNotFound)?;
        match self.api.cancel_booking(&uid, reason.as_deref()).await {
            Ok(_) => {}
            // Cancelled on Cal.com already (e.g. by the host): the mirror catches up.
            Err(ApiError::BadRequest(message)) if message.contains("already been cancelled") => {}
            Err(ApiError::NotFound(_)) => return Err(CalendarError::BookingNotFound),
            Err(e) => return Err(call_error(e)),
        }
        self.store.close_booking(booking_id, "cancelled", reason.as_deref()).await?.ok_or(CalendarError::NotActive)
    }

    async fn reschedule(&self, booking_id: Uuid, slot_id: &SlotId) -> Result<Booking, CalendarError> {
        let old = ledger::active_booking(&self.store, self.agent_id, booking_id).await?;
        let uid = old.external_uid.clone().ok_or(CalendarError::BookingNotFound)?;
        let unknown = || CalendarError::UnknownSlot(slot_id.to_string());
        let (start, _) = slot_id.decode(self.agent_id).ok_or_else(unknown)?;
        if start <= self.clock.now() {
            return Err(unknown());
        }
        let moved = match self.api.reschedule_booking(&uid, start).await {
            Ok(moved) => moved,
            Err(ApiError::SlotTaken) => return Err(self.taken(start).await),
            Err(ApiError::NotFound(_)) => return Err(CalendarError::BookingNotFound),
            Err(e) => return Err(call_error(e)),
        };
        let now = crate::storage::now();
        let mut new = self.booking_from(&moved, &old);
        new.id = Uuid::new_v4();
        new.rescheduled_from = Some(old.id);
        new.idempotency_key = None;
        new.created_at = now;
        new.updated_at = now;
        let busy = BusyRange { from: new.start_at, until: new.end_at };
        match self.store.reschedule_booking(old.id, &new, busy).await? {
            true => Ok(new),
            false => Err(CalendarError::NotActive),
        }
    }

    async fn find_bookings(&self, query: AttendeeQuery) -> Result<Vec<Booking>, CalendarError> {
        let from = query.from.unwrap_or_else(|| self.clock.now());
        Ok(self
            .store
            .find_bookings_by_attendee(self.agent_id, query.email.as_deref(), query.phone.as_deref(), from)
            .await?)
    }
}

/// Errors while initialising: the seed's "Failed to initialize Cal.com calendar: <reason>".
fn init_error(error: ApiError) -> CalendarError {
    match error {
        ApiError::Unauthorized(_) => CalendarError::InitFailed("the API key was rejected".into()),
        ApiError::NotFound(message) | ApiError::BadRequest(message) => CalendarError::InitFailed(message),
        other => call_error(other),
    }
}

/// Errors of calls after initialisation.
fn call_error(error: ApiError) -> CalendarError {
    match error {
        ApiError::Unauthorized(_) => CalendarError::InitFailed("the API key was rejected".into()),
        ApiError::RateLimited(retry_after) => CalendarError::RateLimited { retry_after },
        ApiError::SlotTaken => CalendarError::SlotTaken { alternatives: Vec::new() },
        other => {
            tracing::warn!(error = %other, "Cal.com call failed");
            CalendarError::Unavailable(other.to_string())
        }
    }
}
