//! The `calls` row of a call that came through LiveKit: written once per room instance (its sid) by
//! whichever learns of the call first (the webhook of the SIP participant joining, or the worker's job),
//! ended once by whichever learns of its end first. Rows look like those of direct SIP calls, with
//! transport `livekit`, the room's name kept, and LiveKit SIP's call id as the SIP call id.

use uuid::Uuid;

use super::job::SipCaller;
use crate::metrics;
use crate::phone;
use crate::storage::{self, CallRecord, Store, StoreError};

/// The room's call, recorded now unless it already is. `agent_id` is the agent answering when the caller
/// knows it (the worker's job); otherwise the dialed number's route.
pub async fn start(
    store: &dyn Store,
    room: &str,
    room_sid: &str,
    caller: &SipCaller,
    agent_id: Option<Uuid>,
) -> Result<CallRecord, StoreError> {
    if let Some(existing) = store.find_room_call(room_sid).await? {
        return Ok(existing);
    }
    let dialed = phone::normalize(&caller.dialed).map(|n| n.as_str().to_string()).unwrap_or(caller.dialed.clone());
    let agent_id = match agent_id {
        Some(id) => Some(id),
        None if dialed.is_empty() => None,
        None => store.route_number(&dialed).await?,
    };
    let now = storage::now();
    let record = CallRecord {
        id: Uuid::new_v4(),
        sip_call_id: if caller.call_id.is_empty() { room.to_string() } else { caller.call_id.clone() },
        agent_id,
        dialed,
        caller: caller.caller.clone(),
        transport: "livekit".into(),
        started_at: now,
        answered_at: Some(now),
        ended_at: None,
        end_reason: None,
        sip_status: None,
        room: Some(room.to_string()),
        room_sid: Some(room_sid.to_string()),
    };
    let stored = store.insert_room_call(&record).await?;
    if stored.id == record.id {
        metrics::livekit_call("started");
        tracing::info!(call_id = %stored.id, agent_id = ?stored.agent_id, "livekit call recorded");
    }
    Ok(stored)
}

/// Ends the room's call with `reason` if it is still open; whether it was.
pub async fn end(store: &dyn Store, room_sid: &str, reason: &str) -> Result<bool, StoreError> {
    let Some(mut call) = store.find_room_call(room_sid).await? else { return Ok(false) };
    if call.ended_at.is_some() {
        return Ok(false);
    }
    call.ended_at = Some(storage::now());
    call.end_reason = Some(reason.to_string());
    store.update_call(&call).await?;
    metrics::livekit_call("ended");
    tracing::info!(call_id = %call.id, reason, "livekit call ended");
    Ok(true)
}
