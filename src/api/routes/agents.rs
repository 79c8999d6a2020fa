//! `/v1/agents`: create, list, read, change and delete voice agents and their calendar settings.
//!
//! A Cal.com API key is sealed with the master key before it is stored and never returned: responses
//! carry `has_api_key`, its last 4 characters, and `api_key_source` (the agent's own key, or the global
//! `calcom.api_key` that Cal.com agents without one use).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::auth::{ReadAccess, WriteAccess};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::{ApiJson, ApiQuery};
use crate::api::AppState;
use crate::calendar::builtin::Rules;
use crate::calendar::{calcom_key_context, calcom_webhook_context, CalendarKind};
use crate::speech::tts::voices::AgentVoice;
use crate::storage::crypto::MasterKey;
use crate::storage::{AgentDeletion, AgentRecord, CalendarConfig, PhoneNumberRecord, SealedSecret};

/// Default appointment length.
pub const DEFAULT_SLOT_MINUTES: i32 = 30;
const MAX_NAME: usize = 100;
const MAX_TEXT: usize = 10_000;
const MAX_API_KEY: usize = 512;
/// The prompt of an agent created without one.
pub const DEFAULT_PROMPT: &str = "You are a friendly, efficient receptionist. Help the caller book, cancel or \
reschedule an appointment. Offer two or three free slots at a time, confirm the details before booking, \
and keep every answer short because it is spoken on the phone.";

/// Calendar settings as an admin writes them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarInput {
    /// Which calendar.
    pub kind: CalendarKind,
    /// Cal.com API key (`cal_...`); required for `calcom` unless one is already stored or the global key
    /// (`calcom.api_key`) is set. Write-only.
    pub api_key: Option<String>,
    /// Forget the agent's own Cal.com key, so that it uses the global key (`calcom.api_key`, which must be
    /// set). Not together with `api_key`.
    #[serde(default)]
    pub use_global_key: bool,
    /// Cal.com event type slug; created with `slot_minutes` when missing. Required for `calcom`.
    pub event_type_slug: Option<String>,
    /// Cal.com username (learned from the key when absent).
    pub username: Option<String>,
    /// Appointment length in minutes (5–480, default 30; the demo calendar always uses 30).
    pub slot_minutes: Option<i32>,
    /// Secret Cal.com signs this agent's webhooks with (`calcom` only; write-only).
    pub webhook_secret: Option<String>,
    /// Rules of the built-in calendar (`builtin` only); Monday–Friday 09:00–17:00 when omitted.
    pub rules: Option<Rules>,
}

/// Body of `POST /v1/agents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// Unique name (1–100 characters); dialplan files refer to agents by name.
    pub name: String,
    /// Free text for admins.
    #[serde(default)]
    pub description: String,
    /// Instructions for the dialog engine (a scheduling receptionist by default).
    pub prompt: Option<String>,
    /// First sentence spoken on answer.
    pub greeting: Option<String>,
    /// BCP 47 language tag (default `en`).
    pub language: Option<String>,
    /// IANA time zone the agent speaks and books in, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// The calendar.
    pub calendar: CalendarInput,
    /// The agent's own voice; absent or `null`: the gateway's default voice (`speech.tts_engine`). Its
    /// engine must be installed on the gateway (422 naming `voice.engine` otherwise).
    pub voice: Option<AgentVoice>,
}

/// Body of `PATCH /v1/agents/{id}`: only the fields given change. A `calendar` object replaces the
/// calendar settings, keeping the stored Cal.com key when `api_key` is omitted and the kind stays `calcom`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New prompt.
    pub prompt: Option<String>,
    /// New greeting.
    pub greeting: Option<String>,
    /// New language.
    pub language: Option<String>,
    /// New time zone.
    pub timezone: Option<String>,
    /// New calendar settings.
    pub calendar: Option<CalendarInput>,
    /// A new voice; `null`: back to the gateway's default voice.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<AgentVoice>)]
    pub voice: Option<Option<AgentVoice>>,
}

/// A field that may be `null`: `Some(None)` when it is, `None` (by `default`) when it is absent.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Which Cal.com key an agent's calendar uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeySource {
    /// The agent's own key (`api_key_last4` shows its end).
    Agent,
    /// The global key, setting `calcom.api_key` (env `SLOTLINE_CALCOM__API_KEY` or `CAL_KEY`).
    Global,
}

