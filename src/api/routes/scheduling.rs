//! Scheduling on an agent's calendar: `GET /v1/agents/{id}/slots`, `POST /v1/agents/{id}/bookings`,
//! `POST /v1/bookings/{id}/cancel` and `POST /v1/bookings/{id}/reschedule`. The same calendar code the
//! voice agent uses; these are also what a web front end would call.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::auth::{ReadAccess, WriteAccess};
use crate::api::error::{ApiError, ErrorBody, SlotView};
use crate::api::extract::{ApiJson, ApiQuery};
use crate::api::AppState;
use crate::calendar::{Attendee, BookingRequest, Calendar, CalendarError, SlotId};
use crate::storage::{AgentRecord, BookingRecord};

const MAX_RANGE_DAYS: u32 = 90;
const DEFAULT_RANGE_DAYS: u32 = 14;
const MAX_NOTES: usize = 1000;
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// Query of `GET /v1/agents/{id}/slots`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SlotQuery {
    /// Days from now to search (1–90, default 14).
    pub range_days: Option<u32>,
}

/// Free slots of an agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotList {
    /// The agent's IANA time zone (`local` times are in it).
    pub timezone: String,
    /// Soonest first.
    pub slots: Vec<SlotView>,
    /// "No appointment slots available" when `slots` is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Body of `POST /v1/agents/{id}/bookings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBooking {
    /// A slot id from `GET /v1/agents/{id}/slots`.
    pub slot_id: String,
    /// The attendee's name.
    pub attendee_name: String,
    /// Email (this or `attendee_phone` is required).
    pub attendee_email: Option<String>,
    /// Phone, any common notation (stored as E.164).
    pub attendee_phone: Option<String>,
    /// Notes passed to the calendar.
    pub notes: Option<String>,
}

/// Body of `POST /v1/bookings/{id}/cancel`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBooking {
    /// Why (passed to the calendar).
    pub reason: Option<String>,
}

/// Body of `POST /v1/bookings/{id}/reschedule`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleBooking {
    /// The new slot.
    pub slot_id: String,
}

async fn agent_calendar(state: &AppState, agent_id: &str) -> Result<(AgentRecord, Arc<dyn Calendar>), ApiError> {
    let id = Uuid::parse_str(agent_id).map_err(|_| ApiError::NotFound("agent"))?;
    let agent = state.store.get_agent(id).await?.ok_or(ApiError::NotFound("agent"))?;
    let calendar = state.calendars.calendar(&agent)?;
    Ok((agent, calendar))
}

/// Lists free slots of an agent's calendar.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/slots",
    tag = "scheduling",
    params(("id" = Uuid, Path, description = "Agent id"), SlotQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = SlotList),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, description = "the calendar failed", body = ErrorBody),
        (status = 503, description = "no usable calendar, or rate limited", body = ErrorBody)
    )
)]
pub async fn list_slots(
    _access: ReadAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<SlotQuery>,
) -> Result<Json<SlotList>, ApiError> {
    let range_days = query.range_days.unwrap_or(DEFAULT_RANGE_DAYS);
    if !(1..=MAX_RANGE_DAYS).contains(&range_days) {
        return Err(ApiError::validation("range_days", format!("must be between 1 and {MAX_RANGE_DAYS}")));
    }
    let (agent, calendar) = agent_calendar(&state, &id).await?;
    let (slots, message) = match calendar.list_available_slots(range_days).await {
        Ok(slots) => (slots.iter().map(SlotView::from).collect(), None),
        Err(CalendarError::NoSlots) => (Vec::new(), Some(CalendarError::NoSlots.to_string())),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(SlotList { timezone: agent.timezone, slots, message }))
}

