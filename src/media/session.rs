//! One call's media: an RTP socket from the pool, symmetric RTP latched on the caller's stream (the first
//! packet from the SDP's address, or from the SIP peer's or the SDP's IP on another port when the caller
//! is behind NAT, fixes the source address and SSRC we listen to and send to; packets from anyone else
//! are ignored and counted), G.711 both ways, RFC 4733 DTMF in, a 20 ms pacer on the monotonic clock that
//! sends our audio and pulls the caller's out of the jitter buffer (losses concealed), RTCP reports
//! every 5 s, loss and jitter accounting (RFC 3550 A.3, A.8), and the media timeout that ends dead calls.
//!
//! The agent pipeline sees the call as a [`CallAudio`]: decoded 8 kHz frames and DTMF digits in, and an
//! [`crate::call::AudioSink`] out whose queue is flushed at once on barge-in. Until a pipeline takes the
//! audio, the session plays the greeting after the ACK and can record the caller (streamed to a file only
//! its owner may read, by a blocking writer fed through a bounded queue).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::codec::Negotiated;
use super::dtmf::DtmfReceiver;
use super::jitter::{JitterBuffer, Pulled};
use super::ports::{PortPool, RtpPorts};
use super::rtcp::{self, ReportBlock, SenderInfo};
use super::{g711, rtp};
use crate::audio::wav;
use crate::call::{audio_channel, CallAudio, CallerInput, Playout, FRAME};
use crate::metrics;

/// Frames the jitter buffer waits for at the start, and later packets after which a missing one is lost.
const JITTER_TARGET_FRAMES: usize = 3;
/// Pacer ticks between RTCP reports (5 s).
const RTCP_EVERY_TICKS: u32 = 250;

/// Media settings shared by all calls.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// RTP ports.
    pub ports: Arc<PortPool>,
    /// No RTP for this long (outside hold) ends the call.
    pub timeout: Duration,
    /// Longest call.
    pub max_call: Duration,
    /// Audio played after the answer until an agent pipeline takes over.
    pub greeting: Arc<Vec<i16>>,
    /// Directory for recordings of the caller's audio (`<call id>.wav`), when recording is on.
    pub recordings: Option<PathBuf>,
}

/// What the media of a call tells the SIP core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// No RTP within the media timeout.
    Timeout,
    /// The call reached the longest call duration.
    MaxDuration,
}

enum Control {
    Update(Negotiated),
    Play,
    /// An agent pipeline speaks: no greeting.
    Pipeline,
}

/// A running media session.
pub struct MediaSession {
    port: u16,
    control: mpsc::UnboundedSender<Control>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    audio: Option<CallAudio>,
}

/// Which call a media session belongs to: its id (the recording's file name) and its SIP Call-ID (in
/// log lines).
#[derive(Debug, Clone, Copy)]
pub struct CallTag<'a> {
    /// The call's id (the `calls` row).
    pub id: uuid::Uuid,
    /// The SIP Call-ID.
    pub sip_call_id: &'a str,
}

impl MediaSession {
    /// Binds a port pair and starts the session (sending starts with [`MediaSession::begin_playback`]).
    /// `signalling` is the address the INVITE came from: a NATed caller's RTP comes from its IP.
    pub async fn start(
        settings: &MediaSettings,
        negotiated: &Negotiated,
        call: CallTag<'_>,
        signalling: IpAddr,
        events: mpsc::Sender<MediaEvent>,
    ) -> std::io::Result<Self> {
        let ports = settings.ports.allocate().await?;
        let port = ports.port();
        let (control, control_rx) = mpsc::unbounded_channel();
        let (input_tx, input) = mpsc::channel(64);
        let (output, playout) = audio_channel(256);
        let stop = CancellationToken::new();
        let recording = settings.recordings.as_ref().map(|dir| dir.join(format!("{}.wav", call.id)));
        let worker = Worker {
            ports,
            negotiated: negotiated.clone(),
            settings: settings.clone(),
            events,
            input: input_tx,
            playout,
            recording,
            call_id: call.sip_call_id.to_string(),
            latch: Latch::new(negotiated.remote, signalling),
        };
        let task = tokio::spawn(worker.run(control_rx, stop.clone()));
        Ok(Self { port, control, stop, task, audio: Some(CallAudio { input, output }) })
    }

