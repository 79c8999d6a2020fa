//! The SIP user agent server core: one task that owns every transaction and dialog, fed by the
//! transports, its own timers and the calls' media tasks.
//!
//! An INVITE is first screened, before it costs any state: the per-source rate limit, then the trunk by
//! source network and the digest when the trunk asks for it (bound to the Request-URI, each nonce count
//! used once). A screened-out INVITE gets one response (a stranger over its rate limit none), sent
//! without a transaction, and is counted in metrics, never stored. A screened INVITE is answered
//! `100 Trying`, then routed (Request-URI user, else To, normalised to E.164, looked up in `phone_numbers`/prefixes),
//! checked against the call limit and the SDP offer, and answered `200 OK` with our SDP; the 2xx is
//! retransmitted until the ACK. A new INVITE naming a live or ringing call's Call-ID is refused (482 or
//! 400) and never replaces that call. CANCEL before the answer gives 487, OPTIONS 200, BYE ends the call
//! either way, re-INVITE updates hold state, other methods get 405 or 501, broken requests 400. Every
//! screened INVITE becomes a row in `calls`. Other requests outside a dialog (OPTIONS, REGISTER, unknown
//! methods) draw on the same per-source allowance as INVITEs and are dropped unanswered beyond it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::admission::{trunk_for, SourceClass, SourceRateLimit, Trunk};
use super::dialog::{random_token, Dialog};
use super::digest;
use super::message::{Message, Method, ParseError, Request, Response};
use super::sdp;
use super::transaction::{Action, InviteServer, NonInviteClient, NonInviteServer, Timer, Timing, TwoXxRetransmitter};
use super::transport::{response_target, Inbound, Peer, TcpLimits, Transports};
use crate::call::{CallHandler, CallInfo, CallLeg, Hangup, WayIn};
use crate::media::session::{CallTag, MediaEvent, MediaSession, MediaSettings};
use crate::metrics;
use crate::phone;
use crate::storage::{self, CallRecord, Store};

/// After the drain timeout's BYEs, how long shutdown waits for their answers.
const BYE_GRACE: Duration = Duration::from_secs(2);

/// Digest nonces whose used counts the core remembers (see [`digest::UsedNonces`]).
const USED_NONCES: usize = 4096;

/// Call records waiting for the writer task; when it falls this far behind, records are dropped (and
/// counted) rather than the core waiting for the database.
const RECORD_QUEUE: usize = 8192;

/// How long a routing lookup may take before the INVITE gets 500.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(5);

/// Methods we answer (the `Allow` header).
const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS";

/// Settings of the SIP server.
#[derive(Debug, Clone)]
pub struct SipSettings {
    /// Address for UDP and TCP.
    pub addr: SocketAddr,
    /// Host written in Contact, Via and SDP (defaults to the bound IP, or 127.0.0.1 for a wildcard bind).
    pub public_host: String,
    /// Most simultaneous calls; more get 503.
    pub max_calls: usize,
    /// INVITEs per second per source address (burst twice that).
    pub invites_per_second: u32,
    /// Who may call.
    pub trunks: Vec<Trunk>,
    /// Digest realm.
    pub realm: String,
    /// Secret for stateless digest nonces.
    pub nonce_secret: [u8; 32],
    /// RFC 3261 timers.
    pub timing: Timing,
    /// Media settings (ports, timeouts, greeting, recordings).
    pub media: MediaSettings,
    /// After shutdown is requested, how long calls may go on before slotline hangs up.
    pub drain_timeout: Duration,
    /// Ring this long (180 Ringing) before answering; 0 answers at once.
    pub answer_after: Duration,
    /// Bounds on SIP over TCP.
    pub tcp: TcpLimits,
}

/// Which state machine a timer belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Owner {
    Invite(String),
    NonInvite(String, String),
    Client(String),
    Call(String),
}

