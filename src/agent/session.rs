//! One call's voice loop: the caller's audio in, the agent's speech out, the dialog engine in between.
//!
//! ```text
//! CallAudio.input ─► endpointer (VAD thread) ─► utterance ─► turn worker: STT → Conversation::turn
//!        │ DTMF ───────────────────────────────────────────────►┘                 │ reply
//! CallAudio.output ◄─ speaker task: sentence by sentence TTS (fixed prompts cached) ◄┘
//! ```
//!
//! - **Endpointing**: an utterance ends after `voice.end_silence_ms` of silence (the endpointer also
//!   trims the VAD's hangover). Already after `voice.speculate_ms` of silence the words so far are
//!   transcribed speculatively: when the caller stays silent that transcript is the turn's (no decode
//!   after the end), and when its words answer what the agent asked ([`nlu::turn::complete`]) the turn
//!   ends as soon as the transcript is ready and the pause has lasted `voice.pause_ms`
//!   (`voice.early_end`). The decode overlaps the rest of that pause. Speech after the pause discards
//!   the speculation. An early end is a guess: when the caller speaks again before the full end-of-turn
//!   silence would have passed ("Monday, … at eleven"), the new words continue the same turn: the
//!   answer to the first part is dropped (or stopped), both parts are transcribed again as one, and
//!   the engine answers the whole turn instead ([`Conversation::continue_turn`]). Only a reply that
//!   ends the call is not taken back: its goodbye is said in full and the call ends.
//! - **Barge-in**: when the caller starts speaking while the agent talks, the sink is flushed at once
//!   (the queued audio is dropped) and the agent listens; DTMF interrupts the same way. Each key is a turn;
//!   while [`MAX_QUEUED_TURNS`] turns wait for the engine, further keys are dropped (and counted), so a
//!   flood of DTMF cannot queue unlimited turns.
//! - **Sounds without words**: an utterance in which the recogniser found no words (a breath, a door,
//!   loud line noise; whisper writes nothing, or a note such as "[BLANK_AUDIO]") is not a turn: nothing
//!   is answered, and the no-input timer starts again.
//! - **No input**: `voice.no_input_ms` after the agent stopped talking without a word or key, the engine
//!   gets a silent turn (it re-prompts, and gives up after three).
//! - **Slow calendar**: the toolbox's interim sentence ("Let me check available slots for you.") is
//!   spoken while the tool call runs.
//! - **Sentence by sentence**: the first sentence of a reply is synthesised and queued before the rest,
//!   so the caller hears it while the rest is synthesised, in the agent's voice ([`Speaking`]). The
//!   loop never waits for synthesis: the speaker task speaks, and the turn's latency is recorded when
//!   its first audio is queued, so the caller's audio and barge-ins keep flowing meanwhile.
//! - **Hang-up**: after a reply that ends the call has been played, the session asks the SIP core for a
//!   BYE (`agent_bye`).
//!
//! Every turn's latency is measured in parts (endpointing wait, STT, dialog, TTS to first audio) and
//! exported; transcripts of both sides are handed to a [`TranscriptSink`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::dialog::{AgentTurn, Conversation, UserTurn};
use super::nlu;
use super::tools::Outcome;
use crate::call::{AudioSink, CallAudio, CallerInput, Frame, Hangup, FRAME};
use crate::metrics;
use crate::speech::tts::voices::{Speaking, Voices};
use crate::speech::vad::{Endpoint, EndpointSettings, EndpointerThread, Utterance};
use crate::speech::{duration_of, tts, SpeechError, SpeechToText, Transcript};

/// Sentences whose audio is kept once synthesised (greetings and fixed prompts repeat on every call).
const PROMPT_CACHE_ENTRIES: usize = 512;
/// After the goodbye has been played, wait this long (the last packets' way to the caller) before BYE.
const HANGUP_GRACE: Duration = Duration::from_millis(300);
/// Feed silence to the endpointer when the caller's RTP stops for this long (silence suppression).
const AUDIO_GAP: Duration = Duration::from_millis(60);
/// Caller turns that may wait for the dialog engine; DTMF keys beyond them are dropped.
pub const MAX_QUEUED_TURNS: usize = 8;