    /// The local RTP port (for the SDP answer).
    pub fn local_port(&self) -> u16 {
        self.port
    }

    /// Hands the call's audio to an agent pipeline (the greeting then stays silent).
    pub fn take_audio(&mut self) -> Option<CallAudio> {
        let audio = self.audio.take();
        if audio.is_some() {
            let _ = self.control.send(Control::Pipeline);
        }
        audio
    }

    /// Applies a re-INVITE (hold, unhold, new address).
    pub fn update(&self, negotiated: &Negotiated) {
        let _ = self.control.send(Control::Update(negotiated.clone()));
    }

    /// The call is confirmed (ACK): start sending.
    pub fn begin_playback(&self) {
        let _ = self.control.send(Control::Play);
    }

    /// Stops the session and waits for it (recording written).
    pub async fn stop(mut self) {
        self.stop.cancel();
        let _ = (&mut self.task).await;
    }
}

impl Drop for MediaSession {
    /// A session dropped without [`MediaSession::stop`] still ends its task, which frees the ports.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Why a received RTP packet was ignored (the `reason` label of `slotline_rtp_packets_ignored_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Foreign {
    /// From an address that is not the caller's.
    Source,
    /// From the caller's address, but another stream (SSRC).
    Ssrc,
}

/// Which RTP the session accepts: before the first accepted packet, one from the SDP's address or from a
/// port on the SDP's or the SIP peer's IP (symmetric RTP through NAT); after it, only that source and
/// SSRC. A re-INVITE that moves the caller's media to a new address starts over.
#[derive(Debug, Clone, Copy)]
struct Latch {
    expected: Option<SocketAddr>,
    signalling: IpAddr,
    latched: Option<(SocketAddr, u32)>,
}

impl Latch {
    fn new(expected: Option<SocketAddr>, signalling: IpAddr) -> Self {
        Self { expected, signalling, latched: None }
    }

    /// `Ok(())` for the caller's packet (latching on the first), else why it is ignored.
    fn check(&mut self, from: SocketAddr, ssrc: u32) -> Result<(), Foreign> {
        match self.latched {
            Some((source, _)) if source != from => Err(Foreign::Source),
            Some((_, stream)) if stream != ssrc => Err(Foreign::Ssrc),
            Some(_) => Ok(()),
            None if self.may_latch(from) => {
                self.latched = Some((from, ssrc));
                Ok(())
            }
            None => Err(Foreign::Source),
        }
    }

    fn may_latch(&self, from: SocketAddr) -> bool {
        self.expected.is_some_and(|sdp| sdp == from || sdp.ip() == from.ip()) || from.ip() == self.signalling
    }

    /// Whether RTCP from `from` is the caller's (RTCP has its own port, so only the IP is compared).
    fn rtcp_from_caller(&self, from: SocketAddr) -> bool {
        match self.latched {
            Some((source, _)) => source.ip() == from.ip(),
            None => self.may_latch(from),
        }
    }

    /// A re-INVITE's address: a new one unlatches.
    fn update(&mut self, expected: SocketAddr) {
        if self.expected != Some(expected) {
            *self = Self::new(Some(expected), self.signalling);
        }
    }

    /// Where our RTP goes: the latched source, else the SDP's address.
    fn remote(&self) -> Option<SocketAddr> {
        self.latched.map(|(source, _)| source).or(self.expected)
    }
}

struct Worker {
    ports: RtpPorts,
    negotiated: Negotiated,
    settings: MediaSettings,
    events: mpsc::Sender<MediaEvent>,
    input: mpsc::Sender<CallerInput>,
    playout: Playout,
    recording: Option<PathBuf>,
    call_id: String,
    latch: Latch,
}

/// Receive-side statistics (RFC 3550 A.1, A.3, A.8).
#[derive(Debug, Default)]
struct ReceiveStats {
    ssrc: u32,
    expected_prior: u64,
    received_prior: u64,
    packets: u64,
    base_seq: Option<u32>,
    max_seq: u32,
    cycles: u32,
    jitter: f64,
    last_transit: Option<i64>,
}

