//! SDP (RFC 4566) offer/answer (RFC 3264) for a telephony UA: G.711 μ-law (PCMU/0) and A-law
//! (PCMA/8), RFC 4733 `telephone-event/8000`, 20 ms packets, and the direction attributes that put a
//! call on hold. [`negotiate`] reads the caller's offer and picks what we speak; [`answer`] writes our
//! side. An offer with nothing we support is an error (the server answers 488).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use rand::Rng as _;

pub use crate::media::codec::{Codec, Direction, Negotiated};

/// Why an offer cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not SDP at all.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// No `m=audio` line with a port.
    #[error("no audio stream offered")]
    NoAudio,
    /// No PCMU or PCMA among the offered formats.
    #[error("none of the offered codecs is supported (PCMU, PCMA)")]
    NoCodec,
}

const MAX_SDP: usize = 16 * 1024;

/// An INVITE without SDP: we make the offer (PCMU first, telephone-event on 101).
fn our_offer() -> Negotiated {
    Negotiated {
        remote: None,
        codec: Codec::Pcmu,
        payload_type: 0,
        dtmf_payload_type: Some(101),
        ptime_ms: 20,
        direction: Direction::SendRecv,
        we_offer: true,
    }
}

/// The direction an `a=` attribute sets, if it is one of the four direction attributes.
/// The SDP attribute of a direction.
fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::SendRecv => "sendrecv",
        Direction::SendOnly => "sendonly",
        Direction::RecvOnly => "recvonly",
        Direction::Inactive => "inactive",
    }
}

fn direction_attribute(value: &str) -> Option<Direction> {
    match value.trim() {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    }
}

/// Reads an offer and picks our side of the session.
pub fn negotiate(offer: &str) -> Result<Negotiated, SdpError> {
    if offer.trim().is_empty() {
        return Ok(our_offer());
    }
    if offer.len() > MAX_SDP {
        return Err(SdpError::Malformed("too large".into()));
    }
    let mut session_addr: Option<IpAddr> = None;
    let mut session_direction = Direction::SendRecv;
    let mut audio: Option<Media> = None;
    let mut current: Option<Media> = None;
    let mut saw_version = false;
    for line in offer.lines().map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            continue;
        }
        let Some((kind, value)) = line.split_once('=') else {
            return Err(SdpError::Malformed(format!("line `{}`", line.chars().take(40).collect::<String>())));
        };
        match kind {
            "v" => saw_version = value.trim() == "0",
            "c" => {
                let addr = connection_address(value)?;
                match current.as_mut() {
                    Some(media) => media.addr = Some(addr),
                    None => session_addr = Some(addr),
                }
            }
            "m" => {
                if let Some(done) = current.take() {
                    if audio.is_none() && done.is_audio && done.port != 0 {
                        audio = Some(done);
                    }
                }
                current = Some(Media::parse(value)?);
            }
            "a" => match (current.as_mut(), direction_attribute(value)) {
                (Some(media), Some(d)) => media.direction = Some(d),
                (None, Some(d)) => session_direction = d,
                (Some(media), None) => media.attribute(value),
                (None, None) => {}
            },
            _ => {}
        }
    }
    if !saw_version {
        return Err(SdpError::Malformed("missing v=0".into()));
    }
    if let Some(done) = current.take() {
        if audio.is_none() && done.is_audio && done.port != 0 {
            audio = Some(done);
        }
    }
    let audio = audio.ok_or(SdpError::NoAudio)?;
    let (payload_type, codec) =
        audio.formats.iter().find_map(|pt| audio.codec_of(*pt).map(|c| (*pt, c))).ok_or(SdpError::NoCodec)?;
    let addr = audio.addr.or(session_addr).ok_or_else(|| SdpError::Malformed("no c= line".into()))?;
    Ok(Negotiated {
        remote: (!addr.is_unspecified()).then(|| SocketAddr::new(addr, audio.port)),
        codec,
        payload_type,
        dtmf_payload_type: audio.dtmf,
        ptime_ms: 20,
        direction: audio.direction.unwrap_or(session_direction),
        we_offer: false,
    })
}

/// Our SDP: the negotiated codec (or, when we make the offer, PCMU and PCMA) plus telephone-event.
pub fn answer(negotiated: &Negotiated, host: &str, port: u16) -> String {
    let session: u64 = rand::thread_rng().gen_range(1..1_000_000_000);
    let family = if host.contains(':') { "IP6" } else { "IP4" };
    let dtmf = negotiated.dtmf_payload_type;
    let mut formats = vec![(negotiated.payload_type, negotiated.codec.name())];
    if negotiated.we_offer {
        formats = vec![(0, "PCMU"), (8, "PCMA")];
    }
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "v=0\r\no=slotline {session} {session} IN {family} {host}\r\ns=slotline\r\nc=IN {family} {host}\r\nt=0 0\r\n"
    );
    let list: Vec<String> = formats.iter().map(|(pt, _)| pt.to_string()).chain(dtmf.map(|pt| pt.to_string())).collect();
    let _ = write!(out, "m=audio {port} RTP/AVP {}\r\n", list.join(" "));
    for (pt, name) in &formats {
        let _ = write!(out, "a=rtpmap:{pt} {name}/8000\r\n");
    }
    if let Some(pt) = dtmf {
        let _ = write!(out, "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n");
    }
    let direction = if negotiated.we_offer { Direction::SendRecv } else { negotiated.direction.answer() };
    let _ = write!(out, "a=ptime:{}\r\na={}\r\n", negotiated.ptime_ms, direction_name(direction));
    out
}

