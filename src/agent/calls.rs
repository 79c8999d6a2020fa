//! Answered calls meet their agent: [`AgentCalls`] is the [`CallHandler`] of every way in. For each
//! [`CallLeg`] it loads the agent the dialed number routed to, starts the conversation (its id is the
//! `calls` row's id, so bookings point back at the call) and runs the voice [`session`] on the leg's audio.
//! Transcripts go to the `transcript_lines` table when `voice.transcripts` is on. Sessions and
//! transcript writes run on one [`TaskTracker`] ([`AgentCalls::tasks`]) that shutdown waits for, so no
//! line of a call is lost to SIGTERM.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::dialog;
use super::session::{self, TranscriptSink, Voice};
use crate::calendar::CalendarRegistry;
use crate::call::{CallHandler, CallLeg};
use crate::config::DialogConfig;
use crate::phone;
use crate::storage::{self, Store, TranscriptLine};

/// Runs the agent pipeline on answered calls.
pub struct AgentCalls {
    store: Arc<dyn Store>,
    calendars: Arc<CalendarRegistry>,
    dialog: DialogConfig,
    voice: Arc<Voice>,
    transcripts: bool,
    tasks: TaskTracker,
}

impl AgentCalls {
    /// A handler over the shared calendars and speech engines.
    pub fn new(
        store: Arc<dyn Store>,
        calendars: Arc<CalendarRegistry>,
        dialog: DialogConfig,
        voice: Arc<Voice>,
        transcripts: bool,
    ) -> Self {
        Self { store, calendars, dialog, voice, transcripts, tasks: TaskTracker::new() }
    }

    /// Voice sessions and transcript writes in progress: shutdown closes and waits for them.
    pub fn tasks(&self) -> TaskTracker {
        self.tasks.clone()
    }
}

impl CallHandler for AgentCalls {
    fn answered(&self, leg: CallLeg) {
        let (store, calendars, dialog, voice) =
            (self.store.clone(), self.calendars.clone(), self.dialog.clone(), self.voice.clone());
        let (transcripts, tasks) = (self.transcripts, self.tasks.clone());
        self.tasks.spawn(async move {
            let CallLeg { info, audio, hangup } = leg;
            let agent = match store.get_agent(info.agent_id).await {
                Ok(Some(agent)) => agent,
                Ok(None) => {
                    tracing::warn!(call_id = %info.id, "the call's agent is gone; hanging up");
                    hangup.request("no_agent").await;
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, call_id = %info.id, "cannot load the call's agent");
                    hangup.request("storage_error").await;
                    return;
                }
            };
            let agent_voice = agent.voice.clone();
            let caller = phone::normalize(&info.caller).ok().map(|n| n.as_str().to_string());
            let (conversation, interim) =
                dialog::start(&dialog, &calendars, agent, caller, info.id.to_string(), info.way_in);
            let sink: Option<Arc<dyn TranscriptSink>> = transcripts.then(|| {
                Arc::new(StoredTranscript { store: store.clone(), call_id: info.id, seq: AtomicI64::new(0), tasks })
                    as _
            });
            let speaking = voice.voices().for_agent(agent_voice.as_deref()).await;
            let engine = speaking.engine;
            let report = session::run(voice, speaking, conversation, interim, audio, hangup, sink).await;
            tracing::info!(call_id = %info.id, way_in = info.way_in.as_str(), turns = report.turns.len(), barge_ins = report.barge_ins,
                no_inputs = report.no_inputs, outcome = report.outcome.map(|o| o.as_str()),
                agent_hung_up = report.agent_hung_up, voice = engine, "voice session ended");
        });
    }
}

/// Writes transcript lines to the database, in order, without holding up the call.
struct StoredTranscript {
    store: Arc<dyn Store>,
    call_id: Uuid,
    seq: AtomicI64,
    tasks: TaskTracker,
}

impl TranscriptSink for StoredTranscript {
    fn line(&self, speaker: &'static str, text: &str) {
        let line = TranscriptLine {
            call_id: self.call_id,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            speaker: speaker.to_string(),
            text: text.to_string(),
            at: storage::now(),
        };
        let store = self.store.clone();
        self.tasks.spawn(async move {
            if let Err(e) = store.insert_transcript_line(&line).await {
                tracing::warn!(error = %e, call_id = %line.call_id, "cannot store a transcript line");
            }
        });
    }
}
