//! The LLM engine: the OpenAI chat-completions tool-calling loop against any compatible endpoint
//! (`POST {base_url}/chat/completions`).
//!
//! Each caller turn appends a `user` message and sends the conversation with the tools of
//! [`tools::definitions`] plus [`END_CALL`]. While the model answers with `tool_calls`, each call is read by
//! [`ToolCall::parse`] and run by the [`Toolbox`] (a call that cannot be read is answered with its error, so
//! the model can correct itself), the assistant message and one `tool` message per call are appended, and
//! the conversation is sent again, up to `dialog.llm.max_tool_rounds` times. The model's final `content` is
//! what the agent says; calling `end_call` hangs up after it.
//!
//! A request that fails (HTTP error, timeout, a reply that is not a chat completion, too many tool rounds)
//! makes the agent say [`FALLBACK`], counts `slotline_llm_failures_total{reason}` and leaves the
//! conversation usable for the next turn. The system message is rebuilt for every request from the agent's
//! prompt and the facts of the call (name, time zone, local time, caller id); the rest of the history is
//! bounded to [`MAX_HISTORY`] messages, never separating an assistant's tool calls from their results.
//! The API key is only ever written into the `Authorization` header.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

use super::{AgentTurn, CallContext, DialogEngine, UserTurn};
use crate::agent::funnel::Step;
use crate::agent::tools::{self, ToolCall, ToolCallRecord, ToolData, Toolbox};
use crate::config::LlmConfig;
use crate::metrics;

/// Said when the model cannot be reached or does not answer usefully.
pub const FALLBACK: &str = "I'm sorry, I'm having trouble right now. Could you say that again?";
/// The hang-up tool, offered to the model only.
pub const END_CALL: &str = "end_call";
/// Messages kept besides the system message.
pub const MAX_HISTORY: usize = 40;
/// Tool calls run from one model reply; the rest are answered with an error.
const MAX_CALLS_PER_ROUND: usize = 8;
/// Characters of an error body kept for the log.
const ERROR_BODY_CHARS: usize = 200;

/// Why an LLM turn failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// No reply within `dialog.llm.timeout_ms`.
    #[error("no reply within {0} ms")]
    Timeout(u64),
    /// The endpoint could not be reached or the connection broke.
    #[error("request failed: {0}")]
    Transport(String),
    /// The endpoint answered with an error status.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body, with the API key removed.
        body: String,
    },
    /// The reply is not a chat completion, or has neither content nor tool calls.
    #[error("invalid reply: {0}")]
    InvalidResponse(String),
    /// The model still called tools after `max_tool_rounds` rounds.
    #[error("still calling tools after {0} rounds")]
    RoundsExhausted(u32),
}

impl LlmError {
    /// The `reason` label of `slotline_llm_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Transport(_) => "transport",
            Self::Status { .. } => "http_status",
            Self::InvalidResponse(_) => "invalid_response",
            Self::RoundsExhausted(_) => "rounds_exhausted",
        }
    }
}

/// One chat message as the protocol has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Message {
    role: Role,
    #[serde(default)]
    content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    tool_calls: Vec<WireToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
}

impl Message {
    fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: Some(content.into()), tool_calls: Vec::new(), tool_call_id: None }
    }

    fn tool(id: &str, content: String) -> Self {
        Self { tool_call_id: Some(id.to_string()), ..Self::new(Role::Tool, content) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WireToolCall {
    id: String,
    #[serde(rename = "type", default = "function_type")]
    kind: String,
    function: WireFunction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WireFunction {
    name: String,
    /// A JSON document as a string (some servers send an object; it is kept as its JSON text).
    #[serde(default, deserialize_with = "string_or_json")]
    arguments: String,
}

fn function_type() -> String {
    "function".to_string()
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<WireToolCall>, D::Error> {
    Ok(Option::<Vec<WireToolCall>>::deserialize(d)?.unwrap_or_default())
}

fn string_or_json<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

#[derive(Debug, Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Message,
}

/// The HTTP client every LLM conversation shares (one connection pool).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("slotline/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default()
    })
}