/// Voice settings shared by all calls.
#[derive(Debug, Clone)]
pub struct VoiceSettings {
    /// WebRTC VAD aggressiveness (0–3).
    pub vad_aggressiveness: u8,
    /// Where utterances start and end.
    pub endpoint: EndpointSettings,
    /// Silence after the agent stopped talking before the engine gets a silent turn.
    pub no_input: Duration,
    /// Stop the agent's audio when the caller speaks over it.
    pub barge_in: bool,
    /// End a turn at a pause of `early_end_pause` when its words answer the agent's question (the
    /// speculative transcript starts earlier, at `endpoint.pause_frames`).
    pub early_end: bool,
    /// The shortest pause that ends a turn early.
    pub early_end_pause: Duration,
}

/// A cached sentence: the voice's key and the text.
type PromptKey = (Arc<str>, String);

/// The speech engines every call shares (speech to text, the default voice and the agents' own), and
/// the cache of synthesised prompts (by voice and sentence).
pub struct Voice {
    stt: Arc<dyn SpeechToText>,
    voices: Voices,
    settings: VoiceSettings,
    prompts: Mutex<HashMap<PromptKey, Arc<Vec<i16>>>>,
}

impl Voice {
    /// Voice over these engines.
    pub fn new(stt: Arc<dyn SpeechToText>, voices: Voices, settings: VoiceSettings) -> Self {
        Self { stt, voices, settings, prompts: Mutex::new(HashMap::new()) }
    }

    /// The settings.
    pub fn settings(&self) -> &VoiceSettings {
        &self.settings
    }

    /// The voices calls speak with.
    pub fn voices(&self) -> &Voices {
        &self.voices
    }

    /// The audio of one sentence in `speaking`'s voice, from the cache when it was said before.
    pub async fn sentence(&self, speaking: &Speaking, text: &str) -> Result<Arc<Vec<i16>>, SpeechError> {
        let key = (speaking.key.clone(), text.to_string());
        if let Some(pcm) = self.prompts.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned() {
            return Ok(pcm);
        }
        let mut pcm = speaking.tts.synthesize(text).await?;
        tts::trim_silence(&mut pcm);
        let pcm = Arc::new(pcm);
        let mut prompts = self.prompts.lock().unwrap_or_else(|e| e.into_inner());
        if prompts.len() < PROMPT_CACHE_ENTRIES {
            prompts.insert(key, pcm.clone());
        }
        Ok(pcm)
    }

    /// Runs the speech-to-text engine once on `workers` short utterances at the same time, so every
    /// decoder has allocated its buffers before the first caller speaks (a cold first decode takes
    /// many times longer than the next ones).
    pub async fn warm_up(&self, workers: usize) {
        let started = Instant::now();
        let mut decodes = tokio::task::JoinSet::new();
        for _ in 0..workers.max(1) {
            let stt = self.stt.clone();
            decodes.spawn(async move { stt.transcribe(&vec![0i16; crate::speech::RATE as usize]).await });
        }
        while let Some(result) = decodes.join_next().await {
            if let Ok(Err(e)) = result {
                tracing::warn!(error = %e, "speech to text warm-up failed");
            }
        }
        tracing::info!(ms = started.elapsed().as_millis() as u64, workers, "speech to text is warm");
    }

    /// Synthesises `texts` in `speaking`'s voice ahead of the first call (greetings, re-prompts),
    /// sentence by sentence.
    pub async fn prepare(&self, speaking: &Speaking, texts: &[&str]) {
        for text in texts {
            for sentence in tts::sentences(text) {
                if let Err(e) = self.sentence(speaking, sentence).await {
                    tracing::warn!(error = %e, "cannot pre-synthesise a prompt");
                    return;
                }
            }
        }
    }
}

