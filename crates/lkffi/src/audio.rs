//! Audio both ways: an [`AudioSource`] feeds the published microphone track, an [`AudioStream`] yields a
//! subscribed track's decoded PCM. The library resamples both ways, so the agent's session rate (8, 16,
//! 24 or 48 kHz) is a parameter and no resampler of our own is needed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::library::{Library, OwnedHandle, StreamItem};
use crate::proto::{self, ffi_event, ffi_request, ffi_response};
use crate::room::REQUEST_TIMEOUT;
use crate::FfiError;

/// Frames an [`AudioStream`] holds for a reader that falls behind (5 s of 10 ms frames); newer frames are
/// dropped (and counted) beyond that.
const STREAM_CAPACITY: usize = 500;

/// One frame of received audio: interleaved 16-bit PCM (mono as this crate asks for it), copied out of the
/// library's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// The samples.
    pub samples: Vec<i16>,
    /// Samples per second (per channel).
    pub sample_rate: u32,
    /// Channels (1).
    pub channels: u32,
}

impl AudioFrame {
    /// How much audio the frame holds.
    pub fn duration(&self) -> Duration {
        let per_channel = self.samples.len() as u64 / u64::from(self.channels.max(1));
        Duration::from_micros(per_channel * 1_000_000 / u64::from(self.sample_rate.max(1)))
    }
}

/// A subscribed remote audio track (from [`crate::RoomEvent::TrackSubscribed`]). It holds the track's
/// handle: streams opened from it keep it, and the track is released when the last of them and this value
/// are dropped.
#[derive(Debug, Clone)]
pub struct RemoteAudioTrack {
    handle: Arc<OwnedHandle>,
    sid: String,
    name: String,
    participant_identity: String,
}

impl RemoteAudioTrack {
    pub(crate) fn new(lib: &'static Library, track: proto::OwnedTrack, participant_identity: String) -> Self {
        Self {
            handle: Arc::new(OwnedHandle::new(lib, track.handle.id)),
            sid: track.info.sid,
            name: track.info.name,
            participant_identity,
        }
    }

    /// The track's sid.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The track's name (LiveKit SIP names its track after the participant).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whose track it is.
    pub fn participant_identity(&self) -> &str {
        &self.participant_identity
    }
}

/// The dispatcher's route to one stream's receiver.
pub(crate) struct StreamRoute {
    tx: mpsc::Sender<AudioFrame>,
    dropped: Arc<AtomicU64>,
}

impl StreamRoute {
    /// Hands over one item; false when the stream ended (its route is then removed).
    pub(crate) fn deliver(&self, item: StreamItem) -> bool {
        match item {
            StreamItem::Frame(frame) => match self.tx.try_send(frame) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
            StreamItem::End => false,
        }
    }
}

/// Decoded audio of a remote track, resampled to the rate asked for, in frames of the length asked for.
/// The stream keeps the track open; it ends when the track is unsubscribed or the room closes, but **not**
/// when its participant leaves (watch [`crate::RoomEvent::ParticipantDisconnected`]).
pub struct AudioStream {
    lib: &'static Library,
    frames: mpsc::Receiver<AudioFrame>,
    dropped: Arc<AtomicU64>,
    sample_rate: u32,
    frame_ms: u32,
    // Dropped in this order: the stream before the track it reads.
    stream: OwnedHandle,
    _track: Arc<OwnedHandle>,
}

impl std::fmt::Debug for AudioStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioStream").field("sample_rate", &self.sample_rate).field("frame_ms", &self.frame_ms).finish()
    }
}

impl AudioStream {
    pub(crate) fn open(
        lib: &'static Library,
        track: &RemoteAudioTrack,
        sample_rate: u32,
        frame_ms: u32,
    ) -> Result<AudioStream, FfiError> {
        if !(8000..=48000).contains(&sample_rate) || sample_rate % 100 != 0 {
            return Err(FfiError::InvalidArgument(format!("sample rate {sample_rate} Hz: use 8000 to 48000")));
        }
        if !(10..=100).contains(&frame_ms) || frame_ms % 10 != 0 {
            return Err(FfiError::InvalidArgument(format!("frames of {frame_ms} ms: use 10 to 100, a multiple of 10")));
        }
        let response = lib.request(
            "new_audio_stream",
            ffi_request::Message::NewAudioStream(proto::NewAudioStreamRequest {
                track_handle: track.handle.id(),
                r#type: proto::AudioStreamType::AudioStreamNative as i32,
                sample_rate: Some(sample_rate),
                num_channels: Some(1),
                frame_size_ms: Some(frame_ms),
                ..Default::default()
            }),
        )?;
        let ffi_response::Message::NewAudioStream(stream) = response else {
            return Err(FfiError::Unexpected("new_audio_stream"));
        };
        let stream = OwnedHandle::new(lib, stream.stream.handle.id);
        let (tx, frames) = mpsc::channel(STREAM_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        // Frames that overtook the response are waiting in the dispatcher: the route takes them first.
        lib.add_stream(stream.id(), StreamRoute { tx, dropped: dropped.clone() });
        Ok(AudioStream { lib, frames, dropped, sample_rate, frame_ms, stream, _track: track.handle.clone() })
    }

    /// The next frame, or `None` once the stream ended.
    pub async fn recv(&mut self) -> Option<AudioFrame> {
        self.frames.recv().await
    }

    /// Frames dropped because the reader was more than 5 s behind.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The sample rate of the frames.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The length of the frames in milliseconds.
    pub fn frame_ms(&self) -> u32 {
        self.frame_ms
    }

    pub(crate) fn lib(&self) -> &'static Library {
        self.lib
    }

