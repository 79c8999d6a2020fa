//! Receive statistics of a remote audio track: what libwebrtc's jitter buffer (NetEq) holds the audio
//! for before the library hands it to an [`AudioStream`], read through the library's `GetStats`.
//!
//! The figures are WebRTC's `inbound-rtp` ones (`jitterBufferDelay` and its target and minimum are sums
//! over the emitted samples), reduced here to means per sample.

use std::time::Duration;

use crate::proto::{self, ffi_event, ffi_request};
use crate::room::REQUEST_TIMEOUT;
use crate::{AudioStream, FfiError};

/// The jitter buffer of a received track, averaged over the samples it emitted so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JitterBuffer {
    /// Mean time a sample waited in the buffer.
    pub mean_delay: Duration,
    /// Mean delay the buffer aimed at.
    pub mean_target: Duration,
    /// Mean of the lowest delay the buffer would aim at (its network-free floor).
    pub mean_minimum: Duration,
    /// Samples emitted (per channel, at the track's rate).
    pub emitted: u64,
}

impl JitterBuffer {
    fn from_inbound(inbound: &proto::InboundRtpStreamStats) -> Self {
        let emitted = inbound.jitter_buffer_emitted_count;
        // Whole microseconds: the library's sums are floating point.
        let mean = |total: f64| {
            let micros = if emitted == 0 { 0.0 } else { (total / emitted as f64 * 1e6).round() };
            if micros.is_finite() && micros > 0.0 {
                Duration::from_micros(micros as u64)
            } else {
                Duration::ZERO
            }
        };
        Self {
            mean_delay: mean(inbound.jitter_buffer_delay),
            mean_target: mean(inbound.jitter_buffer_target_delay),
            mean_minimum: mean(inbound.jitter_buffer_minimum_delay),
            emitted,
        }
    }
}

impl AudioStream {
    /// The jitter buffer of the stream's track so far, or `None` while the library has no receive
    /// statistics for it.
    pub async fn jitter_buffer(&self) -> Result<Option<JitterBuffer>, FfiError> {
        let track = self.track_handle();
        let event = self
            .lib()
            .request_async(
                "get_stats",
                |id| {
                    ffi_request::Message::GetStats(proto::GetStatsRequest {
                        track_handle: track,
                        request_async_id: Some(id),
                    })
                },
                None,
                REQUEST_TIMEOUT,
            )
            .await?;
        let ffi_event::Message::GetStats(callback) = event else {
            return Err(FfiError::Unexpected("get_stats"));
        };
        if let Some(message) = callback.error {
            return Err(FfiError::Failed { op: "get_stats", message });
        }
        Ok(callback.stats.iter().find_map(|stats| match &stats.stats {
            Some(proto::rtc_stats::Stats::InboundRtp(rtp)) => Some(JitterBuffer::from_inbound(&rtp.inbound)),
            _ => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_over_samples_become_means() {
        let inbound = proto::InboundRtpStreamStats {
            jitter_buffer_delay: 48_000.0 * 0.04,
            jitter_buffer_target_delay: 48_000.0 * 0.03,
            jitter_buffer_minimum_delay: 48_000.0 * 0.02,
            jitter_buffer_emitted_count: 48_000,
            ..Default::default()
        };
        let buffer = JitterBuffer::from_inbound(&inbound);
        assert_eq!(buffer.mean_delay, Duration::from_millis(40));
        assert_eq!(buffer.mean_target, Duration::from_millis(30));
        assert_eq!(buffer.mean_minimum, Duration::from_millis(20));
        assert_eq!(JitterBuffer::from_inbound(&proto::InboundRtpStreamStats::default()), JitterBuffer::default());
    }
}
