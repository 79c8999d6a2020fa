//! Dialog engines: one user turn in (what the caller said, plus DTMF digits), one agent turn out (what to
//! say, the tool calls made, whether to hang up).
//!
//! - [`rules`]: the default engine — offline, deterministic slot filling;
//! - [`llm`]: the OpenAI chat-completions tool-calling loop against any compatible endpoint (`dialog.llm.*`);
//!   an unreachable or confused model makes the agent apologise and ask again, never drop the call.
//!
//! Both call the same [`Toolbox`]; [`Conversation`] wraps an engine for one call or chat, counts it as
//! answered in the booking funnel when it starts and counts its one outcome when it ends.

pub mod llm;
pub mod rules;

use std::sync::Arc;

use async_trait::async_trait;
use chrono_tz::Tz;

use std::time::Duration;

use tokio::sync::mpsc;

use super::funnel::{FunnelLabels, Step};
use super::tools::{Outcome, ToolCallRecord, ToolContext, Toolbox};
use crate::calendar::{CalendarRegistry, Clock};
use crate::call::WayIn;
use crate::config::{DialogConfig, DialogEngineKind};
use crate::metrics;
use crate::storage::AgentRecord;

/// What the caller did in one turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserTurn {
    /// What the caller said (a transcript or a typed line); empty for silence.
    pub text: String,
    /// DTMF keys pressed during the turn, in order.
    pub dtmf: String,
    /// Words of `text` the speech recognizer was unsure of (its own token probabilities), as written in
    /// `text`; empty for typed turns and for engines that do not say.
    pub unsure: Vec<String>,
}

impl UserTurn {
    /// A spoken or typed turn.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), dtmf: String::new(), unsure: Vec::new() }
    }

    /// The same turn, with the words the recognizer was unsure of.
    #[must_use]
    pub fn with_unsure(mut self, unsure: Vec<String>) -> Self {
        self.unsure = unsure;
        self
    }

    /// A turn of key presses.
    pub fn dtmf(keys: impl Into<String>) -> Self {
        Self { text: String::new(), dtmf: keys.into(), unsure: Vec::new() }
    }

    /// Silence: the caller said nothing before the no-input timeout.
    pub fn silence() -> Self {
        Self::default()
    }

    /// `true` when the caller neither spoke nor pressed a key.
    pub fn is_silent(&self) -> bool {
        self.text.trim().is_empty() && self.dtmf.is_empty()
    }
}

/// Whether `word` is one of the `unsure` words of a turn (compared without case or surrounding
/// punctuation).
pub fn unsure_of(unsure: &[String], word: &str) -> bool {
    let plain = |w: &str| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
    let word = plain(word);
    !word.is_empty() && unsure.iter().any(|u| plain(u) == word)
}

/// What the agent does in reply.
#[derive(Debug, Clone, Default)]
pub struct AgentTurn {
    /// What to say (may hold several sentences); empty when the agent waits for the rest of a turn the
    /// caller plainly has not finished ("Um", "I would like").
    pub say: String,
    /// Tools called to produce it, in order.
    pub tool_calls: Vec<ToolCallRecord>,
    /// Hang up after saying it.
    pub end_call: bool,
}

impl AgentTurn {
    /// A turn that only speaks.
    pub fn say(text: impl Into<String>) -> Self {
        Self { say: text.into(), ..Self::default() }
    }
}

/// Who the conversation is with and when it happens.
#[derive(Clone)]
pub struct CallContext {
    /// Call or chat id (bookings carry it).
    pub call_id: String,
    /// The agent.
    pub agent: AgentRecord,
    /// The agent's time zone.
    pub timezone: Tz,
    /// Caller id, E.164, when known.
    pub caller: Option<String>,
    /// The clock (pinned in tests).
    pub clock: Arc<dyn Clock>,
}

/// What the agent's last words asked the caller for. The voice loop ends a caller's turn at a short
/// pause when the words so far already answer it ([`crate::agent::nlu::turn::complete`]), rather than
/// waiting out the full end-of-turn silence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Expect {
    /// Anything: an open question, or an engine that does not say.
    #[default]
    Anything,
    /// What the caller wants: book, cancel, reschedule, a question.
    Request,
    /// A day or a time.
    When,
    /// One of the options read out (or another day).
    Choice,
    /// The caller's full name.
    Name,
    /// An email address, or the phone number the caller calls from.
    Contact,
    /// Yes or no.
    YesNo,
}

/// A dialog engine. One instance per conversation.
#[async_trait]
pub trait DialogEngine: Send {
    /// The engine's name (`rules`, `llm`), a metric label.
    fn name(&self) -> &'static str;
    /// What the engine's last turn asked for.
    fn expecting(&self) -> Expect {
        Expect::Anything
    }
    /// The agent's first words when the call is answered.
    async fn greet(&mut self) -> AgentTurn;
    /// One caller turn.
    async fn on_user_turn(&mut self, turn: UserTurn) -> AgentTurn;
    /// The whole of the last turn, heard again because the caller went on speaking right after it was
    /// answered (its end was a guess at a short pause): the engine answers it instead of the last answer
    /// where it can take that back, else as a turn of its own.
    async fn continue_turn(&mut self, whole: UserTurn) -> AgentTurn {
        self.on_user_turn(whole).await
    }
}

