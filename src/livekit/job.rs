//! What an accepted job does: find its agent, then run.
//!
//! A job names a room. Its agent is, in order: the `agent_id` of the dispatch metadata (per-number rules
//! and agent join tokens put it there), else the route of the SIP participant's dialed number
//! (`sip.trunkPhoneNumber`, the way the shared rule works and the fallback LiveKit's own per-number
//! dispatch needs, livekit/agents#5847). A job whose agent cannot be found ends as failed with a log line
//! and `slotline_livekit_jobs_total{result="failed"}` labelled by [`JobError::reason`].
//!
//! A [`JobRunner`] then runs the job until it ends. Without room media ([`RoomWatch`]) the job holds its
//! place in the worker's capacity for as long as the room exists, so LiveKit's load balancing sees the
//! worker's real load.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use livekit_protocol as proto;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::sync::DispatchMetadata;
use super::{LivekitError, LivekitSettings};
use crate::phone;
use crate::storage::{AgentRecord, Store};

/// How long a job waits for the SIP participant to show up in its room.
const SIP_PARTICIPANT_WAIT: Duration = Duration::from_secs(10);
/// How often a room is looked at while waiting for a participant or for the room's end.
const ROOM_POLL: Duration = Duration::from_millis(500);

/// SIP participant attribute: the number the caller dialed.
pub const ATTR_DIALED: &str = "sip.trunkPhoneNumber";
/// SIP participant attribute: the caller's number.
pub const ATTR_CALLER: &str = "sip.phoneNumber";
/// SIP participant attribute: LiveKit SIP's call id.
pub const ATTR_CALL_ID: &str = "sip.callID";

/// Why a job could not run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The dialed number routes to no agent.
    #[error("no agent answers the dialed number")]
    UnknownNumber,
    /// Neither dispatch metadata nor a SIP participant names the agent.
    #[error("the job names no agent and no SIP participant joined its room")]
    NoAgent,
    /// The agent was deleted.
    #[error("the job's agent no longer exists")]
    AgentGone,
    /// Nobody to talk to joined the job's room.
    #[error("no caller joined the job's room")]
    NoCaller,
    /// LiveKit or the database failed.
    #[error(transparent)]
    Livekit(#[from] LivekitError),
}

impl JobError {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            JobError::UnknownNumber => "unknown_number",
            JobError::NoAgent => "no_agent",
            JobError::AgentGone => "agent_gone",
            JobError::NoCaller => "no_caller",
            JobError::Livekit(LivekitError::Media(_)) => "media_error",
            JobError::Livekit(_) => "livekit_error",
        }
    }
}

impl From<crate::storage::StoreError> for JobError {
    fn from(e: crate::storage::StoreError) -> Self {
        JobError::Livekit(e.into())
    }
}

/// A job the worker accepted.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// LiveKit's job id.
    pub job_id: String,
    /// The room.
    pub room: String,
    /// The dispatch metadata.
    pub metadata: String,
    /// The token to join the room with.
    pub token: String,
    /// The server URL to join (the worker's server unless the assignment names another).
    pub url: String,
}

impl Assignment {
    /// The assignment LiveKit sent.
    pub fn from_proto(assignment: &proto::JobAssignment, default_url: &str) -> Option<Self> {
        let job = assignment.job.as_ref()?;
        Some(Self {
            job_id: job.id.clone(),
            room: job.room.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
            metadata: job.metadata.clone(),
            token: assignment.token.clone(),
            url: assignment.url.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| default_url.to_string()),
        })
    }
}

/// The caller side of a job's room, when a SIP participant is in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipCaller {
    /// The participant's identity.
    pub identity: String,
    /// The dialed number (`sip.trunkPhoneNumber`).
    pub dialed: String,
    /// The caller's number (`sip.phoneNumber`; empty when hidden).
    pub caller: String,
    /// LiveKit SIP's call id.
    pub call_id: String,
}

impl SipCaller {
    /// The caller described by a SIP participant's attributes.
    pub fn from_attributes(identity: &str, attributes: &HashMap<String, String>) -> Self {
        let get = |key: &str| attributes.get(key).cloned().unwrap_or_default();
        Self {
            identity: identity.to_string(),
            dialed: get(ATTR_DIALED),
            caller: get(ATTR_CALLER),
            call_id: get(ATTR_CALL_ID),
        }
    }
}

/// A job with its agent.
#[derive(Debug, Clone)]
pub struct ResolvedJob {
    /// The assignment.
    pub assignment: Assignment,
    /// The agent that answers.
    pub agent: AgentRecord,
    /// The SIP caller, when the room has one.
    pub sip: Option<SipCaller>,
}

/// Finds the agent of a job (see the module doc).
pub async fn resolve(
    settings: &LivekitSettings,
    store: &dyn Store,
    assignment: Assignment,
) -> Result<ResolvedJob, JobError> {
    let from_metadata = serde_json::from_str::<DispatchMetadata>(&assignment.metadata).ok().and_then(|m| m.agent_id);
    let (agent_id, sip) = match from_metadata {
        Some(agent_id) => (agent_id, None),
        None => {
            let sip = wait_for_sip_participant(settings, &assignment.room).await?.ok_or(JobError::NoAgent)?;
            (route(store, &sip.dialed).await?, Some(sip))
        }
    };
    let agent = store.get_agent(agent_id).await?.ok_or(JobError::AgentGone)?;
    Ok(ResolvedJob { assignment, agent, sip })
}

async fn route(store: &dyn Store, dialed: &str) -> Result<Uuid, JobError> {
    let number = phone::normalize(dialed).map_err(|_| JobError::UnknownNumber)?;
    store.route_number(number.as_str()).await?.ok_or(JobError::UnknownNumber)
}

/// The SIP participant of `room`, waiting a little for it to join.
pub async fn wait_for_sip_participant(
    settings: &LivekitSettings,
    room: &str,
) -> Result<Option<SipCaller>, LivekitError> {
    let rooms = settings.rooms();
    let deadline = tokio::time::Instant::now() + SIP_PARTICIPANT_WAIT;
    loop {
        let participants = rooms.list_participants(room).await?;
        let sip = participants.iter().find(|p| p.kind == proto::participant_info::Kind::Sip as i32);
        if let Some(p) = sip {
            return Ok(Some(SipCaller::from_attributes(&p.identity, &p.attributes)));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(ROOM_POLL).await;
    }
}

/// Runs accepted jobs.
#[async_trait]
pub trait JobRunner: Send + Sync {
    /// Runs `job` until it ends or `cancel` fires (LiveKit terminated the job, or the worker stops).
    async fn run(&self, job: ResolvedJob, cancel: CancellationToken) -> Result<(), JobError>;
}

/// Holds a job for as long as its room exists (the runner when the worker has no room media).
pub struct RoomWatch {
    settings: Arc<LivekitSettings>,
}

impl RoomWatch {
    /// A runner that watches rooms through the room service.
    pub fn new(settings: Arc<LivekitSettings>) -> Self {
        Self { settings }
    }
}

#[async_trait]
impl JobRunner for RoomWatch {
    async fn run(&self, job: ResolvedJob, cancel: CancellationToken) -> Result<(), JobError> {
        tracing::info!(job_id = %job.assignment.job_id, agent_id = %job.agent.id,
            "job running without room media until its room ends");
        let rooms = self.settings.rooms();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(ROOM_POLL * 4) => {}
            }
            match rooms.list_rooms(vec![job.assignment.room.clone()]).await {
                Ok(found) if found.is_empty() => return Ok(()),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "cannot look at the job's room"),
            }
        }
    }
}
