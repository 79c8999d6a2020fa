//! The agent worker: slotline registered on LiveKit's `/agent` WebSocket, taking the rooms LiveKit
//! dispatches to `livekit.agent_name`.
//!
//! The protocol (`livekit_agent.proto`, protobuf in binary frames): the worker sends
//! `RegisterWorkerRequest` (job type room, agent name) and gets its worker id back. For each job LiveKit
//! sends an `AvailabilityRequest`; the worker answers `AvailabilityResponse` (available while its running
//! and promised jobs stay under `livekit.max_jobs` and it is not draining) and, when it said yes, gets a
//! `JobAssignment` with a token for the room. The job runs in its own task ([`super::job`]); its end is
//! reported with `UpdateJobStatus`. `UpdateWorkerStatus` tells LiveKit the worker's load (running jobs /
//! `max_jobs`) and whether it is full, after every change and every few seconds; `JobTermination` ends a
//! job. A lost connection is retried with exponential back-off (jobs keep running meanwhile); SIGTERM
//! drains: no new jobs, running ones get `livekit.drain_timeout_secs` to finish.
//!
//! Metrics (LiveKit's own Python workers export none, livekit/agents#1562 and #6388):
//! `slotline_livekit_jobs_total{result}` (offered, accepted, declined, failed, succeeded),
//! `slotline_livekit_jobs_running`, `slotline_livekit_worker_load`, `slotline_livekit_worker_connected`,
//! `slotline_livekit_worker_registrations_total`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use livekit_protocol as proto;
use prost::Message as _;
use proto::server_message::Message as ServerMsg;
use proto::worker_message::Message as WorkerMsg;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use super::job::{self, Assignment, JobRunner};
use super::{token, LivekitError, LivekitSettings};
use crate::metrics;
use crate::storage::Store;

/// Status reports this often even when nothing changed.
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// Pings this often (the server also pings; this keeps proxies from closing an idle socket).
const PING_EVERY: Duration = Duration::from_secs(15);
/// Wait at most this long for the registration answer.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// A promised job whose assignment does not come within this long frees its place.
const PROMISE_TIMEOUT: Duration = Duration::from_secs(15);
/// Reconnection back-off bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Jobs the worker runs or has promised to run.
#[derive(Default)]
struct Jobs {
    running: HashMap<String, CancellationToken>,
    promised: HashMap<String, Instant>,
    draining: bool,
}

impl Jobs {
    fn taken(&self) -> usize {
        self.running.len() + self.promised.len()
    }

    fn expire_promises(&mut self, now: Instant) {
        self.promised.retain(|_, at| now.duration_since(*at) < PROMISE_TIMEOUT);
    }
}

/// The end of one job, for the status report.
struct JobEnd {
    job_id: String,
    error: Option<String>,
}

/// A registered worker (see the module doc).
pub struct Worker {
    settings: Arc<LivekitSettings>,
    store: Arc<dyn Store>,
    runner: Arc<dyn JobRunner>,
    jobs: Arc<Mutex<Jobs>>,
    ends_tx: mpsc::UnboundedSender<JobEnd>,
    ends: mpsc::UnboundedReceiver<JobEnd>,
}

impl Worker {
    /// A worker that runs its jobs with `runner`.
    pub fn new(settings: Arc<LivekitSettings>, store: Arc<dyn Store>, runner: Arc<dyn JobRunner>) -> Self {
        let (ends_tx, ends) = mpsc::unbounded_channel();
        Self { settings, store, runner, jobs: Arc::default(), ends_tx, ends }
    }

    fn max_jobs(&self) -> usize {
        self.settings.config.max_jobs as usize
    }