/// Who said what in a call, for the per-call transcript.
pub trait TranscriptSink: Send + Sync {
    /// One line: `speaker` is `caller` or `agent`.
    fn line(&self, speaker: &'static str, text: &str);
}

/// Latency of one turn, from the caller's last voiced sample to the agent's first audio.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TurnTiming {
    /// Silence the endpointer waited for before it ended the utterance.
    pub endpointing: Duration,
    /// Waiting for a decoder plus decoding.
    pub stt: Duration,
    /// The dialog engine and its tool calls.
    pub dialog: Duration,
    /// Synthesis of the first sentence until it was queued.
    pub tts_first_audio: Duration,
}

impl TurnTiming {
    /// The whole gap.
    pub fn total(&self) -> Duration {
        self.endpointing + self.stt + self.dialog + self.tts_first_audio
    }

    /// Records each part in `slotline_turn_latency_seconds{part}`.
    fn record(&self) {
        let parts = [
            ("endpointing", self.endpointing),
            ("stt", self.stt),
            ("dialog", self.dialog),
            ("tts_first_audio", self.tts_first_audio),
            ("total", self.total()),
        ];
        for (part, elapsed) in parts {
            metrics::turn_latency(part, elapsed);
        }
    }
}

/// What a call's session did.
#[derive(Debug, Clone, Default)]
pub struct SessionReport {
    /// Caller turns answered.
    pub turns: Vec<TurnTiming>,
    /// Times the caller spoke over the agent.
    pub barge_ins: u32,
    /// Silent turns after the no-input timeout.
    pub no_inputs: u32,
    /// What the conversation achieved.
    pub outcome: Option<Outcome>,
    /// The agent hung up (rather than the caller).
    pub agent_hung_up: bool,
}

/// A caller turn for the worker.
struct TurnRequest {
    heard: Heard,
    dtmf: String,
    /// The words go on the turn before, which ended early at a pause.
    continues: bool,
    /// Silence waited for before the turn ended.
    endpointing: Duration,
    /// Speech-to-text time already spent in the turn gap (a speculation that ended the turn early).
    stt_before: Duration,
}

impl TurnRequest {
    /// A turn without words: a key, or the no-input timeout.
    fn wordless(dtmf: String) -> Self {
        Self { heard: Heard::Nothing, dtmf, continues: false, endpointing: Duration::ZERO, stt_before: Duration::ZERO }
    }
}

/// The caller's words in a turn, as far as they are known when the turn ends.
enum Heard {
    /// None: a key, or the no-input timeout.
    Nothing,
    /// An utterance still to transcribe.
    Audio(Vec<i16>),
    /// An utterance transcribed since its pause (done, or still decoding).
    Speculated(Speculation),
}

/// A transcription started at a pause, before the turn was known to be over.
struct Speculation {
    /// The utterance's `start` and `end` (sample indexes), to match it with the end.
    start: u64,
    end: u64,
    /// The audio, kept for a turn that goes on after an early end (transcribed again as a whole).
    audio: Vec<i16>,
    transcript: Transcribing,
}

enum Transcribing {
    Running(JoinHandle<Result<Transcript, SpeechError>>),
    Done(Result<Transcript, SpeechError>),
}

impl Speculation {
    fn start(stt: &Arc<dyn SpeechToText>, utterance: Utterance) -> Self {
        let stt = stt.clone();
        let Utterance { start, end, samples } = utterance;
        let audio = samples.clone();
        let task = tokio::spawn(async move { stt.transcribe(&samples).await });
        Self { start, end, audio, transcript: Transcribing::Running(task) }
    }

    fn is_running(&self) -> bool {
        matches!(self.transcript, Transcribing::Running(_))
    }

    /// The transcript, once decoded.
    async fn result(self) -> Result<Transcript, SpeechError> {
        match self.transcript {
            Transcribing::Done(result) => result,
            Transcribing::Running(task) => task.await.unwrap_or_else(stopped),
        }
    }

    /// Drops the speculation (a decode already running finishes on its worker; one still queued never runs).
    fn discard(self) {
        if let Transcribing::Running(task) = self.transcript {
            task.abort();
        }
        metrics::stt_speculation("discarded");
    }
}