fn connection_address(value: &str) -> Result<IpAddr, SdpError> {
    let mut parts = value.split_whitespace();
    let (net, _family, addr) = (parts.next(), parts.next(), parts.next());
    if net != Some("IN") {
        return Err(SdpError::Malformed("c= must be IN".into()));
    }
    let addr = addr.ok_or_else(|| SdpError::Malformed("c= without address".into()))?;
    // Multicast TTL suffixes (`/127`) are not ours to use.
    addr.split('/')
        .next()
        .unwrap_or(addr)
        .parse()
        .map_err(|_| SdpError::Malformed(format!("c= address `{}`", addr.chars().take(40).collect::<String>())))
}

struct Media {
    is_audio: bool,
    port: u16,
    formats: Vec<u8>,
    addr: Option<IpAddr>,
    direction: Option<Direction>,
    rtpmap: Vec<(u8, String)>,
    dtmf: Option<u8>,
}

impl Media {
    fn parse(value: &str) -> Result<Self, SdpError> {
        let mut parts = value.split_whitespace();
        let kind = parts.next().unwrap_or_default();
        let port = parts
            .next()
            .and_then(|p| p.split('/').next())
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| SdpError::Malformed("m= port".into()))?;
        let proto = parts.next().unwrap_or_default();
        let formats = parts.filter_map(|f| f.parse::<u8>().ok()).filter(|pt| *pt < 128).take(32).collect();
        Ok(Self {
            is_audio: kind == "audio" && proto.starts_with("RTP/AVP"),
            port,
            formats,
            addr: None,
            direction: None,
            rtpmap: Vec::new(),
            dtmf: None,
        })
    }

    fn attribute(&mut self, value: &str) {
        let Some(map) = value.strip_prefix("rtpmap:") else { return };
        let mut parts = map.split_whitespace();
        let (Some(pt), Some(encoding)) = (parts.next().and_then(|p| p.parse::<u8>().ok()), parts.next()) else {
            return;
        };
        let encoding = encoding.to_ascii_lowercase();
        if encoding.starts_with("telephone-event/8000") && self.dtmf.is_none() && self.formats.contains(&pt) {
            self.dtmf = Some(pt);
        }
        if self.rtpmap.len() < 64 {
            self.rtpmap.push((pt, encoding));
        }
    }

    fn codec_of(&self, pt: u8) -> Option<Codec> {
        match self.rtpmap.iter().find(|(p, _)| *p == pt).map(|(_, e)| e.as_str()) {
            Some(e) if e.starts_with("pcmu/8000") => Some(Codec::Pcmu),
            Some(e) if e.starts_with("pcma/8000") => Some(Codec::Pcma),
            Some(_) => None,
            // Static payload types need no rtpmap (RFC 3551 table 4).
            None => match pt {
                0 => Some(Codec::Pcmu),
                8 => Some(Codec::Pcma),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 18 8 0 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

    #[test]
    fn picks_the_first_supported_codec_and_keeps_dtmf() {
        let n = negotiate(OFFER).expect("negotiates");
        assert_eq!((n.codec, n.payload_type, n.dtmf_payload_type), (Codec::Pcma, 8, Some(101)));
        assert_eq!(n.remote, Some("127.0.0.1:6000".parse().expect("addr")));
        assert!(!n.on_hold());
        let answer = answer(&n, "127.0.0.1", 20000);
        assert!(answer.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{answer}");
        assert!(
            answer.contains("a=rtpmap:8 PCMA/8000\r\n") && answer.contains("a=rtpmap:101 telephone-event/8000\r\n")
        );
        assert!(answer.contains("a=sendrecv\r\n") && answer.contains("a=ptime:20\r\n"));
        assert!(negotiate(&answer).is_ok(), "our answer parses");
    }

    #[test]
    fn static_types_need_no_rtpmap_and_no_codec_is_an_error() {
        let pcmu = "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\n";
        assert_eq!(negotiate(pcmu).map(|n| n.codec), Ok(Codec::Pcmu));
        let g729 = OFFER.replace("18 8 0 101", "18 101");
        assert_eq!(negotiate(&g729), Err(SdpError::NoCodec));
        let video = "v=0\nc=IN IP4 10.0.0.1\nm=video 4000 RTP/AVP 96\n";
        assert_eq!(negotiate(video), Err(SdpError::NoAudio));
        assert!(matches!(negotiate("hello"), Err(SdpError::Malformed(_))));
        assert!(matches!(negotiate("v=0\nc=IN IP4 nowhere\nm=audio 1 RTP/AVP 0\n"), Err(SdpError::Malformed(_))));
    }

    #[test]
    fn hold_directions_are_mirrored() {
        let hold = negotiate(&OFFER.replace("a=sendrecv", "a=sendonly")).expect("hold");
        assert!(hold.on_hold());
        assert!(answer(&hold, "127.0.0.1", 1).contains("a=recvonly\r\n"));
        let zero = negotiate(&OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")).expect("old-style hold");
        assert!(zero.on_hold() && zero.remote.is_none());
        let inactive = negotiate(&OFFER.replace("a=sendrecv", "a=inactive")).expect("inactive");
        assert!(answer(&inactive, "::1", 1).contains("a=inactive\r\n"));
        let late = negotiate("").expect("no offer");
        assert!(late.we_offer && answer(&late, "127.0.0.1", 2).contains("m=audio 2 RTP/AVP 0 8 101"));
    }
}