/// Calendar settings as the API shows them (never the key).
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarView {
    /// Which calendar.
    pub kind: CalendarKind,
    /// A Cal.com key is stored.
    pub has_api_key: bool,
    /// Its last 4 characters.
    pub api_key_last4: Option<String>,
    /// The key a `calcom` calendar uses: its own, else the global one; absent when it has none.
    pub api_key_source: Option<ApiKeySource>,
    /// Cal.com event type slug.
    pub event_type_slug: Option<String>,
    /// Cal.com event type id, once known.
    pub event_type_id: Option<i64>,
    /// Cal.com username.
    pub username: Option<String>,
    /// Appointment length in minutes.
    pub slot_minutes: i32,
    /// A Cal.com webhook secret is stored.
    pub has_webhook_secret: bool,
    /// Built-in calendar rules.
    pub rules: Option<Rules>,
}

/// An agent as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    /// Stable id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Dialog instructions.
    pub prompt: String,
    /// First sentence spoken.
    pub greeting: String,
    /// BCP 47 language tag.
    pub language: String,
    /// IANA time zone.
    pub timezone: String,
    /// Calendar settings.
    pub calendar: CalendarView,
    /// The agent's own voice; `null`: the gateway's default voice.
    pub voice: Option<AgentVoice>,
    /// Numbers routed to this agent (E.164).
    pub numbers: Vec<String>,
    /// Created.
    pub created_at: chrono::DateTime<Utc>,
    /// Last changed.
    pub updated_at: chrono::DateTime<Utc>,
}

/// All agents.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    /// By name.
    pub agents: Vec<AgentView>,
}

/// Query of `DELETE /v1/agents/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Also delete the agent's phone numbers (otherwise an agent with numbers is not deleted: 409).
    #[serde(default)]
    pub force: bool,
}

impl AgentView {
    fn new(agent: AgentRecord, numbers: &[PhoneNumberRecord], global_key: bool) -> Self {
        let cal = agent.calendar;
        let api_key_source = match (cal.kind, cal.calcom_api_key.is_some()) {
            (CalendarKind::Calcom, true) => Some(ApiKeySource::Agent),
            (CalendarKind::Calcom, false) if global_key => Some(ApiKeySource::Global),
            _ => None,
        };
        Self {
            id: agent.id,
            name: agent.name,
            description: agent.description,
            prompt: agent.prompt,
            greeting: agent.greeting,
            language: agent.language,
            timezone: agent.timezone,
            calendar: CalendarView {
                kind: cal.kind,
                has_api_key: cal.calcom_api_key.is_some(),
                api_key_last4: cal.calcom_api_key.map(|k| k.hint),
                api_key_source,
                event_type_slug: cal.event_type_slug,
                event_type_id: cal.event_type_id,
                username: cal.username,
                slot_minutes: cal.slot_minutes,
                has_webhook_secret: cal.calcom_webhook_secret.is_some(),
                // Storage checked that they are JSON; rules the calendar cannot read show as none.
                rules: cal.rules.as_deref().and_then(|text| Rules::from_stored(text).ok()),
            },
            // Storage checked nothing: a stored voice that is not one shows as none (calls use the default).
            voice: agent.voice.as_deref().and_then(|text| AgentVoice::from_stored(text).ok()),
            numbers: numbers.iter().filter(|n| n.agent_id == agent.id).map(|n| n.e164.clone()).collect(),
            created_at: agent.created_at,
            updated_at: agent.updated_at,
        }
    }
}

/// Lists every agent.
#[utoipa::path(
    get,
    path = "/v1/agents",
    tag = "agents",
    security(("bearer" = [])),
    responses((status = 200, body = AgentList), (status = 401, body = ErrorBody))
)]
pub async fn list_agents(_access: ReadAccess, State(state): State<AppState>) -> Result<Json<AgentList>, ApiError> {
    let numbers = state.store.list_numbers(None).await?;
    let agents = state.store.list_agents().await?;
    let global = state.calendars.has_global_calcom_key();
    Ok(Json(AgentList { agents: agents.into_iter().map(|a| AgentView::new(a, &numbers, global)).collect() }))
}

