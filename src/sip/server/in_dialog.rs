//! Requests and events inside a call's dialog: BYE, re-INVITE (hold), ACK, CANCEL, the media session's
//! events, and ending the call either side.

use super::*;

impl Core {
    pub(super) async fn on_bye(&mut self, request: &Request) -> Response {
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

    /// The agent's hang-up of a call, delivered to the core as [`Event::AgentHangup`].
    pub(super) fn agent_hangup(&self, call_id: &str) -> Hangup {
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

    pub(super) async fn on_reinvite(&mut self, request: Request, peer: Peer) {
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

    pub(super) async fn on_ack(&mut self, request: Request) {
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

    pub(super) async fn on_cancel(&mut self, request: Request, peer: Peer) {
        let branch = request.branch().to_string();
        // The CANCEL matches a pending INVITE by branch (RFC 3261 §9.2); take what is needed to end it.
        let pending = self
            .invites
            .get_mut(&branch)
            .filter(|i| i.tx.state() == crate::sip::transaction::InviteState::Proceeding)
            .map(|invite| {
                invite.ringing = None;
                (invite.request.clone(), invite.peer)
            });
        let status = if pending.is_some() { 200 } else { 481 };
        let response = request.response(status, Some(&random_token()));
        self.send_response(&request, peer, response).await;
        if let Some((original, invite_peer)) = pending {
            let terminated = original.response(487, Some(&random_token()));
            self.record_refusal(&original, invite_peer, 487, "cancelled");
            self.respond_invite(&branch, terminated).await;
        }
    }

    pub(super) async fn on_media(&mut self, call_id: &str, event: MediaEvent) {
        match event {
            MediaEvent::Timeout => {
                tracing::info!(call_id, "no RTP from the caller; hanging up");
                self.hang_up(call_id, "media_timeout").await;
            }
            MediaEvent::MaxDuration => self.hang_up(call_id, "max_duration").await,
        }
    }

    /// Sends BYE and ends the call.
    pub(super) async fn hang_up(&mut self, call_id: &str, reason: &'static str) {
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
    pub(super) async fn end_call(&mut self, call_id: &str, reason: &'static str) {
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
