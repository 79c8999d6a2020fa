//! The `calls` rows of direct SIP calls: written in order by one writer task and never awaited by the
//! core, so a slow or locked database delays rows, not signalling.

use super::*;

/// Call records waiting for the writer task; when it falls this far behind, records are dropped (and
/// counted) rather than the core waiting for the database.
pub(super) const RECORD_QUEUE: usize = 8192;

/// What to do once a call's row is written (or given up): start its agent, whose transcript lines and
/// bookings point at the row.
pub(super) type Then = Box<dyn FnOnce() + Send>;

/// A write to the `calls` table.
pub(super) enum RecordWrite {
    Insert(CallRecord, Option<Then>),
    Update(CallRecord),
}

/// The `calls` table as the core sees it: writes are queued for one writer task, in order, and never
/// awaited, so a slow or locked database delays rows, not signalling.
pub(super) struct CallRecords {
    queue: mpsc::Sender<RecordWrite>,
}

impl CallRecords {
    /// Starts the writer; it ends once the `CallRecords` is dropped and the queue is written.
    pub(super) fn start(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, mut writes) = mpsc::channel(RECORD_QUEUE);
        let writer = tokio::spawn(async move {
            while let Some(write) = writes.recv().await {
                let (result, record, then) = match write {
                    RecordWrite::Insert(record, then) => (store.insert_call(&record).await, record, then),
                    RecordWrite::Update(record) => (store.update_call(&record).await, record, None),
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, call_id = %record.sip_call_id, "cannot record the call");
                }
                if let Some(then) = then {
                    then();
                }
            }
        });
        (Self { queue }, writer)
    }

    pub(super) fn insert(&self, record: CallRecord) {
        self.push(RecordWrite::Insert(record, None));
    }

    /// Inserts `record`, then runs `then` (at once when the record cannot be queued).
    pub(super) fn insert_then(&self, record: CallRecord, then: Then) {
        self.push(RecordWrite::Insert(record, Some(then)));
    }

    pub(super) fn update(&self, record: CallRecord) {
        self.push(RecordWrite::Update(record));
    }

    pub(super) fn push(&self, write: RecordWrite) {
        if let Err(e) = self.queue.try_send(write) {
            metrics::call_record_dropped();
            tracing::error!("call records queue full (the database is stalled); a record is dropped");
            let (mpsc::error::TrySendError::Full(write) | mpsc::error::TrySendError::Closed(write)) = e;
            if let RecordWrite::Insert(_, Some(then)) = write {
                then();
            }
        }
    }
}

/// The caller id: the From URI's user (E.164 when it normalises).
pub(super) fn caller_of(request: &Request) -> String {
    let user = request.headers.get("From").and_then(Request::uri_user).unwrap_or("anonymous");
    phone::normalize(user).map(|n| n.to_string()).unwrap_or_else(|_| user.chars().take(64).collect())
}

/// The `calls` row of an INVITE answered now.
pub(super) fn answered_record(request: &Request, peer: Peer, agent_id: Uuid, dialed: &str) -> CallRecord {
    let now = storage::now();
    CallRecord {
        id: Uuid::new_v4(),
        sip_call_id: request.call_id().to_string(),
        agent_id: Some(agent_id),
        dialed: dialed.to_string(),
        caller: caller_of(request),
        transport: peer.transport.as_str().to_string(),
        started_at: now,
        answered_at: Some(now),
        ended_at: None,
        end_reason: None,
        sip_status: Some(200),
        room: None,
        room_sid: None,
    }
}
