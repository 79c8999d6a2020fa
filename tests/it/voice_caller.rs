//! A spoken caller over real SIP and RTP on loopback. sipp does the signalling
//! (`tests/sipp/voice_caller.xml`: INVITE with this module's RTP port in the SDP, ACK, then it answers the
//! agent's BYE); this module is the caller's phone: it sends 20 ms G.711 μ-law packets (silence between
//! turns, as a phone does), speaks each scripted turn when its cue comes, and records everything the
//! agent sends with each packet's arrival time, so tests and `bench/turn_latency.sh` can measure on the
//! wire. Shared by `tests/it/voice_call.rs` and `examples/turn_latency.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use slotline::media::codec::Codec;
use slotline::media::{g711, rtp};

/// Samples per 20 ms packet at 8 kHz.
pub const FRAME: usize = 160;
/// A packet whose RMS is above this is speech (the agent's pauses are digital silence, espeak-ng's
/// quietest phonemes are far above it).
pub const VOICED_RMS: f64 = 250.0;
/// The agent's prompt is over after this much silence following its speech.
pub const PROMPT_END: Duration = Duration::from_millis(700);
/// A longer wait for the agent than this fails the call (it never spoke, or never stopped).
const CUE_TIMEOUT: Duration = Duration::from_secs(40);

/// When a turn is spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    /// After the agent's prompt has ended ([`PROMPT_END`] of silence after its speech).
    AfterPrompt,
    /// Over the agent: this long after it started speaking, while it still speaks (barge-in).
    WhileAgentSpeaks(Duration),
}

/// One thing the caller says.
#[derive(Debug, Clone)]
pub struct Turn {
    /// What is said (for messages).
    pub text: String,
    /// 8 kHz mono PCM.
    pub audio: Vec<i16>,
    /// A key pressed instead (RFC 4733 telephone-event, payload type 101); `audio` is then empty.
    pub key: Option<char>,
    /// When.
    pub cue: Cue,
}

/// One packet from the agent.
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    /// Arrival.
    pub at: Instant,
    /// Above [`VOICED_RMS`].
    pub voiced: bool,
}

/// When the caller spoke one turn.
#[derive(Debug, Clone)]
pub struct TurnLog {
    /// What was said.
    pub text: String,
    /// The first voiced packet sent.
    pub first_voiced: Option<Instant>,
    /// The last voiced packet sent.
    pub last_voiced: Option<Instant>,
    /// Index into [`CallLog::received`] when the turn started.
    pub received_at_start: usize,
    /// Index into [`CallLog::received`] when the turn's audio was all sent.
    pub received_at_end: usize,
}

impl TurnLog {
    /// From the turn's first voiced packet sent to its last.
    pub fn speaking(&self) -> Option<Duration> {
        Some(self.last_voiced?.saturating_duration_since(self.first_voiced?))
    }
}

/// What happened on the call.
#[derive(Debug, Clone)]
pub struct CallLog {
    /// sipp's exit code: 0 when the agent hung up (sipp answered its BYE); -2 when the deadline passed.
    pub sipp_code: i32,
    /// sipp's stdout and stderr.
    pub sipp_output: String,
    /// Every audio packet the agent sent, in order.
    pub received: Vec<Packet>,
    /// The agent's audio, decoded, [`FRAME`] samples per packet of `received`.
    pub audio: Vec<i16>,
    /// The caller's turns that were spoken.
    pub turns: Vec<TurnLog>,
    /// Why the script stopped early, if it did.
    pub error: Option<String>,
}

impl CallLog {
    /// The agent's audio from the end of turn `index` to the start of the next turn (or the call's end).
    pub fn reply_audio(&self, index: usize) -> &[i16] {
        let start = self.turns[index].received_at_end;
        let end = self.turns.get(index + 1).map_or(self.received.len(), |t| t.received_at_start);
        &self.audio[start * FRAME..end * FRAME]
    }

    /// The agent's speech in the packets `start..end` without the silence around it, cut at the first
    /// pause of `pause` after `at_least` of it (whisper tiny loops on long tails of silence).
    pub fn speech_between(&self, start: usize, end: usize, at_least: Duration, pause: Duration) -> &[i16] {
        let packets = &self.received[start..end];
        let frames = |d: Duration| (d.as_millis() / 20) as usize;
        let Some(first) = packets.iter().position(|p| p.voiced) else { return &[] };
        let mut last = first;
        let mut quiet = 0;
        for (i, packet) in packets.iter().enumerate().skip(first) {
            if packet.voiced {
                last = i;
                quiet = 0;
            } else {
                quiet += 1;
                if quiet >= frames(pause) && last - first >= frames(at_least) {
                    break;
                }
            }
        }
        let (from, to) = (start + first.saturating_sub(5), (start + last + 10).min(end));
        &self.audio[from * FRAME..to * FRAME]
    }