enum Event {
    Timer(Owner, Timer),
    Answer(String),
    Media(String, MediaEvent),
    /// The agent ended the call (reason for the `calls` row).
    AgentHangup(String, &'static str),
    /// The routing lookup of a pending INVITE (by branch) for a dialed number is done.
    Routed(String, String, Result<Option<Uuid>, String>),
}

/// What to do once a call's row is written (or given up): start its agent, whose transcript lines and
/// bookings point at the row.
type Then = Box<dyn FnOnce() + Send>;

/// A write to the `calls` table.
enum RecordWrite {
    Insert(CallRecord, Option<Then>),
    Update(CallRecord),
}

/// The `calls` table as the core sees it: writes are queued for one writer task, in order, and never
/// awaited, so a slow or locked database delays rows, not signalling.
struct CallRecords {
    queue: mpsc::Sender<RecordWrite>,
}

impl CallRecords {
    /// Starts the writer; it ends once the `CallRecords` is dropped and the queue is written.
    fn start(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
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

    fn insert(&self, record: CallRecord) {
        self.push(RecordWrite::Insert(record, None));
    }

    /// Inserts `record`, then runs `then` (at once when the record cannot be queued).
    fn insert_then(&self, record: CallRecord, then: Then) {
        self.push(RecordWrite::Insert(record, Some(then)));
    }

    fn update(&self, record: CallRecord) {
        self.push(RecordWrite::Update(record));
    }

    fn push(&self, write: RecordWrite) {
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

/// An INVITE server transaction and what it is about.
struct InviteTx {
    tx: InviteServer,
    peer: Peer,
    request: Request,
    /// Admitted and ringing, to be answered when the answer timer fires.
    ringing: Option<Admitted>,
}

/// An INVITE that passed admission, routing and the SDP check.
struct Admitted {
    agent_id: Uuid,
    dialed: String,
    negotiated: sdp::Negotiated,
}

struct Call {
    record: CallRecord,
    /// The INVITE's top Via (where 2xx retransmissions go).
    via: String,
    dialog: Dialog,
    invite_branch: String,
    answered: bool,
    retransmitter: Option<TwoXxRetransmitter>,
    media: Option<MediaSession>,
    ending: bool,
    started: Instant,
}

/// The running SIP server; dropping it does not stop it (use the shutdown token).
pub struct SipServer {
    local: SocketAddr,
}

impl SipServer {
    /// Binds the transports and starts the core.
    pub async fn start(
        settings: SipSettings,
        store: Arc<dyn Store>,
        handler: Option<Arc<dyn CallHandler>>,
        shutdown: CancellationToken,
    ) -> std::io::Result<(Self, tokio::task::JoinHandle<()>)> {
        let transport_stop = CancellationToken::new();
        let (transports, inbound) = Transports::bind(settings.addr, settings.tcp, transport_stop.clone()).await?;
        let local = transports.local_addr();
        let (events_tx, events) = mpsc::channel(1024);
        let settings_rate = (settings.invites_per_second, settings.invites_per_second.saturating_mul(2));
        let (records, writer) = CallRecords::start(store.clone());
        let tasks = TaskTracker::new();
        let core = Core {
            via_host: format!("{}:{}", settings.public_host, local.port()),
            settings,
            store,
            records,
            tasks: tasks.clone(),
            handler,
            transports,
            events_tx,
            invites: HashMap::new(),
            non_invites: HashMap::new(),
            clients: HashMap::new(),
            calls: HashMap::new(),
            rate: SourceRateLimit::new(settings_rate.0, settings_rate.1),
            used_nonces: digest::UsedNonces::new(USED_NONCES),
            draining: false,
        };
        let handle = tokio::spawn(async move {
            core.run(inbound, events, shutdown, transport_stop).await;
            // The core is gone with its end of the records queue: what it queued and the media it stopped
            // (recordings) are finished before the server counts as stopped.
            tasks.close();
            tasks.wait().await;
            let _ = writer.await;
        });
        Ok((Self { local }, handle))
    }

    /// The bound address (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

struct Core {
    settings: SipSettings,
    store: Arc<dyn Store>,
    records: CallRecords,
    /// Work the core hands off and shutdown waits for (media teardown and recordings).
    tasks: TaskTracker,
    handler: Option<Arc<dyn CallHandler>>,
    transports: Transports,
    events_tx: mpsc::Sender<Event>,
    via_host: String,
    invites: HashMap<String, InviteTx>,
    non_invites: HashMap<(String, String), NonInviteServer>,
    clients: HashMap<String, (NonInviteClient, Peer, String)>,
    calls: HashMap<String, Call>,
    rate: SourceRateLimit,
    used_nonces: digest::UsedNonces,
    draining: bool,
}

impl Core {
    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut events: mpsc::Receiver<Event>,
        shutdown: CancellationToken,
        transport_stop: CancellationToken,
    ) {
        let drain = tokio::time::sleep(Duration::from_secs(86_400 * 365));
        tokio::pin!(drain);
        let mut hung_up = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled(), if !self.draining => {
                    self.draining = true;
                    tracing::info!(calls = self.calls.len(), "SIP draining: new INVITEs get 503");
                    drain.as_mut().reset(tokio::time::Instant::now() + self.settings.drain_timeout);
                }
                () = &mut drain, if self.draining => {
                    if hung_up {
                        // BYEs had their chance to be answered; stop waiting for them.
                        self.clients.clear();
                    } else {
                        let ids: Vec<String> = self.calls.keys().cloned().collect();
                        for id in ids {
                            self.hang_up(&id, "shutdown").await;
                        }
                        hung_up = true;
                        drain.as_mut().reset(tokio::time::Instant::now() + BYE_GRACE);
                    }
                }
                Some(message) = inbound.recv() => self.on_inbound(message).await,
                Some(event) = events.recv() => match event {
                    Event::Timer(owner, timer) => self.on_timer(owner, timer).await,
                    Event::Answer(branch) => self.on_answer_due(&branch).await,
                    Event::Media(call, event) => self.on_media(&call, event).await,
                    Event::AgentHangup(call, reason) => self.hang_up(&call, reason).await,
                    Event::Routed(branch, dialed, routed) => self.on_routed(&branch, dialed, routed).await,
                },
            }
            if self.draining && self.calls.is_empty() && self.clients.is_empty() {
                break;
            }
        }
        transport_stop.cancel();
        tracing::info!("SIP server stopped");
    }

    fn start_timer(&self, owner: Owner, timer: Timer, after: Duration) {
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = events.send(Event::Timer(owner, timer)).await;
        });
    }

