//! Dialogs (RFC 3261 §12) as the UAS sees them: created by our 2xx to an INVITE, identified by Call-ID
//! and both tags, carrying the remote target and route set needed to send in-dialog requests (the BYE
//! slotline sends when it ends a call) and the CSeq bookkeeping both ways.

use rand::Rng as _;

use super::message::{param, split_commas, Headers, Method, Request};
use super::transport::Peer;

/// A random tag or branch suffix (RFC 3261 §19.3: at least 32 bits of randomness).
pub fn random_token() -> String {
    let value: u64 = rand::thread_rng().gen();
    format!("{value:016x}")
}

/// One dialog, UAS side.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag (To tag of the INVITE's responses).
    pub local_tag: String,
    /// The caller's tag (From tag).
    pub remote_tag: String,
    /// Our URI with tag, as the caller's To header had it.
    pub local: String,
    /// The caller's From header.
    pub remote: String,
    /// Where in-dialog requests go (the caller's Contact URI).
    pub remote_target: String,
    /// Record-Route of the INVITE, in order (our requests use it as Route, §12.1.1).
    pub route_set: Vec<String>,
    /// Highest CSeq seen from the caller.
    pub remote_cseq: u32,
    /// Our next CSeq.
    pub local_cseq: u32,
    /// How the caller reached us (in-dialog requests go back the same way).
    pub peer: Peer,
}

impl Dialog {
    /// The dialog our 2xx to `invite` creates.
    pub fn from_invite(invite: &Request, local_tag: &str, peer: Peer) -> Self {
        let to = invite.headers.get("To").unwrap_or_default();
        let contact = invite.headers.get("Contact").map(contact_uri).unwrap_or_else(|| invite.uri.clone());
        Self {
            call_id: invite.call_id().to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: invite.from_tag().to_string(),
            local: if param(to, "tag").is_some() { to.to_string() } else { format!("{to};tag={local_tag}") },
            remote: invite.headers.get("From").unwrap_or_default().to_string(),
            remote_target: contact,
            route_set: invite.headers.all("Record-Route").flat_map(split_commas).collect(),
            remote_cseq: invite.cseq().0,
            local_cseq: 1,
            peer,
        }
    }

    /// Whether an in-dialog request belongs to this dialog.
    pub fn matches(&self, request: &Request) -> bool {
        request.call_id() == self.call_id && request.from_tag() == self.remote_tag && request.to_tag() == self.local_tag
    }

    /// Records the caller's CSeq; `false` for an out-of-order (lower) one (§12.2.2: answer 500).
    pub fn accept_remote_cseq(&mut self, cseq: u32) -> bool {
        if cseq < self.remote_cseq {
            return false;
        }
        self.remote_cseq = cseq;
        true
    }

    /// An in-dialog request from us (e.g. BYE), sent via `local_via` (`SIP/2.0/UDP host:port`).
    pub fn request(&mut self, method: Method, local_via: &str, branch: &str) -> Request {
        self.local_cseq += 1;
        let mut headers = Headers::default();
        headers.push("Via", format!("{local_via};branch={branch};rport"));
        headers.push("Max-Forwards", "70");
        // Our From is the dialog's local URI, To the remote one (§12.2.1.1).
        headers.push("From", self.local.clone());
        headers.push("To", self.remote.clone());
        headers.push("Call-ID", self.call_id.clone());
        headers.push("CSeq", format!("{} {}", self.local_cseq, method.as_str()));
        for route in &self.route_set {
            headers.push("Route", route.clone());
        }
        Request { method, uri: self.remote_target.clone(), headers, body: Vec::new() }
    }
}

/// The URI inside a Contact / Route value (`<sip:a@b;transport=tcp>;expires=60` → `sip:a@b;transport=tcp`).
pub fn contact_uri(value: &str) -> String {
    let value = value.trim();
    match (value.find('<'), value.find('>')) {
        (Some(start), Some(end)) if end > start => value[start + 1..end].to_string(),
        _ => value.split(';').next().unwrap_or(value).trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse, Message};
    use crate::sip::transport::Transport;

    #[test]
    fn uas_dialog_sends_bye_with_swapped_headers_and_route_set() {
        let invite = "INVITE sip:+15550100000@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-a\r\n\
Record-Route: <sip:proxy1;lr>, <sip:proxy2;lr>\r\n\
From: <sip:caller@127.0.0.1>;tag=ctag\r\nTo: <sip:+15550100000@127.0.0.1>\r\n\
Call-ID: c1\r\nCSeq: 7 INVITE\r\nContact: <sip:caller@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n";
        let Ok(Message::Request(invite)) = parse(invite.as_bytes()) else { panic!("parse") };
        let peer = Peer { transport: Transport::Udp, addr: "127.0.0.1:5070".parse().expect("addr") };
        let mut dialog = Dialog::from_invite(&invite, "stag", peer);
        assert_eq!(dialog.remote_target, "sip:caller@127.0.0.1:5070");
        assert_eq!(dialog.route_set, vec!["<sip:proxy1;lr>", "<sip:proxy2;lr>"]);
        let bye = dialog.request(Method::Bye, "SIP/2.0/UDP 127.0.0.1:5060", "z9hG4bK-b");
        let text = String::from_utf8(bye.to_bytes()).expect("utf8");
        assert!(text.starts_with("BYE sip:caller@127.0.0.1:5070 SIP/2.0\r\n"));
        assert!(text.contains("From: <sip:+15550100000@127.0.0.1>;tag=stag\r\n"));
        assert!(text.contains("To: <sip:caller@127.0.0.1>;tag=ctag\r\n"));
        assert!(text.contains("CSeq: 2 BYE\r\n"));
        assert!(text.contains("Route: <sip:proxy1;lr>\r\nRoute: <sip:proxy2;lr>\r\n"));
        assert!(!dialog.accept_remote_cseq(6), "lower CSeq is out of order");
        assert!(dialog.accept_remote_cseq(8));
    }
}
