//! Room media: the job runner that joins the job's room through LiveKit's FFI library and lets the agent
//! talk in it, the same agent session as a direct SIP call.
//!
//! ```text
//! caller's track ─► AudioStream (8 kHz, 20 ms, resampled by the library) ─► CallerInput::Audio ─┐
//! SipDTMF data packets ──────────────────────────────────────────────────► CallerInput::Dtmf ───┤ CallLeg
//! agent's AudioSink ─► Playout, paced every 10 ms ─► AudioSource (the agent's published track) ◄┘
//! ```
//!
//! Each utterance after a pause starts with [`LEAD_FRAMES`] frames sent at once, then goes on in real
//! time: LiveKit SIP's mixer plays a track that fell silent again only once it holds three 20 ms frames,
//! so a lead of three lets it start on its next 20 ms tick instead of waiting for them to arrive in real
//! time (40–60 ms). The mixer holds the same three frames during the utterance either way.
//!
//! The caller is the room's SIP participant, or else the first other participant (a browser or app
//! caller). The job's call is recorded in `calls` through [`super::record`] (the webhook may have done so
//! already) and handed to the [`CallHandler`] as a [`CallLeg`]. The call ends when the caller leaves
//! (`caller_left`; the leg's input closes and the session ends), when the agent hangs up (`agent_bye`: the
//! row is closed first, then the caller is removed from the room, which makes LiveKit SIP send its BYE),
//! when the room goes away, or when the job is cancelled (LiveKit's termination or the worker's drain).
//! A barge-in flushes the agent's sink; the source itself queues nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use slotline_lkffi::{AudioSource, AudioStream, Ffi, Participant, ParticipantKind, Room, RoomEvent, RoomOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::job::{JobError, JobRunner, ResolvedJob, SipCaller};
use super::{record, LivekitError, LivekitSettings};
use crate::call::{audio_channel, CallAudio, CallHandler, CallInfo, CallLeg, CallerInput, Frame, Hangup, WayIn, FRAME};
use crate::storage::Store;

/// The session's sample rate (the agent's frames are 20 ms at 8 kHz).
const SAMPLE_RATE: u32 = 8000;
/// Frame length asked of the caller's audio stream.
const FRAME_MS: u32 = 20;
/// The agent's audio source queues nothing: each 10 ms goes straight to WebRTC, paced here in real time.
/// (A library-side queue adds 10–17 ms one way; a barge-in then has only the pacer's half frame to drop.)
const SOURCE_QUEUE_MS: u32 = 0;
/// The pacing of the agent's audio into its source: one half frame.
const PACE: Duration = Duration::from_millis(10);
/// Samples in one paced half frame.
const HALF: usize = FRAME / 2;
/// Frames sent at once when the agent starts speaking after a pause: LiveKit SIP's mixer input
/// (media-sdk `mixer.DefaultInputBufferMin`, 5 / 2 + 1 frames of 20 ms, fixed in livekit-sip) starts
/// only once it holds three.
const LEAD_FRAMES: usize = 3;
/// How long the end of a call waits for the caller audio's receive statistics.
const STATS_WAIT: Duration = Duration::from_secs(1);
/// How long a job waits for its caller to be in the room.
const CALLER_WAIT: Duration = Duration::from_secs(20);

/// Runs jobs in their rooms.
pub struct RoomMedia {
    ffi: Ffi,
    store: Arc<dyn Store>,
    settings: Arc<LivekitSettings>,
    calls: Arc<dyn CallHandler>,
}

impl RoomMedia {
    /// A runner over the loaded library, handing calls to `calls`.
    pub fn new(ffi: Ffi, store: Arc<dyn Store>, settings: Arc<LivekitSettings>, calls: Arc<dyn CallHandler>) -> Self {
        Self { ffi, store, settings, calls }
    }
}

fn media_error(e: slotline_lkffi::FfiError) -> JobError {
    JobError::Livekit(LivekitError::Media(e.to_string()))
}