    /// Registers and serves until `shutdown`, reconnecting when the connection is lost; then drains.
    pub async fn run(mut self, shutdown: CancellationToken) {
        metrics::livekit_worker_connected(false);
        let mut backoff = BACKOFF_MIN;
        while !shutdown.is_cancelled() {
            match self.serve_connection(&shutdown).await {
                Ok(()) => backoff = BACKOFF_MIN,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "livekit worker disconnected")
                }
            }
            metrics::livekit_worker_connected(false);
            if shutdown.is_cancelled() {
                break;
            }
            let jitter = Duration::from_millis(rand::random::<u64>() % (backoff.as_millis() as u64 / 2 + 1));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff + jitter) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        self.drain_offline().await;
    }

    /// One connection: register, then serve offers and report status until the socket closes. On
    /// `shutdown` it drains while still connected, so LiveKit hears of every job's end.
    async fn serve_connection(&mut self, shutdown: &CancellationToken) -> Result<(), LivekitError> {
        let socket = self.connect().await?;
        let (mut sink, mut stream) = socket.split();
        send(&mut sink, WorkerMsg::Register(self.register_request())).await?;
        let worker_id = tokio::time::timeout(REGISTER_TIMEOUT, async {
            while let Some(message) = stream.next().await {
                if let Some(ServerMsg::Register(r)) = decode(message)? {
                    return Ok(r.worker_id);
                }
            }
            Err(LivekitError::Socket("closed before registration".into()))
        })
        .await
        .map_err(|_| LivekitError::Socket("no registration answer".into()))??;
        tracing::info!(worker_id = %worker_id, agent_name = %self.settings.config.agent_name, "livekit worker registered");
        metrics::livekit_worker_registered();
        metrics::livekit_worker_connected(true);
        send(&mut sink, WorkerMsg::UpdateWorker(self.status())).await?;

        let mut status_tick = tokio::time::interval(STATUS_EVERY);
        let mut ping_tick = tokio::time::interval(PING_EVERY);
        let mut drain_deadline: Option<Instant> = None;
        let mut drain_forced = false;
        loop {
            let drain_sleep = sleep_until(drain_deadline);
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { return Ok(()) };
                    let Some(message) = decode(message)? else { continue };
                    let changes_jobs = matches!(
                        message,
                        ServerMsg::Availability(_) | ServerMsg::Assignment(_) | ServerMsg::Termination(_)
                    );
                    if let Some(reply) = self.on_server_message(message) {
                        send(&mut sink, reply).await?;
                    }
                    if changes_jobs {
                        send(&mut sink, WorkerMsg::UpdateWorker(self.status())).await?;
                    }
                }
                Some(end) = self.ends.recv() => {
                    send(&mut sink, WorkerMsg::UpdateJob(job_status(&end))).await?;
                    send(&mut sink, WorkerMsg::UpdateWorker(self.status())).await?;
                    if drain_deadline.is_some() && self.lock().running.is_empty() {
                        return close(sink).await;
                    }
                }
                _ = status_tick.tick() => {
                    self.lock().expire_promises(Instant::now());
                    send(&mut sink, WorkerMsg::UpdateWorker(self.status())).await?;
                }
                _ = ping_tick.tick() => {
                    let ping = proto::WorkerPing { timestamp: chrono::Utc::now().timestamp_millis() };
                    send(&mut sink, WorkerMsg::Ping(ping)).await?;
                }
                _ = shutdown.cancelled(), if drain_deadline.is_none() => {
                    let running = self.start_draining();
                    tracing::info!(running, "livekit worker draining");
                    send(&mut sink, WorkerMsg::UpdateWorker(self.status())).await?;
                    if running == 0 {
                        return close(sink).await;
                    }
                    drain_deadline = Some(Instant::now() + Duration::from_secs(self.settings.config.drain_timeout_secs));
                }
                _ = drain_sleep => {
                    if drain_forced || self.lock().running.is_empty() {
                        return close(sink).await;
                    }
                    // The jobs get a moment to report their end after being cancelled.
                    self.cancel_all("drain timeout");
                    drain_forced = true;
                    drain_deadline = Some(Instant::now() + Duration::from_secs(2));
                }
            }
        }
    }

    /// Takes no more jobs; the number still running.
    fn start_draining(&self) -> usize {
        let mut jobs = self.lock();
        jobs.draining = true;
        jobs.running.len()
    }

    /// Drains without a connection: waits for running jobs up to the drain timeout, then cancels them.
    async fn drain_offline(&mut self) {
        self.lock().draining = true;
        let deadline = Instant::now() + Duration::from_secs(self.settings.config.drain_timeout_secs);
        while !self.lock().running.is_empty() {
            tokio::select! {
                Some(_) = self.ends.recv() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    self.cancel_all("drain timeout");
                    break;
                }
            }
        }
    }

    fn cancel_all(&self, why: &str) {
        let jobs = self.lock();
        for (job_id, cancel) in &jobs.running {
            tracing::warn!(job_id = %job_id, why, "ending livekit job");
            cancel.cancel();
        }
    }

    async fn connect(
        &self,
    ) -> Result<
        tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
        LivekitError,
    > {
        let url = format!("{}/agent?protocol=1", self.settings.ws_url);
        let mut request = url.into_client_request().map_err(|e| LivekitError::Socket(e.to_string()))?;
        let bearer = format!("Bearer {}", token::worker_token(&self.settings)?);
        let value = bearer.parse().map_err(|_| LivekitError::Socket("token is not a header value".into()))?;
        request.headers_mut().insert("Authorization", value);
        let (socket, _) = tokio::time::timeout(REGISTER_TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| LivekitError::Socket("connect timed out".into()))?
            .map_err(|e| LivekitError::Socket(e.to_string()))?;
        Ok(socket)
    }

    fn register_request(&self) -> proto::RegisterWorkerRequest {
        proto::RegisterWorkerRequest {
            r#type: proto::JobType::JtRoom as i32,
            agent_name: self.settings.config.agent_name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status(&self) -> proto::UpdateWorkerStatus {
        let jobs = self.lock();
        let load = jobs.taken() as f32 / self.max_jobs() as f32;
        let full = jobs.draining || jobs.taken() >= self.max_jobs();
        metrics::livekit_worker_load(jobs.running.len(), load);
        let status = if full { proto::WorkerStatus::WsFull } else { proto::WorkerStatus::WsAvailable };
        proto::UpdateWorkerStatus {
            status: Some(status as i32),
            load: load.min(1.0),
            job_count: jobs.running.len() as u32,
            draining: jobs.draining,
            ..Default::default()
        }
    }

    /// Handles one server message; returns the answer to send, if any.
    fn on_server_message(&mut self, message: ServerMsg) -> Option<WorkerMsg> {
        match message {
            ServerMsg::Availability(request) => {
                let job_id = request.job.as_ref().map(|j| j.id.clone()).unwrap_or_default();
                Some(WorkerMsg::Availability(self.on_offer(job_id)))
            }
            ServerMsg::Assignment(assignment) => {
                match Assignment::from_proto(&assignment, &self.settings.ws_url) {
                    Some(assignment) => self.start_job(assignment),
                    None => tracing::warn!("livekit job assignment without a job"),
                }
                None
            }
            ServerMsg::Termination(termination) => {
                if let Some(cancel) = self.lock().running.get(&termination.job_id) {
                    tracing::info!(job_id = %termination.job_id, "livekit terminated the job");
                    cancel.cancel();
                }
                None
            }
            ServerMsg::Register(_) | ServerMsg::Pong(_) | ServerMsg::GoAway(_) => None,
        }
    }

    /// Says yes to a job offer while there is room, and promises the place to it.
    fn on_offer(&mut self, job_id: String) -> proto::AvailabilityResponse {
        metrics::livekit_job("offered");
        let mut jobs = self.lock();
        jobs.expire_promises(Instant::now());
        let available = !jobs.draining && jobs.taken() < self.max_jobs();
        if available {
            jobs.promised.insert(job_id.clone(), Instant::now());
        } else {
            metrics::livekit_job("declined");
            tracing::info!(job_id = %job_id, running = jobs.running.len(), draining = jobs.draining, "declined a livekit job");
        }
        proto::AvailabilityResponse {
            participant_identity: format!("{}-{job_id}", self.settings.config.agent_name),
            participant_name: self.settings.config.agent_name.clone(),
            job_id,
            available,
            ..Default::default()
        }
    }

    fn start_job(&mut self, assignment: Assignment) {
        let cancel = CancellationToken::new();
        {
            let mut jobs = self.lock();
            jobs.promised.remove(&assignment.job_id);
            jobs.running.insert(assignment.job_id.clone(), cancel.clone());
        }
        metrics::livekit_job("accepted");
        tracing::info!(job_id = %assignment.job_id, "livekit job accepted");
        let (settings, store, runner, jobs, ends) =
            (self.settings.clone(), self.store.clone(), self.runner.clone(), self.jobs.clone(), self.ends_tx.clone());
        tokio::spawn(async move {
            let job_id = assignment.job_id.clone();
            let result = match job::resolve(&settings, store.as_ref(), assignment).await {
                Ok(resolved) => runner.run(resolved, cancel).await,
                Err(e) => Err(e),
            };
            let error = match result {
                Ok(()) => {
                    metrics::livekit_job("succeeded");
                    None
                }
                Err(e) => {
                    metrics::livekit_job_failed(e.reason());
                    tracing::warn!(job_id = %job_id, reason = e.reason(), error = %e, "livekit job failed");
                    Some(e.to_string())
                }
            };
            jobs.lock().unwrap_or_else(|e| e.into_inner()).running.remove(&job_id);
            let _ = ends.send(JobEnd { job_id, error });
        });
    }
}

fn job_status(end: &JobEnd) -> proto::UpdateJobStatus {
    let status = if end.error.is_some() { proto::JobStatus::JsFailed } else { proto::JobStatus::JsSuccess };
    proto::UpdateJobStatus {
        job_id: end.job_id.clone(),
        status: status as i32,
        error: end.error.clone().unwrap_or_default(),
    }
}

async fn send<S>(sink: &mut S, message: WorkerMsg) -> Result<(), LivekitError>
where
    S: futures_util::Sink<WsMessage, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let bytes = proto::WorkerMessage { message: Some(message) }.encode_to_vec();
    sink.send(WsMessage::Binary(bytes.into())).await.map_err(|e| LivekitError::Socket(e.to_string()))
}

async fn close<S>(mut sink: S) -> Result<(), LivekitError>
where
    S: futures_util::Sink<WsMessage, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let _ = sink.send(WsMessage::Close(None)).await;
    Ok(())
}

/// The server message in a frame (`None` for control frames and messages this worker does not know).
fn decode(frame: Result<WsMessage, tokio_tungstenite::tungstenite::Error>) -> Result<Option<ServerMsg>, LivekitError> {
    match frame.map_err(|e| LivekitError::Socket(e.to_string()))? {
        WsMessage::Binary(bytes) => proto::ServerMessage::decode(bytes.as_ref())
            .map(|m| m.message)
            .map_err(|e| LivekitError::Socket(format!("undecodable server message: {e}"))),
        WsMessage::Close(_) => Err(LivekitError::Socket("closed by the server".into())),
        _ => Ok(None),
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promises_count_against_capacity_until_they_expire() {
        let mut jobs = Jobs::default();
        let now = Instant::now();
        jobs.promised.insert("a".into(), now);
        jobs.running.insert("b".into(), CancellationToken::new());
        assert_eq!(jobs.taken(), 2);
        jobs.expire_promises(now + PROMISE_TIMEOUT);
        assert_eq!(jobs.taken(), 1);
    }
}
