//! `GET /v1/calls`: calls handled by the gateway.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::RecordQuery;
use crate::api::auth::ReadAccess;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::ApiQuery;
use crate::api::AppState;
use crate::storage::CallRecord;

/// A page of calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallList {
    /// Newest first.
    pub calls: Vec<CallRecord>,
}

/// Lists calls, filtered by agent and start time.
#[utoipa::path(
    get,
    path = "/v1/calls",
    tag = "calls",
    params(RecordQuery),
    security(("bearer" = [])),
    responses((status = 200, body = CallList), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
pub async fn list_calls(
    _access: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RecordQuery>,
) -> Result<Json<CallList>, ApiError> {
    let calls = state.store.list_calls(&query.into_filter()?).await?;
    Ok(Json(CallList { calls }))
}
