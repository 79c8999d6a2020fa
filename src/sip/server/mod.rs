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

mod in_dialog;
mod records;
mod screen;

use records::{answered_record, caller_of, CallRecords};
use screen::{sanitize, Refusal};

/// After the drain timeout's BYEs, how long shutdown waits for their answers.
const BYE_GRACE: Duration = Duration::from_secs(2);

/// Digest nonces whose used counts the core remembers (see [`digest::UsedNonces`]).
const USED_NONCES: usize = 4096;

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

    /// A ringing INVITE is due to be answered (unless it was cancelled meanwhile).
    async fn on_answer_due(&mut self, branch: &str) {
        let Some(invite) = self.invites.get_mut(branch) else { return };
        let Some(admitted) = invite.ringing.take() else { return };
        let (request, peer) = (invite.request.clone(), invite.peer);
        if let Err(refusal) = self.answer(&request, peer, admitted).await {
            self.refuse_invite(branch, refusal).await;
        }
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
