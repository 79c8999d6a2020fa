//! `/v1/numbers`: which agent answers which dialed number. Numbers in paths are normalised to E.164 with
//! the one normaliser ([`crate::phone`]), so `+1 (555) 010-0100` and `+15550100100` are the same.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::auth::{ReadAccess, WriteAccess};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{ApiJson, ApiQuery};
use crate::api::AppState;
use crate::phone::{self, E164};
use crate::storage::PhoneNumberRecord;

/// Body of `PUT /v1/numbers/{e164}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutNumber {
    /// The agent that answers this number.
    pub agent_id: Uuid,
}

/// A routed number.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberView {
    /// E.164.
    pub e164: String,
    /// The agent answering it.
    pub agent_id: Uuid,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// All numbers.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberList {
    /// By number.
    pub numbers: Vec<NumberView>,
}

/// Query of `GET /v1/numbers`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NumberQuery {
    /// Only this agent's numbers.
    pub agent_id: Option<Uuid>,
}

impl From<PhoneNumberRecord> for NumberView {
    fn from(record: PhoneNumberRecord) -> Self {
        Self {
            e164: record.e164,
            agent_id: record.agent_id,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

fn normalize(raw: &str) -> Result<E164, ApiError> {
    phone::normalize(raw).map_err(|e| ApiError::validation("e164", e.to_string()))
}

/// Lists numbers.
#[utoipa::path(
    get,
    path = "/v1/numbers",
    tag = "numbers",
    params(NumberQuery),
    security(("bearer" = [])),
    responses((status = 200, body = NumberList), (status = 401, body = ErrorBody))
)]
pub async fn list_numbers(
    _access: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<NumberQuery>,
) -> Result<Json<NumberList>, ApiError> {
    let numbers = state.store.list_numbers(query.agent_id).await?;
    Ok(Json(NumberList { numbers: numbers.into_iter().map(NumberView::from).collect() }))
}

/// One number.
#[utoipa::path(
    get,
    path = "/v1/numbers/{e164}",
    tag = "numbers",
    params(("e164" = String, Path, description = "Phone number, E.164 or any common notation")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = NumberView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn get_number(
    _access: ReadAccess,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<NumberView>, ApiError> {
    let number = normalize(&raw)?;
    let record = state.store.get_number(number.as_str()).await?.ok_or(ApiError::NotFound("number"))?;
    Ok(Json(record.into()))
}

/// Routes a number to an agent (201 when new, 200 when it moved or stayed).
#[utoipa::path(
    put,
    path = "/v1/numbers/{e164}",
    tag = "numbers",
    params(("e164" = String, Path, description = "Phone number, E.164 or any common notation")),
    request_body = PutNumber,
    security(("bearer" = [])),
    responses(
        (status = 200, body = NumberView),
        (status = 201, body = NumberView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "not a phone number, or no such agent", body = ErrorBody)
    )
)]
pub async fn put_number(
    _access: WriteAccess,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ApiJson(input): ApiJson<PutNumber>,
) -> Result<(StatusCode, Json<NumberView>), ApiError> {
    let number = normalize(&raw)?;
    if state.store.get_agent(input.agent_id).await?.is_none() {
        return Err(ApiError::validation("agent_id", "no agent with this id"));
    }
    let (record, created) = state.store.put_number(number.as_str(), input.agent_id).await.map_err(|e| match e {
        crate::storage::StoreError::MissingReference { .. } => {
            ApiError::validation("agent_id", "no agent with this id")
        }
        other => other.into(),
    })?;
    tracing::info!(number = %number, agent_id = %input.agent_id, created, "number routed");
    state.routing_changed.notify_one();
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(record.into())))
}

/// Stops routing a number.
#[utoipa::path(
    delete,
    path = "/v1/numbers/{e164}",
    tag = "numbers",
    params(("e164" = String, Path, description = "Phone number, E.164 or any common notation")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn delete_number(
    _access: WriteAccess,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let number = normalize(&raw)?;
    if state.store.delete_number(number.as_str()).await? {
        tracing::info!(number = %number, "number deleted");
        state.routing_changed.notify_one();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("number"))
    }
}