/// Creates an agent.
#[utoipa::path(
    post,
    path = "/v1/agents",
    tag = "agents",
    request_body = CreateAgent,
    security(("bearer" = [])),
    responses(
        (status = 201, body = AgentView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "name taken", body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn create_agent(
    _access: WriteAccess,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<CreateAgent>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    let id = Uuid::new_v4();
    let now = crate::storage::now();
    let name = valid_name(&input.name)?;
    let agent = AgentRecord {
        id,
        greeting: match input.greeting {
            Some(greeting) => valid_text("greeting", greeting)?,
            None => default_greeting(&name),
        },
        name,
        description: valid_text("description", input.description)?,
        prompt: valid_text("prompt", input.prompt.unwrap_or_else(|| DEFAULT_PROMPT.to_string()))?,
        language: valid_language(input.language.as_deref().unwrap_or("en"))?,
        timezone: valid_timezone(&input.timezone)?,
        calendar: calendar_config(&state, id, input.calendar, None)?,
        voice: match input.voice {
            Some(voice) => Some(valid_voice(&state, voice).await?),
            None => None,
        },
        created_at: now,
        updated_at: now,
    };
    state.store.insert_agent(&agent).await.map_err(name_conflict)?;
    crate::agent::funnel::agent_series(&agent.name, agent.calendar.kind.as_str());
    tracing::info!(agent_id = %agent.id, name = %agent.name, calendar = agent.calendar.kind.as_str(), "agent created");
    Ok((StatusCode::CREATED, Json(AgentView::new(agent, &[], state.calendars.has_global_calcom_key()))))
}

/// One agent.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}",
    tag = "agents",
    params(("id" = Uuid, Path, description = "Agent id")),
    security(("bearer" = [])),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn get_agent(
    _access: ReadAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let agent = load(&state, &id).await?;
    let numbers = state.store.list_numbers(Some(agent.id)).await?;
    Ok(Json(AgentView::new(agent, &numbers, state.calendars.has_global_calcom_key())))
}

/// Changes some fields of an agent.
#[utoipa::path(
    patch,
    path = "/v1/agents/{id}",
    tag = "agents",
    params(("id" = Uuid, Path, description = "Agent id")),
    request_body = UpdateAgent,
    security(("bearer" = [])),
    responses(
        (status = 200, body = AgentView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
pub async fn update_agent(
    _access: WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<UpdateAgent>,
) -> Result<Json<AgentView>, ApiError> {
    let mut agent = load(&state, &id).await?;
    if let Some(name) = input.name {
        agent.name = valid_name(&name)?;
    }
    if let Some(description) = input.description {
        agent.description = valid_text("description", description)?;
    }
    if let Some(prompt) = input.prompt {
        agent.prompt = valid_text("prompt", prompt)?;
    }
    if let Some(greeting) = input.greeting {
        agent.greeting = valid_text("greeting", greeting)?;
    }
    if let Some(language) = input.language {
        agent.language = valid_language(&language)?;
    }
    if let Some(timezone) = input.timezone {
        agent.timezone = valid_timezone(&timezone)?;
    }
    if let Some(calendar) = input.calendar {
        agent.calendar = calendar_config(&state, agent.id, calendar, Some(&agent.calendar))?;
    }
    match input.voice {
        Some(Some(voice)) => agent.voice = Some(valid_voice(&state, voice).await?),
        Some(None) => agent.voice = None,
        None => {}
    }
    agent.updated_at = crate::storage::now();
    if !state.store.update_agent(&agent).await.map_err(name_conflict)? {
        return Err(ApiError::NotFound("agent"));
    }
    crate::agent::funnel::agent_series(&agent.name, agent.calendar.kind.as_str());
    tracing::info!(agent_id = %agent.id, "agent updated");
    let numbers = state.store.list_numbers(Some(agent.id)).await?;
    Ok(Json(AgentView::new(agent, &numbers, state.calendars.has_global_calcom_key())))
}

/// Deletes an agent. Its bookings and calls stay (without the agent link).
#[utoipa::path(
    delete,
    path = "/v1/agents/{id}",
    tag = "agents",
    params(("id" = Uuid, Path, description = "Agent id"), DeleteQuery),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the agent still has numbers; use ?force=true", body = ErrorBody)
    )
)]
pub async fn delete_agent(
    _access: WriteAccess,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    match state.store.delete_agent(id, query.force).await? {
        AgentDeletion::Deleted => {
            tracing::info!(agent_id = %id, force = query.force, "agent deleted");
            state.routing_changed.notify_one();
            Ok(StatusCode::NO_CONTENT)
        }
        AgentDeletion::NotFound => Err(ApiError::NotFound("agent")),
        AgentDeletion::HasNumbers(n) => Err(ApiError::Conflict {
            message: format!("agent still has {n} phone number(s); delete them or use ?force=true"),
            field: None,
        }),
    }
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound("agent"))
}