impl ReceiveStats {
    fn on_packet(&mut self, sequence: u16, timestamp: u32, arrival: Duration) {
        self.packets += 1;
        let seq = u32::from(sequence);
        match self.base_seq {
            None => {
                self.base_seq = Some(seq);
                self.max_seq = seq;
            }
            Some(_) => {
                let max = self.max_seq & 0xffff;
                let delta = seq.wrapping_sub(max) & 0xffff;
                if delta < 0x8000 {
                    if seq < max {
                        self.cycles += 1;
                    }
                    self.max_seq = (self.cycles << 16) | seq;
                }
            }
        }
        // Interarrival jitter in timestamp units (8 kHz).
        let arrival_units = (arrival.as_secs_f64() * 8000.0) as i64;
        let transit = arrival_units - i64::from(timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    fn expected(&self) -> u64 {
        self.base_seq.map_or(0, |base| u64::from(self.max_seq.wrapping_sub(base)) + 1)
    }

    fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.packets)
    }

    /// The report block for our next RTCP report (fraction lost since the previous one, RFC 3550 A.3).
    fn report(&mut self) -> Option<ReportBlock> {
        self.base_seq?;
        let (expected, received) = (self.expected(), self.packets);
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let lost_interval = expected_interval.saturating_sub(received.saturating_sub(self.received_prior));
        self.expected_prior = expected;
        self.received_prior = received;
        let fraction_lost = (lost_interval << 8).checked_div(expected_interval).map_or(0, |f| f.min(255) as u8);
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.lost().min(0x7f_ffff) as u32,
            highest_sequence: self.max_seq,
            jitter: self.jitter as u32,
        })
    }
}