    /// The turn gap: the caller's last voiced packet of turn `index` to the agent's next voiced packet.
    pub fn turn_gap(&self, index: usize) -> Option<Duration> {
        let turn = &self.turns[index];
        let last = turn.last_voiced?;
        let reply = self.received[turn.received_at_start..].iter().find(|p| p.voiced && p.at > last)?;
        Some(reply.at - last)
    }

    /// Barge-in as seen on the wire: from the caller's first voiced packet of turn `index` to the agent's
    /// last voiced packet before a silence of at least `quiet` (negative reactions are clamped to zero).
    pub fn barge_in_stop(&self, index: usize, quiet: Duration) -> Option<Duration> {
        let onset = self.turns[index].first_voiced?;
        let mut last_voiced: Option<Instant> = None;
        for packet in self.received[self.turns[index].received_at_start..].iter().filter(|p| p.voiced) {
            // The first silence of `quiet` that is still going on at or after the onset.
            if last_voiced.is_some_and(|l| packet.at - l >= quiet && packet.at > onset) {
                break;
            }
            last_voiced = Some(packet.at);
        }
        Some(last_voiced?.saturating_duration_since(onset))
    }
}

/// A call to place.
#[derive(Debug, Clone)]
pub struct CallSpec<'a> {
    /// The address the caller's SIP and RTP use (`127.0.0.1`, or a test host's address).
    pub local_ip: std::net::IpAddr,
    /// The SIP address called (slotline's, or LiveKit SIP's).
    pub sip: SocketAddr,
    /// The caller id (From user).
    pub caller: &'a str,
    /// The dialed number.
    pub service: &'a str,
    /// `tests/sipp/voice_caller.xml`.
    pub scenario: &'a Path,
    /// What the caller says, in order.
    pub turns: Vec<Turn>,
    /// The whole call's limit.
    pub deadline: Duration,
}

fn rms(frame: &[i16]) -> f64 {
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / frame.len().max(1) as f64).sqrt()
}

/// Writes an RFC 4733 telephone-event packet (payload type 101, volume 10) for `key`; returns its length.
fn write_key(
    packet: &mut [u8; 16],
    key: char,
    end: bool,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    duration: u16,
) -> usize {
    let event = match key {
        '0'..='9' => key as u8 - b'0',
        '*' => 10,
        '#' => 11,
        _ => panic!("not a DTMF key: {key}"),
    };
    let header = rtp::write_header(&mut packet[..], false, 101, sequence, timestamp, ssrc);
    packet[header] = event;
    packet[header + 1] = if end { 0x80 | 10 } else { 10 };
    packet[header + 2..header + 4].copy_from_slice(&duration.to_be_bytes());
    header + 4
}

/// Whether 20 ms of audio is speech by energy.
pub fn voiced(frame: &[i16]) -> bool {
    rms(frame) > VOICED_RMS
}

