//! RTP (RFC 3550 §5.1): a zero-copy view of a received packet and a writer into a caller's buffer.

/// A received RTP packet, borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Marker bit.
    pub marker: bool,
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload (padding removed).
    pub payload: &'a [u8],
}

/// Reads an RTP packet; `None` when it is not RTP version 2 or is truncated.
pub fn parse(datagram: &[u8]) -> Option<RtpPacket<'_>> {
    if datagram.len() < 12 || datagram[0] >> 6 != 2 {
        return None;
    }
    let padding = datagram[0] & 0x20 != 0;
    let extension = datagram[0] & 0x10 != 0;
    let csrc_count = usize::from(datagram[0] & 0x0f);
    let mut offset = 12 + 4 * csrc_count;
    if extension {
        let words = datagram.get(offset + 2..offset + 4)?;
        offset += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = datagram.len();
    if padding {
        let pad = usize::from(*datagram.last()?);
        end = end.checked_sub(pad)?;
    }
    if offset > end {
        return None;
    }
    Some(RtpPacket {
        marker: datagram[1] & 0x80 != 0,
        payload_type: datagram[1] & 0x7f,
        sequence: u16::from_be_bytes([datagram[2], datagram[3]]),
        timestamp: u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
        ssrc: u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
        payload: &datagram[offset..end],
    })
}

/// Writes a 12-byte header into `buffer` and returns the header length (the payload goes after it).
pub fn write_header(
    buffer: &mut [u8],
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) -> usize {
    buffer[0] = 0x80;
    buffer[1] = (u8::from(marker) << 7) | (payload_type & 0x7f);
    buffer[2..4].copy_from_slice(&sequence.to_be_bytes());
    buffer[4..8].copy_from_slice(&timestamp.to_be_bytes());
    buffer[8..12].copy_from_slice(&ssrc.to_be_bytes());
    12
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejects() {
        let mut buf = [0u8; 172];
        let n = write_header(&mut buf, true, 0, 65535, 160, 0xdead_beef);
        buf[n..].fill(0xff);
        let p = parse(&buf).expect("rtp");
        assert_eq!((p.marker, p.payload_type, p.sequence, p.timestamp, p.ssrc), (true, 0, 65535, 160, 0xdead_beef));
        assert_eq!(p.payload.len(), 160);
        assert!(parse(&buf[..11]).is_none());
        let mut v1 = buf;
        v1[0] = 0x40;
        assert!(parse(&v1).is_none());
        let mut padded = buf;
        padded[0] |= 0x20;
        padded[171] = 200;
        assert!(parse(&padded).is_none(), "padding longer than the packet");
        let mut ext = buf;
        ext[0] |= 0x10;
        ext[14] = 0xff;
        ext[15] = 0xff;
        assert!(parse(&ext).is_none(), "extension longer than the packet");
    }
}
