//! The SIP stack (RFC 3261), folders following the protocol layers.
//!
//! - [`message`]: SIP messages (our own parser, no panic path), header access, responses;
//! - [`transaction`]: RFC 3261 §17 transactions as sans-I/O state machines;
//! - [`transport`]: UDP and TCP (RFC 3261 §18, RFC 3581 `rport`);
//! - [`dialog`]: UAS dialogs (RFC 3261 §12);
//! - [`admission`]: trunks (source CIDRs, digest credentials) and the INVITE rate limit;
//! - [`digest`]: digest authentication (MD5, SHA-256, stateless nonces, bound to the Request-URI, each
//!   nonce count once);
//! - [`sdp`]: SDP offer/answer for G.711 and telephone-event;
//! - [`server`]: the UAS core: the event loop and answering, admission (`screen`), in-dialog requests
//!   (`in_dialog`), the `calls` rows (`records`).

pub mod admission;
pub mod dialog;
pub mod digest;
pub mod message;
pub mod sdp;
pub mod server;
pub mod transaction;
pub mod transport;
