//! Persistence: the [`Store`] trait and its records, implemented for SQLite (the embedded default) and
//! PostgreSQL (several instances sharing one database).
//!
//! - `sql.rs` holds the SQL both backends share (one text, `$n` placeholders work on both);
//! - `sqlite.rs` / `postgres.rs` add what differs (pool options, migrations, locking);
//! - `crypto.rs` seals secrets before they are stored.
//!
//! Migrations live in `migrations/sqlite/` and `migrations/postgres/` with the same numbering and are
//! embedded in the binary.

pub mod crypto;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Storage failures, separated so the API can map them to status codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (`what` names the constraint's subject).
    #[error("{what} already exists")]
    Conflict {
        /// e.g. `agent name`.
        what: &'static str,
    },
    /// Another confirmed booking of the agent overlaps this one (exclusion constraint / trigger).
    #[error("the time overlaps another booking")]
    SlotTaken,
    /// A referenced row does not exist.
    #[error("{what} does not exist")]
    MissingReference {
        /// e.g. `agent`.
        what: &'static str,
    },
    /// A stored value cannot be read back (a bug or a hand-edited database).
    #[error("corrupt {column} in the database: {detail}")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// What failed to parse.
        detail: String,
    },
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A sealed secret plus the last characters an operator may see to recognise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// `crypto::MasterKey::seal` output.
    pub sealed: Vec<u8>,
    /// Last 4 characters of the plaintext.
    pub hint: String,
}

/// Which calendar an agent books into (`agents.calendar_kind`); [`crate::calendar`] builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CalendarKind {
    /// Cal.com API v2 with the agent's own API key.
    Calcom,
    /// slotline's own calendar in its database.
    Builtin,
    /// Reproducible random availability, 30-minute slots 09:00–18:00 on weekdays.
    Demo,
}

impl CalendarKind {
    /// The name stored in the database and used in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Calcom => "calcom",
            Self::Builtin => "builtin",
            Self::Demo => "demo",
        }
    }
}

impl std::str::FromStr for CalendarKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "calcom" => Ok(Self::Calcom),
            "builtin" => Ok(Self::Builtin),
            "demo" => Ok(Self::Demo),
            other => Err(format!("unknown calendar kind `{other}`")),
        }
    }
}

/// An agent's calendar settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarConfig {
    /// Which calendar.
    pub kind: CalendarKind,
    /// Cal.com API key, sealed.
    pub calcom_api_key: Option<SealedSecret>,
    /// Cal.com event type slug (created when missing).
    pub event_type_slug: Option<String>,
    /// Cal.com event type id, learned at initialisation.
    pub event_type_id: Option<i64>,
    /// Cal.com username, learned from `GET /v2/me` or configured.
    pub username: Option<String>,
    /// Length of one appointment.
    pub slot_minutes: i32,
    /// Rules of the built-in calendar (working hours, blocks, buffers, notice, horizon) as the JSON text
    /// stored in `agents.calendar_rules`; `calendar::builtin::Rules` writes and reads it.
    pub rules: Option<String>,
    /// Secret that signs this agent's Cal.com webhooks, sealed.
    pub calcom_webhook_secret: Option<Vec<u8>>,
}

/// One voice agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// Stable id.
    pub id: Uuid,
    /// Unique display name (dialplans refer to agents by name).
    pub name: String,
    /// Free text for admins.
    pub description: String,
    /// Instructions for the dialog engine.
    pub prompt: String,
    /// First sentence spoken on answer.
    pub greeting: String,
    /// BCP 47 language tag.
    pub language: String,
    /// IANA time zone the agent speaks and books in.
    pub timezone: String,
    /// The calendar.
    pub calendar: CalendarConfig,
    /// The agent's own voice as JSON text (`speech::tts::voices::AgentVoice`); `None`: the default voice.
    pub voice: Option<String>,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An exact phone number routed to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumberRecord {
    /// E.164 number.
    pub e164: String,
    /// The agent answering it.
    pub agent_id: Uuid,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A number prefix (`+1555020…`) routed to an agent when no exact number matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPrefixRecord {
    /// `+` and 1–15 digits.
    pub prefix: String,
    /// The agent answering numbers under it.
    pub agent_id: Uuid,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Read and write.
    Admin,
    /// Read only.
    Analyst,
}

impl TokenScope {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Analyst => "analyst",
        }
    }
}

