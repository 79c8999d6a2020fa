//! A local OpenAI chat-completions double (`POST /v1/chat/completions`) on 127.0.0.1 port 0.
//!
//! It answers with a script: step *n* answers request *n*, and a step is a function of the request's
//! `messages`, so a scripted "model" can read a slot id out of an earlier `tool` message. A step can
//! answer with text, with tool calls (JSON-string `arguments`, as OpenAI sends them), with an error status,
//! with a body that is not JSON, or hang (for timeouts). Every request is recorded (body and
//! `Authorization` header) so tests can assert the protocol; a request past the end of the script gets a
//! 500 and is recorded too.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// What the double answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this chat-completion body.
    Completion(Value),
    /// This status with this body.
    Status(u16, String),
    /// 200 whose body is not JSON.
    Malformed,
    /// Never answers (until the client gives up).
    Hang,
}

impl Reply {
    /// The assistant says `text`.
    pub fn text(text: &str) -> Self {
        Self::message(json!({"role": "assistant", "content": text}))
    }

    /// The assistant calls tools: `(id, name, arguments)`; the arguments are sent as a JSON string.
    pub fn tool_calls(calls: &[(&str, &str, Value)]) -> Self {
        let raw: Vec<(&str, &str, String)> =
            calls.iter().map(|(id, name, args)| (*id, *name, args.to_string())).collect();
        Self::raw_tool_calls(None, &raw.iter().map(|(i, n, a)| (*i, *n, a.as_str())).collect::<Vec<_>>())
    }

    /// The assistant calls tools with `arguments` exactly as given (possibly broken JSON), optionally
    /// saying `content` too.
    pub fn raw_tool_calls(content: Option<&str>, calls: &[(&str, &str, &str)]) -> Self {
        let calls: Vec<Value> = calls
            .iter()
            .map(
                |(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}),
            )
            .collect();
        Self::message(json!({"role": "assistant", "content": content, "tool_calls": calls}))
    }

    fn message(message: Value) -> Self {
        let finish = if message.get("tool_calls").is_some() { "tool_calls" } else { "stop" };
        Self::Completion(json!({
            "id": "chatcmpl-double",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "double-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }))
    }
}

/// One scripted answer, chosen from the request's `messages`.
pub type Step = Box<dyn Fn(&[Value]) -> Reply + Send + Sync>;

/// A step that reads the request.
pub fn step(f: impl Fn(&[Value]) -> Reply + Send + Sync + 'static) -> Step {
    Box::new(f)
}

/// A step that always answers `reply`.
pub fn answer(reply: Reply) -> Step {
    Box::new(move |_| reply.clone())
}

/// One request as the double saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub body: Value,
    pub authorization: Option<String>,
}

impl Recorded {
    pub fn messages(&self) -> &[Value] {
        self.body["messages"].as_array().map(Vec::as_slice).unwrap_or_default()
    }

    /// The `function.name` of every entry of `tools`.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|t| t.iter().filter_map(|d| d["function"]["name"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    }
}

struct Shared {
    script: Vec<Step>,
    requests: Mutex<Vec<Recorded>>,
}

/// The running double; stops when dropped.
pub struct LlmDouble {
    /// `http://127.0.0.1:port/v1`, what `dialog.llm.base_url` takes.
    pub base_url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LlmDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl LlmDouble {
    pub async fn start(script: Vec<Step>) -> Self {
        let shared = Arc::new(Shared { script, requests: Mutex::new(Vec::new()) });
        let app = Router::new().route("/v1/chat/completions", post(completions)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind double");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base_url: format!("http://{addr}/v1"), shared, server }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn completions(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(String::from);
    let messages: Vec<Value> = body["messages"].as_array().cloned().unwrap_or_default();
    let index = {
        let mut requests = shared.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests.push(Recorded { body, authorization });
        requests.len() - 1
    };
    let reply = match shared.script.get(index) {
        Some(step) => step(&messages),
        None => Reply::Status(500, format!("script exhausted at request {}", index + 1)),
    };
    match reply {
        Reply::Completion(body) => Json(body).into_response(),
        Reply::Status(code, text) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(json!({"error": {"message": text, "type": "double_error"}}))).into_response()
        }
        Reply::Malformed => ([(header::CONTENT_TYPE, "application/json")], "{\"choices\": [ oops").into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// The content of every `tool` message, oldest first.
pub fn tool_results(messages: &[Value]) -> Vec<String> {
    messages.iter().filter(|m| m["role"] == "tool").filter_map(|m| m["content"].as_str().map(String::from)).collect()
}

/// The content of the latest `user` message.
pub fn last_user(messages: &[Value]) -> String {
    messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or_default().into()
}

/// The slot ids in a `list_available_slots` result (`ST_xxx = Thursday, December 3rd at 2 PM; ...`), in order.
pub fn slot_ids(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ST_"))
        .map(String::from)
        .collect()
}