impl Worker {
    async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>, stop: CancellationToken) {
        let started = Instant::now();
        let mut tick = tokio::time::interval_at(started + Duration::from_millis(20), Duration::from_millis(20));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let max_call = tokio::time::sleep(self.settings.max_call);
        tokio::pin!(max_call);
        let ignored = metrics::rtp_ignored();
        let mut rx = Inbound::new(self.recording.take().map(Recorder::start));
        let mut tx = Outbound::new();
        let mut inbound = [0u8; 1500];
        let mut report = [0u8; 128];
        let mut ticks: u32 = 0;
        let mut rtcp_remote: Option<std::net::SocketAddr> = None;
        let cname = format!("slotline@{}", self.call_id.chars().take(40).collect::<String>());
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                () = &mut max_call => {
                    let _ = self.events.send(MediaEvent::MaxDuration).await;
                    max_call.as_mut().reset(Instant::now() + Duration::from_secs(3600));
                }
                Some(command) = control.recv() => match command {
                    Control::Update(negotiated) => {
                        if let Some(remote) = negotiated.remote {
                            self.latch.update(remote);
                        }
                        self.negotiated = negotiated;
                        rx.last_rx = Instant::now();
                    }
                    Control::Play => tx.playing = true,
                    Control::Pipeline => tx.greeting_at = self.settings.greeting.len(),
                },
                received = self.ports.rtp.recv_from(&mut inbound) => {
                    let Ok((len, from)) = received else { continue };
                    self.on_rtp(&mut rx, &inbound[..len], from, started, &ignored);
                }
                received = self.ports.rtcp.recv_from(&mut report) => {
                    let Ok((len, from)) = received else { continue };
                    if !self.latch.rtcp_from_caller(from) {
                        continue;
                    }
                    rtcp_remote = Some(from);
                    for block in rtcp::report_blocks(&report[..len]) {
                        tracing::debug!(call_id = %self.call_id, fraction_lost = block.fraction_lost, jitter = block.jitter, "RTCP report from the caller");
                    }
                }
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    if ticks % RTCP_EVERY_TICKS == 0 {
                        self.send_report(&mut report, &tx, &mut rx.stats, rtcp_remote, &cname).await;
                    }
                    if !rx.timed_out && !self.negotiated.on_hold() && rx.last_rx.elapsed() > self.settings.timeout {
                        rx.timed_out = true;
                        let _ = self.events.send(MediaEvent::Timeout).await;
                    }
                    self.send_frame(&mut tx).await;
                }
            }
        }
        metrics::rtp_call_stats(rx.stats.packets, tx.sent, rx.stats.lost(), rx.stats.jitter / 8.0);
        let buffered = rx.jitter.stats();
        tracing::info!(
            call_id = %self.call_id,
            received = rx.stats.packets,
            sent = tx.sent,
            lost = rx.stats.lost(),
            jitter_ms = rx.stats.jitter / 8.0,
            late = buffered.late,
            concealed = buffered.missing,
            "media ended"
        );
        if let Some(recorder) = rx.recorder {
            recorder.finish().await;
        }
    }

    /// One RTP packet from the network: the caller's audio goes on in order (losses concealed), DTMF as
    /// keys; packets from anyone but the latched caller are counted and dropped.
    fn on_rtp(
        &mut self,
        rx: &mut Inbound,
        data: &[u8],
        from: SocketAddr,
        started: Instant,
        ignored: &metrics::RtpIgnored,
    ) {
        let Some(packet) = rtp::parse(data) else { return };
        // Symmetric RTP: answer where the caller's media really comes from (NAT), and only them.
        if let Err(foreign) = self.latch.check(from, packet.ssrc) {
            match foreign {
                Foreign::Source => ignored.source.increment(1),
                Foreign::Ssrc => ignored.ssrc.increment(1),
            }
            return;
        }
        rx.last_rx = Instant::now();
        rx.timed_out = false;
        rx.stats.on_packet(packet.sequence, packet.timestamp, started.elapsed());
        rx.stats.ssrc = packet.ssrc;
        if packet.payload_type == self.negotiated.payload_type {
            rx.jitter.insert(packet.sequence, packet.payload);
            self.deliver(rx);
        } else if Some(packet.payload_type) == self.negotiated.dtmf_payload_type {
            if let Some(digit) = rx.dtmf.on_packet(packet.timestamp, packet.payload) {
                // The digit is what the caller typed (perhaps a card or account number): debug only.
                tracing::debug!(call_id = %self.call_id, digit = %digit.key, end_lost = digit.end_lost, "DTMF");
                metrics::dtmf_event();
                let _ = self.input.try_send(CallerInput::Dtmf(digit.key));
            }
        }
    }

    /// Caller audio goes on as soon as it is in order; losses are concealed.
    fn deliver(&self, rx: &mut Inbound) {
        loop {
            let audio = match rx.jitter.pop() {
                Pulled::Frame(payload) => {
                    let n = g711::decode(self.negotiated.codec, payload, &mut rx.frame);
                    rx.frame[n..].fill(0);
                    rx.concealment = rx.frame;
                    rx.frame
                }
                Pulled::Missing => {
                    // Repeat the last frame at half level, fading further each time.
                    rx.concealment.iter_mut().for_each(|s| *s /= 2);
                    rx.concealment
                }
                Pulled::Idle => break,
            };
            if let Some(recorder) = rx.recorder.as_mut() {
                recorder.push(audio);
            }
            let _ = self.input.try_send(CallerInput::Audio(audio));
        }
    }

    /// An RTCP report to the caller's RTCP address (where their reports come from, else RTP port + 1).
    async fn send_report(
        &self,
        report: &mut [u8; 128],
        tx: &Outbound,
        stats: &mut ReceiveStats,
        rtcp_remote: Option<SocketAddr>,
        cname: &str,
    ) {
        if let Some(to) = rtcp_remote
            .or_else(|| self.latch.remote().map(|r| std::net::SocketAddr::new(r.ip(), r.port().wrapping_add(1))))
        {
            let sender = (tx.sent > 0).then(|| SenderInfo {
                rtp_timestamp: tx.timestamp,
                packets: tx.sent as u32,
                octets: (tx.sent * FRAME as u64) as u32,
            });
            let len = rtcp::write_report(report, tx.ssrc, sender, stats.report(), cname);
            let _ = self.ports.rtcp.send_to(&report[..len], to).await;
        }
    }

    /// The next 20 ms to the caller: queued speech, else the greeting, else silence; nothing (but time
    /// goes on) before playing starts, while on hold, or before the caller's address is known.
    async fn send_frame(&mut self, tx: &mut Outbound) {
        let Some(to) = self.latch.remote() else { return };
        if !tx.playing || !self.negotiated.we_send() {
            tx.timestamp = tx.timestamp.wrapping_add(FRAME as u32);
            return;
        }
        let samples = match self.playout.next_frame() {
            Some(queued) => queued,
            None if tx.greeting_at < self.settings.greeting.len() => {
                let end = (tx.greeting_at + FRAME).min(self.settings.greeting.len());
                let mut f = [0i16; FRAME];
                f[..end - tx.greeting_at].copy_from_slice(&self.settings.greeting[tx.greeting_at..end]);
                tx.greeting_at = end;
                f
            }
            None => [0i16; FRAME],
        };
        let header = rtp::write_header(
            &mut tx.packet,
            tx.first_packet,
            self.negotiated.payload_type,
            tx.sequence,
            tx.timestamp,
            tx.ssrc,
        );
        g711::encode(self.negotiated.codec, &samples, &mut tx.packet[header..]);
        if self.ports.rtp.send_to(&tx.packet, to).await.is_ok() {
            tx.sent += 1;
        }
        tx.first_packet = false;
        tx.sequence = tx.sequence.wrapping_add(1);
        tx.timestamp = tx.timestamp.wrapping_add(FRAME as u32);
    }
}