    /// The handle of the track the stream reads.
    pub(crate) fn track_handle(&self) -> u64 {
        self._track.id()
    }
}

impl Drop for AudioStream {
    fn drop(&mut self) {
        self.lib.remove_stream(self.stream.id());
    }
}

/// The agent's published audio track: mono PCM at its sample rate goes in through [`AudioSource::capture`].
/// Dropping it releases the source and the track (the publication stays until the room closes).
pub struct AudioSource {
    lib: &'static Library,
    sample_rate: u32,
    queue_ms: u32,
    /// One capture in flight: the library handles each as its own task, so two could reorder.
    in_flight: tokio::sync::Mutex<()>,
    // Dropped in this order.
    _publication: OwnedHandle,
    _track: OwnedHandle,
    source: OwnedHandle,
}

impl std::fmt::Debug for AudioSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioSource").field("sample_rate", &self.sample_rate).field("queue_ms", &self.queue_ms).finish()
    }
}

impl AudioSource {
    pub(crate) fn new(
        lib: &'static Library,
        source: OwnedHandle,
        track: OwnedHandle,
        publication: OwnedHandle,
        sample_rate: u32,
        queue_ms: u32,
    ) -> Self {
        Self {
            lib,
            sample_rate,
            queue_ms,
            in_flight: tokio::sync::Mutex::new(()),
            _publication: publication,
            _track: track,
            source,
        }
    }

    /// The source's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The source's queue in milliseconds (0: none).
    pub fn queue_ms(&self) -> u32 {
        self.queue_ms
    }

    /// Samples in 10 ms at the source's rate: frames are whole multiples of it.
    pub fn samples_per_10ms(&self) -> usize {
        self.sample_rate as usize / 100
    }

    /// Sends mono PCM at the source's rate. Without a queue a frame is exactly 10 ms and the caller paces
    /// frames in real time; with a queue it is any multiple of 10 ms up to the queue's length, and this
    /// returns once the frame fits in the queue (backpressure). Captures run one at a time, in order.
    pub async fn capture(&self, pcm: &[i16]) -> Result<(), FfiError> {
        let per_10ms = self.samples_per_10ms();
        let max = per_10ms * (self.queue_ms.max(10) as usize / 10);
        if pcm.is_empty() || pcm.len() % per_10ms != 0 || pcm.len() > max {
            return Err(FfiError::InvalidArgument(format!(
                "a frame of {} samples: at {} Hz with a {} ms queue send multiples of {per_10ms} samples up to {max}",
                pcm.len(),
                self.sample_rate,
                self.queue_ms
            )));
        }
        let _turn = self.in_flight.lock().await;
        // The library reads the samples while handling the request; the copy lives until the callback even
        // if this future is dropped.
        let frame: Box<[i16]> = pcm.into();
        let buffer = proto::AudioFrameBufferInfo {
            data_ptr: frame.as_ptr() as u64,
            num_channels: 1,
            sample_rate: self.sample_rate,
            samples_per_channel: frame.len() as u32,
        };
        let source = self.source.id();
        let timeout = REQUEST_TIMEOUT + Duration::from_millis(u64::from(self.queue_ms));
        let event = self
            .lib
            .request_async(
                "capture_audio_frame",
                |id| {
                    ffi_request::Message::CaptureAudioFrame(proto::CaptureAudioFrameRequest {
                        source_handle: source,
                        buffer,
                        request_async_id: Some(id),
                    })
                },
                Some(Box::new(frame)),
                timeout,
            )
            .await?;
        match event {
            ffi_event::Message::CaptureAudioFrame(callback) => match callback.error {
                None => Ok(()),
                Some(message) => Err(FfiError::Failed { op: "capture_audio_frame", message }),
            },
            _ => Err(FfiError::Unexpected("capture_audio_frame")),
        }
    }

    /// Drops everything queued and not yet sent (barge-in: the caller spoke over the agent). The listener
    /// stops hearing it after the pipeline's latency (about 60 ms measured).
    pub fn clear(&self) -> Result<(), FfiError> {
        self.lib.request(
            "clear_audio_buffer",
            ffi_request::Message::ClearAudioBuffer(proto::ClearAudioBufferRequest { source_handle: self.source.id() }),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_knows_its_duration() {
        let frame = AudioFrame { samples: vec![0; 320], sample_rate: 16000, channels: 1 };
        assert_eq!(frame.duration(), Duration::from_millis(20));
    }
}
