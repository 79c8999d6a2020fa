//! Voice activity: the WebRTC detector on 20 ms frames at 8 kHz, and the endpointer that turns its
//! per-frame decisions into utterances.
//!
//! [`WebRtcVad`] wraps libfvad (the `webrtc-vad` crate), which holds a C pointer and so is not `Send`:
//! it cannot live in a tokio task that moves between threads. [`EndpointerThread`] therefore runs one
//! call's detector and [`Endpointer`] on a small thread of its own: the async side sends it frames by
//! value over a channel (no allocation per frame) and receives [`Endpoint`] events. The [`Endpointer`]
//! itself is sans-I/O and generic over [`Vad`], so it is tested with scripted decisions.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{SpeechError, Vad};
use crate::audio::{Frame, FRAME};

/// Frames per second at 20 ms per frame.
const FRAMES_PER_SECOND: u32 = 50;

/// The WebRTC voice activity detector (libfvad) at 8 kHz.
pub struct WebRtcVad {
    detector: webrtc_vad::Vad,
    aggressiveness: u8,
}

impl WebRtcVad {
    /// A detector; `aggressiveness` 0 (quality: most frames count as speech) to 3 (very aggressive:
    /// only clear speech counts).
    pub fn new(aggressiveness: u8) -> Result<Self, SpeechError> {
        let mode = mode(aggressiveness)?;
        let detector = webrtc_vad::Vad::new_with_rate_and_mode(webrtc_vad::SampleRate::Rate8kHz, mode);
        Ok(Self { detector, aggressiveness })
    }
}

fn mode(aggressiveness: u8) -> Result<webrtc_vad::VadMode, SpeechError> {
    Ok(match aggressiveness {
        0 => webrtc_vad::VadMode::Quality,
        1 => webrtc_vad::VadMode::LowBitrate,
        2 => webrtc_vad::VadMode::Aggressive,
        3 => webrtc_vad::VadMode::VeryAggressive,
        other => return Err(SpeechError::InvalidAudio(format!("VAD aggressiveness {other} is not 0–3"))),
    })
}

impl Vad for WebRtcVad {
    fn is_speech(&mut self, frame: &[i16]) -> Result<bool, SpeechError> {
        if frame.len() != FRAME {
            return Err(SpeechError::InvalidAudio(format!("a VAD frame is {FRAME} samples, not {}", frame.len())));
        }
        self.detector
            .is_voice_segment(frame)
            .map_err(|()| SpeechError::Engine { engine: "webrtc-vad", message: "rejected the frame".into() })
    }

    fn reset(&mut self) {
        self.detector.reset();
        // libfvad's reset also restores the default mode and rate.
        self.detector.set_sample_rate(webrtc_vad::SampleRate::Rate8kHz);
        if let Ok(mode) = mode(self.aggressiveness) {
            self.detector.set_mode(mode);
        }
    }
}

/// How the endpointer decides where an utterance starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointSettings {
    /// Frames at the start of a call in which no utterance starts: the WebRTC detector calls the first
    /// ~100 ms of any line noise speech while it learns the noise floor.
    pub warmup_frames: u32,
    /// Consecutive speech frames that start an utterance (filters out clicks).
    pub start_frames: u32,
    /// Consecutive non-speech frames that end one (pauses between words are shorter).
    pub end_frames: u32,
    /// Consecutive non-speech frames after which the utterance so far is offered as
    /// [`Endpoint::Paused`] (speculative transcription); 0, or not below `end_frames`, never pauses.
    pub pause_frames: u32,
    /// Frames kept from before the start, so the utterance has the onset the detector missed.
    pub pre_roll_frames: u32,
    /// Frames kept after the last speech frame.
    pub tail_frames: u32,
    /// Longest utterance; a longer one is cut here.
    pub max_frames: u32,
}

impl Default for EndpointSettings {
    /// 200 ms of warm-up, 60 ms of speech to start, 500 ms of silence to end (`bench/pauses.sh`: the
    /// longest pause inside a turn of the dialog corpus is 380 ms), a pause after 200 ms, 200 ms before
    /// and 100 ms after, 15 s at most.
    fn default() -> Self {
        Self {
            warmup_frames: 10,
            start_frames: 3,
            end_frames: 25,
            pause_frames: 10,
            pre_roll_frames: 10,
            tail_frames: 5,
            max_frames: 15 * FRAMES_PER_SECOND,
        }
    }
}