/// Why the room's call ended.
enum End {
    CallerLeft,
    AgentHungUp(&'static str),
    RoomClosed,
    Cancelled,
}

#[async_trait]
impl JobRunner for RoomMedia {
    async fn run(&self, job: ResolvedJob, cancel: CancellationToken) -> Result<(), JobError> {
        let options = RoomOptions { auto_subscribe: true };
        let (room, mut events) =
            Room::connect(&self.ffi, &job.assignment.url, &job.assignment.token, options).await.map_err(media_error)?;
        let Some(caller) = find_caller(&room, &mut events).await else {
            let _ = room.disconnect().await;
            return Err(JobError::NoCaller);
        };
        let sip = match caller.kind {
            ParticipantKind::Sip => SipCaller::from_attributes(&caller.identity, &caller.attributes),
            _ => SipCaller { identity: caller.identity.clone(), ..SipCaller::default() },
        };
        let room_sid = room.sid().unwrap_or(room.name()).to_string();
        let call = record::start(self.store.as_ref(), room.name(), &room_sid, &sip, Some(job.agent.id)).await?;
        let source = room.local_audio(SAMPLE_RATE, SOURCE_QUEUE_MS).await.map_err(media_error)?;

        let (output, playout) = audio_channel(512);
        let (input, input_rx) = mpsc::channel(64);
        let (hangup, hangups) = Hangup::channel();
        let info = CallInfo {
            id: call.id,
            agent_id: job.agent.id,
            caller: sip.caller.clone(),
            dialed: call.dialed.clone(),
            way_in: WayIn::Livekit,
        };
        tracing::info!(call_id = %call.id, job_id = %job.assignment.job_id, agent_id = %job.agent.id, "livekit call answered");
        self.calls.answered(CallLeg { info, audio: CallAudio { input: input_rx, output }, hangup });

        let pump = Pump {
            room: &room,
            caller: &caller.identity,
            source,
            input,
            playout,
            hangups,
            events,
            half_sent: None,
            idle: true,
        };
        let end = pump.run(&cancel).await;
        let reason = match end {
            End::CallerLeft => "caller_left",
            End::AgentHungUp(reason) => reason,
            End::RoomClosed => "room_closed",
            End::Cancelled => "shutdown",
        };
        record::end(self.store.as_ref(), &room_sid, reason).await?;
        if matches!(end, End::AgentHungUp(_)) {
            // LiveKit SIP sends the caller its BYE when the participant is removed.
            if let Err(e) = self.settings.rooms().remove_participant(room.name(), &caller.identity).await {
                tracing::warn!(error = %e, call_id = %call.id, "cannot remove the caller from the room");
            }
        }
        let _ = room.disconnect().await;
        Ok(())
    }
}

/// The room's caller: a SIP participant, else the first other participant; waits a little for one.
async fn find_caller(room: &Room, events: &mut mpsc::UnboundedReceiver<RoomEvent>) -> Option<Participant> {
    let pick = |participants: &[Participant]| {
        participants
            .iter()
            .find(|p| p.kind == ParticipantKind::Sip)
            .or_else(|| participants.iter().find(|p| p.kind != ParticipantKind::Agent))
            .cloned()
    };
    if let Some(caller) = pick(room.participants_at_connect()) {
        return Some(caller);
    }
    let deadline = tokio::time::sleep(CALLER_WAIT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return None,
            event = events.recv() => match event? {
                RoomEvent::ParticipantConnected(p) if p.kind != ParticipantKind::Agent => return Some(p),
                RoomEvent::Disconnected { .. } => return None,
                _ => {}
            },
        }
    }
}

/// Moves audio, keys and the end of the call between the room and the call leg.
struct Pump<'a> {
    room: &'a Room,
    caller: &'a str,
    source: AudioSource,
    input: mpsc::Sender<CallerInput>,
    playout: crate::call::Playout,
    hangups: mpsc::Receiver<&'static str>,
    events: mpsc::UnboundedReceiver<RoomEvent>,
    /// The agent's frame whose first half went out on the last tick.
    half_sent: Option<Frame>,
    /// Whether the last tick had nothing to send (the next utterance starts with a lead).
    idle: bool,
}

