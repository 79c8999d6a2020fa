//! The SIP stack (RFC 3261), folders following the protocol layers.
//!
//! - [`message`]: SIP messages (parsed by `rsip`), header access, responses;
//! - [`transaction`]: RFC 3261 §17 transactions as sans-I/O state machines.

pub mod message;
pub mod transaction;