/// The caller's side of the stream: statistics, DTMF, the jitter buffer and concealment, the recording.
struct Inbound {
    stats: ReceiveStats,
    dtmf: DtmfReceiver,
    jitter: JitterBuffer,
    frame: [i16; FRAME],
    concealment: [i16; FRAME],
    recorder: Option<Recorder>,
    last_rx: Instant,
    timed_out: bool,
}

impl Inbound {
    fn new(recorder: Option<Recorder>) -> Self {
        Inbound {
            stats: ReceiveStats::default(),
            dtmf: DtmfReceiver::default(),
            jitter: JitterBuffer::new(JITTER_TARGET_FRAMES),
            frame: [0i16; FRAME],
            concealment: [0i16; FRAME],
            recorder,
            last_rx: Instant::now(),
            timed_out: false,
        }
    }
}

/// Our side of the stream: the RTP sequence, timestamp and source, what was sent, the greeting's place.
struct Outbound {
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    sent: u64,
    first_packet: bool,
    playing: bool,
    greeting_at: usize,
    packet: [u8; 12 + FRAME],
}

impl Outbound {
    fn new() -> Self {
        let (sequence, timestamp, ssrc): (u16, u32, u32) = {
            let mut rng = rand::thread_rng();
            (rng.gen(), rng.gen(), rng.gen())
        };
        Outbound {
            sequence,
            timestamp,
            ssrc,
            sent: 0,
            first_packet: true,
            playing: false,
            greeting_at: 0,
            packet: [0u8; 12 + FRAME],
        }
    }
}

/// Frames of the caller's audio that may wait for the recording's writer (10 s); more are dropped.
const RECORDING_QUEUE_FRAMES: usize = 500;
/// The longest recording, in frames (one hour).
const RECORDING_MAX_FRAMES: u64 = 3600 * 50;

/// The caller's audio on its way to disk: frames go by value through a bounded channel (no allocation,
/// no I/O on the media task) to a blocking writer that streams them into the WAV file.
struct Recorder {
    frames: Option<std::sync::mpsc::SyncSender<[i16; FRAME]>>,
    writer: tokio::task::JoinHandle<()>,
    queued: u64,
    dropped: u64,
}