/// The LLM dialog engine for one conversation.
pub struct LlmEngine {
    config: LlmConfig,
    url: String,
    context: CallContext,
    toolbox: Arc<Toolbox>,
    tools: Value,
    /// Everything after the system message.
    history: Vec<Message>,
    last_failure: Option<LlmError>,
}

impl LlmEngine {
    /// An engine for `context` talking to the endpoint of `config`, running tools in `toolbox`.
    pub fn new(config: LlmConfig, context: CallContext, toolbox: Arc<Toolbox>) -> Self {
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        Self { config, url, context, toolbox, tools: tool_definitions(), history: Vec::new(), last_failure: None }
    }

    /// Why the latest turn fell back to [`FALLBACK`], if it did.
    pub fn last_failure(&self) -> Option<&LlmError> {
        self.last_failure.as_ref()
    }

    /// The system message: the agent's prompt and the facts of this call.
    fn system_message(&self) -> Message {
        let agent = &self.context.agent;
        let tz = self.context.timezone;
        let now = self.context.clock.now().with_timezone(&tz);
        let caller = match &self.context.caller {
            Some(number) => {
                format!("The caller's phone number is {number}; use it as attendee_phone unless they give another.")
            }
            None => "The caller's phone number is unknown.".to_string(),
        };
        let text = format!(
            "{prompt}\n\n\
             Facts:\n\
             - You are {name}, answering a phone call.\n\
             - Your time zone is {zone} (IANA); all times you say and hear are in it.\n\
             - It is now {local} ({iso}) in {zone}.\n\
             - {caller}\n\n\
             Rules:\n\
             - Slot ids come only from list_available_slots; never make one up.\n\
             - Confirm the day, time, name and email with the caller and get a yes before calling schedule_appointment.\n\
             - Speak briefly, this is a phone call: one or two short sentences, no lists or markdown.\n\
             - Never read ids (slot ids, booking ids) aloud.\n\
             - When the caller has nothing else, say goodbye and call {END_CALL}.",
            prompt = agent.prompt.trim(),
            name = agent.name,
            zone = tz.name(),
            local = now.format("%A, %B %-d, %Y, %-I:%M %p"),
            iso = now.format("%Y-%m-%dT%H:%M%:z"),
        );
        Message::new(Role::System, text)
    }