    /// Performs a transaction's actions; returns `true` when it terminated.
    async fn perform(&self, owner: &Owner, peer: Peer, actions: Vec<Action>) -> bool {
        let mut terminated = false;
        for action in actions {
            match action {
                Action::Send(bytes) => self.transports.send(peer, bytes).await,
                Action::Start(timer, after) => self.start_timer(owner.clone(), timer, after),
                Action::Terminate => terminated = true,
                Action::TimedOut => {}
            }
        }
        terminated
    }

    async fn on_inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Message(Message::Request(request), peer) => {
                metrics::sip_request(request.method.as_str());
                self.on_request(request, peer).await;
            }
            Inbound::Message(Message::Response(response), peer) => self.on_response(response, peer).await,
            Inbound::Malformed(error, peer) => {
                metrics::sip_request("malformed");
                tracing::debug!(peer = %peer.addr, reason = %error.reason, "malformed SIP message");
                if let (Some(request), Some(response)) = (error.salvaged.as_deref(), malformed_response(&error)) {
                    self.send_response(request, peer, response).await;
                }
            }
        }
    }

    async fn send_response(&self, request: &Request, peer: Peer, mut response: Response) {
        response.headers.push("Server", concat!("slotline/", env!("CARGO_PKG_VERSION")));
        metrics::sip_response(request.method.as_str(), response.status);
        let target = response_target(request.headers.get("Via").unwrap_or_default(), peer);
        self.transports.send(target, response.to_bytes()).await;
    }

    async fn on_request(&mut self, request: Request, peer: Peer) {
        match request.method {
            Method::Invite => self.on_invite(request, peer).await,
            Method::Ack => self.on_ack(request).await,
            Method::Cancel => self.on_cancel(request, peer).await,
            _ => self.on_non_invite(request, peer).await,
        }
    }

    // ---- non-INVITE server transactions -------------------------------------------------------

    async fn on_non_invite(&mut self, request: Request, peer: Peer) {
        let key = (request.branch().to_string(), request.method.as_str().to_string());
        if let Some(tx) = self.non_invites.get_mut(&key) {
            metrics::sip_retransmission_absorbed(request.method.as_str());
            let actions = tx.on_retransmission();
            let target = response_target(request.headers.get("Via").unwrap_or_default(), peer);
            self.perform(&Owner::NonInvite(key.0, key.1), target, actions).await;
            return;
        }
        if request.method != Method::Bye && !self.within_rate(peer) {
            metrics::sip_refused(request.method.as_str(), "rate_limited");
            return;
        }
        let response = match &request.method {
            Method::Options => {
                let mut response = request.response(200, Some(&random_token()));
                response.headers.push("Allow", ALLOW);
                response.headers.push("Accept", "application/sdp");
                response
            }
            Method::Bye => self.on_bye(&request).await,
            Method::Known(_) => {
                let mut response = request.response(405, Some(&random_token()));
                response.headers.push("Allow", ALLOW);
                response
            }
            _ => request.response(501, Some(&random_token())),
        };
        let mut tx = NonInviteServer::new(self.settings.timing, peer.transport.reliable());
        let status = response.status;
        let mut response = response;
        response.headers.push("Server", concat!("slotline/", env!("CARGO_PKG_VERSION")));
        metrics::sip_response(request.method.as_str(), status);
        let actions = tx.respond(status, response.to_bytes());
        let target = response_target(request.headers.get("Via").unwrap_or_default(), peer);
        let owner = Owner::NonInvite(key.0.clone(), key.1.clone());
        if !self.perform(&owner, target, actions).await {
            self.non_invites.insert(key, tx);
        }
    }

    async fn on_bye(&mut self, request: &Request) -> Response {
        let call_id = request.call_id().to_string();
        let matched = self.calls.get_mut(&call_id).filter(|c| c.dialog.matches(request));
        let Some(call) = matched else {
            return request.response(481, None);
        };
        if !call.dialog.accept_remote_cseq(request.cseq().0) {
            return request.response(500, None);
        }
        self.end_call(&call_id, "caller_bye").await;
        request.response(200, None)
    }

    // ---- INVITE ------------------------------------------------------------------------------

    async fn on_invite(&mut self, request: Request, peer: Peer) {
        let branch = request.branch().to_string();
        if let Some(existing) = self.invites.get_mut(&branch) {
            // A retransmission: the transaction answers it.
            metrics::sip_retransmission_absorbed("INVITE");
            let actions = existing.tx.on_retransmission();
            let target = response_target(request.headers.get("Via").unwrap_or_default(), peer);
            self.perform(&Owner::Invite(branch.clone()), target, actions).await;
            return;
        }
        if let Some(call) = self.calls.get(request.call_id()) {
            if call.invite_branch == branch {
                metrics::sip_retransmission_absorbed("INVITE");
                if let Some(r) = &call.retransmitter {
                    let actions = r.on_retransmission();
                    let target = response_target(request.headers.get("Via").unwrap_or_default(), peer);
                    self.perform(&Owner::Call(call.record.sip_call_id.clone()), target, actions).await;
                }
                return;
            }
            if !request.to_tag().is_empty() {
                return self.on_reinvite(request, peer).await;
            }
        }
        // Screening costs nothing but a bucket per source: a refusal here gets one response, sent without
        // transaction state (no retransmissions for a spoofable source) and without a database row.
        if let Err(refusal) = self.screen(&request, peer) {
            return self.refuse_statelessly(&request, peer, refusal).await;
        }
        let collision = self.call_id_collision(&request);
        let mut tx = InviteServer::new(self.settings.timing, peer.transport.reliable());
        let trying = request.response(100, None);
        metrics::sip_response("INVITE", 100);
        let target = response_target(request.headers.get("Via").unwrap_or_default(), peer);
        let actions = tx.respond(100, trying.to_bytes());
        self.perform(&Owner::Invite(branch.clone()), target, actions).await;
        self.invites.insert(branch.clone(), InviteTx { tx, peer, request: request.clone(), ringing: None });

        if let Some(refusal) = collision {
            return self.refuse_invite(&branch, refusal).await;
        }
        let dialed_raw = Request::uri_user(&request.uri)
            .or_else(|| request.headers.get("To").and_then(Request::uri_user))
            .unwrap_or_default();
        let Ok(dialed) = phone::normalize(dialed_raw) else {
            return self.refuse_invite(&branch, Refusal::new(404, "not_found")).await;
        };
        // The lookup runs beside the core, which goes on with other messages meanwhile.
        let (store, events, dialed) = (self.store.clone(), self.events_tx.clone(), dialed.to_string());
        tokio::spawn(async move {
            let routed = match tokio::time::timeout(ROUTE_TIMEOUT, store.route_number(&dialed)).await {
                Ok(Ok(agent)) => Ok(agent),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {ROUTE_TIMEOUT:?}")),
            };
            let _ = events.send(Event::Routed(branch, dialed, routed)).await;
        });
    }

    /// A pending INVITE's number is looked up: answer it (or ring first), or refuse it; nothing when it
    /// was cancelled meanwhile.
    async fn on_routed(&mut self, branch: &str, dialed: String, routed: Result<Option<Uuid>, String>) {
        let Some(invite) = self.invites.get(branch) else { return };
        if invite.tx.state() != super::transaction::InviteState::Proceeding || invite.ringing.is_some() {
            return;
        }
        let (request, peer) = (invite.request.clone(), invite.peer);
        let outcome = match self.admit(&request, dialed, routed) {
            Ok(admitted) if self.settings.answer_after.is_zero() => self.answer(&request, peer, admitted).await,
            Ok(admitted) => {
                let ringing = request.response(180, Some(&random_token()));
                self.respond_invite(branch, ringing).await;
                if let Some(invite) = self.invites.get_mut(branch) {
                    invite.ringing = Some(admitted);
                }
                let events = self.events_tx.clone();
                let after = self.settings.answer_after;
                let due = branch.to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = events.send(Event::Answer(due)).await;
                });
                Ok(())
            }
            Err(refusal) => Err(refusal),
        };
        if let Err(refusal) = outcome {
            self.refuse_invite(branch, refusal).await;
        }
    }

    /// Refuses a pending INVITE through its transaction, and records the refusal.
    async fn refuse_invite(&mut self, branch: &str, refusal: Refusal) {
        let Some(invite) = self.invites.get(branch) else { return };
        let (request, peer) = (invite.request.clone(), invite.peer);
        let Refusal { status, reason, extra } = refusal;
        let mut response = request.response(status, Some(&random_token()));
        for (name, value) in extra {
            response.headers.push(name, value);
        }
        self.record_refusal(&request, peer, status, reason);
        self.respond_invite(branch, response).await;
    }

    /// A new INVITE (no To tag, not a retransmission) whose Call-ID belongs to a live or pending call.
    ///
    /// The core keys calls by Call-ID, so such an INVITE must never replace the call it names. Same From
    /// tag and CSeq is the same request arriving by another path: RFC 3261 §8.2.2.2 (merged requests)
    /// says 482 Loop Detected. Anything else is another dialog reusing a Call-ID that must be globally
    /// unique (§8.1.1.4): a broken or hostile client, told so with 400 rather than 491/500, which would
    /// invite a retry that cannot succeed while the call lasts.
    fn call_id_collision(&self, request: &Request) -> Option<Refusal> {
        let call_id = request.call_id();
        let (from_tag, cseq) = (request.from_tag(), request.cseq().0);
        let live = self.calls.get(call_id).map(|c| (c.dialog.remote_tag.as_str(), c.dialog.remote_cseq));
        // Pending: being routed or ringing (transactions still proceeding; few, as routing is quick).
        let pending = || {
            self.invites
                .values()
                .filter(|i| i.tx.state() == super::transaction::InviteState::Proceeding)
                .find(|i| i.request.call_id() == call_id)
                .map(|i| (i.request.from_tag(), i.request.cseq().0))
        };
        let (their_tag, their_cseq) = live.or_else(pending)?;
        if their_tag == from_tag && their_cseq == cseq {
            Some(Refusal::new(482, "merged_request"))
        } else {
            Some(Refusal::new(400, "call_id_in_use").with("Warning", "399 slotline \"Call-ID in use\""))
        }
    }

    /// A ringing INVITE is due to be answered (unless it was cancelled meanwhile).
    async fn on_answer_due(&mut self, branch: &str) {
        let Some(invite) = self.invites.get_mut(branch) else { return };
        let Some(admitted) = invite.ringing.take() else { return };
        let (request, peer) = (invite.request.clone(), invite.peer);
        if let Err(refusal) = self.answer(&request, peer, admitted).await {
            self.refuse_invite(branch, refusal).await;
        }
    }

    /// Takes one request from the source's allowance. Out-of-dialog requests other than INVITE (OPTIONS,
    /// REGISTER, methods slotline does not know) share it with the source's INVITEs: over it they are dropped
    /// unanswered, so a flood of them builds no transactions and draws no responses.
    fn within_rate(&self, peer: Peer) -> bool {
        let trunk = trunk_for(&self.settings.trunks, peer.addr.ip());
        let class = if trunk.is_some() { SourceClass::Trunk } else { SourceClass::Stranger };
        self.rate.allow(peer.addr.ip(), class)
    }

    /// The checks before an INVITE gets any state: the source's rate limit first, then shutdown, the trunk
    /// the source belongs to and its digest credentials. `Err(None)`: drop the request unanswered.
    fn screen(&mut self, request: &Request, peer: Peer) -> Result<(), Option<Refusal>> {
        let trunk = trunk_for(&self.settings.trunks, peer.addr.ip()).cloned();
        if !self.within_rate(peer) {
            // A trunk over its limit is told to back off; a stranger over it is not worth a packet.
            return Err(trunk.is_some().then(|| Refusal::new(503, "rate_limited").with("Retry-After", "1")));
        }
        if self.draining {
            return Err(Some(Refusal::new(503, "shutting_down").with("Retry-After", "30")));
        }
        let Some(trunk) = trunk else {
            tracing::debug!(source = %peer.addr, "INVITE from an address no trunk allows");
            return Err(Some(Refusal::new(403, "forbidden")));
        };
        if let Some(credentials) = &trunk.credentials {
            let authorization = request.headers.get("Authorization");
            let challenge = |stale| {
                digest::challenges(&self.settings.realm, &self.settings.nonce_secret, stale)
                    .into_iter()
                    .fold(Refusal::new(401, "auth_required"), |r, header| r.with("WWW-Authenticate", header))
            };
            match authorization {
                None => return Err(Some(challenge(false))),
                Some(value) => {
                    let expected = digest::Expected {
                        method: "INVITE",
                        uri: &request.uri,
                        realm: &self.settings.realm,
                        username: &credentials.username,
                        password: credentials.password.expose(),
                    };
                    match digest::verify(value, &expected, &self.settings.nonce_secret, &mut self.used_nonces) {
                        digest::Verdict::Valid => {}
                        digest::Verdict::Stale => return Err(Some(challenge(true))),
                        // A replayed (nonce, nc): the caller gets a fresh nonce, a replayer nothing of use.
                        digest::Verdict::Replayed => {
                            let Refusal { status, extra, .. } = challenge(false);
                            return Err(Some(Refusal { status, reason: "auth_replayed", extra }));
                        }
                        digest::Verdict::Invalid => return Err(Some(Refusal::new(403, "auth_failed"))),
                    }
                }
            }
        }
        Ok(())
    }

    /// Answers a screened-out INVITE once, from no transaction (its retransmissions are screened again),
    /// and counts it; nothing is stored.
    async fn refuse_statelessly(&self, request: &Request, peer: Peer, refusal: Option<Refusal>) {
        let Some(Refusal { status, reason, extra }) = refusal else {
            metrics::call_refused("rate_limited");
            metrics::sip_refused(request.method.as_str(), "rate_limited");
            return;
        };
        metrics::call_refused(reason);
        metrics::sip_refused(request.method.as_str(), reason);
        tracing::debug!(source = %peer.addr, status, reason, "INVITE refused statelessly");
        let mut response = request.response(status, Some(&random_token()));
        for (name, value) in extra {
            response.headers.push(name, value);
        }
        self.send_response(request, peer, response).await;
    }

    /// The routing result, call limit and SDP check of a screened INVITE; a refusal says which final
    /// response to send.
    fn admit(
        &self,
        request: &Request,
        dialed: String,
        routed: Result<Option<Uuid>, String>,
    ) -> Result<Admitted, Refusal> {
        let agent_id = match routed {
            Ok(Some(agent)) => agent,
            Ok(None) => return Err(Refusal::new(404, "not_found")),
            Err(e) => {
                tracing::error!(error = %e, "routing lookup failed");
                return Err(Refusal::new(500, "routing_failed"));
            }
        };
        if self.calls.len() >= self.settings.max_calls {
            return Err(Refusal::new(503, "call_limit").with("Retry-After", "5"));
        }
        let offer = String::from_utf8_lossy(&request.body).to_string();
        let negotiated = sdp::negotiate(&offer).map_err(|e| {
            tracing::info!(error = %e, "SDP offer refused");
            Refusal::new(488, "codec_mismatch").with("Warning", "304 slotline \"Incompatible media format\"")
        })?;
        Ok(Admitted { agent_id, dialed, negotiated })
    }

    /// Starts media and sends `200 OK` with our SDP.
    async fn answer(&mut self, request: &Request, peer: Peer, admitted: Admitted) -> Result<(), Refusal> {
        let Admitted { agent_id, dialed, negotiated } = admitted;
        if self.calls.len() >= self.settings.max_calls {
            return Err(Refusal::new(503, "call_limit").with("Retry-After", "5"));
        }
        let call_id = request.call_id().to_string();
        if self.calls.contains_key(&call_id) {
            return Err(Refusal::new(400, "call_id_in_use").with("Warning", "399 slotline \"Call-ID in use\""));
        }
        let local_tag = random_token();
        let dialog = Dialog::from_invite(request, &local_tag, peer);
        let record = answered_record(request, peer, agent_id, &dialed);
        let mut media = MediaSession::start(
            &self.settings.media,
            &negotiated,
            CallTag { id: record.id, sip_call_id: &record.sip_call_id },
            peer.addr.ip(),
            self.media_events(&call_id),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "no RTP port for the call");
            Refusal::new(503, "no_media_port").with("Retry-After", "5")
        })?;
        let answer = sdp::answer(&negotiated, &self.settings.public_host, media.local_port());
        let mut ok = request.response(200, Some(&local_tag));
        ok.headers.push("Contact", format!("<sip:slotline@{};transport={}>", self.via_host, peer.transport.as_str()));
        ok.headers.push("Allow", ALLOW);
        ok.headers.push("Server", concat!("slotline/", env!("CARGO_PKG_VERSION")));
        let ok = ok.with_body("application/sdp", answer.into_bytes());
        metrics::sip_response("INVITE", 200);
        metrics::call_started();
        let target = response_target(request.headers.get("Via").unwrap_or_default(), peer);
        let (retransmitter, actions) =
            TwoXxRetransmitter::start(self.settings.timing, peer.transport.reliable(), ok.to_bytes());
        self.perform(&Owner::Call(call_id.clone()), target, actions).await;
        if let Some(invite) = self.invites.remove(request.branch()) {
            drop(invite);
        }
        tracing::info!(call_id = %call_id, agent_id = %agent_id, dialed = %dialed, caller = %record.caller, transport = peer.transport.as_str(), "call answered");
        // The agent starts once the row it writes against (transcript lines, bookings) exists. Without
        // an agent the media session keeps its audio and plays the greeting itself (taking the audio
        // tells it a pipeline speaks instead).
        let handler = self.handler.clone();
        let leg =
            handler.and_then(|handler| media.take_audio().map(|audio| (handler, audio))).map(|(handler, audio)| {
                let info = CallInfo {
                    id: record.id,
                    agent_id,
                    caller: record.caller.clone(),
                    dialed: dialed.clone(),
                    way_in: WayIn::Sip,
                };
                (handler, CallLeg { info, audio, hangup: self.agent_hangup(&call_id) })
            });
        match leg {
            Some((handler, leg)) => self.records.insert_then(record.clone(), Box::new(move || handler.answered(leg))),
            None => self.records.insert(record.clone()),
        }
        self.calls.insert(
            call_id,
            Call {
                record,
                via: request.headers.get("Via").unwrap_or_default().to_string(),
                dialog,
                invite_branch: request.branch().to_string(),
                answered: true,
                retransmitter: Some(retransmitter),
                media: Some(media),
                ending: false,
                started: Instant::now(),
            },
        );
        Ok(())
    }

    /// The agent's hang-up of a call, delivered to the core as [`Event::AgentHangup`].
    fn agent_hangup(&self, call_id: &str) -> Hangup {
        let (hangup, mut requests) = Hangup::channel();
        let events = self.events_tx.clone();
        let call_id = call_id.to_string();
        tokio::spawn(async move {
            if let Some(reason) = requests.recv().await {
                let _ = events.send(Event::AgentHangup(call_id, reason)).await;
            }
        });
        hangup
    }

    fn media_events(&self, call_id: &str) -> mpsc::Sender<MediaEvent> {
        let (tx, mut rx) = mpsc::channel::<MediaEvent>(16);
        let events = self.events_tx.clone();
        let call_id = call_id.to_string();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if events.send(Event::Media(call_id.clone(), event)).await.is_err() {
                    break;
                }
            }
        });
        tx
    }

    async fn respond_invite(&mut self, branch: &str, response: Response) {
        let Some(invite) = self.invites.get_mut(branch) else { return };
        metrics::sip_response("INVITE", response.status);
        let with_server = {
            let mut r = response;
            r.headers.push("Server", concat!("slotline/", env!("CARGO_PKG_VERSION")));
            r
        };
        let actions = invite.tx.respond(with_server.status, with_server.to_bytes());
        let target = response_target(invite.request.headers.get("Via").unwrap_or_default(), invite.peer);
        if self.perform(&Owner::Invite(branch.to_string()), target, actions).await {
            self.invites.remove(branch);
        }
    }

    fn record_refusal(&self, request: &Request, peer: Peer, status: u16, reason: &'static str) {
        metrics::call_refused(reason);
        let now = storage::now();
        let dialed = Request::uri_user(&request.uri).unwrap_or_default();
        let record = CallRecord {
            id: Uuid::new_v4(),
            sip_call_id: request.call_id().to_string(),
            agent_id: None,
            dialed: phone::normalize(dialed)
                .map(|n| n.to_string())
                .unwrap_or_else(|_| dialed.chars().take(64).collect()),
            caller: caller_of(request),
            transport: peer.transport.as_str().to_string(),
            started_at: now,
            answered_at: None,
            ended_at: Some(now),
            end_reason: Some(reason.to_string()),
            sip_status: Some(i32::from(status)),
            room: None,
            room_sid: None,
        };
        tracing::info!(call_id = %record.sip_call_id, status, reason, source = %peer.addr, "INVITE refused");
        self.records.insert(record);
    }

    async fn on_reinvite(&mut self, request: Request, peer: Peer) {
        let call_id = request.call_id().to_string();
        let offer = String::from_utf8_lossy(&request.body).to_string();
        let Some(call) = self.calls.get_mut(&call_id).filter(|c| c.dialog.matches(&request)) else {
            let response = request.response(481, None);
            return self.send_response(&request, peer, response).await;
        };
        if !call.dialog.accept_remote_cseq(request.cseq().0) {
            let response = request.response(500, None);
            return self.send_response(&request, peer, response).await;
        }
        let response = match (sdp::negotiate(&offer), call.media.as_ref()) {
            (Ok(negotiated), Some(media)) => {
                media.update(&negotiated);
                tracing::info!(call_id = %call_id, hold = negotiated.on_hold(), "re-INVITE");
                let answer = sdp::answer(&negotiated, &self.settings.public_host, media.local_port());
                let mut ok = request.response(200, None);
                ok.headers.push("Contact", format!("<sip:slotline@{}>", self.via_host));
                ok.with_body("application/sdp", answer.into_bytes())
            }
            _ => request.response(488, None),
        };
        self.send_response(&request, peer, response).await;
    }

    async fn on_ack(&mut self, request: Request) {
        // ACK for a non-2xx final: same branch as the INVITE.
        if let Some(invite) = self.invites.get_mut(request.branch()) {
            let actions = invite.tx.on_ack();
            let owner = Owner::Invite(request.branch().to_string());
            let peer = invite.peer;
            if self.perform(&owner, peer, actions).await {
                self.invites.remove(request.branch());
            }
            return;
        }
        // ACK for our 2xx: a new transaction in the dialog.
        if let Some(call) = self.calls.get_mut(request.call_id()).filter(|c| c.dialog.matches(&request)) {
            if let Some(r) = call.retransmitter.as_mut() {
                r.on_ack();
            }
            if let Some(media) = &call.media {
                media.begin_playback();
            }
        }
    }

    async fn on_cancel(&mut self, request: Request, peer: Peer) {
        let branch = request.branch().to_string();
        // The CANCEL matches a pending INVITE by branch (RFC 3261 §9.2); take what is needed to end it.
        let pending =
            self.invites.get_mut(&branch).filter(|i| i.tx.state() == super::transaction::InviteState::Proceeding).map(
                |invite| {
                    invite.ringing = None;
                    (invite.request.clone(), invite.peer)
                },
            );
        let status = if pending.is_some() { 200 } else { 481 };
        let response = request.response(status, Some(&random_token()));
        self.send_response(&request, peer, response).await;
        if let Some((original, invite_peer)) = pending {
            let terminated = original.response(487, Some(&random_token()));
            self.record_refusal(&original, invite_peer, 487, "cancelled");
            self.respond_invite(&branch, terminated).await;
        }
    }

    // ---- responses to our requests ----------------------------------------------------------

    async fn on_response(&mut self, response: Response, _peer: Peer) {
        let branch = response.branch().to_string();
        metrics::sip_response_received(&response.cseq_method(), response.status);
        if let Some((tx, peer, call)) = self.clients.get_mut(&branch) {
            let actions = tx.on_response(response.status);
            let (peer, call) = (*peer, call.clone());
            if response.status >= 200 {
                tracing::debug!(call_id = %call, status = response.status, "BYE answered");
            }
            if self.perform(&Owner::Client(branch.clone()), peer, actions).await {
                self.clients.remove(&branch);
            }
        }
    }

    // ---- timers -----------------------------------------------------------------------------

    async fn on_timer(&mut self, owner: Owner, timer: Timer) {
        match &owner {
            Owner::Invite(branch) => {
                let Some(invite) = self.invites.get_mut(branch) else { return };
                let actions = invite.tx.on_timer(timer);
                let target = response_target(invite.request.headers.get("Via").unwrap_or_default(), invite.peer);
                if self.perform(&owner, target, actions).await {
                    self.invites.remove(branch);
                }
            }
            Owner::NonInvite(branch, method) => {
                let key = (branch.clone(), method.clone());
                let Some(tx) = self.non_invites.get_mut(&key) else { return };
                let actions = tx.on_timer(timer);
                if actions.contains(&Action::Terminate) {
                    self.non_invites.remove(&key);
                }
            }
            Owner::Client(branch) => {
                let Some((tx, peer, _)) = self.clients.get_mut(branch) else { return };
                let actions = tx.on_timer(timer);
                let peer = *peer;
                if self.perform(&owner, peer, actions).await {
                    self.clients.remove(branch);
                }
            }
            Owner::Call(call_id) => {
                let Some(call) = self.calls.get_mut(call_id) else { return };
                let Some(r) = call.retransmitter.as_mut() else { return };
                let actions = r.on_timer(timer);
                let timed_out = actions.contains(&Action::TimedOut);
                let target = response_target(&call.via, call.dialog.peer);
                self.perform(&owner, target, actions).await;
                if timed_out {
                    tracing::warn!(call_id = %call_id, "no ACK for our 200 OK; hanging up");
                    self.hang_up(&call_id.clone(), "no_ack").await;
                }
            }
        }
    }

    async fn on_media(&mut self, call_id: &str, event: MediaEvent) {
        match event {
            MediaEvent::Timeout => {
                tracing::info!(call_id, "no RTP from the caller; hanging up");
                self.hang_up(call_id, "media_timeout").await;
            }
            MediaEvent::MaxDuration => self.hang_up(call_id, "max_duration").await,
        }
    }

    /// Sends BYE and ends the call.
    async fn hang_up(&mut self, call_id: &str, reason: &'static str) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.ending {
            return;
        }
        call.ending = true;
        let branch = format!("z9hG4bK{}", random_token());
        let via = format!("SIP/2.0/{} {}", call.dialog.peer.transport.as_str().to_ascii_uppercase(), self.via_host);
        let bye = call.dialog.request(Method::Bye, &via, &branch);
        let peer = call.dialog.peer;
        let mut tx = NonInviteClient::new(self.settings.timing, peer.transport.reliable(), bye.to_bytes());
        let actions = tx.start();
        metrics::sip_request_sent("BYE");
        self.clients.insert(branch.clone(), (tx, peer, call_id.to_string()));
        self.perform(&Owner::Client(branch), peer, actions).await;
        self.end_call(call_id, reason).await;
    }

    /// Stops media and records the end of a call (neither awaited).
    async fn end_call(&mut self, call_id: &str, reason: &'static str) {
        let Some(mut call) = self.calls.remove(call_id) else { return };
        if let Some(media) = call.media.take() {
            // Stopping media finishes the recording on disk: beside the core, awaited at shutdown.
            self.tasks.spawn(media.stop());
        }
        call.record.ended_at = Some(storage::now());
        call.record.end_reason = Some(reason.to_string());
        self.records.update(call.record);
        metrics::call_ended(reason, call.started.elapsed(), call.answered);
        tracing::info!(call_id, reason, seconds = call.started.elapsed().as_secs_f64(), "call ended");
    }
}

