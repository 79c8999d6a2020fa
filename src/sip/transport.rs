//! SIP transports (RFC 3261 §18): UDP and TCP on one address.
//!
//! Inbound messages become [`Inbound`] events for the server core, with the top `Via` fixed up the way
//! RFC 3261 §18.2.1 and RFC 3581 say (`received` when the source differs from `sent-by`, `rport` filled
//! in when asked for). TCP is framed by `Content-Length`; responses go back on the connection a request
//! came from.
//!
//! Nothing here lets a peer hold up the caller of [`Transports::send`] (the server core): a TCP message
//! is queued on its connection without waiting (a connection whose queue is full is closed), a new
//! connection is opened by a task of its own within [`TCP_SEND_TIMEOUT`], and every write is timed by the
//! same. Connections are capped ([`TcpLimits::max_connections`]; more are closed as they are accepted)
//! and closed after [`TcpLimits::idle_timeout`] without a byte from the peer. [`response_target`] implements §18.2.2 for UDP. [`inbound`] (parse + `Via` fix-up) and
//! [`frame`] (stream framing) are pure functions, unit-tested and fuzzed (`fuzz/`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::message::{self, param, Message};

/// Largest datagram / framed message accepted.
const MAX_MESSAGE: usize = 64 * 1024;

/// How long a TCP connect, or one write to a TCP peer, may take before the connection is given up.
pub const TCP_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages queued for one TCP connection; a peer that lets more pile up is disconnected.
const TCP_QUEUE: usize = 64;

/// Bounds on SIP over TCP.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Connections open at once, accepted and our own.
    pub max_connections: usize,
    /// A connection without a byte from the peer this long is closed.
    pub idle_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        Self { max_connections: 1024, idle_timeout: Duration::from_secs(300) }
    }
}

/// One open TCP connection in the count; leaves it when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Which transport a message used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Transport {
    /// `udp` / `tcp` (Via and metrics use the upper-case form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        }
    }

    /// Whether the transport is reliable (no retransmissions needed).
    pub fn reliable(self) -> bool {
        self == Self::Tcp
    }
}

/// Where a message came from / goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Transport.
    pub transport: Transport,
    /// Remote address.
    pub addr: SocketAddr,
}

/// What a transport hands to the core.
#[derive(Debug)]
pub enum Inbound {
    /// A parsed message.
    Message(Message, Peer),
    /// Bytes that are not SIP (the core answers 400 when it can).
    Malformed(message::ParseError, Peer),
}

/// Both transports, for sending.
#[derive(Clone)]
pub struct Transports {
    udp: Arc<UdpSocket>,
    tcp: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>,
    open: Arc<AtomicUsize>,
    limits: TcpLimits,
    local: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
}

