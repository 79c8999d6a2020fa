//! Calendars an agent books into. This module holds what the rest of slotline needs to know about an
//! agent's calendar configuration; the `Calendar` trait and its Cal.com, built-in and demo implementations
//! build on it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Associated data that binds a sealed Cal.com API key to its agent (see `storage::crypto`).
pub fn calcom_key_context(agent_id: Uuid) -> String {
    format!("agent:{agent_id}:calcom_api_key")
}

/// Which calendar an agent books into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CalendarKind {
    /// Cal.com API v2 with the agent's own API key.
    Calcom,
    /// slotline's own calendar in its database.
    Builtin,
    /// Reproducible random availability, 30-minute slots 09:00–18:00 on weekdays.
    Demo,
}

impl CalendarKind {
    /// The name stored in the database and used in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Calcom => "calcom",
            Self::Builtin => "builtin",
            Self::Demo => "demo",
        }
    }
}

impl std::str::FromStr for CalendarKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "calcom" => Ok(Self::Calcom),
            "builtin" => Ok(Self::Builtin),
            "demo" => Ok(Self::Demo),
            other => Err(format!("unknown calendar kind `{other}`")),
        }
    }
}