/// The answer to a request that did not parse: 501 for an unknown method, else 400 with the reason, when
/// enough of it was salvaged to address a response (never for an ACK, which gets no response).
pub fn malformed_response(error: &ParseError) -> Option<Response> {
    let request = error.salvaged.as_deref()?;
    let complete = ["Via", "From", "To", "Call-ID", "CSeq"].iter().all(|h| request.headers.get(h).is_some());
    if !complete || request.method == Method::Ack {
        return None;
    }
    let status = if matches!(request.method, Method::Other(_)) && error.reason.contains("method") { 501 } else { 400 };
    let mut response = request.response(status, None);
    response.reason = format!("{} ({})", response.reason, sanitize(&error.reason));
    Some(response)
}

/// The caller id: the From URI's user (E.164 when it normalises).
fn caller_of(request: &Request) -> String {
    let user = request.headers.get("From").and_then(Request::uri_user).unwrap_or("anonymous");
    phone::normalize(user).map(|n| n.to_string()).unwrap_or_else(|_| user.chars().take(64).collect())
}

/// Text safe inside a reason phrase.
fn sanitize(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(60).collect()
}

struct Refusal {
    status: u16,
    reason: &'static str,
    extra: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(status: u16, reason: &'static str) -> Self {
        Self { status, reason, extra: Vec::new() }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }
}