/// What the endpointer saw in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The caller started speaking; `at` is the sample index (from the first frame) of the first speech
    /// frame. The moment to stop the agent's audio (barge-in).
    Started {
        /// Sample index of the start.
        at: u64,
    },
    /// The caller has been silent for `pause_frames`: the utterance so far, which is the whole utterance
    /// unless [`Endpoint::Resumed`] follows. Its `start`, `end` and audio equal those of the
    /// [`Endpoint::Ended`] that follows without a resumption, so a transcript of it can stand for the end.
    Paused(Utterance),
    /// The caller spoke again after a [`Endpoint::Paused`]: the utterance goes on.
    Resumed,
    /// The caller stopped speaking (or hit the longest utterance).
    Ended(Utterance),
}

/// One utterance: where the speech was, and the audio to transcribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utterance {
    /// Sample index of the first speech frame.
    pub start: u64,
    /// Sample index just after the last speech frame.
    pub end: u64,
    /// The audio from `pre_roll` before `start` to `tail` after `end`, 8 kHz.
    pub samples: Vec<i16>,
}

impl Utterance {
    /// Length of the speech itself (without pre-roll and tail).
    pub fn duration(&self) -> Duration {
        super::duration_of((self.end - self.start) as usize)
    }
}

/// Energy ratio (30 dB) below the loudest frame at which trailing frames are no longer speech.
const END_TRIM_RATIO: f64 = 1000.0;

/// Mean square of a frame.
fn energy(frame: &[i16]) -> f64 {
    frame.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / frame.len().max(1) as f64
}

enum State {
    Silence {
        voiced: u32,
    },
    Speech {
        start: u64,
        last_voiced_end: u64,
        /// Frames since the detector last said speech.
        silent: u32,
        /// Frames since the last frame of loud speech (silent, or the detector's quiet hangover).
        quiet: u32,
        /// Energy of the utterance's loudest speech frame.
        loudest: f64,
        frames: u32,
    },
}

/// Turns per-frame decisions into utterances (sans-I/O: feed frames, get events).
pub struct Endpointer<V: Vad> {
    vad: V,
    settings: EndpointSettings,
    state: State,
    /// Samples seen so far.
    position: u64,
    /// The last `pre_roll_frames` frames while silent.
    pre_roll: VecDeque<Frame>,
    /// The utterance being collected.
    samples: Vec<i16>,
}

impl<V: Vad> Endpointer<V> {
    /// An endpointer deciding with `vad`.
    pub fn new(vad: V, settings: EndpointSettings) -> Self {
        let pre_roll = VecDeque::with_capacity((settings.pre_roll_frames + settings.start_frames) as usize + 1);
        let samples = Vec::with_capacity(FRAME * FRAMES_PER_SECOND as usize * 5);
        Self { vad, settings, state: State::Silence { voiced: 0 }, position: 0, pre_roll, samples }
    }

    /// Feeds the next 20 ms frame.
    pub fn push(&mut self, frame: &Frame) -> Result<Option<Endpoint>, SpeechError> {
        let speech = self.vad.is_speech(frame)?;
        let frame_start = self.position;
        self.position += FRAME as u64;
        let event = match &mut self.state {
            State::Silence { voiced } => {
                self.pre_roll.push_back(*frame);
                let keep = (self.settings.pre_roll_frames + self.settings.start_frames) as usize;
                while self.pre_roll.len() > keep {
                    self.pre_roll.pop_front();
                }
                let warming_up = frame_start < u64::from(self.settings.warmup_frames) * FRAME as u64;
                *voiced = if speech && !warming_up { *voiced + 1 } else { 0 };
                if *voiced < self.settings.start_frames.max(1) {
                    return Ok(None);
                }
                let start = frame_start - u64::from(*voiced - 1) * FRAME as u64;
                let loudest = self.pre_roll.iter().rev().take(*voiced as usize).map(|f| energy(f)).fold(0.0, f64::max);
                self.samples.clear();
                for kept in self.pre_roll.drain(..) {
                    self.samples.extend_from_slice(&kept);
                }
                self.state = State::Speech {
                    start,
                    last_voiced_end: self.position,
                    silent: 0,
                    quiet: 0,
                    loudest,
                    frames: self.settings.start_frames,
                };
                Some(Endpoint::Started { at: start })
            }
            State::Speech { start, last_voiced_end, silent, quiet, loudest, frames } => {
                self.samples.extend_from_slice(frame);
                *frames += 1;
                let pauses = self.settings.pause_frames > 0 && self.settings.pause_frames < self.settings.end_frames;
                let was_paused = pauses && *quiet >= self.settings.pause_frames;
                // A pause is counted from the end of loud speech, so the detector's hangover (quiet
                // frames it still calls speech) does not delay it; the end waits for the detector.
                let level = energy(frame);
                let loud = speech && level * END_TRIM_RATIO >= *loudest;
                if speech {
                    *silent = 0;
                    *last_voiced_end = self.position;
                    *loudest = loudest.max(level);
                } else {
                    *silent += 1;
                }
                *quiet = if loud { 0 } else { *quiet + 1 };
                if *silent < self.settings.end_frames && *frames < self.settings.max_frames {
                    if loud && was_paused {
                        return Ok(Some(Endpoint::Resumed));
                    }
                    if !(pauses && *quiet == self.settings.pause_frames) {
                        return Ok(None);
                    }
                    let (start, last_voiced_end) = (*start, *last_voiced_end);
                    let (end, keep) = self.cut_at(start, last_voiced_end);
                    let samples = self.samples[..keep].to_vec();
                    return Ok(Some(Endpoint::Paused(Utterance { start, end, samples })));
                }
                let (start, last_voiced_end) = (*start, *last_voiced_end);
                let (end, keep) = self.cut_at(start, last_voiced_end);
                let mut samples = Vec::with_capacity(self.samples.capacity());
                std::mem::swap(&mut samples, &mut self.samples);
                samples.truncate(keep);
                self.state = State::Silence { voiced: 0 };
                Some(Endpoint::Ended(Utterance { start, end, samples }))
            }
        };
        Ok(event)
    }

