//! The SIP stack (RFC 3261), folders following the protocol layers.
//!
//! - [`message`]: SIP messages (parsed by `rsip`), header access, responses;
//! - [`transaction`]: RFC 3261 §17 transactions as sans-I/O state machines;
//! - [`transport`]: UDP and TCP (RFC 3261 §18, RFC 3581 `rport`);
//! - [`dialog`]: UAS dialogs (RFC 3261 §12).

pub mod message;
pub mod transaction;
pub mod transport;
pub mod dialog;