impl Recorder {
    fn start(path: PathBuf) -> Self {
        let (frames, received) = std::sync::mpsc::sync_channel::<[i16; FRAME]>(RECORDING_QUEUE_FRAMES);
        let writer = tokio::task::spawn_blocking(move || {
            let written = (|| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let mut wav = wav::WavWriter::create(&path)?;
                while let Ok(frame) = received.recv() {
                    wav.append(&frame)?;
                }
                wav.finish()
            })();
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot write the recording");
            }
        });
        Self { frames: Some(frames), writer, queued: 0, dropped: 0 }
    }

    fn push(&mut self, frame: [i16; FRAME]) {
        if self.queued >= RECORDING_MAX_FRAMES {
            return;
        }
        if self.frames.as_ref().is_some_and(|frames| frames.try_send(frame).is_ok()) {
            self.queued += 1;
        } else {
            self.dropped += 1;
        }
    }

    /// Ends the recording and waits until the file is complete.
    async fn finish(mut self) {
        self.frames = None;
        let _ = (&mut self.writer).await;
        if self.dropped > 0 {
            tracing::warn!(dropped = self.dropped, "the disk was too slow: frames are missing from the recording");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_jitter_follow_rfc3550() {
        let mut stats = ReceiveStats::default();
        for (i, seq) in [65534u16, 65535, 1, 2].iter().enumerate() {
            stats.on_packet(*seq, u32::from(*seq) * 160, Duration::from_millis(20 * i as u64));
        }
        assert_eq!(stats.expected(), 5, "65534..=2 across the wrap");
        assert_eq!(stats.lost(), 1, "sequence 0 is missing");
        let mut steady = ReceiveStats::default();
        for i in 0..50u16 {
            steady.on_packet(i, u32::from(i) * 160, Duration::from_millis(20 * u64::from(i)));
        }
        assert!(steady.jitter < 1.0, "{}", steady.jitter);
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("addr")
    }

    #[test]
    fn latches_on_the_callers_first_packet_and_ignores_everyone_else() {
        let signalling: IpAddr = "198.51.100.7".parse().expect("ip");
        let mut latch = Latch::new(Some(addr("192.0.2.10:4000")), signalling);
        assert_eq!(latch.check(addr("203.0.113.66:4000"), 1), Err(Foreign::Source), "a stranger cannot latch");
        assert_eq!(latch.remote(), Some(addr("192.0.2.10:4000")), "until then we send to the SDP's address");
        assert_eq!(latch.check(addr("192.0.2.10:4000"), 7), Ok(()));
        assert_eq!(latch.check(addr("192.0.2.10:4000"), 7), Ok(()));
        assert_eq!(latch.check(addr("192.0.2.10:4002"), 7), Err(Foreign::Source), "same IP, other port");
        assert_eq!(latch.check(addr("192.0.2.10:4000"), 8), Err(Foreign::Ssrc));
        assert!(latch.rtcp_from_caller(addr("192.0.2.10:4001")) && !latch.rtcp_from_caller(addr("203.0.113.66:4001")));
        // Behind NAT: the SDP names a private address, media comes from the SIP peer's IP.
        let mut nat = Latch::new(Some(addr("10.0.0.5:4000")), signalling);
        assert_eq!(nat.check(addr("198.51.100.7:61000"), 3), Ok(()));
        assert_eq!(nat.remote(), Some(addr("198.51.100.7:61000")), "symmetric RTP: we answer where it comes from");
        // A re-INVITE to the same address keeps the latch; a new address starts over.
        nat.update(addr("10.0.0.5:4000"));
        assert_eq!(nat.check(addr("10.0.0.5:4000"), 3), Err(Foreign::Source));
        nat.update(addr("192.0.2.20:5000"));
        assert_eq!(nat.check(addr("192.0.2.20:5000"), 9), Ok(()));
    }

    #[tokio::test]
    async fn a_dropped_session_stops_and_frees_its_ports() {
        // A pool of one pair, on an even port whose odd sibling is free now.
        let even = loop {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            let port = probe.local_addr().expect("addr").port() & !1;
            drop(probe);
            if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
            {
                break port;
            }
        };
        let ports = PortPool::new("127.0.0.1".parse().expect("ip"), even, even + 1);
        let settings = MediaSettings {
            ports: ports.clone(),
            timeout: Duration::from_secs(30),
            max_call: Duration::from_secs(3600),
            greeting: Arc::new(Vec::new()),
            recordings: None,
        };
        let negotiated = Negotiated {
            remote: Some("127.0.0.1:9".parse().expect("addr")),
            codec: crate::media::codec::Codec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: None,
            ptime_ms: 20,
            direction: crate::media::codec::Direction::SendRecv,
            we_offer: false,
        };
        let call = CallTag { id: uuid::Uuid::new_v4(), sip_call_id: "drop-test" };
        let (events, _events) = mpsc::channel(4);
        let session = MediaSession::start(&settings, &negotiated, call, [127, 0, 0, 1].into(), events)
            .await
            .expect("the one pair");
        assert!(ports.allocate().await.is_err(), "the pool's one pair is taken");
        drop(session);
        // The task notices the drop and releases the pair; wait for that, not for a time.
        let freed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Ok(pair) = ports.allocate().await {
                    return pair;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("a dropped session frees its RTP ports");
        assert_eq!(freed.port(), even);
    }
}