    /// One request with the whole conversation; the first choice's message.
    async fn complete(&self) -> Result<Message, LlmError> {
        let mut messages = Vec::with_capacity(self.history.len() + 1);
        messages.push(self.system_message());
        messages.extend(self.history.iter().cloned());
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "tools": self.tools,
            "tool_choice": "auto",
            "temperature": self.config.temperature,
        });
        let mut request = client().post(&self.url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose());
        }
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let exchange = async {
            let response = request.send().await.map_err(|e| LlmError::Transport(e.without_url().to_string()))?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(|e| LlmError::Transport(e.without_url().to_string()))?;
            Ok::<_, LlmError>((status, bytes))
        };
        let (status, bytes) =
            tokio::time::timeout(timeout, exchange).await.map_err(|_| LlmError::Timeout(self.config.timeout_ms))??;
        if !status.is_success() {
            let body: String = String::from_utf8_lossy(&bytes).chars().take(ERROR_BODY_CHARS).collect();
            return Err(LlmError::Status { status: status.as_u16(), body: self.redact(body) });
        }
        let completion: Completion =
            serde_json::from_slice(&bytes).map_err(|e| LlmError::InvalidResponse(e.to_string()))?;
        let message = completion
            .choices
            .into_iter()
            .next()
            .map(|c| c.message)
            .ok_or_else(|| LlmError::InvalidResponse("no choices".into()))?;
        if message.role != Role::Assistant {
            return Err(LlmError::InvalidResponse("the message is not the assistant's".into()));
        }
        Ok(message)
    }

    /// `text` without the API key, for logs.
    fn redact(&self, text: String) -> String {
        match &self.config.api_key {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "[redacted]"),
            _ => text,
        }
    }

    /// The tool loop of one caller turn.
    async fn run_turn(&mut self, records: &mut Vec<ToolCallRecord>, end_call: &mut bool) -> Result<String, LlmError> {
        let mut rounds = 0;
        loop {
            let mut reply = self.complete().await?;
            let content = reply.content.as_deref().map(str::trim).unwrap_or_default().to_string();
            if reply.tool_calls.is_empty() {
                if content.is_empty() {
                    return Err(LlmError::InvalidResponse("neither content nor tool calls".into()));
                }
                self.history.push(Message::new(Role::Assistant, content.clone()));
                return Ok(content);
            }
            if rounds == self.config.max_tool_rounds {
                return Err(LlmError::RoundsExhausted(rounds));
            }
            rounds += 1;
            reply.role = Role::Assistant;
            let calls = reply.tool_calls.clone();
            self.history.push(reply);
            let only_hang_up = calls.iter().all(|c| c.function.name == END_CALL);
            for (index, call) in calls.iter().enumerate() {
                let result = if index >= MAX_CALLS_PER_ROUND {
                    format!("error: not run, at most {MAX_CALLS_PER_ROUND} tool calls per reply")
                } else {
                    self.run_tool(call, records, end_call).await
                };
                self.history.push(Message::tool(&call.id, result));
            }
            // A goodbye said together with the hang-up needs no further round trip.
            if only_hang_up && !content.is_empty() {
                return Ok(content);
            }
        }
    }

    /// Runs one call from the model and returns the `tool` message content.
    async fn run_tool(&self, call: &WireToolCall, records: &mut Vec<ToolCallRecord>, end_call: &mut bool) -> String {
        let name = call.function.name.as_str();
        if name == END_CALL {
            *end_call = true;
            return "The call ends after your next message; say goodbye.".to_string();
        }
        let arguments = if call.function.arguments.trim().is_empty() {
            Ok(json!({}))
        } else {
            serde_json::from_str::<Value>(&call.function.arguments)
        };
        let arguments = match arguments {
            Ok(arguments) => arguments,
            Err(e) => return format!("error: the arguments are not valid JSON ({e})"),
        };
        let parsed = match ToolCall::parse(name, &arguments) {
            Ok(parsed) => parsed,
            Err(e) => {
                tracing::info!(call_id = %self.context.call_id, tool = name, error = %e, "model sent a bad tool call");
                return format!("error: {e}");
            }
        };
        if matches!(parsed, ToolCall::ListAvailableSlots { .. }) {
            self.toolbox.reached(Step::Intent);
        }
        let result = self.toolbox.run(&parsed).await;
        if matches!(result.data, ToolData::Slots(_)) {
            self.toolbox.reached(Step::Offered);
        }
        let text = if result.is_ok() { result.text.clone() } else { format!("{}: {}", result.outcome, result.text) };
        records.push(ToolCallRecord { call: parsed, outcome: result.outcome, result: result.text });
        text
    }
}

/// Drops the oldest messages beyond `max`; tool results never lead (their assistant message went with
/// them), so a tool call and its results stay together or go together.
fn trim(history: &mut Vec<Message>, max: usize) {
    let mut start = history.len().saturating_sub(max);
    while history.get(start).is_some_and(|m| m.role == Role::Tool) {
        start += 1;
    }
    history.drain(..start);
}

/// The toolbox's tools plus [`END_CALL`].
fn tool_definitions() -> Value {
    let mut definitions = tools::definitions();
    if let Some(list) = definitions.as_array_mut() {
        list.push(json!({"type": "function", "function": {
            "name": END_CALL,
            "description": "Hang up after saying goodbye. Call it with your goodbye once the caller has nothing else.",
            "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": false},
        }}));
    }
    definitions
}

/// What the caller did, as the text of a `user` message.
fn user_text(turn: &UserTurn) -> String {
    let mut parts = Vec::new();
    if !turn.text.trim().is_empty() {
        parts.push(turn.text.trim().to_string());
    }
    if !turn.dtmf.is_empty() {
        parts.push(format!("[DTMF: {}]", turn.dtmf));
    }
    if parts.is_empty() {
        parts.push("[silence: the caller said nothing]".to_string());
    }
    parts.join(" ")
}

