//! One module per API resource.

pub mod agents;
pub mod bookings;
pub mod calls;
pub mod chats;
pub mod health;
pub mod livekit;
pub mod me;
pub mod numbers;
pub mod scheduling;
pub mod stats;
pub mod webhooks;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::ApiError;
use crate::storage::RecordFilter;

/// Most rows a list endpoint returns.
const MAX_LIMIT: i64 = 1000;
/// Rows returned when `limit` is not given.
const DEFAULT_LIMIT: i64 = 100;

/// Filters shared by `GET /v1/bookings` and `GET /v1/calls`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordQuery {
    /// Only this agent.
    pub agent_id: Option<Uuid>,
    /// Starting at or after this instant (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Starting before this instant (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// At most this many rows (1–1000, default 100).
    pub limit: Option<i64>,
}

impl RecordQuery {
    fn into_filter(self) -> Result<RecordFilter, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::validation("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if to <= from {
                return Err(ApiError::validation("to", "must be after `from`"));
            }
        }
        Ok(RecordFilter { agent_id: self.agent_id, from: self.from, to: self.to, limit })
    }
}