async fn load(state: &AppState, id: &str) -> Result<AgentRecord, ApiError> {
    state.store.get_agent(parse_id(id)?).await?.ok_or(ApiError::NotFound("agent"))
}

fn name_conflict(error: crate::storage::StoreError) -> ApiError {
    match error {
        crate::storage::StoreError::Conflict { .. } => {
            ApiError::Conflict { message: "an agent with this name already exists".into(), field: Some("name".into()) }
        }
        other => other.into(),
    }
}

/// The greeting of an agent created without one.
pub fn default_greeting(name: &str) -> String {
    format!("Hello, thanks for calling {name}. I can book, change or cancel an appointment for you. How can I help?")
}

fn valid_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::validation("name", format!("must be 1 to {MAX_NAME} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::validation("name", "must not contain control characters"));
    }
    Ok(name.to_string())
}

fn valid_text(field: &'static str, text: String) -> Result<String, ApiError> {
    if text.chars().count() > MAX_TEXT {
        return Err(ApiError::validation(field, format!("must be at most {MAX_TEXT} characters")));
    }
    Ok(text)
}

/// A BCP 47 tag's shape: 2–3 letter language, optional subtags of 2–8 alphanumerics.
fn valid_language(tag: &str) -> Result<String, ApiError> {
    let mut parts = tag.split('-');
    let language_ok =
        parts.next().is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    let rest_ok = parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if language_ok && rest_ok {
        Ok(tag.to_string())
    } else {
        Err(ApiError::validation("language", format!("`{tag}` is not a BCP 47 language tag such as `en` or `en-US`")))
    }
}

/// Validates an IANA time zone name with chrono-tz.
pub fn valid_timezone(name: &str) -> Result<String, ApiError> {
    name.parse::<chrono_tz::Tz>().map(|tz| tz.name().to_string()).map_err(|_| {
        ApiError::validation("timezone", format!("`{name}` is not an IANA time zone such as `America/New_York`"))
    })
}

/// A voice this gateway can speak with, as stored.
async fn valid_voice(state: &AppState, voice: AgentVoice) -> Result<String, ApiError> {
    let voice = voice.normalised().map_err(|(field, message)| ApiError::validation(field, message))?;
    if let Some((field, message)) = state.voices.unavailable(&voice).await {
        return Err(ApiError::validation(field, message));
    }
    Ok(voice.to_stored())
}

fn calendar_config(
    state: &AppState,
    agent_id: Uuid,
    input: CalendarInput,
    existing: Option<&CalendarConfig>,
) -> Result<CalendarConfig, ApiError> {
    let slot_minutes = input.slot_minutes.unwrap_or(DEFAULT_SLOT_MINUTES);
    if !(5..=480).contains(&slot_minutes) {
        return Err(ApiError::validation("calendar.slot_minutes", "must be between 5 and 480"));
    }
    match input.kind {
        CalendarKind::Calcom => calcom_config(state, agent_id, input, existing, slot_minutes),
        _ => local_config(input, slot_minutes),
    }
}

/// A text field that may be left out but not given empty; trimmed.
fn optional_text(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_string()) {
        Some(v) if v.is_empty() => Err(ApiError::validation(field, "must not be empty")),
        other => Ok(other),
    }
}

