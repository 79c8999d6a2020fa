//! What a call's media speaks, as offer/answer (RFC 3264) settled it: the G.711 codec, its payload
//! types, the packet time and the direction. SIP carries these in SDP bodies (`sip::sdp` reads offers
//! and writes answers); media sends and receives by them, so the types live here, below the ways in.

use std::net::SocketAddr;

/// A G.711 codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// μ-law.
    Pcmu,
    /// A-law.
    Pcma,
}

impl Codec {
    /// The rtpmap encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }
}

/// Media direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways.
    SendRecv,
    /// Offerer only sends (puts us on hold).
    SendOnly,
    /// Offerer only receives.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// Our answer to an offered direction (RFC 3264 §6.1).
    pub fn answer(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }
}

/// What offer/answer settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where the caller wants RTP (`None` for an INVITE without SDP, or a held `0.0.0.0`).
    pub remote: Option<SocketAddr>,
    /// The codec both sides speak.
    pub codec: Codec,
    /// Its payload type.
    pub payload_type: u8,
    /// RFC 4733 payload type, when offered.
    pub dtmf_payload_type: Option<u8>,
    /// Packet time we send (20 ms).
    pub ptime_ms: u32,
    /// The offer's direction.
    pub direction: Direction,
    /// The INVITE carried no offer: our 200 OK makes one.
    pub we_offer: bool,
}

impl Negotiated {
    /// The caller put the call on hold (`sendonly`, `inactive` or connection address 0.0.0.0).
    pub fn on_hold(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::Inactive) || self.remote.is_none() && !self.we_offer
    }

    /// Whether we may send media.
    pub fn we_send(&self) -> bool {
        matches!(self.direction.answer(), Direction::SendRecv | Direction::SendOnly)
    }
}
