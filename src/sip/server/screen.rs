//! Admission of an INVITE before it costs state: the per-source rate limit, the trunk and its digest,
//! the call limit and Call-ID collisions; refusals are answered without a transaction and counted.

use super::*;

/// Text safe inside a reason phrase.
pub(super) fn sanitize(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(60).collect()
}

pub(super) struct Refusal {
    status: u16,
    reason: &'static str,
    extra: Vec<(&'static str, String)>,
}

impl Refusal {
    pub(super) fn new(status: u16, reason: &'static str) -> Self {
        Self { status, reason, extra: Vec::new() }
    }

    pub(super) fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }
}

impl Core {
    /// Refuses a pending INVITE through its transaction, and records the refusal.
    pub(super) async fn refuse_invite(&mut self, branch: &str, refusal: Refusal) {
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
    pub(super) fn call_id_collision(&self, request: &Request) -> Option<Refusal> {
        let call_id = request.call_id();
        let (from_tag, cseq) = (request.from_tag(), request.cseq().0);
        let live = self.calls.get(call_id).map(|c| (c.dialog.remote_tag.as_str(), c.dialog.remote_cseq));
        // Pending: being routed or ringing (transactions still proceeding; few, as routing is quick).
        let pending = || {
            self.invites
                .values()
                .filter(|i| i.tx.state() == crate::sip::transaction::InviteState::Proceeding)
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

    /// Takes one request from the source's allowance. Out-of-dialog requests other than INVITE (OPTIONS,
    /// REGISTER, methods slotline does not know) share it with the source's INVITEs: over it they are dropped
    /// unanswered, so a flood of them builds no transactions and draws no responses.
    pub(super) fn within_rate(&self, peer: Peer) -> bool {
        let trunk = trunk_for(&self.settings.trunks, peer.addr.ip());
        let class = if trunk.is_some() { SourceClass::Trunk } else { SourceClass::Stranger };
        self.rate.allow(peer.addr.ip(), class)
    }

    /// The checks before an INVITE gets any state: the source's rate limit first, then shutdown, the trunk
    /// the source belongs to and its digest credentials. `Err(None)`: drop the request unanswered.
    pub(super) fn screen(&mut self, request: &Request, peer: Peer) -> Result<(), Option<Refusal>> {
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
    pub(super) async fn refuse_statelessly(&self, request: &Request, peer: Peer, refusal: Option<Refusal>) {
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
    pub(super) fn admit(
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

    pub(super) fn record_refusal(&self, request: &Request, peer: Peer, status: u16, reason: &'static str) {
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
}
