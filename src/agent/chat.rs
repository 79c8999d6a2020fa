//! `slotline chat`: a text conversation with an agent through the same dialog engine, tools, calendar and
//! database a phone call uses.
//!
//! On a terminal it is interactive (a `you>` prompt, tool calls dimmed); otherwise it reads one caller turn
//! per line from standard input and writes `agent: …` lines and `# tool: …` lines, so tests and admins
//! can script it. An empty line is silence; `#dtmf 1` sends key presses; end of input hangs up.
//!
//! [`ChatSessions`] keeps conversations between the requests of the HTTP chat API (the console's
//! "Try the agent").

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::dialog::{self, AgentTurn, Conversation, UserTurn};
use super::tools::Outcome;
use crate::calendar::CalendarRegistry;
use crate::call::WayIn;
use crate::config::DialogConfig;
use crate::storage::AgentRecord;

/// How the conversation is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A person at a terminal: prompts, colours.
    Terminal,
    /// A script: plain `agent:` and `# tool:` lines.
    Plain,
}

/// Starts a conversation with `agent` as caller `caller`, under the id `chat-<uuid>`.
pub fn conversation(
    dialog: &DialogConfig,
    calendars: &CalendarRegistry,
    agent: AgentRecord,
    caller: Option<String>,
) -> (Conversation, mpsc::UnboundedReceiver<String>) {
    dialog::start(dialog, calendars, agent, caller, format!("chat-{}", Uuid::new_v4()), WayIn::Chat)
}

/// Runs the conversation over `input` and `output` until the agent hangs up or the input ends.
pub async fn run(
    mut conversation: Conversation,
    mut interim: mpsc::UnboundedReceiver<String>,
    input: impl AsyncBufRead + Unpin,
    output: &mut impl Write,
    style: Style,
) -> std::io::Result<Outcome> {
    let greeting = conversation.greet().await;
    show(output, style, &greeting)?;
    let mut lines = input.lines();
    loop {
        if style == Style::Terminal {
            write!(output, "you> ")?;
            output.flush()?;
        }
        let Some(line) = lines.next_line().await? else { break };
        let turn = match line.trim().strip_prefix("#dtmf") {
            Some(keys) => UserTurn::dtmf(keys.trim()),
            None if line.trim_start().starts_with('#') => continue,
            None => UserTurn::text(line.trim()),
        };
        let reply = conversation.turn(turn).await;
        while let Ok(sentence) = interim.try_recv() {
            show(output, style, &AgentTurn::say(sentence))?;
        }
        show(output, style, &reply)?;
        if reply.end_call {
            break;
        }
    }
    Ok(conversation.finish())
}

fn show(output: &mut impl Write, style: Style, turn: &AgentTurn) -> std::io::Result<()> {
    for record in &turn.tool_calls {
        let line = format!("# tool: {} -> {}: {}", record.call.display(), record.outcome, record.result);
        match style {
            Style::Terminal => writeln!(output, "\x1b[2m{line}\x1b[0m")?,
            Style::Plain => writeln!(output, "{line}")?,
        }
    }
    match style {
        // Nothing said: the agent waits for the rest of an unfinished turn ("I would like").
        Style::Terminal if turn.say.is_empty() => writeln!(output, "\x1b[2m(the agent waits for more)\x1b[0m")?,
        Style::Plain if turn.say.is_empty() => writeln!(output, "# waiting")?,
        Style::Terminal => writeln!(output, "\x1b[1magent>\x1b[0m {}", turn.say)?,
        Style::Plain => writeln!(output, "agent: {}", turn.say)?,
    }
    if turn.end_call {
        match style {
            Style::Terminal => writeln!(output, "\x1b[2m(the agent hung up)\x1b[0m")?,
            Style::Plain => writeln!(output, "# hangup")?,
        }
    }
    output.flush()
}

/// Chat sessions held for the HTTP chat API (`/v1/agents/{id}/chats`, `/v1/chats/{id}/turns`): each is a
/// [`Conversation`] kept between turns. Sessions idle longer than [`ChatSessions::IDLE`] are dropped (and
/// counted as ended by the caller); at most [`ChatSessions::MAX`] live at once.
#[derive(Default)]
pub struct ChatSessions {
    sessions: Mutex<HashMap<Uuid, ChatSlot>>,
}

/// One held conversation and when it was last used.
struct ChatSlot {
    /// Copied from the session, so it is checked without locking the session.
    owner: Uuid,
    session: Arc<tokio::sync::Mutex<ChatSession>>,
    used: Instant,
}

/// A conversation between HTTP requests.
pub struct ChatSession {
    /// The agent's dialog.
    pub conversation: Conversation,
    /// Sentences said while slow tools ran.
    pub interim: mpsc::UnboundedReceiver<String>,
    /// The agent answering.
    pub agent_id: Uuid,
    /// The API token that started it: only that token can go on with it or end it.
    pub owner: Uuid,
}

impl ChatSession {
    /// One caller turn; the interim sentences are put before the reply's own.
    pub async fn turn(&mut self, turn: UserTurn) -> (Vec<String>, AgentTurn) {
        let reply = self.conversation.turn(turn).await;
        let mut interim = Vec::new();
        while let Ok(sentence) = self.interim.try_recv() {
            interim.push(sentence);
        }
        (interim, reply)
    }
}

impl ChatSessions {
    /// Longest pause between two turns of a session.
    pub const IDLE: Duration = Duration::from_secs(30 * 60);
    /// Most sessions at once.
    pub const MAX: usize = 200;

    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, ChatSlot>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `session` under a new id; `None` when [`Self::MAX`] sessions are live.
    pub fn insert(&self, session: ChatSession) -> Option<(Uuid, Arc<tokio::sync::Mutex<ChatSession>>)> {
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, slot| now.duration_since(slot.used) < Self::IDLE);
        if sessions.len() >= Self::MAX {
            return None;
        }
        let id = Uuid::new_v4();
        let owner = session.owner;
        let session = Arc::new(tokio::sync::Mutex::new(session));
        sessions.insert(id, ChatSlot { owner, session: session.clone(), used: now });
        Some((id, session))
    }

    /// The live session `id` of `owner`, marked as used.
    pub fn get(&self, id: Uuid, owner: Uuid) -> Option<Arc<tokio::sync::Mutex<ChatSession>>> {
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, slot| now.duration_since(slot.used) < Self::IDLE);
        let slot = sessions.get_mut(&id).filter(|slot| slot.owner == owner)?;
        slot.used = now;
        Some(slot.session.clone())
    }

    /// Ends session `id` of `owner`; false when there was none.
    pub fn remove(&self, id: Uuid, owner: Uuid) -> bool {
        let mut sessions = self.lock();
        if sessions.get(&id).is_some_and(|slot| slot.owner == owner) {
            sessions.remove(&id);
            true
        } else {
            false
        }
    }
}