    /// Where the utterance collected so far ends: its end (the hangover trimmed) and how many of the
    /// collected samples to keep (up to `tail` after the end).
    fn cut_at(&self, start: u64, last_voiced_end: u64) -> (u64, usize) {
        let end = self.trimmed_end(start, last_voiced_end);
        // The collected audio ends at `position`; keep `tail` after the last speech frame.
        let after_end = (self.position - end) as usize;
        let tail = (self.settings.tail_frames as usize * FRAME).min(after_end);
        (end, self.samples.len() - (after_end - tail))
    }

    /// Ends the utterance in progress without an event (the caller's turn was taken at a pause); speech
    /// that follows starts a new one. The detector keeps what it learnt.
    pub fn cut(&mut self) {
        if matches!(self.state, State::Speech { .. }) {
            self.state = State::Silence { voiced: 0 };
            self.pre_roll.clear();
            self.samples.clear();
        }
    }

    /// WebRTC's detector holds "speech" for about 100 ms after speech stops (its hangover, longer after
    /// long bursts); the end moves back over trailing frames 30 dB below the utterance's loudest frame.
    fn trimmed_end(&self, start: u64, end: u64) -> u64 {
        let first = self.position - self.samples.len() as u64;
        let frame_at = |at: u64| {
            let i = (at - first) as usize;
            energy(&self.samples[i..i + FRAME])
        };
        let loudest = (start..end).step_by(FRAME).map(frame_at).fold(0.0, f64::max);
        let mut end = end;
        while end > start + FRAME as u64 && frame_at(end - FRAME as u64) * END_TRIM_RATIO < loudest {
            end -= FRAME as u64;
        }
        end
    }

    /// Forgets the current utterance and what the detector learnt (after the agent's turn, a new call).
    pub fn reset(&mut self) {
        self.vad.reset();
        self.state = State::Silence { voiced: 0 };
        self.pre_roll.clear();
        self.samples.clear();
    }
}

/// One call's endpointer on a thread of its own, because [`WebRtcVad`] cannot cross threads.
///
/// Send frames with [`EndpointerThread::push`]; events arrive on [`EndpointerThread::events`]. Dropping
/// the handle closes the frame channel and the thread ends after the frames already queued.
pub struct EndpointerThread {
    frames: mpsc::Sender<Input>,
    /// Starts and ends of the caller's speech.
    pub events: mpsc::Receiver<Endpoint>,
}

/// What the endpointer thread is sent: audio, or an order to end the utterance in progress. Frames go by
/// value (no allocation per frame); the rare `Cut` costs a frame's worth of channel slot.
#[allow(clippy::large_enum_variant)]
enum Input {
    Frame(Frame),
    Cut,
}

/// Frames queued for the endpointer thread (1 s) before [`EndpointerThread::push`] drops them.
const FRAME_QUEUE: usize = FRAMES_PER_SECOND as usize;

