//! `slotline chat`: a text conversation with an agent through the same dialog engine, tools, calendar and
//! database a phone call uses.
//!
//! On a terminal it is interactive (a `you>` prompt, tool calls dimmed); otherwise it reads one caller turn
//! per line from standard input and writes `agent: …` lines and `# tool: …` lines, so tests and admins
//! can script it. An empty line is silence; `#dtmf 1` sends key presses; end of input hangs up.

use std::io::Write;

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