/// An API token; only its SHA-256 hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    /// Stable id.
    pub id: Uuid,
    /// Who or what it is for.
    pub name: String,
    /// Permissions.
    pub scope: TokenScope,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// From this instant on the token is refused; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl ApiTokenRecord {
    /// Whether the token is past its expiry at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }
}

/// A booking as slotline recorded it, whatever the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BookingRecord {
    /// slotline's id.
    pub id: Uuid,
    /// The agent (absent once the agent is deleted).
    pub agent_id: Option<Uuid>,
    /// Calendar that holds it.
    pub calendar_kind: String,
    /// The calendar's own id (Cal.com uid).
    pub external_uid: Option<String>,
    /// Start, UTC.
    pub start_at: DateTime<Utc>,
    /// End, UTC.
    pub end_at: DateTime<Utc>,
    /// Attendee name.
    pub attendee_name: String,
    /// Attendee email.
    pub attendee_email: Option<String>,
    /// Attendee phone, E.164.
    pub attendee_phone: Option<String>,
    /// Notes given when booking.
    pub notes: Option<String>,
    /// `confirmed`, `cancelled` or `rescheduled`.
    pub status: String,
    /// The call or chat that made it.
    pub source_call_id: Option<String>,
    /// Client-chosen key that makes retries safe.
    pub idempotency_key: Option<String>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// The booking this one replaced (reschedule).
    pub rescheduled_from: Option<Uuid>,
    /// Creation instant.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The time a booking keeps the calendar busy: its own time widened by the calendar's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyRange {
    /// Busy from (start minus the buffer before).
    pub from: DateTime<Utc>,
    /// Busy until (end plus the buffer after).
    pub until: DateTime<Utc>,
}

/// One call (SIP or LiveKit) as slotline handled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CallRecord {
    /// slotline's id.
    pub id: Uuid,
    /// SIP Call-ID (or LiveKit room name).
    pub sip_call_id: String,
    /// The agent that answered (absent when routing failed or the agent was deleted).
    pub agent_id: Option<Uuid>,
    /// Dialed number (E.164 when it normalised, raw otherwise).
    pub dialed: String,
    /// Caller id.
    pub caller: String,
    /// `udp`, `tcp` or `livekit`.
    pub transport: String,
    /// INVITE received.
    pub started_at: DateTime<Utc>,
    /// 200 OK sent.
    pub answered_at: Option<DateTime<Utc>>,
    /// Call over.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it ended (`caller_bye`, `agent_bye`, `media_timeout`, ...).
    pub end_reason: Option<String>,
    /// Final SIP status sent for the INVITE.
    pub sip_status: Option<i32>,
    /// The LiveKit room, for calls that came through LiveKit.
    pub room: Option<String>,
    /// The LiveKit room's sid (unique per room instance).
    pub room_sid: Option<String>,
}

/// One line of a call's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TranscriptLine {
    /// The `calls` row.
    pub call_id: Uuid,
    /// Order within the call, from 0.
    pub seq: i64,
    /// `caller` or `agent`.
    pub speaker: String,
    /// What was said (the caller's side as transcribed).
    pub text: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Filters of the list endpoints.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only this agent.
    pub agent_id: Option<Uuid>,
    /// Starting at or after.
    pub from: Option<DateTime<Utc>>,
    /// Starting before.
    pub to: Option<DateTime<Utc>>,
    /// At most this many (newest first for calls, soonest first for bookings).
    pub limit: i64,
}

/// Outcome of deleting an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentDeletion {
    /// Gone (with its numbers when forced).
    Deleted,
    /// No such agent.
    NotFound,
    /// The agent still has this many numbers and deletion was not forced.
    HasNumbers(i64),
}

