//! The call leg: what the agent sees of a call, whichever way it came in.
//!
//! A way in (the SIP gateway with its RTP media, or a LiveKit room) turns a call into a [`CallLeg`] and
//! hands it to a [`CallHandler`] (the agent). The leg carries the call's identity ([`CallInfo`]: the
//! `calls` row id, the numbers, the agent the dialed number routed to), the caller's audio and DTMF in
//! ([`CallerInput`], 20 ms [`Frame`]s), the agent's audio out ([`AudioSink`], flushable for barge-in) and
//! a [`Hangup`] to end the call from the agent's side. The caller hanging up closes the input. This module
//! imports nothing of the ways in, so the agent never learns which one it is talking through.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use uuid::Uuid;

/// Samples in one 20 ms frame at 8 kHz, and one such frame (plain audio, from [`crate::audio`]).
pub use crate::audio::{Frame, FRAME};

/// Input from the caller. Frames travel by value: no allocation per packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum CallerInput {
    /// 20 ms of decoded audio.
    Audio(Frame),
    /// A DTMF key press.
    Dtmf(char),
}

/// Audio to the caller: queued frames, played every 20 ms; `flush` drops everything queued.
#[derive(Debug, Clone)]
pub struct AudioSink {
    queue: mpsc::Sender<(u64, Frame)>,
    generation: Arc<AtomicU64>,
}

impl AudioSink {
    /// Queues PCM (8 kHz) to be played, padded to whole frames.
    pub async fn play(&self, samples: &[i16]) {
        let generation = self.generation.load(Ordering::Acquire);
        for chunk in samples.chunks(FRAME) {
            let mut frame = [0i16; FRAME];
            frame[..chunk.len()].copy_from_slice(chunk);
            if self.queue.send((generation, frame)).await.is_err() {
                return;
            }
        }
    }

    /// Stops what is playing now (barge-in): every queued frame is dropped.
    pub fn flush(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// The way in's side of an [`AudioSink`]: the frames to send, in order, without the flushed ones.
#[derive(Debug)]
pub struct Playout {
    queue: mpsc::Receiver<(u64, Frame)>,
    generation: Arc<AtomicU64>,
    seen: u64,
}

impl Playout {
    /// Whether the agent flushed its audio since the last call (a way in that queues audio further on,
    /// such as a LiveKit audio source, drops that queue too).
    pub fn flushed(&mut self) -> bool {
        let current = self.generation.load(Ordering::Acquire);
        let flushed = current != self.seen;
        self.seen = current;
        flushed
    }

    /// The next frame to send now, if one is queued (frames queued before a flush are skipped).
    pub fn next_frame(&mut self) -> Option<Frame> {
        let current = self.generation.load(Ordering::Acquire);
        while let Ok((generation, frame)) = self.queue.try_recv() {
            if generation == current {
                return Some(frame);
            }
        }
        None
    }
}

/// A sink for the agent and its playout for the way in; `frames` bounds the queue (the agent waits
/// when it is full).
pub fn audio_channel(frames: usize) -> (AudioSink, Playout) {
    let (queue, queue_rx) = mpsc::channel(frames);
    let generation = Arc::new(AtomicU64::new(0));
    (AudioSink { queue, generation: generation.clone() }, Playout { queue: queue_rx, generation, seen: 0 })
}

/// The call's audio as the agent sees it.
#[derive(Debug)]
pub struct CallAudio {
    /// Caller audio and DTMF; closed when the caller hangs up.
    pub input: mpsc::Receiver<CallerInput>,
    /// Agent audio.
    pub output: AudioSink,
}

/// How the call reached slotline (a label of the `calls` row and of metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WayIn {
    /// slotline's own SIP gateway and RTP media.
    Sip,
    /// A LiveKit room (LiveKit SIP or a browser).
    Livekit,
    /// A text conversation (`slotline chat`): no call, no audio.
    Chat,
}

impl WayIn {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            WayIn::Sip => "sip",
            WayIn::Livekit => "livekit",
            WayIn::Chat => "chat",
        }
    }
}

/// Who called whom, and which agent answers.
#[derive(Debug, Clone)]
pub struct CallInfo {
    /// The `calls` row's id (bookings point back at it).
    pub id: Uuid,
    /// The agent the dialed number routed to.
    pub agent_id: Uuid,
    /// The caller's number as signalled (not normalised; may be empty or anonymous).
    pub caller: String,
    /// The dialed number as signalled.
    pub dialed: String,
    /// The way in.
    pub way_in: WayIn,
}

/// The agent's side of ending a call: the way in hangs up (BYE, or the SIP participant leaves the room)
/// and records `reason` as the call's end.
#[derive(Debug, Clone)]
pub struct Hangup(mpsc::Sender<&'static str>);

impl Hangup {
    /// A hangup and the receiver the way in listens on.
    pub fn channel() -> (Self, mpsc::Receiver<&'static str>) {
        let (tx, rx) = mpsc::channel(4);
        (Self(tx), rx)
    }

    /// Asks the way in to end the call.
    pub async fn request(&self, reason: &'static str) {
        let _ = self.0.send(reason).await;
    }
}

/// One call handed to the agent.
#[derive(Debug)]
pub struct CallLeg {
    /// Who called whom.
    pub info: CallInfo,
    /// Audio both ways.
    pub audio: CallAudio,
    /// Ends the call from the agent's side.
    pub hangup: Hangup,
}

/// Takes answered calls (the agent implements it; the ways in call it).
pub trait CallHandler: Send + Sync {
    /// A call was answered; its audio is the handler's from now on.
    fn answered(&self, leg: CallLeg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flush_drops_what_was_queued_before_it() {
        let (sink, mut playout) = audio_channel(16);
        sink.play(&[1; FRAME * 2]).await;
        assert_eq!(playout.next_frame(), Some([1; FRAME]));
        assert!(!playout.flushed());
        sink.flush();
        assert!(playout.flushed());
        assert!(!playout.flushed(), "a flush is reported once");
        sink.play(&[2; FRAME / 2]).await;
        let mut padded = [0; FRAME];
        padded[..FRAME / 2].fill(2);
        assert_eq!(playout.next_frame(), Some(padded), "the frame queued before the flush is skipped");
        assert_eq!(playout.next_frame(), None);
    }
}