/// The engine for `context` chosen by `config` (`dialog.engine`), over `toolbox`.
pub fn engine(config: &DialogConfig, context: CallContext, toolbox: Arc<Toolbox>) -> Box<dyn DialogEngine> {
    match config.engine {
        DialogEngineKind::Rules => Box::new(rules::RulesEngine::new(context, toolbox)),
        DialogEngineKind::Llm => Box::new(llm::LlmEngine::new(config.llm.clone(), context, toolbox)),
    }
}

/// Starts the conversation `call_id` of `agent` with `caller`, which came `way_in`: its toolbox over the
/// agent's calendar and the configured engine. The receiver gets the interim sentences said while slow
/// tools run.
pub fn start(
    config: &DialogConfig,
    calendars: &CalendarRegistry,
    agent: AgentRecord,
    caller: Option<String>,
    call_id: String,
    way_in: WayIn,
) -> (Conversation, mpsc::UnboundedReceiver<String>) {
    let timezone = agent.timezone.parse().unwrap_or(chrono_tz::UTC);
    let clock = calendars.clock();
    let tool_context = ToolContext {
        call_id: call_id.clone(),
        agent_name: agent.name.clone(),
        timezone,
        caller: caller.clone(),
        clock: clock.clone(),
    };
    let (interim, interim_rx) = mpsc::unbounded_channel();
    let calendar = agent.calendar.kind.as_str();
    super::funnel::agent_series(&agent.name, calendar);
    let labels = FunnelLabels { agent: agent.name.clone(), calendar, way_in };
    let toolbox = Arc::new(
        Toolbox::new(tool_context, calendars.calendar(&agent))
            .with_interim(interim, Duration::from_millis(config.interim_after_ms))
            .with_funnel(labels),
    );
    let context = CallContext { call_id, agent, timezone, caller, clock };
    let engine = engine(config, context, toolbox.clone());
    (Conversation::new(engine, toolbox), interim_rx)
}

/// One conversation: an engine, its toolbox, and the outcome counted once when it ends.
pub struct Conversation {
    engine: Box<dyn DialogEngine>,
    toolbox: Arc<Toolbox>,
    ended: bool,
    agent_ended: bool,
}

impl Conversation {
    /// Starts a conversation with `engine` (the funnel's `answered` step).
    pub fn new(engine: Box<dyn DialogEngine>, toolbox: Arc<Toolbox>) -> Self {
        toolbox.reached(Step::Answered);
        Self { engine, toolbox, ended: false, agent_ended: false }
    }

    /// The greeting.
    pub async fn greet(&mut self) -> AgentTurn {
        self.engine.greet().await
    }

    /// One caller turn; a turn that ends the call finishes the conversation.
    pub async fn turn(&mut self, turn: UserTurn) -> AgentTurn {
        let reply = self.engine.on_user_turn(turn).await;
        if reply.end_call {
            self.agent_ended = true;
            self.finish();
        }
        reply
    }

    /// The whole of the last turn, which went on ([`DialogEngine::continue_turn`]); the answer replaces
    /// the last one.
    pub async fn continue_turn(&mut self, whole: UserTurn) -> AgentTurn {
        let reply = self.engine.continue_turn(whole).await;
        if reply.end_call {
            self.agent_ended = true;
            self.finish();
        }
        reply
    }

    /// What the agent's last turn asked the caller for.
    pub fn expecting(&self) -> Expect {
        self.engine.expecting()
    }

    /// What the conversation achieved so far.
    pub fn outcome(&self) -> Outcome {
        self.toolbox.outcome()
    }

    /// Counts the outcome (`slotline_conversations_total`); later calls do nothing. Also runs on drop, so a
    /// caller who hangs up mid-way is counted. A conversation the agent did not end was ended by the caller.
    pub fn finish(&mut self) -> Outcome {
        let outcome = self.outcome();
        if !self.ended {
            self.ended = true;
            let result = self.toolbox.funnel_outcome(self.agent_ended);
            metrics::conversation(self.toolbox.funnel_labels().series(), result);
            tracing::info!(call_id = %self.toolbox.context().call_id, engine = self.engine.name(),
                outcome = result, "conversation ended");
        }
        outcome
    }
}

impl Drop for Conversation {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_carries_the_words_the_recognizer_was_unsure_of() {
        let typed = UserTurn::text("My name is Jane Garsha.");
        assert!(typed.unsure.is_empty() && !unsure_of(&typed.unsure, "Garsha"));
        let heard = typed.with_unsure(vec!["Garsha".into()]);
        assert!(unsure_of(&heard.unsure, "garsha") && unsure_of(&heard.unsure, "Garsha,"));
        assert!(!unsure_of(&heard.unsure, "Jane") && !unsure_of(&heard.unsure, ""));
        assert!(UserTurn::dtmf("1").unsure.is_empty());
    }
}