impl EndpointerThread {
    /// Starts the thread with a [`WebRtcVad`] of the given aggressiveness (0–3).
    pub fn spawn(aggressiveness: u8, settings: EndpointSettings) -> Result<Self, SpeechError> {
        mode(aggressiveness)?;
        let (frames, mut frame_rx) = mpsc::channel::<Input>(FRAME_QUEUE);
        let (event_tx, events) = mpsc::channel(16);
        std::thread::Builder::new()
            .name("slotline-vad".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let vad = match WebRtcVad::new(aggressiveness) {
                    Ok(vad) => vad,
                    Err(error) => return tracing::error!(%error, "VAD not started"),
                };
                let mut endpointer = Endpointer::new(vad, settings);
                while let Some(input) = frame_rx.blocking_recv() {
                    let frame = match input {
                        Input::Frame(frame) => frame,
                        Input::Cut => {
                            endpointer.cut();
                            continue;
                        }
                    };
                    match endpointer.push(&frame) {
                        Ok(Some(event)) => {
                            if event_tx.blocking_send(event).is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(error) => tracing::warn!(%error, "VAD frame skipped"),
                    }
                }
            })
            .map_err(|e| SpeechError::Engine {
                engine: "webrtc-vad",
                message: format!("cannot start its thread: {e}"),
            })?;
        Ok(Self { frames, events })
    }

    /// Queues a frame without waiting; `false` if the thread is a second behind (the frame is dropped)
    /// or gone.
    pub fn push(&self, frame: Frame) -> bool {
        self.frames.try_send(Input::Frame(frame)).is_ok()
    }

    /// Ends the utterance in progress after the frames already queued, without an event (see
    /// [`Endpointer::cut`]); `false` if the thread is gone.
    pub async fn cut(&self) -> bool {
        self.frames.send(Input::Cut).await.is_ok()
    }

