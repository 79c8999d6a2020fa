//! Call media (RTP, RFC 3550) in small stages.
//!
//! - [`codec`]: what offer/answer settled (codec, payload types, direction);
//! - [`rtp`]: packet view and header writer;
//! - [`g711`]: μ-law / A-law;
//! - [`dtmf`]: RFC 4733 telephone-events → digits;
//! - [`jitter`]: the jitter buffer (reorder, late, missing; fixed capacity);
//! - [`rtcp`]: sender/receiver reports;
//! - [`ports`]: the RTP port pool;
//! - [`session`]: one call's media — symmetric RTP, 20 ms pacer, media timeout, the agent's endpoint.

pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod ports;
pub mod rtcp;
pub mod rtp;
pub mod session;