impl Pump<'_> {
    /// Runs until the call ends, then records the caller audio's jitter buffer delay.
    async fn run(self, cancel: &CancellationToken) -> End {
        let mut stream: Option<AudioStream> = None;
        let end = self.pump(cancel, &mut stream).await;
        if let Some(stream) = stream {
            match tokio::time::timeout(STATS_WAIT, stream.jitter_buffer()).await {
                Ok(Ok(Some(buffer))) => {
                    tracing::debug!(?buffer, "the caller audio's jitter buffer");
                    crate::metrics::livekit_jitter_buffer(buffer.mean_delay);
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "no receive statistics for the caller's audio"),
                Err(_) => tracing::debug!("the caller audio's receive statistics did not come"),
            }
        }
        end
    }

    async fn pump(mut self, cancel: &CancellationToken, stream: &mut Option<AudioStream>) -> End {
        let mut pacer = tokio::time::interval(PACE);
        pacer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return End::Cancelled,
                reason = self.hangups.recv() => return End::AgentHungUp(reason.unwrap_or("agent_bye")),
                event = self.events.recv() => match event {
                    None | Some(RoomEvent::Disconnected { .. }) => return End::RoomClosed,
                    Some(event) => {
                        if let Some(end) = self.on_event(event, stream) {
                            return end;
                        }
                    }
                },
                frame = next_frame(stream) => match frame {
                    Some(samples) => self.caller_audio(&samples),
                    None => *stream = None,
                },
                _ = pacer.tick() => self.play().await,
            }
        }
    }

    fn on_event(&mut self, event: RoomEvent, stream: &mut Option<AudioStream>) -> Option<End> {
        match event {
            RoomEvent::TrackSubscribed { participant_identity, track } if participant_identity == self.caller => {
                match self.room.audio_stream(&track, SAMPLE_RATE, FRAME_MS) {
                    Ok(opened) => *stream = Some(opened),
                    Err(e) => tracing::warn!(error = %e, "cannot open the caller's audio"),
                }
            }
            RoomEvent::SipDtmf { participant_identity, digit, code } if participant_identity == self.caller => {
                if let Some(key) = dtmf_key(code, &digit) {
                    crate::metrics::dtmf_event();
                    let _ = self.input.try_send(CallerInput::Dtmf(key));
                }
            }
            RoomEvent::ParticipantDisconnected { identity, .. } if identity == self.caller => {
                return Some(End::CallerLeft);
            }
            _ => {}
        }
        None
    }

    /// One 20 ms frame of the caller to the agent (a full input queue drops it: the agent is behind).
    fn caller_audio(&self, samples: &[i16]) {
        for chunk in samples.chunks(FRAME) {
            let mut frame: Frame = [0; FRAME];
            frame[..chunk.len()].copy_from_slice(chunk);
            let _ = self.input.try_send(CallerInput::Audio(frame));
        }
    }

    /// The agent's next 10 ms, if any, into its track: the second half of the frame begun on the last tick,
    /// else the first half of the playout's next frame, or the lead when the track was idle. A flush
    /// (barge-in) drops the pending half.
    async fn play(&mut self) {
        if self.playout.flushed() {
            self.half_sent = None;
        }
        if let Some(frame) = self.half_sent.take() {
            self.capture(&frame[HALF..FRAME]).await;
            return;
        }
        let Some(frame) = self.playout.next_frame() else {
            self.idle = true;
            return;
        };
        if std::mem::take(&mut self.idle) {
            self.lead(frame).await;
        } else {
            self.half_sent = Some(frame);
            self.capture(&frame[..HALF]).await;
        }
    }

    /// The start of an utterance: `first` and up to [`LEAD_FRAMES`] − 1 more queued frames at once, each in
    /// two 10 ms captures (the source takes 10 ms at a time); pacing goes on from the next tick.
    async fn lead(&mut self, first: Frame) {
        let mut frame = first;
        for sent in 1..=LEAD_FRAMES {
            self.capture(&frame[..HALF]).await;
            self.capture(&frame[HALF..FRAME]).await;
            if sent == LEAD_FRAMES {
                return;
            }
            let Some(next) = self.playout.next_frame() else { return };
            frame = next;
        }
    }

    async fn capture(&self, samples: &[i16]) {
        if let Err(e) = self.source.capture(samples).await {
            tracing::debug!(error = %e, "cannot send the agent's audio");
        }
    }
}

async fn next_frame(stream: &mut Option<AudioStream>) -> Option<Vec<i16>> {
    match stream {
        Some(stream) => stream.recv().await.map(|frame| frame.samples),
        None => std::future::pending().await,
    }
}

/// The key of a LiveKit SIP DTMF packet (RFC 4733 event codes; the digit text when it has one).
fn dtmf_key(code: u32, digit: &str) -> Option<char> {
    if let Some(key) = digit.chars().next().filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')) {
        return Some(key);
    }
    match code {
        0..=9 => char::from_digit(code, 10),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + (code - 12) as u8) as char),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::dtmf_key;

    #[test]
    fn sip_dtmf_packets_become_keys() {
        assert_eq!(dtmf_key(1, "1"), Some('1'));
        assert_eq!(dtmf_key(11, ""), Some('#'));
        assert_eq!(dtmf_key(10, ""), Some('*'));
        assert_eq!(dtmf_key(13, ""), Some('B'));
        assert_eq!(dtmf_key(99, "x"), None);
    }
}
