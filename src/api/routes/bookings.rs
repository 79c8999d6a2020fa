//! `GET /v1/bookings`: bookings recorded by slotline, whatever the calendar.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::RecordQuery;
use crate::api::auth::ReadAccess;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::ApiQuery;
use crate::api::AppState;
use crate::storage::BookingRecord;

/// A page of bookings.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingList {
    /// Soonest first.
    pub bookings: Vec<BookingRecord>,
}

/// Lists bookings, filtered by agent and start time.
#[utoipa::path(
    get,
    path = "/v1/bookings",
    tag = "bookings",
    params(RecordQuery),
    security(("bearer" = [])),
    responses((status = 200, body = BookingList), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
pub async fn list_bookings(
    _access: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RecordQuery>,
) -> Result<Json<BookingList>, ApiError> {
    let bookings = state.store.list_bookings(&query.into_filter()?).await?;
    Ok(Json(BookingList { bookings }))
}
