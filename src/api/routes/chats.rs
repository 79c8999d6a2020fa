//! Text chat with an agent over HTTP: `POST /v1/agents/{id}/chats` starts a session and returns the
//! greeting, `POST /v1/chats/{id}/turns` sends one caller turn, `DELETE /v1/chats/{id}` hangs up. The same
//! dialog engine, tools, calendar and database as a phone call (way in `chat`, like `slotline chat`);
//! the console's "Try the agent" panel uses it. A chat belongs to the token that started it: to any other
//! token it does not exist (404).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::agent::chat::{self, ChatSession, ChatSessions};
use crate::agent::dialog::{AgentTurn, UserTurn};
use crate::api::auth::WriteAccess;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::ApiJson;
use crate::api::AppState;
use crate::phone;

/// Longest caller turn, in characters.
const MAX_TURN: usize = 2000;

/// Body of `POST /v1/agents/{id}/chats`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartChat {
    /// The caller's phone number as a call would carry it (any common notation; stored as E.164).
    pub caller: Option<String>,
}

/// Body of `POST /v1/chats/{id}/turns`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatTurn {
    /// What the caller says (empty: silence).
    #[serde(default)]
    pub text: String,
    /// Keys pressed instead of speaking (`0`–`9`, `*`, `#`).
    pub dtmf: Option<String>,
}

/// A tool the agent called to answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolCallView {
    /// Tool name, e.g. `schedule_appointment`.
    pub name: String,
    /// Its arguments.
    pub arguments: serde_json::Value,
    /// `ok` or what went wrong (`slot_taken`, `no_slots`, ...).
    pub outcome: String,
    /// The text the dialog engine got back.
    pub result: String,
}

/// The agent's answer to one turn.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatReply {
    /// The session.
    pub chat_id: Uuid,
    /// The agent.
    pub agent_id: Uuid,
    /// What the agent says (interim sentences such as "Let me check available slots for you." first);
    /// empty when it waits for the rest of an unfinished turn.
    pub say: Vec<String>,
    /// Tools called for this turn, in order.
    pub tool_calls: Vec<ToolCallView>,
    /// The agent hung up; the session is over.
    pub ended: bool,
}

impl ChatReply {
    fn new(chat_id: Uuid, agent_id: Uuid, interim: Vec<String>, turn: AgentTurn) -> Self {
        let mut say = interim;
        if !turn.say.is_empty() {
            say.push(turn.say);
        }
        let tool_calls = turn
            .tool_calls
            .into_iter()
            .map(|record| ToolCallView {
                name: record.call.name().to_string(),
                arguments: record.call.arguments(),
                outcome: record.outcome.to_string(),
                result: record.result,
            })
            .collect();
        Self { chat_id, agent_id, say, tool_calls, ended: turn.end_call }
    }
}

/// Starts a chat with an agent; the reply carries its greeting. Chats can book, so they need an admin token.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/chats",
    tag = "chat",
    params(("id" = Uuid, Path, description = "Agent id")),
    request_body = StartChat,
    security(("bearer" = [])),
    responses(
        (status = 201, body = ChatReply),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 409, description = "too many chats at once", body = ErrorBody)
    )
)]
pub async fn start_chat(
    WriteAccess(token): WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<StartChat>,
) -> Result<(StatusCode, Json<ChatReply>), ApiError> {
    let agent_id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("agent"))?;
    let agent = state.store.get_agent(agent_id).await?.ok_or(ApiError::NotFound("agent"))?;
    let caller = match input.caller.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(raw) => {
            Some(phone::normalize(raw).map_err(|e| ApiError::validation("caller", e.to_string()))?.to_string())
        }
        None => None,
    };
    let (mut conversation, interim) = chat::conversation(&state.dialog, &state.calendars, agent, caller);
    let greeting = conversation.greet().await;
    let session = ChatSession { conversation, interim, agent_id, owner: token.token_id };
    let (chat_id, _) = state.chats.insert(session).ok_or_else(|| ApiError::Conflict {
        message: format!("{} chats are open; end one (DELETE /v1/chats/{{id}}) first", ChatSessions::MAX),
        field: None,
    })?;
    tracing::info!(%chat_id, %agent_id, "chat started");
    Ok((StatusCode::CREATED, Json(ChatReply::new(chat_id, agent_id, Vec::new(), greeting))))
}

/// Sends one caller turn and returns the agent's answer.
#[utoipa::path(
    post,
    path = "/v1/chats/{id}/turns",
    tag = "chat",
    params(("id" = Uuid, Path, description = "Chat id (`chat_id` of the start reply)")),
    request_body = ChatTurn,
    security(("bearer" = [])),
    responses(
        (status = 200, body = ChatReply),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "no such chat of this token, or it ended or idled out", body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn chat_turn(
    WriteAccess(token): WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ChatTurn>,
) -> Result<Json<ChatReply>, ApiError> {
    let chat_id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("chat"))?;
    if input.text.chars().count() > MAX_TURN {
        return Err(ApiError::validation("text", format!("must be at most {MAX_TURN} characters")));
    }
    let turn = match input.dtmf {
        Some(keys) if keys.is_empty() || !keys.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') => {
            return Err(ApiError::validation("dtmf", "use the keys 0-9, * and #"));
        }
        Some(keys) => UserTurn::dtmf(keys),
        None => UserTurn::text(input.text.trim()),
    };
    let session = state.chats.get(chat_id, token.token_id).ok_or(ApiError::NotFound("chat"))?;
    let mut session = session.lock().await;
    let (interim, reply) = session.turn(turn).await;
    let reply = ChatReply::new(chat_id, session.agent_id, interim, reply);
    if reply.ended {
        state.chats.remove(chat_id, token.token_id);
    }
    Ok(Json(reply))
}

/// Hangs up a chat.
#[utoipa::path(
    delete,
    path = "/v1/chats/{id}",
    tag = "chat",
    params(("id" = Uuid, Path, description = "Chat id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "ended"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)
    )
)]
pub async fn end_chat(
    WriteAccess(token): WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let chat_id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("chat"))?;
    if state.chats.remove(chat_id, token.token_id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("chat"))
    }
}