#[async_trait]
impl DialogEngine for LlmEngine {
    fn name(&self) -> &'static str {
        "llm"
    }

    async fn greet(&mut self) -> AgentTurn {
        let greeting = self.context.agent.greeting.trim().to_string();
        self.history.push(Message::new(Role::Assistant, greeting.clone()));
        AgentTurn::say(greeting)
    }

    async fn on_user_turn(&mut self, turn: UserTurn) -> AgentTurn {
        self.history.push(Message::new(Role::User, user_text(&turn)));
        trim(&mut self.history, MAX_HISTORY);
        let mut records = Vec::new();
        let mut end_call = false;
        match self.run_turn(&mut records, &mut end_call).await {
            Ok(say) => {
                self.last_failure = None;
                AgentTurn { say, tool_calls: records, end_call }
            }
            Err(e) => {
                metrics::llm_failure(e.reason());
                tracing::warn!(call_id = %self.context.call_id, model = %self.config.model, reason = e.reason(),
                    error = %e, "LLM turn failed; said the fall-back sentence");
                // What the caller heard, so the next turn follows on from it.
                self.history.push(Message::new(Role::Assistant, FALLBACK));
                self.last_failure = Some(e);
                AgentTurn { say: FALLBACK.to_string(), tool_calls: records, end_call: false }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_arguments_may_be_a_string_or_an_object() {
        let message: Message = serde_json::from_value(json!({
            "role": "assistant", "content": null,
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "x", "arguments": "{\"range_days\":3}"}},
                {"id": "b", "function": {"name": "y", "arguments": {"range_days": 4}}},
            ],
        }))
        .expect("message");
        assert_eq!(message.tool_calls[0].function.arguments, r#"{"range_days":3}"#);
        assert_eq!(message.tool_calls[1].function.arguments, r#"{"range_days":4}"#);
        assert_eq!(message.tool_calls[1].kind, "function");
        let plain: Message =
            serde_json::from_value(json!({"role": "assistant", "content": "Hi", "tool_calls": null})).expect("plain");
        assert!(plain.tool_calls.is_empty());
    }

    #[test]
    fn user_text_carries_dtmf_and_silence() {
        assert_eq!(user_text(&UserTurn::text(" yes ")), "yes");
        assert_eq!(user_text(&UserTurn::dtmf("1")), "[DTMF: 1]");
        assert!(user_text(&UserTurn::silence()).contains("silence"));
    }

    #[test]
    fn trimming_keeps_tool_calls_with_their_results() {
        let call = |id: &str| WireToolCall {
            id: id.into(),
            kind: function_type(),
            function: WireFunction { name: "get_current_time".into(), arguments: "{}".into() },
        };
        let asking = Message { tool_calls: vec![call("a"), call("b")], ..Message::new(Role::Assistant, "") };
        let mut history = vec![
            Message::new(Role::User, "one"),
            asking,
            Message::tool("a", "It is noon.".into()),
            Message::tool("b", "It is noon.".into()),
            Message::new(Role::Assistant, "It is noon."),
            Message::new(Role::User, "two"),
        ];
        trim(&mut history, 4);
        assert_eq!(history.len(), 2, "{history:?}");
        assert_eq!(history[0].content.as_deref(), Some("It is noon."));
        assert_eq!(history[0].role, Role::Assistant);
        let mut short = vec![Message::new(Role::User, "hi")];
        trim(&mut short, 4);
        assert_eq!(short.len(), 1);
    }

    #[test]
    fn definitions_add_end_call() {
        let names: Vec<String> = tool_definitions()
            .as_array()
            .map(|a| a.iter().filter_map(|d| d["function"]["name"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        assert_eq!(names.last().map(String::as_str), Some(END_CALL));
        assert!(names.iter().any(|n| n == tools::SCHEDULE_APPOINTMENT));
    }
}