/// The `calls` row of an INVITE answered now.
fn answered_record(request: &Request, peer: Peer, agent_id: Uuid, dialed: &str) -> CallRecord {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message;

    const HEAD: &str = "sip:+15550100000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-1\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:+15550100000@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 ";

    fn answer(bytes: &str) -> Option<Response> {
        let error = message::parse(bytes.as_bytes()).expect_err("malformed");
        malformed_response(&error)
    }

    #[test]
    fn broken_requests_get_400_with_a_safe_reason_and_acks_get_nothing() {
        let short = format!("INVITE {HEAD}INVITE\r\nContent-Length: 99\r\n\r\nv=0\r\n");
        let response = answer(&short).expect("400");
        assert_eq!(response.status, 400);
        assert!(response.reason.starts_with("Bad Request (Content-Length 99 exceeds"), "{}", response.reason);
        assert_eq!(response.headers.get("Call-ID"), Some("c1"));
        let ack = format!("ACK {HEAD}ACK\r\nContent-Length: 99\r\n\r\n");
        assert!(answer(&ack).is_none(), "an ACK is never answered");
        let anonymous = "INVITE sip:x SIP/2.0\r\nContent-Length: 99\r\n\r\n";
        assert!(answer(anonymous).is_none(), "without Via/From/To/Call-ID/CSeq there is no one to answer");
        // Control characters from the wire never reach the reason phrase.
        let evil = format!("INVITE {HEAD}INVITE\r\nContent-Length: \u{7}\u{1b}[2J\r\n\r\n");
        let reason = answer(&evil).expect("400").reason;
        assert!(reason.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{reason:?}");
    }
}
