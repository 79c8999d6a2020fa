//! Fuzzes what slotline does with bytes that arrive on its SIP port: as one UDP datagram and as a TCP
//! stream framed message by message (`transport::frame`), each message parsed with its top `Via` fixed
//! up (`transport::inbound`), then the pure parts of the server's handling: the answer to a malformed
//! request (`server::malformed_response`), the responses to a parsed request, the response target, the
//! dialog an INVITE creates and the BYE slotline would send in it, the dialed and calling numbers, the
//! SDP offer, and digest verification of an `Authorization` header.
//!
//! Every response slotline builds must parse again as the response it is (same status and Call-ID).
//!
//! The parser is slotline's own and has no panic path: any panic is a finding.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use slotline::phone;
use slotline::sip::dialog::Dialog;
use slotline::sip::message::{self, Message, Method, Request, Response};
use slotline::sip::transport::{self, Framing, Inbound, Peer, Transport};
use slotline::sip::{digest, sdp, server};

fuzz_target!(|data: &[u8]| {
    on_bytes(data, Transport::Udp);
    // A TCP stream: message after message, as the connection reader frames them.
    let mut rest = data;
    for _ in 0..64 {
        match transport::frame(rest) {
            Framing::Message(len) => {
                assert!(len > 0 && len <= rest.len(), "frame {len} of {}", rest.len());
                on_bytes(&rest[..len], Transport::Tcp);
                rest = &rest[len..];
            }
            Framing::Skip(len) => {
                assert!(len > 0 && len <= rest.len(), "skip {len} of {}", rest.len());
                rest = &rest[len..];
            }
            Framing::Incomplete | Framing::Invalid => break,
        }
    }
});

fn on_bytes(bytes: &[u8], transport: Transport) {
    // A value only: nothing is sent anywhere.
    let peer = Peer { transport, addr: SocketAddr::from(([127, 0, 0, 2], 40000)) };
    match transport::inbound(bytes, peer) {
        Inbound::Message(Message::Request(request), peer) => on_request(&request, peer),
        Inbound::Message(Message::Response(response), _) => {
            let _ = (response.cseq_method(), response.branch(), response.to_bytes());
        }
        Inbound::Malformed(error, peer) => {
            if let Some(response) = server::malformed_response(&error) {
                let request = error.salvaged.as_deref().expect("a response needs a salvaged request");
                assert_reparses(&response, request);
                let _ = transport::response_target(request.headers.get("Via").unwrap_or_default(), peer);
            }
        }
    }
}

fn on_request(request: &Request, peer: Peer) {
    let _ = (request.call_id(), request.cseq(), request.branch(), request.from_tag(), request.to_tag());
    let _ = transport::response_target(request.headers.get("Via").unwrap_or_default(), peer);
    for uri in
        [Some(request.uri.as_str()), request.headers.get("To"), request.headers.get("From")].into_iter().flatten()
    {
        if let Some(user) = Request::uri_user(uri) {
            let _ = phone::normalize(user);
        }
    }
    for status in [100, 180, 200, 401, 404, 481, 487, 488, 501, 503] {
        let response = request.response(status, Some("5107a9"));
        if request.method != Method::Ack {
            assert_reparses(&response, request);
        }
    }
    if let Some(authorization) = request.headers.get("Authorization") {
        let expected = digest::Expected {
            method: request.method.as_str(),
            uri: &request.uri,
            realm: "slotline",
            username: "trunk",
            password: "s3cret",
        };
        let _ = digest::verify(authorization, &expected, &[7; 32], &mut digest::UsedNonces::new(4));
    }
    if request.method == Method::Invite {
        let offer = String::from_utf8_lossy(&request.body);
        if let Ok(negotiated) = sdp::negotiate(&offer) {
            let _ = sdp::answer(&negotiated, "127.0.0.1", 20000);
        }
        let mut dialog = Dialog::from_invite(request, "5107a9", peer);
        let _ = dialog.matches(request);
        let _ = dialog.accept_remote_cseq(request.cseq().0);
        let _ = dialog.request(Method::Bye, "SIP/2.0/UDP 127.0.0.1:5060", "z9hG4bK-5107").to_bytes();
    }
}

/// The response slotline would send parses as that response.
fn assert_reparses(response: &Response, request: &Request) {
    let bytes = response.to_bytes();
    match message::parse(&bytes) {
        Ok(Message::Response(parsed)) => {
            assert_eq!(parsed.status, response.status);
            assert_eq!(parsed.headers.get("Call-ID").unwrap_or_default(), request.call_id().trim());
        }
        other => panic!(
            "our {} to {:?} does not parse: {other:?}\n{}",
            response.status,
            request,
            String::from_utf8_lossy(&bytes)
        ),
    }
}