/// Places the call, speaks the turns, and returns once sipp ends (the agent hung up) or the deadline
/// passes. After the last turn the caller keeps listening until the agent hangs up.
#[allow(
    clippy::too_many_lines,
    reason = "one sipp call driven turn by turn: placing it, pacing the speech and listening share their state"
)]
pub async fn call(spec: CallSpec<'_>) -> CallLog {
    let socket = tokio::net::UdpSocket::bind((spec.local_ip, 0)).await.expect("bind RTP");
    let rtp_port = socket.local_addr().expect("addr").port().to_string();
    let (sip_port, media_port) = (
        crate::local::free_sip_port(spec.local_ip).to_string(),
        crate::local::free_sip_port(spec.local_ip).to_string(),
    );
    let local_ip = spec.local_ip.to_string();
    let mut command = tokio::process::Command::new("sipp");
    command
        .arg(spec.sip.to_string())
        .args(["-sf", spec.scenario.to_str().expect("path")])
        .args(["-s", spec.service, "-i", &local_ip, "-mi", &local_ip, "-p", &sip_port, "-mp", &media_port])
        .args(["-m", "1", "-l", "1", "-nostdin", "-timeout_error", "-max_recv_loops", "1000"])
        .args(["-timeout", &format!("{}s", spec.deadline.as_secs() + 5)])
        .args(["-key", "rtp_port", &rtp_port, "-key", "caller", spec.caller])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("sipp is installed (Debian package sip-tester)");
    let mut sipp = tokio::spawn(child.wait_with_output());

    let mut log = CallLog {
        sipp_code: -2,
        sipp_output: String::new(),
        received: Vec::new(),
        audio: Vec::new(),
        turns: Vec::new(),
        error: None,
    };
    let deadline = tokio::time::sleep(spec.deadline);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let (mut sequence, mut timestamp, ssrc) =
        (1u16, 0u32, 0x5107_1e00u32 ^ u32::from(socket.local_addr().expect("addr").port()));
    let mut remote: Option<SocketAddr> = None;
    let mut inbound = [0u8; 1500];
    let mut outbound = [0u8; 12 + FRAME];
    let mut key_packet = [0u8; 16];
    let mut decoded = [0i16; FRAME];
    // Agent speech seen since the caller last finished a turn: its first and last voiced packet.
    let mut agent_first: Option<Instant> = None;
    let mut agent_last: Option<Instant> = None;
    let mut waiting_since = Instant::now();
    let mut next = 0usize;
    let mut playing: Option<usize> = None;
    loop {
        tokio::select! {
            output = &mut sipp => {
                if let Ok(Ok(output)) = output {
                    log.sipp_code = output.status.code().unwrap_or(-1);
                    log.sipp_output = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
                }
                break;
            }
            () = &mut deadline => {
                sipp.abort();
                log.error.get_or_insert_with(|| "the call's deadline passed".into());
                break;
            }
            received = socket.recv_from(&mut inbound) => {
                let Ok((len, from)) = received else { continue };
                let Some(packet) = rtp::parse(&inbound[..len]) else { continue };
                remote = Some(from);
                if packet.payload_type != 0 {
                    continue;
                }
                let n = g711::decode(Codec::Pcmu, packet.payload, &mut decoded);
                decoded[n..].fill(0);
                let at = Instant::now();
                let is_voiced = voiced(&decoded);
                if is_voiced {
                    agent_first.get_or_insert(at);
                    agent_last = Some(at);
                }
                log.received.push(Packet { at, voiced: is_voiced });
                log.audio.extend_from_slice(&decoded);
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if playing.is_none() && next < spec.turns.len() {
                    let ready = match spec.turns[next].cue {
                        Cue::AfterPrompt => agent_last.is_some_and(|last| now - last >= PROMPT_END),
                        Cue::WhileAgentSpeaks(after) => agent_first.is_some_and(|first| now - first >= after)
                            && agent_last.is_some_and(|last| now - last < Duration::from_millis(60)),
                    };
                    if ready {
                        if let (Some(key), Some(to)) = (spec.turns[next].key, remote) {
                            // RFC 4733: the event at the current timestamp, growing, then its end three times.
                            for (i, duration) in [160u16, 320, 480, 640, 640, 640].into_iter().enumerate() {
                                let len = write_key(&mut key_packet, key, i >= 3, sequence, timestamp, ssrc, duration);
                                let _ = socket.send_to(&key_packet[..len], to).await;
                                sequence = sequence.wrapping_add(1);
                            }
                            log.turns.push(TurnLog {
                                text: spec.turns[next].text.clone(),
                                first_voiced: Some(now),
                                last_voiced: Some(now),
                                received_at_start: log.received.len(),
                                received_at_end: log.received.len(),
                            });
                            next += 1;
                            agent_first = None;
                            agent_last = None;
                            waiting_since = Instant::now();
                            continue;
                        }
                        playing = Some(0);
                        log.turns.push(TurnLog {
                            text: spec.turns[next].text.clone(),
                            first_voiced: None,
                            last_voiced: None,
                            received_at_start: log.received.len(),
                            received_at_end: log.received.len(),
                        });
                    } else if now - waiting_since > CUE_TIMEOUT {
                        log.error = Some(format!("no cue for turn {next} ({:?}) in {CUE_TIMEOUT:?}", spec.turns[next].text));
                        sipp.abort();
                        break;
                    }
                }
                let mut frame = [0i16; FRAME];
                let speaking = playing.is_some();
                if let Some(offset) = playing {
                    let audio = &spec.turns[next].audio;
                    let end = (offset + FRAME).min(audio.len());
                    frame[..end - offset].copy_from_slice(&audio[offset..end]);
                    playing = (end < audio.len()).then_some(end);
                }
                if let Some(to) = remote {
                    let header = rtp::write_header(&mut outbound, sequence == 1, 0, sequence, timestamp, ssrc);
                    g711::encode(Codec::Pcmu, &frame, &mut outbound[header..]);
                    let _ = socket.send_to(&outbound, to).await;
                }
                sequence = sequence.wrapping_add(1);
                timestamp = timestamp.wrapping_add(FRAME as u32);
                if let (true, Some(turn)) = (speaking, log.turns.last_mut()) {
                    if voiced(&frame) {
                        let sent = Instant::now();
                        turn.first_voiced.get_or_insert(sent);
                        turn.last_voiced = Some(sent);
                    }
                    if playing.is_none() {
                        // The turn's audio is out: listen for the agent's answer.
                        turn.received_at_end = log.received.len();
                        next += 1;
                        agent_first = None;
                        agent_last = None;
                        waiting_since = Instant::now();
                    }
                }
            }
        }
    }
    log
}
