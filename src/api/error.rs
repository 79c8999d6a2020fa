//! One error type for the HTTP API and its one JSON shape:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.
//!
//! Internal failures are logged with their cause and answered with a generic message: no stack trace, SQL
//! or secret ever reaches a client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::calendar::{CalendarError, Slot};
use crate::storage::StoreError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`validation_failed`, `not_found`, `conflict`, ...).
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault (dotted path), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `slot_taken`: the nearest free slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternatives: Option<Vec<SlotView>>,
}

/// A free slot as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlotView {
    /// Opaque, stable id to book it with.
    pub id: String,
    /// Start, UTC.
    pub start: chrono::DateTime<chrono::Utc>,
    /// End, UTC.
    pub end: chrono::DateTime<chrono::Utc>,
    /// Start in the agent's time zone, RFC 3339 with its offset.
    pub local: String,
}

impl From<&Slot> for SlotView {
    fn from(slot: &Slot) -> Self {
        Self {
            id: slot.id.to_string(),
            start: slot.start,
            end: slot.end,
            local: slot.local_start().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        }
    }
}

/// Every way an API request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or an unknown bearer token (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The token's scope does not allow this (403).
    #[error("this token's scope does not allow {0}")]
    Forbidden(&'static str),
    /// The addressed resource does not exist (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
        /// The field at fault.
        field: Option<String>,
    },
    /// The body or query is well-formed but a field is invalid (422).
    #[error("{field}: {message}")]
    Validation {
        /// Dotted path of the field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The body is not JSON at all (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is not `application/json` (415).
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// Something failed inside slotline (500); the cause is logged, not returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// The database cannot be reached (503).
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A feature this request needs is not configured (503).
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    /// A calendar operation failed; the message is the calendar's own sentence.
    #[error("{0}")]
    Calendar(#[from] CalendarError),
    /// The request ran longer than `api.request_timeout_secs` (408).
    #[error("the request took longer than {0} s")]
    TimedOut(u64),
    /// `api.max_concurrent_requests` requests are already being served (503).
    #[error("too many requests at once; retry shortly")]
    Overloaded,
}

impl ApiError {
    /// A 422 naming `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), message: message.into() }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            Self::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::NotConfigured(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
            Self::TimedOut(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::Calendar(e) => match e {
                CalendarError::NotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "calendar_not_configured"),
                CalendarError::InitFailed(_) => (StatusCode::BAD_GATEWAY, "calendar_init_failed"),
                CalendarError::NoSlots => (StatusCode::NOT_FOUND, "no_slots"),
                CalendarError::SlotTaken { .. } => (StatusCode::CONFLICT, "slot_taken"),
                CalendarError::UnknownSlot(_) | CalendarError::InvalidAttendee { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
                }
                CalendarError::BookingNotFound => (StatusCode::NOT_FOUND, "not_found"),
                CalendarError::NotActive => (StatusCode::CONFLICT, "booking_not_active"),
                CalendarError::Unavailable(_) => (StatusCode::BAD_GATEWAY, "calendar_unavailable"),
                CalendarError::RateLimited { .. } => (StatusCode::SERVICE_UNAVAILABLE, "calendar_rate_limited"),
                CalendarError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { what } => {
                ApiError::Conflict { message: format!("{what} already exists"), field: None }
            }
            StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => ApiError::Unavailable(error.into()),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(cause) | Self::Unavailable(cause) = &self {
            tracing::error!(error = %format!("{cause:#}"), "request failed");
        }
        if let Self::Calendar(CalendarError::Storage(cause)) = &self {
            tracing::error!(error = %cause, "calendar storage failed");
        }
        let field = match &self {
            Self::Validation { field, .. } => Some(field.clone()),
            Self::Conflict { field, .. } => field.clone(),
            Self::Calendar(CalendarError::UnknownSlot(_)) => Some("slot_id".to_string()),
            Self::Calendar(CalendarError::InvalidAttendee { field, .. }) => Some((*field).to_string()),
            _ => None,
        };
        let alternatives = match &self {
            Self::Calendar(CalendarError::SlotTaken { alternatives }) => {
                Some(alternatives.iter().map(SlotView::from).collect())
            }
            _ => None,
        };
        let retry_after = match &self {
            Self::Calendar(CalendarError::RateLimited { retry_after }) => Some(retry_after.as_secs().max(1)),
            Self::Overloaded => Some(1),
            _ => None,
        };
        let message = match &self {
            Self::Validation { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let mut response =
            (status, Json(ErrorBody { error: ErrorDetail { code, message, field, alternatives } })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