impl Transports {
    /// Binds UDP and TCP on `addr` (port 0: the same free port for both) and starts receiving.
    pub async fn bind(
        addr: SocketAddr,
        limits: TcpLimits,
        shutdown: CancellationToken,
    ) -> std::io::Result<(Self, mpsc::Receiver<Inbound>)> {
        let (udp, tcp) = bind_pair(addr).await?;
        let local = udp.local_addr()?;
        let (tx, rx) = mpsc::channel(1024);
        let transports = Self {
            udp: Arc::new(udp),
            tcp: Arc::new(Mutex::new(HashMap::new())),
            open: Arc::new(AtomicUsize::new(0)),
            limits,
            local,
            inbound: tx,
            shutdown,
        };
        tokio::spawn(transports.clone().receive_udp());
        tokio::spawn(transports.clone().accept_tcp(tcp));
        Ok((transports, rx))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends bytes to a peer without waiting on it: over UDP at once, over TCP queued on its existing
    /// connection, or on a new one a task opens (within [`TCP_SEND_TIMEOUT`]).
    pub async fn send(&self, peer: Peer, bytes: Vec<u8>) {
        match peer.transport {
            Transport::Udp => {
                if let Err(e) = self.udp.send_to(&bytes, peer.addr).await {
                    tracing::debug!(peer = %peer.addr, error = %e, "UDP send failed");
                }
            }
            Transport::Tcp => {
                let existing = self.tcp.lock().unwrap_or_else(|e| e.into_inner()).get(&peer.addr).cloned();
                match existing {
                    Some(sender) => {
                        if let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(bytes) {
                            tracing::debug!(peer = %peer.addr, "TCP peer does not read; closing");
                            self.forget(peer.addr, &sender);
                        }
                    }
                    None => {
                        let transports = self.clone();
                        tokio::spawn(async move {
                            let connected = tokio::time::timeout(TCP_SEND_TIMEOUT, TcpStream::connect(peer.addr)).await;
                            match connected {
                                Ok(Ok(stream)) => {
                                    if let Some(sender) = transports.adopt(stream, peer.addr) {
                                        let _ = sender.try_send(bytes);
                                    }
                                }
                                Ok(Err(e)) => tracing::debug!(peer = %peer.addr, error = %e, "TCP connect failed"),
                                Err(_) => tracing::debug!(peer = %peer.addr, "TCP connect timed out"),
                            }
                        });
                    }
                }
            }
        }
    }

    /// TCP connections open now.
    pub fn tcp_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Drops `peer`'s send queue from the table, if it is still `sender` (its writer then ends).
    fn forget(&self, peer: SocketAddr, sender: &mpsc::Sender<Vec<u8>>) {
        let mut table = self.tcp.lock().unwrap_or_else(|e| e.into_inner());
        if table.get(&peer).is_some_and(|s| s.same_channel(sender)) {
            table.remove(&peer);
        }
    }

    async fn receive_udp(self) {
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let received = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = self.udp.recv_from(&mut buf) => r,
            };
            let (len, from) = match received {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "UDP receive failed");
                    continue;
                }
            };
            let datagram = &buf[..len];
            // Keep-alive pings (RFC 5626 §4.4.1 CRLF) are not messages.
            if datagram.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            self.deliver(datagram, Peer { transport: Transport::Udp, addr: from }).await;
        }
    }

    async fn accept_tcp(self, listener: TcpListener) {
        loop {
            let accepted = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, from)) => {
                    let _ = stream.set_nodelay(true);
                    if self.clone().adopt(stream, from).is_none() {
                        tracing::debug!(peer = %from, "TCP connection limit reached; closed");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "TCP accept failed"),
            }
        }
    }

    /// Starts reading and writing a TCP connection and returns its send queue; `None` (the stream
    /// closed) when the connection limit is reached.
    fn adopt(self, stream: TcpStream, peer: SocketAddr) -> Option<mpsc::Sender<Vec<u8>>> {
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.limits.max_connections {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let slot = Slot(self.open.clone());
        let (mut reader, mut writer) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TCP_QUEUE);
        self.tcp.lock().unwrap_or_else(|e| e.into_inner()).insert(peer, tx.clone());
        // Either half ending closes the connection.
        let closed = self.shutdown.child_token();
        let writer_closed = closed.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = writer_closed.cancelled() => break,
                    next = rx.recv() => match next {
                        Some(bytes) => match tokio::time::timeout(TCP_SEND_TIMEOUT, writer.write_all(&bytes)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break,
                            Err(_) => {
                                tracing::debug!(peer = %peer, "TCP write timed out; closing");
                                break;
                            }
                        },
                        None => break,
                    },
                }
            }
            writer_closed.cancel();
        });
        let sender = tx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut buffer: Vec<u8> = Vec::with_capacity(4096);
            let mut chunk = vec![0u8; 16 * 1024];
            let from = Peer { transport: Transport::Tcp, addr: peer };
            let idle = self.limits.idle_timeout;
            'connection: loop {
                let read = tokio::select! {
                    _ = closed.cancelled() => break,
                    r = tokio::time::timeout(idle, reader.read(&mut chunk)) => r,
                };
                match read {
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
                    Err(_) => {
                        tracing::debug!(peer = %peer, "TCP connection idle; closing");
                        break;
                    }
                }
                loop {
                    match frame(&buffer) {
                        Framing::Message(len) => {
                            let message: Vec<u8> = buffer.drain(..len).collect();
                            self.deliver(&message, from).await;
                        }
                        Framing::Skip(len) => {
                            buffer.drain(..len);
                        }
                        Framing::Incomplete => break,
                        Framing::Invalid => {
                            tracing::debug!(peer = %peer, "unframeable TCP stream; closing");
                            break 'connection;
                        }
                    }
                }
                if buffer.len() > MAX_MESSAGE {
                    break;
                }
            }
            closed.cancel();
            self.forget(peer, &sender);
        });
        Some(tx)
    }

    async fn deliver(&self, bytes: &[u8], peer: Peer) {
        let _ = self.inbound.send(inbound(bytes, peer)).await;
    }
}