/// Everything slotline persists. One conformance suite (`tests/it/store.rs`) runs against every backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is.
    fn backend(&self) -> Backend;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts an agent; a duplicate name is a [`StoreError::Conflict`].
    async fn insert_agent(&self, agent: &AgentRecord) -> Result<(), StoreError>;
    /// Replaces an agent's fields; `false` when it does not exist.
    async fn update_agent(&self, agent: &AgentRecord) -> Result<bool, StoreError>;
    /// One agent.
    async fn get_agent(&self, id: Uuid) -> Result<Option<AgentRecord>, StoreError>;
    /// One agent by its unique name.
    async fn find_agent_by_name(&self, name: &str) -> Result<Option<AgentRecord>, StoreError>;
    /// All agents by name.
    async fn list_agents(&self) -> Result<Vec<AgentRecord>, StoreError>;
    /// Deletes an agent; with numbers it needs `force`, which deletes them too.
    async fn delete_agent(&self, id: Uuid, force: bool) -> Result<AgentDeletion, StoreError>;

    /// Maps a number to an agent; `true` when the number is new.
    async fn put_number(&self, e164: &str, agent_id: Uuid) -> Result<(PhoneNumberRecord, bool), StoreError>;
    /// One number.
    async fn get_number(&self, e164: &str) -> Result<Option<PhoneNumberRecord>, StoreError>;
    /// Numbers, optionally of one agent.
    async fn list_numbers(&self, agent_id: Option<Uuid>) -> Result<Vec<PhoneNumberRecord>, StoreError>;
    /// Removes a number; `false` when it was not there.
    async fn delete_number(&self, e164: &str) -> Result<bool, StoreError>;
    /// Maps a prefix to an agent (insert or replace).
    async fn put_prefix(&self, prefix: &str, agent_id: Uuid) -> Result<(), StoreError>;
    /// All prefixes.
    async fn list_prefixes(&self) -> Result<Vec<NumberPrefixRecord>, StoreError>;
    /// The agent for a dialed number: the exact number first, then the longest matching prefix.
    async fn route_number(&self, e164: &str) -> Result<Option<Uuid>, StoreError>;

    /// Stores a new API token.
    async fn insert_token(&self, token: &ApiTokenRecord) -> Result<(), StoreError>;
    /// The token with this hash.
    async fn find_token(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>, StoreError>;
    /// Number of tokens.
    async fn count_tokens(&self) -> Result<i64, StoreError>;
    /// Every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<ApiTokenRecord>, StoreError>;
    /// Deletes a token; `false` when there was none with this id. A deleted token is refused from the next
    /// request on (every request looks its token up).
    async fn delete_token(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Bookings matching the filter, soonest first.
    async fn list_bookings(&self, filter: &RecordFilter) -> Result<Vec<BookingRecord>, StoreError>;
    /// Records a booking. For the builtin and demo calendars an overlapping confirmed booking of the same
    /// agent makes this fail with [`StoreError::SlotTaken`], atomically.
    async fn insert_booking(&self, booking: &BookingRecord, busy: BusyRange) -> Result<(), StoreError>;
    /// One booking.
    async fn get_booking(&self, id: Uuid) -> Result<Option<BookingRecord>, StoreError>;
    /// The booking an agent made under an idempotency key.
    async fn find_booking_by_key(&self, agent_id: Uuid, key: &str) -> Result<Option<BookingRecord>, StoreError>;
    /// The booking mirrored from a calendar's own id (Cal.com uid).
    async fn find_booking_by_external_uid(
        &self,
        agent_id: Uuid,
        uid: &str,
    ) -> Result<Option<BookingRecord>, StoreError>;
    /// Confirmed bookings of an agent whose busy range intersects `[from, to)`.
    async fn busy_ranges(
        &self,
        agent_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<BusyRange>, StoreError>;
    /// Confirmed bookings of an agent for an email and/or phone, starting at or after `from`, soonest first.
    async fn find_bookings_by_attendee(
        &self,
        agent_id: Uuid,
        email: Option<&str>,
        phone: Option<&str>,
        from: DateTime<Utc>,
    ) -> Result<Vec<BookingRecord>, StoreError>;
    /// Moves a *confirmed* booking to `status` (`cancelled`), with an optional reason; `None` when the
    /// booking does not exist or is no longer confirmed.
    async fn close_booking(
        &self,
        id: Uuid,
        status: &str,
        reason: Option<&str>,
    ) -> Result<Option<BookingRecord>, StoreError>;
    /// Atomically marks `old` as `rescheduled` and records `new` (whose `rescheduled_from` is `old`):
    /// `Ok(false)` when `old` is no longer confirmed, [`StoreError::SlotTaken`] when `new` overlaps.
    async fn reschedule_booking(&self, old: Uuid, new: &BookingRecord, busy: BusyRange) -> Result<bool, StoreError>;
    /// Updates a mirrored booking's status and times (Cal.com webhooks).
    async fn update_mirror_booking(&self, booking: &BookingRecord) -> Result<(), StoreError>;
    /// Stores an agent's Cal.com identifiers learned at initialisation (username, event type id).
    async fn set_calcom_ids(&self, agent_id: Uuid, username: &str, event_type_id: i64) -> Result<(), StoreError>;
    /// Records a call as it starts.
    async fn insert_call(&self, call: &CallRecord) -> Result<(), StoreError>;
    /// Updates a call's answer/end fields and final status.
    async fn update_call(&self, call: &CallRecord) -> Result<(), StoreError>;
    /// Calls matching the filter, newest first.
    async fn list_calls(&self, filter: &RecordFilter) -> Result<Vec<CallRecord>, StoreError>;
    /// One call.
    async fn get_call(&self, id: Uuid) -> Result<Option<CallRecord>, StoreError>;
    /// Records a LiveKit call unless its room (`room_sid`) already has one; returns the room's row.
    async fn insert_room_call(&self, call: &CallRecord) -> Result<CallRecord, StoreError>;
    /// The call of a LiveKit room instance.
    async fn find_room_call(&self, room_sid: &str) -> Result<Option<CallRecord>, StoreError>;
    /// Appends a transcript line.
    async fn insert_transcript_line(&self, line: &TranscriptLine) -> Result<(), StoreError>;
    /// A call's transcript in order.
    async fn list_transcript(&self, call_id: Uuid) -> Result<Vec<TranscriptLine>, StoreError>;
    /// Deletes transcript lines older than `before`; returns how many.
    async fn purge_transcripts(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Opens the database named by `url` (`sqlite:` or `postgres://`), creating a SQLite file when missing.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else {
        Ok(Arc::new(PostgresStore::connect(url, max_connections).await?))
    }
}

/// The current instant at the precision every backend stores (microseconds), so a record reads back equal.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound as _;
    Utc::now().trunc_subsecs(6)
}

fn map_unique(error: sqlx::Error, what: &'static str) -> StoreError {
    match &error {
        // PostgreSQL exclusion_violation; SQLite trigger RAISE(ABORT, 'slot_taken').
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23P01") || db.message().contains("slot_taken") => {
            StoreError::SlotTaken
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { what },
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::MissingReference { what: "agent" },
        _ => StoreError::Database(error),
    }
}

fn parse_uuid(column: &'static str, text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt { column, detail: e.to_string() })
}

fn parse_kind(text: &str) -> Result<CalendarKind, StoreError> {
    text.parse().map_err(|detail| StoreError::Corrupt { column: "calendar_kind", detail })
}

/// Stored calendar rules, checked to be JSON (what they mean is the calendar's business).
fn rules_text(text: String) -> Result<String, StoreError> {
    serde_json::from_str::<serde::de::IgnoredAny>(&text)
        .map_err(|e| StoreError::Corrupt { column: "agents.calendar_rules", detail: e.to_string() })?;
    Ok(text)
}

fn parse_scope(text: &str) -> Result<TokenScope, StoreError> {
    match text {
        "admin" => Ok(TokenScope::Admin),
        "analyst" => Ok(TokenScope::Analyst),
        other => Err(StoreError::Corrupt { column: "scope", detail: other.to_string() }),
    }
}