/// The speculation's task ended without a transcript (it panicked).
fn stopped(e: tokio::task::JoinError) -> Result<Transcript, SpeechError> {
    Err(SpeechError::Engine { engine: "stt", message: format!("speculative transcription stopped: {e}") })
}

/// The running speculation's transcript (never resolves without one).
async fn speculation_done(speculation: &mut Option<Speculation>) -> Result<Transcript, SpeechError> {
    match speculation.as_mut().map(|s| &mut s.transcript) {
        Some(Transcribing::Running(task)) => task.await.unwrap_or_else(stopped),
        _ => std::future::pending().await,
    }
}

/// The worker's answer.
struct TurnDone {
    heard: String,
    /// None for a sound in which the recogniser found no words: not a turn, nothing to answer.
    reply: Option<AgentTurn>,
    timing: TurnTiming,
}

/// Runs the call until the caller hangs up (the endpoint's input closes) or the agent ends it.
#[allow(
    clippy::too_many_lines,
    reason = "one select! loop whose arms share a dozen mutable turn-taking locals; splitting it needs a turn-taking state type first"
)]
pub async fn run(
    voice: Arc<Voice>,
    speaking: Speaking,
    mut conversation: Conversation,
    mut interim: mpsc::UnboundedReceiver<String>,
    audio: CallAudio,
    hangup: Hangup,
    transcript: Option<Arc<dyn TranscriptSink>>,
) -> SessionReport {
    let CallAudio { mut input, output } = audio;
    let settings = voice.settings.clone();
    let mut report = SessionReport::default();
    let mut endpointer = match EndpointerThread::spawn(settings.vad_aggressiveness, settings.endpoint) {
        Ok(endpointer) => endpointer,
        Err(e) => {
            tracing::error!(error = %e, "no VAD for the call; hanging up");
            metrics::speech_error("webrtc-vad");
            hangup.request("speech_error").await;
            return report;
        }
    };
    let note = |speaker: &'static str, text: &str| {
        if let Some(sink) = &transcript {
            if !text.trim().is_empty() {
                sink.line(speaker, text);
            }
        }
    };

    let greeting = conversation.greet().await;
    note("agent", &greeting.say);
    let mut speaker = Speaker::new(voice.clone(), speaking, output);
    speaker.say(greeting.say.clone(), None);

    // The turn worker owns the conversation, so the loop keeps listening while STT and tools run. It
    // publishes what the agent's last turn asked for, which decides whether a pause ends the next turn.
    let (turns_tx, mut turns_rx) = mpsc::channel::<(TurnRequest, oneshot::Sender<TurnDone>)>(4);
    let (expect_tx, expect) = watch::channel(conversation.expecting());
    let stt = voice.stt.clone();
    let worker = tokio::spawn(async move {
        while let Some((request, done)) = turns_rx.recv().await {
            let mut timing = TurnTiming { endpointing: request.endpointing, ..TurnTiming::default() };
            let asked = Instant::now();
            let spoken = request.dtmf.is_empty() && !request.continues && !matches!(request.heard, Heard::Nothing);
            let transcript = match request.heard {
                Heard::Nothing => None,
                Heard::Audio(samples) => Some(stt.transcribe(&samples).await),
                Heard::Speculated(speculation) => Some(speculation.result().await),
            };
            let (heard, unsure) = match transcript {
                None => (String::new(), Vec::new()),
                Some(Ok(transcript)) => {
                    timing.stt = request.stt_before + asked.elapsed();
                    (transcript.text, transcript.unsure)
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "speech to text failed");
                    metrics::speech_error("stt");
                    (String::new(), Vec::new())
                }
            };
            // A sound the detector took for speech (a breath, a door, loud line noise) in which whisper wrote
            // no words, or only a note such as "[BLANK_AUDIO]": no turn, the agent goes on listening.
            if spoken && nlu::Utterance::new(&heard).words.is_empty() {
                metrics::wordless_utterance();
                if done.send(TurnDone { heard, reply: None, timing }).is_err() {
                    break;
                }
                continue;
            }
            let started = Instant::now();
            // The words whisper was unsure of go with the text: the dialog asks to spell such a name.
            let turn = UserTurn { text: heard.clone(), dtmf: request.dtmf, unsure };
            let reply =
                if request.continues { conversation.continue_turn(turn).await } else { conversation.turn(turn).await };
            timing.dialog = started.elapsed();
            expect_tx.send_replace(conversation.expecting());
            if done.send(TurnDone { heard, reply: Some(reply), timing }).is_err() {
                break;
            }
        }
        conversation.finish()
    });

    let mut pending: VecDeque<TurnRequest> = VecDeque::new();
    // Answered turns waiting for their reply's first audio, to record the turn's latency.
    let mut first_audios: tokio::task::JoinSet<TurnTiming> = tokio::task::JoinSet::new();
    let mut waiting: Option<oneshot::Receiver<TurnDone>> = None;
    let mut hangup_after_speech = false;
    let mut pushed: u64 = 0;
    let mut last_audio = Instant::now();
    let mut in_utterance = false;
    let mut speculation: Option<Speculation> = None;
    // When the done speculation's words answer the question: the moment its pause is long enough to
    // end the turn.
    let mut early_at: Option<Instant> = None;
    // The start of the utterance whose turn ended at a pause: the endpointer's later events for it
    // (queued before it was cut) belong to a turn already taken.
    let mut taken: Option<u64> = None;
    // Where the words of a turn that ended early stopped (sample index), and their audio: speech starting
    // before the full end-of-turn silence after them continues that turn, transcribed as a whole.
    let mut early_words: Option<(u64, Vec<i16>)> = None;
    let mut continuing: Option<Vec<i16>> = None;
    // The answer to a turn the caller went on speaking: not to be played.
    let mut superseded = false;
    let end_silence = u64::from(settings.endpoint.end_frames) * FRAME as u64;
    let mut gap = tokio::time::interval(Duration::from_millis(20));
    gap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let silence: Frame = [0; FRAME];

    loop {
        let idle_since = speaker.idle_since();
        let no_input_at = idle_since.map(|t| t + settings.no_input);
        let listening = waiting.is_none() && pending.is_empty() && !in_utterance && !hangup_after_speech;
        tokio::select! {
            received = input.recv() => match received {
                None => break,
                Some(CallerInput::Audio(frame)) => {
                    last_audio = Instant::now();
                    pushed += FRAME as u64;
                    endpointer.push(frame);
                }
                Some(CallerInput::Dtmf(key)) => {
                    if queue_key(&mut pending, key) {
                        if speaker.is_speaking() {
                            speaker.interrupt();
                            report.barge_ins += 1;
                            metrics::barge_in();
                        }
                        note("caller", &format!("[DTMF {key}]"));
                    } else {
                        metrics::dtmf_dropped();
                        tracing::debug!(queued = pending.len(), "DTMF dropped: too many turns are waiting");
                    }
                }
            },
            Some(event) = endpointer.events.recv() => match event {
                Endpoint::Started { at } => {
                    in_utterance = true;
                    let went_on = early_words.take().filter(|(end, _)| at.saturating_sub(*end) < end_silence);
                    // A goodbye already decided is said in full: no later words change a call that ends.
                    if let Some((_, before)) = went_on.filter(|_| !hangup_after_speech) {
                        // Still the same turn: its early answer is dropped, or stopped where it plays.
                        continuing = Some(before);
                        superseded = waiting.is_some() || !pending.is_empty();
                        speaker.interrupt();
                        tracing::debug!("the caller went on after an early end of turn: one turn");
                    }
                    if settings.barge_in && speaker.is_speaking() && !hangup_after_speech {
                        speaker.interrupt();
                        report.barge_ins += 1;
                        metrics::barge_in();
                        tracing::debug!("barge-in: the caller spoke over the agent");
                    }
                }
                Endpoint::Paused(utterance) if taken != Some(utterance.start) => {
                    early_at = None;
                    if let Some(old) = speculation.take() {
                        old.discard();
                    }
                    speculation = Some(Speculation::start(&voice.stt, utterance));
                }
                Endpoint::Resumed => {
                    early_at = None;
                    if let Some(old) = speculation.take() {
                        old.discard();
                    }
                }
                Endpoint::Ended(utterance) if taken != Some(utterance.start) => {
                    in_utterance = false;
                    early_at = None;
                    let endpointing = duration_of(pushed.saturating_sub(utterance.end) as usize);
                    let continues = continuing.is_some();
                    let heard = match speculation.take() {
                        Some(s) if continues => {
                            s.discard();
                            Heard::Audio(joined(continuing.take(), utterance.samples))
                        }
                        None if continues => Heard::Audio(joined(continuing.take(), utterance.samples)),
                        Some(s) if (s.start, s.end) == (utterance.start, utterance.end) => {
                            metrics::stt_speculation("used");
                            Heard::Speculated(s)
                        }
                        other => {
                            if let Some(stale) = other {
                                stale.discard();
                            }
                            Heard::Audio(utterance.samples)
                        }
                    };
                    metrics::turn_end("silence");
                    pending.push_back(TurnRequest { heard, dtmf: String::new(), continues, endpointing, stt_before: Duration::ZERO });
                }
                Endpoint::Paused(_) | Endpoint::Ended(_) => {}
            },
            result = speculation_done(&mut speculation), if speculation.as_ref().is_some_and(Speculation::is_running) => {
                let answers = result.as_ref().is_ok_and(|t| nlu::turn::complete(*expect.borrow(), &t.text));
                if let Some(done) = speculation.as_mut() {
                    done.transcript = Transcribing::Done(result);
                    if settings.early_end && answers {
                        // The words so far answer the question: the turn ends once the pause is long enough.
                        let quiet = duration_of(pushed.saturating_sub(done.end) as usize);
                        early_at = Some(Instant::now() + settings.early_end_pause.saturating_sub(quiet));
                    }
                }
            }
            () = sleep_until(early_at), if early_at.is_some() => {
                early_at = None;
                let ready = speculation.as_ref().is_some_and(|s| !s.is_running());
                if ready && in_utterance && waiting.is_none() && pending.is_empty() {
                    if let Some(done) = speculation.take() {
                        endpointer.cut().await;
                        in_utterance = false;
                        taken = Some(done.start);
                        metrics::stt_speculation("used");
                        metrics::turn_end("pause");
                        // The gap so far: the pause that had to pass, then any wait for the transcript.
                        let quiet = duration_of(pushed.saturating_sub(done.end) as usize);
                        let endpointing = quiet.min(settings.early_end_pause);
                        let stt_before = quiet - endpointing;
                        let continues = continuing.is_some();
                        let heard = match continuing.take() {
                            // The whole turn, both parts, transcribed again as one.
                            Some(before) => {
                                let audio = joined(Some(before), done.audio.clone());
                                done.discard();
                                Heard::Audio(audio)
                            }
                            None => {
                                early_words = Some((done.end, done.audio.clone()));
                                Heard::Speculated(done)
                            }
                        };
                        pending.push_back(TurnRequest { heard, dtmf: String::new(), continues, endpointing, stt_before });
                    }
                }
            }
            Some(done) = next_done(&mut waiting), if waiting.is_some() => {
                waiting = None;
                let Some(reply) = done.reply else {
                    speaker.listen();
                    tracing::debug!("a sound without words: no turn");
                    continue;
                };
                note("caller", &done.heard);
                // The caller went on speaking after an early end: the whole turn is answered when it ends.
                if !std::mem::take(&mut superseded) || reply.end_call {
                    note("agent", &reply.say);
                    let mut timing = done.timing;
                    if reply.end_call {
                        hangup_after_speech = true;
                    }
                    let first_audio = speaker.say(reply.say.clone(), Some(Instant::now()));
                    // The loop does not wait for the synthesis: the caller's audio (and a barge-in) keeps
                    // flowing while the first sentence is spoken; the turn is recorded once it was queued.
                    first_audios.spawn(async move {
                        if let Ok(Some(first)) = first_audio.await {
                            timing.tts_first_audio = first;
                        }
                        timing
                    });
                    tracing::debug!(heard = %done.heard, say = %reply.say, "turn words");
                }
            }
            Some(Ok(timing)) = first_audios.join_next(), if !first_audios.is_empty() => {
                finish_turn(&mut report, timing);
            }
            Some(sentence) = interim.recv() => {
                note("agent", &sentence);
                speaker.say(sentence, None);
            }
            () = sleep_until(no_input_at), if listening && no_input_at.is_some() => {
                report.no_inputs += 1;
                metrics::no_input();
                pending.push_back(TurnRequest::wordless(String::new()));
                speaker.mark_busy();
            }
            _ = gap.tick() => {
                // The caller's RTP stopped (silence suppression, or a lost stream): the endpointer still
                // needs frames to notice the end of an utterance.
                if last_audio.elapsed() >= AUDIO_GAP {
                    pushed += FRAME as u64;
                    endpointer.push(silence);
                }
                if hangup_after_speech && speaker.is_done() && speaker.until().elapsed() >= HANGUP_GRACE {
                    report.agent_hung_up = true;
                    hangup.request("agent_bye").await;
                    break;
                }
            }
        }
        if waiting.is_none() && !hangup_after_speech {
            if let Some(request) = pending.pop_front() {
                let (done_tx, done_rx) = oneshot::channel();
                if turns_tx.send((request, done_tx)).await.is_err() {
                    break;
                }
                waiting = Some(done_rx);
                speaker.mark_busy();
            }
        }
    }
    speaker.stop();
    // Turns whose reply was still being synthesised: the stopped speaker resolves them at once.
    let _ = tokio::time::timeout(HANGUP_GRACE, async {
        while let Some(timing) = first_audios.join_next().await {
            if let Ok(timing) = timing {
                finish_turn(&mut report, timing);
            }
        }
    })
    .await;
    first_audios.abort_all();
    drop(turns_tx);
    report.outcome = worker.await.ok();
    report
}