    /// Queues a frame, waiting while the queue is full (audio from a file rather than a live call);
    /// `false` if the thread is gone.
    pub async fn send(&self, frame: Frame) -> bool {
        self.frames.send(Input::Frame(frame)).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decisions from a script: `true` frames are speech.
    struct Scripted(Vec<bool>, usize);

    impl Vad for Scripted {
        fn is_speech(&mut self, _frame: &[i16]) -> Result<bool, SpeechError> {
            self.1 += 1;
            Ok(self.0.get(self.1 - 1).copied().unwrap_or(false))
        }
        fn reset(&mut self) {}
    }

    fn run(script: &str, settings: EndpointSettings) -> Vec<Endpoint> {
        let decisions = script.chars().filter(|c| !c.is_whitespace()).map(|c| c == '#').collect();
        let n = script.chars().filter(|c| !c.is_whitespace()).count();
        let mut endpointer = Endpointer::new(Scripted(decisions, 0), settings);
        let mut events = Vec::new();
        for i in 0..n {
            let frame = [i as i16; FRAME];
            if let Some(event) = endpointer.push(&frame).expect("frame") {
                events.push(event);
            }
        }
        events
    }

    const SETTINGS: EndpointSettings = EndpointSettings {
        warmup_frames: 0,
        start_frames: 2,
        end_frames: 3,
        pause_frames: 0,
        pre_roll_frames: 2,
        tail_frames: 1,
        max_frames: 100,
    };

    #[test]
    fn a_pause_offers_the_utterance_so_far_and_the_end_matches_it() {
        let settings = EndpointSettings { end_frames: 5, pause_frames: 2, ..SETTINGS };
        let events = run("..###..#.. ...", settings);
        let f = FRAME as u64;
        assert!(matches!(events[0], Endpoint::Started { at } if at == 2 * f), "{events:?}");
        // Silent frames 5 and 6: a pause; speech at 7 resumes; 8 and 9 pause again; 8–12 end it.
        let Endpoint::Paused(first) = &events[1] else { panic!("{events:?}") };
        assert_eq!((first.start, first.end), (2 * f, 5 * f));
        assert_eq!(events[2], Endpoint::Resumed);
        let (Endpoint::Paused(second), Endpoint::Ended(ended)) = (&events[3], &events[4]) else { panic!("{events:?}") };
        assert_eq!((second.start, second.end), (2 * f, 8 * f));
        assert_eq!(second, ended, "the pause had the whole utterance");
        assert_eq!(events.len(), 5, "{events:?}");
    }

    #[test]
    fn a_pause_is_counted_from_the_end_of_loud_speech() {
        // The detector says speech for frames 2..8, but 6 and 7 are 60 dB quieter: its hangover. The
        // pause comes after two quiet frames (at 7), not two frames after the detector's last speech (9).
        let settings = EndpointSettings { end_frames: 5, pause_frames: 2, ..SETTINGS };
        let decisions = (0..14).map(|i| (2..8).contains(&i)).collect();
        let mut endpointer = Endpointer::new(Scripted(decisions, 0), settings);
        let mut paused_at = None;
        let mut events = Vec::new();
        for i in 0..14 {
            let level = if (2..6).contains(&i) { 1000 } else { 1 };
            if let Some(event) = endpointer.push(&[level; FRAME]).expect("frame") {
                paused_at = paused_at.or(matches!(event, Endpoint::Paused(_)).then_some(i));
                events.push(event);
            }
        }
        assert_eq!(paused_at, Some(7), "{events:?}");
        let (Some(Endpoint::Paused(paused)), Some(Endpoint::Ended(ended))) = (events.get(1), events.get(2)) else {
            panic!("{events:?}")
        };
        assert_eq!(paused, ended);
        assert_eq!(ended.end, 6 * FRAME as u64);
    }

    #[test]
    fn a_cut_utterance_ends_without_an_event_and_speech_after_it_starts_anew() {
        let settings = EndpointSettings { end_frames: 5, pause_frames: 2, ..SETTINGS };
        let mut endpointer = Endpointer::new(Scripted("###..##.....".chars().map(|c| c == '#').collect(), 0), settings);
        let mut events = Vec::new();
        for i in 0..12 {
            events.extend(endpointer.push(&[i as i16; FRAME]).expect("frame"));
            if matches!(events.last(), Some(Endpoint::Paused(_))) {
                endpointer.cut();
            }
        }
        let f = FRAME as u64;
        assert!(
            matches!(&events[..], [Endpoint::Started { at: 0 }, Endpoint::Paused(_), Endpoint::Started { at }, Endpoint::Paused(_), ] if *at == 5 * f),
            "{events:?}"
        );
    }

    #[test]
    fn a_click_is_not_speech_and_a_pause_is_not_the_end() {
        let events = run("..#.. ##.##.# ... ..", SETTINGS);
        let f = FRAME as u64;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], Endpoint::Started { at: 5 * f });
        let Endpoint::Ended(utterance) = &events[1] else { panic!("{events:?}") };
        assert_eq!((utterance.start, utterance.end), (5 * f, 12 * f));
        // Pre-roll (frames 3, 4), the start run (5, 6), … the last speech frame (11), the tail (12).
        let firsts: Vec<i16> = utterance.samples.chunks(FRAME).map(|c| c[0]).collect();
        assert_eq!(firsts, (3..=12).collect::<Vec<i16>>());
    }

    #[test]
    fn nothing_starts_while_the_detector_warms_up() {
        let settings = EndpointSettings { warmup_frames: 3, ..SETTINGS };
        assert_eq!(run("###.......", settings), []);
        // Speech that runs past the warm-up starts right after it; the pre-roll keeps its onset.
        let events = run("#####.....", settings);
        assert_eq!(events[0], Endpoint::Started { at: 3 * FRAME as u64 });
        let Endpoint::Ended(utterance) = &events[1] else { panic!("{events:?}") };
        assert_eq!(utterance.samples[0], 1, "two frames of pre-roll before the start");
    }

    #[test]
    fn the_detector_hangover_is_trimmed_from_the_end() {
        // The detector says speech for frames 2..8, but 6 and 7 are 60 dB quieter: its hangover.
        let decisions = (0..14).map(|i| (2..8).contains(&i)).collect();
        let mut endpointer = Endpointer::new(Scripted(decisions, 0), SETTINGS);
        let mut events = Vec::new();
        for i in 0..14 {
            let level = if (2..6).contains(&i) { 1000 } else { 1 };
            events.extend(endpointer.push(&[level; FRAME]).expect("frame"));
        }
        let Some(Endpoint::Ended(utterance)) = events.pop() else { panic!("{events:?}") };
        assert_eq!((utterance.start, utterance.end), (2 * FRAME as u64, 6 * FRAME as u64));
        assert_eq!(utterance.samples.len(), 7 * FRAME, "pre-roll 0–1, speech 2–5, tail 6");
    }

    #[test]
    fn long_speech_is_cut_at_the_limit() {
        let settings = EndpointSettings { max_frames: 6, ..SETTINGS };
        let events = run("##########", settings);
        assert!(matches!(&events[1], Endpoint::Ended(u) if u.end == 6 * FRAME as u64), "{events:?}");
    }

    #[test]
    fn webrtc_rejects_wrong_frames_and_hears_no_speech_in_silence() {
        assert!(WebRtcVad::new(4).is_err());
        let mut vad = WebRtcVad::new(3).expect("vad");
        assert!(matches!(vad.is_speech(&[0; 80]), Err(SpeechError::InvalidAudio(_))));
        assert_eq!(vad.is_speech(&[0; FRAME]).ok(), Some(false));
        vad.reset();
        assert_eq!(vad.is_speech(&[0; FRAME]).ok(), Some(false));
    }
}
