//! Tokens slotline signs with the LiveKit API secret.
//!
//! - [`agent_join_token`]: lets a browser or app caller join a room with an agent: its room configuration
//!   dispatches slotline's worker, and both the dispatch metadata and the participant metadata carry the
//!   agent id and the agent's non-secret calendar settings ([`AgentMetadata`]). The Cal.com key never
//!   leaves slotline: the worker reads it from the database.
//! - [`worker_token`]: the worker's own token for the `/agent` socket (the `agent` video grant).

use std::time::Duration;

use chrono::{DateTime, Utc};
use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_protocol as proto;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{LivekitError, LivekitSettings};
use crate::storage::AgentRecord;

/// Longest join token slotline signs.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Join token lifetime when none is asked for.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The calendar settings a room may know of (never the Cal.com key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarMetadata {
    /// `calcom`, `builtin` or `demo`.
    pub kind: String,
    /// Cal.com event type slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type_slug: Option<String>,
    /// The agent's IANA time zone.
    pub timezone: String,
    /// Length of one appointment.
    pub slot_minutes: i32,
}

/// The metadata of an agent's room dispatch and of its join tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMetadata {
    /// The agent.
    pub agent_id: Uuid,
    /// Its calendar settings.
    pub calendar: CalendarMetadata,
}

impl AgentMetadata {
    /// The metadata of `agent`.
    pub fn of(agent: &AgentRecord) -> Self {
        Self {
            agent_id: agent.id,
            calendar: CalendarMetadata {
                kind: agent.calendar.kind.as_str().to_string(),
                event_type_slug: agent.calendar.event_type_slug.clone(),
                timezone: agent.timezone.clone(),
                slot_minutes: agent.calendar.slot_minutes,
            },
        }
    }
}

/// A signed join token and what it grants.
#[derive(Debug, Clone)]
pub struct JoinToken {
    /// The JWT.
    pub token: String,
    /// The room it joins.
    pub room: String,
    /// The participant identity.
    pub identity: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// A token for `identity` to join `room` (a new room name when `None`) and talk with `agent`.
pub fn agent_join_token(
    settings: &LivekitSettings,
    agent: &AgentRecord,
    identity: &str,
    name: Option<&str>,
    room: Option<&str>,
    ttl: Duration,
) -> Result<JoinToken, LivekitError> {
    let room = match room {
        Some(room) => room.to_string(),
        None => format!("{}web-{}", settings.config.room_prefix, Uuid::new_v4().simple()),
    };
    let metadata = serde_json::to_string(&AgentMetadata::of(agent)).unwrap_or_default();
    let room_config = proto::RoomConfiguration {
        agents: vec![proto::RoomAgentDispatch {
            agent_name: settings.config.agent_name.clone(),
            metadata: metadata.clone(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let grants = VideoGrants {
        room_join: true,
        room: room.clone(),
        can_publish: Some(true),
        can_subscribe: Some(true),
        can_publish_data: Some(true),
        ..Default::default()
    };
    let mut token = AccessToken::with_api_key(&settings.api_key, settings.api_secret.expose())
        .with_identity(identity)
        .with_grants(grants)
        .with_metadata(&metadata)
        .with_room_config(room_config)
        .with_ttl(ttl);
    if let Some(name) = name {
        token = token.with_name(name);
    }
    let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
    Ok(JoinToken { token: token.to_jwt()?, room, identity: identity.to_string(), expires_at })
}

/// The worker's token for the agent socket.
pub fn worker_token(settings: &LivekitSettings) -> Result<String, LivekitError> {
    let grants = VideoGrants { agent: true, ..Default::default() };
    Ok(AccessToken::with_api_key(&settings.api_key, settings.api_secret.expose())
        .with_grants(grants)
        .with_ttl(Duration::from_secs(600))
        .to_jwt()?)
}