/// What one datagram or framed message from `peer` is for the core: parsed, top `Via` fixed up.
pub fn inbound(bytes: &[u8], peer: Peer) -> Inbound {
    match message::parse(bytes) {
        Ok(Message::Request(mut request)) => {
            fix_top_via(&mut request.headers, peer.addr);
            Inbound::Message(Message::Request(request), peer)
        }
        Ok(response) => Inbound::Message(response, peer),
        Err(mut error) => {
            if let Some(request) = error.salvaged.as_mut() {
                fix_top_via(&mut request.headers, peer.addr);
            }
            Inbound::Malformed(error, peer)
        }
    }
}

/// Binds UDP and TCP to the same port (retrying a few random ports when `addr` has port 0).
async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last_error = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no port free for both UDP and TCP")))
}

/// What the start of a TCP stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One whole message of this many bytes.
    Message(usize),
    /// This many CR/LF keep-alive bytes to drop.
    Skip(usize),
    /// Not yet a whole message: read more.
    Incomplete,
    /// Cannot be framed (no or bad `Content-Length`, too large): close the connection.
    Invalid,
}

/// One message at the start of a TCP stream buffer: headers up to the blank line plus Content-Length.
pub fn frame(buffer: &[u8]) -> Framing {
    let leading = buffer.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
    if leading > 0 {
        return Framing::Skip(leading);
    }
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buffer.len() > MAX_MESSAGE { Framing::Invalid } else { Framing::Incomplete };
    };
    let head = String::from_utf8_lossy(&buffer[..end]);
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
            .then(|| value.trim().parse::<usize>())
    });
    let body = match length {
        Some(Ok(n)) if n <= MAX_MESSAGE => n,
        // RFC 3261 §18.3: Content-Length is mandatory on streams.
        _ => return Framing::Invalid,
    };
    let total = end + 4 + body;
    if buffer.len() < total {
        Framing::Incomplete
    } else {
        Framing::Message(total)
    }
}

/// RFC 3261 §18.2.1 / RFC 3581: mark where a request really came from on its top Via.
fn fix_top_via(headers: &mut message::Headers, source: SocketAddr) {
    let Some(via) = headers.get("Via").map(str::to_string) else { return };
    let sent_by_host = via.split_whitespace().nth(1).map(|s| s.split(';').next().unwrap_or(s)).map(host_of);
    let mut fixed = String::with_capacity(via.len() + 32);
    let mut parts = via.split(';');
    fixed.push_str(parts.next().unwrap_or_default());
    for part in parts {
        let name = part.split('=').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("rport") {
            fixed.push_str(&format!(";rport={}", source.port()));
        } else if !name.eq_ignore_ascii_case("received") {
            fixed.push(';');
            fixed.push_str(part);
        }
    }
    let differs = sent_by_host.and_then(|h| h.parse::<IpAddr>().ok()) != Some(source.ip());
    if differs || param(&via, "rport").is_some() {
        fixed.push_str(&format!(";received={}", source.ip()));
    }
    headers.replace_first("Via", fixed);
}