/// Records an answered turn's latency, once its reply's first audio was queued (or never came).
fn finish_turn(report: &mut SessionReport, timing: TurnTiming) {
    timing.record();
    report.turns.push(timing);
    tracing::info!(
        endpointing_ms = timing.endpointing.as_millis() as u64,
        stt_ms = timing.stt.as_millis() as u64,
        dialog_ms = timing.dialog.as_millis() as u64,
        tts_ms = timing.tts_first_audio.as_millis() as u64,
        "turn"
    );
}

/// Queues a key as a turn of its own unless [`MAX_QUEUED_TURNS`] turns already wait; `false` when dropped.
fn queue_key(pending: &mut VecDeque<TurnRequest>, key: char) -> bool {
    if pending.len() >= MAX_QUEUED_TURNS {
        return false;
    }
    pending.push_back(TurnRequest::wordless(key.to_string()));
    true
}

/// The audio of a turn that went on after an early end: the words before it, then the rest.
fn joined(before: Option<Vec<i16>>, rest: Vec<i16>) -> Vec<i16> {
    let mut audio = before.unwrap_or_default();
    audio.extend(rest);
    audio
}

/// The worker's answer to the turn in flight (never resolves without one).
async fn next_done(waiting: &mut Option<oneshot::Receiver<TurnDone>>) -> Option<TurnDone> {
    match waiting.as_mut() {
        Some(rx) => rx.await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Plays replies: one task per reply, sentence by sentence, cancellable (barge-in).
struct Speaker {
    voice: Arc<Voice>,
    /// The call's voice.
    speaking: Speaking,
    sink: AudioSink,
    current: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    /// When the queued audio will have been played.
    until: Arc<Mutex<Instant>>,
    /// A turn is being worked on: not idle even though nothing plays.
    busy: bool,
}

impl Speaker {
    fn new(voice: Arc<Voice>, speaking: Speaking, sink: AudioSink) -> Self {
        Self { voice, speaking, sink, current: None, until: Arc::new(Mutex::new(Instant::now())), busy: false }
    }

    fn until(&self) -> Instant {
        *self.until.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn synthesising(&self) -> bool {
        self.current.as_ref().is_some_and(|(_, task)| !task.is_finished())
    }

    /// Audio is playing or being prepared.
    fn is_speaking(&self) -> bool {
        self.synthesising() || Instant::now() < self.until()
    }

    /// Everything said has been played.
    fn is_done(&self) -> bool {
        !self.is_speaking()
    }

    /// Since when nothing has been playing and no turn is in the works (for the no-input timer).
    fn idle_since(&self) -> Option<Instant> {
        (!self.busy && !self.synthesising()).then(|| self.until())
    }

    fn mark_busy(&mut self) {
        self.busy = true;
    }

    /// Nothing to say after all: idle again, the silence before a re-prompt counted from now.
    fn listen(&mut self) {
        self.busy = false;
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        *until = (*until).max(Instant::now());
    }

    /// Says `text` after what is already queued; resolves to the time until its first audio was queued
    /// (measured from `asked`).
    fn say(&mut self, text: String, asked: Option<Instant>) -> oneshot::Receiver<Option<Duration>> {
        self.busy = false;
        if text.trim().is_empty() {
            // Nothing to say (the caller has not finished): the silence before a re-prompt starts now.
            self.listen();
        }
        let (first_tx, first_rx) = oneshot::channel();
        let previous = self.current.take();
        let stop = CancellationToken::new();
        let (voice, sink, until, token) = (self.voice.clone(), self.sink.clone(), self.until.clone(), stop.clone());
        let speaking = self.speaking.clone();
        let task = tokio::spawn(async move {
            if let Some((_, previous)) = previous {
                let _ = previous.await;
            }
            let mut first_tx = Some(first_tx);
            for sentence in tts::sentences(&text) {
                let pcm = tokio::select! {
                    _ = token.cancelled() => return,
                    pcm = voice.sentence(&speaking, sentence) => pcm,
                };
                let pcm = match pcm {
                    Ok(pcm) => {
                        metrics::tts_sentence(speaking.engine);
                        pcm
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "text to speech failed");
                        metrics::speech_error("tts");
                        continue;
                    }
                };
                {
                    let mut until = until.lock().unwrap_or_else(|e| e.into_inner());
                    *until = (*until).max(Instant::now()) + duration_of(pcm.len());
                }
                if let Some(tx) = first_tx.take() {
                    let _ = tx.send(asked.map(|a| a.elapsed()));
                }
                tokio::select! {
                    _ = token.cancelled() => return,
                    () = sink.play(&pcm) => {}
                }
            }
            if let Some(tx) = first_tx.take() {
                let _ = tx.send(None);
            }
        });
        self.current = Some((stop, task));
        first_rx
    }

    /// Barge-in: drops what is queued and what is being prepared.
    fn interrupt(&mut self) {
        if let Some((stop, _)) = self.current.take() {
            stop.cancel();
        }
        self.sink.flush();
        *self.until.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn stop(&mut self) {
        if let Some((stop, _)) = self.current.take() {
            stop.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dtmf_flood_queues_a_bounded_number_of_turns() {
        let mut pending = VecDeque::new();
        let queued = (0..10_000).filter(|i| queue_key(&mut pending, if i % 2 == 0 { '1' } else { '#' })).count();
        assert_eq!(queued, MAX_QUEUED_TURNS);
        assert_eq!(pending.len(), MAX_QUEUED_TURNS);
        assert_eq!(pending.front().map(|t| t.dtmf.as_str()), Some("1"), "the first keys are the ones kept");
        pending.pop_front();
        assert!(queue_key(&mut pending, '2'), "a taken turn makes room");
    }
}