/// A Cal.com calendar: the key sealed (or kept, or the global one), the slug checked, the event type id
/// and webhook secret kept from `existing` while they still apply.
fn calcom_config(
    state: &AppState,
    agent_id: Uuid,
    input: CalendarInput,
    existing: Option<&CalendarConfig>,
    slot_minutes: i32,
) -> Result<CalendarConfig, ApiError> {
    let key: &MasterKey = &state.master_key;
    let api_key = optional_text("calendar.api_key", input.api_key)?;
    let slug = optional_text("calendar.event_type_slug", input.event_type_slug)?;
    let username = optional_text("calendar.username", input.username)?;
    let previous = existing.filter(|c| c.kind == CalendarKind::Calcom);
    let sealed = match (api_key, input.use_global_key) {
        (Some(_), true) => {
            return Err(ApiError::validation(
                "calendar.use_global_key",
                "give either api_key or use_global_key, not both",
            ))
        }
        (Some(api_key), false) => Some(seal_api_key(key, agent_id, &api_key)?),
        (None, true) => None,
        (None, false) => previous.and_then(|c| c.calcom_api_key.clone()),
    };
    if sealed.is_none() && !state.calendars.has_global_calcom_key() {
        return Err(ApiError::validation(
            "calendar.api_key",
            "required when kind is calcom (no global key, calcom.api_key, is configured)",
        ));
    }
    let Some(slug) = slug else {
        return Err(ApiError::validation("calendar.event_type_slug", "required when kind is calcom"));
    };
    if !slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ApiError::validation("calendar.event_type_slug", "use letters, digits, - and _ only"));
    }
    // The event type id is learned again when the slug or length changes.
    let event_type_id = previous
        .filter(|c| c.event_type_slug.as_deref() == Some(slug.as_str()) && c.slot_minutes == slot_minutes)
        .and_then(|c| c.event_type_id);
    if input.rules.is_some() {
        return Err(ApiError::validation("calendar.rules", "only applies when kind is builtin"));
    }
    let calcom_webhook_secret = match optional_text("calendar.webhook_secret", input.webhook_secret)? {
        Some(secret) => Some(
            key.seal(&calcom_webhook_context(agent_id), secret.as_bytes()).map_err(|e| ApiError::Internal(e.into()))?,
        ),
        None => previous.and_then(|c| c.calcom_webhook_secret.clone()),
    };
    Ok(CalendarConfig {
        kind: CalendarKind::Calcom,
        calcom_api_key: sealed,
        event_type_slug: Some(slug),
        event_type_id,
        username,
        slot_minutes,
        rules: None,
        calcom_webhook_secret,
    })
}

/// A demo or built-in calendar: no Cal.com field may be given; the built-in rules are checked and stored.
fn local_config(input: CalendarInput, slot_minutes: i32) -> Result<CalendarConfig, ApiError> {
    let kind = input.kind;
    let api_key = optional_text("calendar.api_key", input.api_key)?;
    let slug = optional_text("calendar.event_type_slug", input.event_type_slug)?;
    let username = optional_text("calendar.username", input.username)?;
    for (field, given) in [
        ("calendar.api_key", api_key.is_some()),
        ("calendar.event_type_slug", slug.is_some()),
        ("calendar.username", username.is_some()),
        ("calendar.webhook_secret", input.webhook_secret.is_some()),
        ("calendar.use_global_key", input.use_global_key),
    ] {
        if given {
            return Err(ApiError::validation(field, "only applies when kind is calcom"));
        }
    }
    if kind == CalendarKind::Demo && slot_minutes != DEFAULT_SLOT_MINUTES {
        return Err(ApiError::validation("calendar.slot_minutes", "the demo calendar has 30-minute slots"));
    }
    let rules = match (kind, input.rules) {
        (CalendarKind::Builtin, rules) => {
            let rules = rules.unwrap_or_default();
            rules
                .validate(slot_minutes.unsigned_abs())
                .map_err(|(field, message)| ApiError::validation(format!("calendar.rules.{field}"), message))?;
            Some(rules.to_stored().map_err(|e| ApiError::Internal(e.into()))?)
        }
        (_, Some(_)) => return Err(ApiError::validation("calendar.rules", "only applies when kind is builtin")),
        (_, None) => None,
    };
    Ok(CalendarConfig {
        kind,
        calcom_api_key: None,
        event_type_slug: None,
        event_type_id: None,
        username: None,
        slot_minutes,
        rules,
        calcom_webhook_secret: None,
    })
}

fn seal_api_key(key: &MasterKey, agent_id: Uuid, api_key: &str) -> Result<SealedSecret, ApiError> {
    if !(8..=MAX_API_KEY).contains(&api_key.len()) || api_key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::validation("calendar.api_key", "is not a Cal.com API key"));
    }
    let chars: Vec<char> = api_key.chars().collect();
    let hint: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    let sealed =
        key.seal(&calcom_key_context(agent_id), api_key.as_bytes()).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(SealedSecret { sealed, hint })
}