fn host_of(sent_by: &str) -> &str {
    if let Some(rest) = sent_by.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    sent_by.rsplit_once(':').map_or(sent_by, |(host, _)| host)
}

/// Where a UDP response goes (RFC 3261 §18.2.2, RFC 3581 §4): the source port when `rport` was asked
/// for, otherwise the `received` address (or sent-by host) and the sent-by port.
pub fn response_target(via: &str, source: Peer) -> Peer {
    if source.transport == Transport::Tcp {
        return source;
    }
    if let Some(rport) = param(via, "rport").and_then(|p| p.parse::<u16>().ok()) {
        let ip = param(via, "received").and_then(|r| r.parse().ok()).unwrap_or(source.addr.ip());
        return Peer { transport: Transport::Udp, addr: SocketAddr::new(ip, rport) };
    }
    let sent_by = via.split_whitespace().nth(1).map(|s| s.split(';').next().unwrap_or(s)).unwrap_or_default();
    let port = sent_by
        .rsplit_once(':')
        .filter(|(host, _)| !host.ends_with(']') || sent_by.starts_with('['))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(5060);
    let ip = param(via, "received")
        .and_then(|r| r.parse().ok())
        .or_else(|| host_of(sent_by).parse().ok())
        .unwrap_or(source.addr.ip());
    Peer { transport: Transport::Udp, addr: SocketAddr::new(ip, port) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_gets_received_and_rport() {
        let mut headers = message::Headers::default();
        headers.push("Via", "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK-1;rport");
        fix_top_via(&mut headers, "192.0.2.7:40000".parse().expect("addr"));
        let via = headers.get("Via").expect("via");
        assert_eq!(via, "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK-1;rport=40000;received=192.0.2.7");
        let peer = Peer { transport: Transport::Udp, addr: "192.0.2.7:40000".parse().expect("addr") };
        assert_eq!(response_target(via, peer).addr.to_string(), "192.0.2.7:40000");

        let mut same = message::Headers::default();
        same.push("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-2");
        fix_top_via(&mut same, "127.0.0.1:5070".parse().expect("addr"));
        assert_eq!(same.get("Via"), Some("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-2"));
        let no_rport = "SIP/2.0/UDP 10.0.0.5:5070;branch=z;received=192.0.2.7";
        assert_eq!(response_target(no_rport, peer).addr.to_string(), "192.0.2.7:5070");
    }

    #[test]
    fn tcp_framing_uses_content_length() {
        let message = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcOPT";
        assert!(matches!(frame(message), Framing::Message(n) if n == message.len() - 3));
        assert!(matches!(frame(&message[..20]), Framing::Incomplete));
        assert!(matches!(frame(b"\r\n\r\nOPTIONS"), Framing::Skip(4)));
        assert!(matches!(frame(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n"), Framing::Invalid));
    }

    #[test]
    fn inbound_fixes_the_via_of_parsed_and_salvaged_requests() {
        let peer = Peer { transport: Transport::Udp, addr: "192.0.2.7:40000".parse().expect("addr") };
        let request = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK-1;rport\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let Inbound::Message(Message::Request(parsed), _) = inbound(request.as_bytes(), peer) else {
            panic!("a request")
        };
        assert_eq!(parsed.headers.get("Via").and_then(|v| param(v, "rport")), Some("40000"));
        let broken = request.replace("Content-Length: 0", "Content-Length: 9");
        let Inbound::Malformed(error, _) = inbound(broken.as_bytes(), peer) else { panic!("malformed") };
        let salvaged = error.salvaged.expect("salvaged");
        assert_eq!(salvaged.headers.get("Via").and_then(|v| param(v, "received")), Some("192.0.2.7"));
    }
}
