//! One call's media: an RTP socket from the pool, symmetric RTP (we send to where the caller's media
//! actually comes from), G.711 both ways, RFC 4733 DTMF in, a 20 ms pacer on the monotonic clock that
//! sends our audio and pulls the caller's out of the jitter buffer (losses concealed), RTCP reports
//! every 5 s, loss and jitter accounting (RFC 3550 A.3, A.8), and the media timeout that ends dead calls.
//!
//! The agent pipeline sees the call as a [`CallAudio`]: decoded 8 kHz frames and DTMF digits in, and an
//! [`crate::call::AudioSink`] out whose queue is flushed at once on barge-in. Until a pipeline takes the
//! audio, the session plays the greeting after the ACK and can record the caller.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::dtmf::DtmfReceiver;
use super::jitter::{JitterBuffer, Pulled};
use super::ports::{PortPool, RtpPorts};
use super::rtcp::{self, ReportBlock, SenderInfo};
use super::{g711, rtp, wav};
use crate::call::{audio_channel, CallAudio, CallerInput, Playout, FRAME};
use crate::metrics;
use crate::sip::sdp::Negotiated;
use crate::storage::CallRecord;

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

impl MediaSession {
    /// Binds a port pair and starts the session (sending starts with [`MediaSession::begin_playback`]).
    pub async fn start(
        settings: &MediaSettings,
        negotiated: &Negotiated,
        call: &CallRecord,
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
            call_id: call.sip_call_id.clone(),
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
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
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
        let (mut sequence, mut timestamp, ssrc): (u16, u32, u32) = {
            let mut rng = rand::thread_rng();
            (rng.gen(), rng.gen(), rng.gen())
        };
        let mut remote = self.negotiated.remote;
        let mut playing = false;
        let mut greeting_at = 0usize;
        let mut first_packet = true;
        let mut last_rx = Instant::now();
        let mut timed_out = false;
        let mut stats = ReceiveStats::default();
        let mut dtmf = DtmfReceiver::default();
        let mut recorded: Vec<i16> = Vec::new();
        let mut frame = [0i16; FRAME];
        let mut concealment = [0i16; FRAME];
        let mut inbound = [0u8; 1500];
        let mut outbound = [0u8; 12 + FRAME];
        let mut report = [0u8; 128];
        let mut sent: u64 = 0;
        let mut jitter = JitterBuffer::new(JITTER_TARGET_FRAMES);
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
                        if negotiated.remote.is_some() {
                            remote = negotiated.remote;
                        }
                        self.negotiated = negotiated;
                        last_rx = Instant::now();
                    }
                    Control::Play => playing = true,
                    Control::Pipeline => greeting_at = self.settings.greeting.len(),
                },
                received = self.ports.rtp.recv_from(&mut inbound) => {
                    let Ok((len, from)) = received else { continue };
                    let Some(packet) = rtp::parse(&inbound[..len]) else { continue };
                    // Symmetric RTP: answer where the caller's media really comes from (NAT).
                    remote = Some(from);
                    last_rx = Instant::now();
                    timed_out = false;
                    stats.on_packet(packet.sequence, packet.timestamp, started.elapsed());
                    stats.ssrc = packet.ssrc;
                    if packet.payload_type == self.negotiated.payload_type {
                        jitter.insert(packet.sequence, packet.payload);
                        // Caller audio goes on as soon as it is in order; losses are concealed.
                        loop {
                            let audio = match jitter.pop() {
                                Pulled::Frame(payload) => {
                                    let n = g711::decode(self.negotiated.codec, payload, &mut frame);
                                    frame[n..].fill(0);
                                    concealment = frame;
                                    frame
                                }
                                Pulled::Missing => {
                                    // Repeat the last frame at half level, fading further each time.
                                    concealment.iter_mut().for_each(|s| *s /= 2);
                                    concealment
                                }
                                Pulled::Idle => break,
                            };
                            if self.recording.is_some() && recorded.len() < 8000 * 3600 {
                                recorded.extend_from_slice(&audio);
                            }
                            let _ = self.input.try_send(CallerInput::Audio(audio));
                        }
                    } else if Some(packet.payload_type) == self.negotiated.dtmf_payload_type {
                        if let Some(digit) = dtmf.on_packet(packet.timestamp, packet.payload) {
                            tracing::info!(call_id = %self.call_id, digit = %digit.key, end_lost = digit.end_lost, "DTMF");
                            metrics::dtmf_event();
                            let _ = self.input.try_send(CallerInput::Dtmf(digit.key));
                        }
                    }
                }
                received = self.ports.rtcp.recv_from(&mut report) => {
                    let Ok((len, from)) = received else { continue };
                    rtcp_remote = Some(from);
                    for block in rtcp::report_blocks(&report[..len]) {
                        tracing::debug!(call_id = %self.call_id, fraction_lost = block.fraction_lost, jitter = block.jitter, "RTCP report from the caller");
                    }
                }
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    if ticks % RTCP_EVERY_TICKS == 0 {
                        if let Some(to) = rtcp_remote.or_else(|| remote.map(|r| std::net::SocketAddr::new(r.ip(), r.port().wrapping_add(1)))) {
                            let sender = (sent > 0).then(|| SenderInfo {
                                rtp_timestamp: timestamp,
                                packets: sent as u32,
                                octets: (sent * FRAME as u64) as u32,
                            });
                            let len = rtcp::write_report(&mut report, ssrc, sender, stats.report(), &cname);
                            let _ = self.ports.rtcp.send_to(&report[..len], to).await;
                        }
                    }
                    if !timed_out && !self.negotiated.on_hold() && last_rx.elapsed() > self.settings.timeout {
                        timed_out = true;
                        let _ = self.events.send(MediaEvent::Timeout).await;
                    }
                    let Some(to) = remote else { continue };
                    if !playing || !self.negotiated.we_send() {
                        timestamp = timestamp.wrapping_add(FRAME as u32);
                        continue;
                    }
                    let samples = match self.playout.next_frame() {
                        Some(queued) => queued,
                        None if greeting_at < self.settings.greeting.len() => {
                            let end = (greeting_at + FRAME).min(self.settings.greeting.len());
                            let mut f = [0i16; FRAME];
                            f[..end - greeting_at].copy_from_slice(&self.settings.greeting[greeting_at..end]);
                            greeting_at = end;
                            f
                        }
                        None => [0i16; FRAME],
                    };
                    let header = rtp::write_header(&mut outbound, first_packet, self.negotiated.payload_type, sequence, timestamp, ssrc);
                    g711::encode(self.negotiated.codec, &samples, &mut outbound[header..]);
                    if self.ports.rtp.send_to(&outbound, to).await.is_ok() {
                        sent += 1;
                    }
                    first_packet = false;
                    sequence = sequence.wrapping_add(1);
                    timestamp = timestamp.wrapping_add(FRAME as u32);
                }
            }
        }
        metrics::rtp_call_stats(stats.packets, sent, stats.lost(), stats.jitter / 8.0);
        let buffered = jitter.stats();
        tracing::info!(
            call_id = %self.call_id,
            received = stats.packets,
            sent,
            lost = stats.lost(),
            jitter_ms = stats.jitter / 8.0,
            late = buffered.late,
            concealed = buffered.missing,
            "media ended"
        );
        if let Some(path) = self.recording {
            let write = tokio::task::spawn_blocking(move || {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                wav::write(&path, &recorded)
            });
            if let Ok(Err(e)) = write.await {
                tracing::warn!(error = %e, "cannot write the recording");
            }
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
}
