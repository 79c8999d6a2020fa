//! `GET /v1/stats/daily`: calls and bookings per day and agent, for the console's plot (Grafana has the
//! full picture from `/metrics`; this is what the database remembers).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use chrono::{Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::auth::ReadAccess;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::ApiQuery;
use crate::api::AppState;
use crate::storage::RecordFilter;

const MAX_DAYS: u32 = 92;
const DEFAULT_DAYS: u32 = 14;
/// Records read per kind; more than a console's plot ever needs.
const MAX_RECORDS: i64 = 100_000;

/// Query of `GET /v1/stats/daily`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// Only this agent.
    pub agent_id: Option<Uuid>,
    /// Number of days up to and including today (UTC), 1–92, default 14.
    pub days: Option<u32>,
}

/// One agent's counts, one entry per day of `DailyStats::days`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDaily {
    /// The agent (absent for records of deleted agents).
    pub agent_id: Option<Uuid>,
    /// Its name (`(deleted agent)` when gone).
    pub agent_name: String,
    /// Calls that started on each day.
    pub calls: Vec<u64>,
    /// Bookings made on each day (by creation, whatever their appointment date).
    pub bookings: Vec<u64>,
}

/// Calls and bookings per UTC day and agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyStats {
    /// The days (UTC, `YYYY-MM-DD`), oldest first.
    pub days: Vec<NaiveDate>,
    /// One series per agent (every agent, and deleted agents with records in the range), by name.
    pub agents: Vec<AgentDaily>,
}

/// Calls and bookings per day and agent over the last `days` days.
#[utoipa::path(
    get,
    path = "/v1/stats/daily",
    tag = "calls",
    params(DailyQuery),
    security(("bearer" = [])),
    responses((status = 200, body = DailyStats), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
pub async fn daily(
    _access: ReadAccess,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DailyQuery>,
) -> Result<Json<DailyStats>, ApiError> {
    let count = query.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&count) {
        return Err(ApiError::validation("days", format!("must be between 1 and {MAX_DAYS}")));
    }
    let today = Utc::now().date_naive();
    let first = today.checked_sub_days(Days::new(u64::from(count - 1))).unwrap_or(today);
    let days: Vec<NaiveDate> = first.iter_days().take(count as usize).collect();
    let from = first.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let index = |date: NaiveDate| usize::try_from((date - first).num_days()).ok().filter(|i| *i < days.len());

    let agents = state.store.list_agents().await?;
    let mut series: BTreeMap<Option<Uuid>, AgentDaily> = BTreeMap::new();
    let empty = |agent_id: Option<Uuid>| {
        let name = agent_id
            .and_then(|id| agents.iter().find(|a| a.id == id))
            .map_or_else(|| "(deleted agent)".to_string(), |a| a.name.clone());
        AgentDaily { agent_id, agent_name: name, calls: vec![0; days.len()], bookings: vec![0; days.len()] }
    };
    let filter = RecordFilter { agent_id: query.agent_id, from, to: None, limit: MAX_RECORDS };
    for call in state.store.list_calls(&filter).await? {
        if let Some(i) = index(call.started_at.date_naive()) {
            series.entry(call.agent_id).or_insert_with(|| empty(call.agent_id)).calls[i] += 1;
        }
    }
    // A booking made in the range starts after it began, so `from` on the start time finds them all.
    for booking in state.store.list_bookings(&filter).await? {
        if let Some(i) = index(booking.created_at.date_naive()) {
            series.entry(booking.agent_id).or_insert_with(|| empty(booking.agent_id)).bookings[i] += 1;
        }
    }
    for agent in agents.iter().filter(|a| query.agent_id.is_none_or(|id| id == a.id)) {
        series.entry(Some(agent.id)).or_insert_with(|| empty(Some(agent.id)));
    }
    let mut agents: Vec<AgentDaily> = series.into_values().collect();
    agents.sort_by(|a, b| a.agent_name.cmp(&b.agent_name));
    Ok(Json(DailyStats { days, agents }))
}