/// Books a slot. Send `Idempotency-Key` to make retries safe: the same key books once.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/bookings",
    tag = "scheduling",
    params(
        ("id" = Uuid, Path, description = "Agent id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Client-chosen key; a retry with the same key returns the same booking")
    ),
    request_body = CreateBooking,
    security(("bearer" = [])),
    responses(
        (status = 201, body = BookingRecord),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "slot taken; `alternatives` lists the nearest free slots", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)
    )
)]
pub async fn create_booking(
    _access: WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<CreateBooking>,
) -> Result<(StatusCode, Json<BookingRecord>), ApiError> {
    let (agent, calendar) = agent_calendar(&state, &id).await?;
    let idempotency_key = match headers.get("idempotency-key") {
        Some(value) => {
            let key = value.to_str().map(str::trim).unwrap_or_default();
            if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
                return Err(ApiError::validation(
                    "Idempotency-Key",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY} characters"),
                ));
            }
            Some(key.to_string())
        }
        None => None,
    };
    if input.notes.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTES) {
        return Err(ApiError::validation("notes", format!("must be at most {MAX_NOTES} characters")));
    }
    let attendee =
        Attendee::new(&input.attendee_name, input.attendee_email.as_deref(), input.attendee_phone.as_deref())
            .inspect_err(|e| crate::metrics::booking(&agent.name, calendar.kind().as_str(), e.outcome()))?;
    let request = BookingRequest {
        slot_id: SlotId::from(input.slot_id),
        attendee,
        notes: input.notes.filter(|n| !n.trim().is_empty()),
        idempotency_key,
        source_call_id: None,
    };
    let booking = calendar.schedule(request).await?;
    tracing::info!(agent_id = %agent.id, booking_id = %booking.id, start = %booking.start_at, "booked");
    Ok((StatusCode::CREATED, Json(booking)))
}

async fn booking_calendar(state: &AppState, booking_id: &str) -> Result<(Uuid, Arc<dyn Calendar>), ApiError> {
    let id = Uuid::parse_str(booking_id).map_err(|_| ApiError::NotFound("booking"))?;
    let booking = state.store.get_booking(id).await?.ok_or(ApiError::NotFound("booking"))?;
    let agent_id = booking.agent_id.ok_or(ApiError::Conflict {
        message: "the booking's agent was deleted; its calendar cannot be changed from here".into(),
        field: None,
    })?;
    let agent = state.store.get_agent(agent_id).await?.ok_or(ApiError::NotFound("agent"))?;
    Ok((id, state.calendars.calendar(&agent)?))
}

/// Cancels a booking on its calendar.
#[utoipa::path(
    post,
    path = "/v1/bookings/{id}/cancel",
    tag = "scheduling",
    params(("id" = Uuid, Path, description = "Booking id")),
    request_body = CancelBooking,
    security(("bearer" = [])),
    responses(
        (status = 200, body = BookingRecord),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "already cancelled or rescheduled", body = ErrorBody),
        (status = 502, body = ErrorBody)
    )
)]
pub async fn cancel_booking(
    _access: WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CancelBooking>,
) -> Result<Json<BookingRecord>, ApiError> {
    if input.reason.as_ref().is_some_and(|r| r.chars().count() > MAX_NOTES) {
        return Err(ApiError::validation("reason", format!("must be at most {MAX_NOTES} characters")));
    }
    let (id, calendar) = booking_calendar(&state, &id).await?;
    let booking = calendar.cancel(id, input.reason.filter(|r| !r.trim().is_empty())).await?;
    tracing::info!(booking_id = %booking.id, "booking cancelled");
    Ok(Json(booking))
}

/// Moves a booking to another slot: the old booking becomes `rescheduled`, the new one is returned.
#[utoipa::path(
    post,
    path = "/v1/bookings/{id}/reschedule",
    tag = "scheduling",
    params(("id" = Uuid, Path, description = "Booking id")),
    request_body = RescheduleBooking,
    security(("bearer" = [])),
    responses(
        (status = 201, body = BookingRecord),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "slot taken (with alternatives) or booking not active", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody)
    )
)]
pub async fn reschedule_booking(
    _access: WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RescheduleBooking>,
) -> Result<(StatusCode, Json<BookingRecord>), ApiError> {
    let (id, calendar) = booking_calendar(&state, &id).await?;
    let booking = calendar.reschedule(id, &SlotId::from(input.slot_id)).await?;
    tracing::info!(from = %id, booking_id = %booking.id, start = %booking.start_at, "booking rescheduled");
    Ok((StatusCode::CREATED, Json(booking)))
}
