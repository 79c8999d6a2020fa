//! `GET /v1/calls`: calls handled by the gateway; `GET /v1/calls/{id}/transcript`: what was said in one.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::RecordQuery;
use crate::api::auth::ReadAccess;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::ApiQuery;
use crate::api::AppState;
use crate::storage::{CallRecord, TranscriptLine};

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

/// A call's transcript.
#[derive(Debug, Serialize, ToSchema)]
pub struct Transcript {
    /// The call.
    pub call: CallRecord,
    /// Both sides in order (`caller` lines are what speech to text heard).
    pub lines: Vec<TranscriptLine>,
}

/// What was said in a call (kept when `voice.transcripts` is on, for `voice.transcript_retention_days`).
#[utoipa::path(
    get,
    path = "/v1/calls/{id}/transcript",
    tag = "calls",
    params(("id" = Uuid, Path, description = "Call id (the `id` of GET /v1/calls)")),
    security(("bearer" = [])),
    responses((status = 200, body = Transcript), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn get_transcript(
    _access: ReadAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Transcript>, ApiError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("call"))?;
    let call = state.store.get_call(id).await?.ok_or(ApiError::NotFound("call"))?;
    let lines = state.store.list_transcript(id).await?;
    Ok(Json(Transcript { call, lines }))
}
