//! The dialog corpus: every `tests/fixtures/dialogs/*.toml` is a scripted conversation with the rules
//! engine on a real calendar (demo or built-in) in a fresh SQLite database, with a pinned clock. Each
//! caller turn asserts phrases of the agent's answer; the end asserts the calendar's bookings (local start
//! in the agent's zone, status, attendee), the conversation outcome and whether the agent hung up.
//!
//! A fixture:
//! ```toml
//! title = "what it proves"
//! calendar = "builtin"            # builtin | demo | none (an agent without a usable calendar)
//! timezone = "America/New_York"
//! now = "2026-12-01T14:00:00Z"    # the pinned clock, UTC
//! caller = "+15551234567"         # optional caller id
//! slot_minutes = 30               # builtin only (default 30)
//! [rules]                         # builtin only: calendar::builtin::Rules
//! [[existing]]                    # bookings made before the call (local start)
//! start = "2026-12-02T10:00"
//! [[turn]]
//! caller = "I'd like to book"     # or dtmf = "1"; an empty caller line is silence
//! agent = ["phrase", "..."]       # case-insensitive substrings of the reply
//! not = ["..."]                   # must not appear
//! taken = "2026-12-02T10:00"      # someone else books this local start just before the turn
//! [expect]
//! outcome = "booked"
//! hangup = true
//! [[expect.bookings]]
//! start = "2026-12-02T10:00"      # local
//! status = "confirmed"
//! name = "Jane Doe"
//! email = "jane@example.com"
//! phone = "+15551234567"
//! ```

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use slotline::agent::chat;
use slotline::agent::dialog::{AgentTurn, UserTurn};
use slotline::calendar::builtin::Rules;
use slotline::calendar::{Attendee, BookingRequest, CalendarKind, CalendarRegistry, FixedClock, SlotId};
use slotline::config::Config;
use slotline::storage::crypto::MasterKey;
use slotline::storage::{self, AgentRecord, CalendarConfig, RecordFilter, SealedSecret};
use uuid::Uuid;

use crate::helpers::{Db, TestDb};

/// Every fixture uses this agent id, so the demo calendar's availability is the same on every run.
const AGENT_ID: Uuid = Uuid::from_u128(0x5107_0000_0000_0000_0000_0000_0000_0001);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    title: String,
    calendar: String,
    timezone: String,
    now: DateTime<Utc>,
    caller: Option<String>,
    slot_minutes: Option<i32>,
    greeting: Option<String>,
    rules: Option<Rules>,
    #[serde(default)]
    existing: Vec<Existing>,
    #[serde(rename = "turn")]
    turns: Vec<Turn>,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Existing {
    #[serde(deserialize_with = "local_time")]
    start: NaiveDateTime,
    #[serde(default = "someone")]
    name: String,
    email: Option<String>,
    phone: Option<String>,
}

/// `2026-12-02T10:00` (or with seconds), a wall-clock time in the agent's zone.
fn local_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
    let text = String::deserialize(d)?;
    NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}")))
}

fn optional_local_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
    local_time(d).map(Some)
}

fn someone() -> String {
    "Someone Else".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    #[serde(default)]
    caller: String,
    #[serde(default)]
    dtmf: String,
    #[serde(default)]
    agent: Vec<String>,
    #[serde(default)]
    not: Vec<String>,
    #[serde(default, deserialize_with = "optional_local_time")]
    taken: Option<NaiveDateTime>,
    greeting: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    outcome: String,
    hangup: bool,
    #[serde(default)]
    bookings: Vec<ExpectBooking>,
    #[serde(default)]
    greeting: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectBooking {
    #[serde(deserialize_with = "local_time")]
    start: NaiveDateTime,
    status: String,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    /// Made before the conversation (listed in `[[existing]]`), so not carrying the chat's id.
    #[serde(default)]
    existing: bool,
}

fn local(tz: Tz, at: NaiveDateTime) -> DateTime<Utc> {
    tz.from_local_datetime(&at).earliest().expect("a local time that exists").with_timezone(&Utc)
}

/// Runs one fixture; returns the transcript, or the transcript with the first failure.
async fn run(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    let fixture: Fixture = toml::from_str(&text).map_err(|e| format!("fixture: {e}"))?;
    let tz: Tz = fixture.timezone.parse().map_err(|_| "timezone".to_string())?;
    let db = TestDb::new(Db::Sqlite).await;
    let store = db.store().await;
    let (kind, api_key) = match fixture.calendar.as_str() {
        "demo" => (CalendarKind::Demo, None),
        "builtin" => (CalendarKind::Builtin, None),
        // A Cal.com agent whose key is missing: no usable calendar.
        "none" => (CalendarKind::Calcom, None::<SealedSecret>),
        other => return Err(format!("unknown calendar `{other}`")),
    };
    let now = storage::now();
    let agent = AgentRecord {
        id: AGENT_ID,
        name: "Corpus Agent".into(),
        description: String::new(),
        prompt: slotline::api::DEFAULT_PROMPT.into(),
        greeting: fixture.greeting.clone().unwrap_or_else(|| slotline::api::default_greeting("Corpus Dental")),
        language: "en".into(),
        timezone: fixture.timezone.clone(),
        calendar: CalendarConfig {
            kind,
            calcom_api_key: api_key,
            event_type_slug: None,
            event_type_id: None,
            username: None,
            slot_minutes: if kind == CalendarKind::Demo { 30 } else { fixture.slot_minutes.unwrap_or(30) },
            rules: fixture.rules.clone(),
            calcom_webhook_secret: None,
        },
        created_at: now,
        updated_at: now,
    };
    store.insert_agent(&agent).await.map_err(|e| format!("agent: {e}"))?;
    let (master_key, _) = MasterKey::load(None, db.data_dir()).map_err(|e| format!("key: {e}"))?;
    let config = Config::default();
    let registry =
        CalendarRegistry::new(store.clone(), Arc::new(master_key), Arc::new(FixedClock(fixture.now)), &config.calcom);
    let minutes = u16::try_from(agent.calendar.slot_minutes).unwrap_or(30);
    let book_elsewhere = |at: NaiveDateTime, name: String, email: Option<String>, phone: Option<String>| {
        let calendar = registry.calendar(&agent).map_err(|e| format!("calendar: {e}"));
        async move {
            let request = BookingRequest {
                slot_id: SlotId::new(AGENT_ID, local(tz, at), minutes),
                attendee: Attendee::new(&name, email.as_deref(), phone.as_deref()).map_err(|e| e.to_string())?,
                notes: None,
                idempotency_key: None,
                source_call_id: None,
            };
            calendar?.schedule(request).await.map(|_| ()).map_err(|e| format!("booking {at} beforehand: {e}"))
        }
    };
    for e in &fixture.existing {
        let email = e.email.clone().or_else(|| e.phone.is_none().then(|| "someone@example.com".to_string()));
        book_elsewhere(e.start, e.name.clone(), email, e.phone.clone()).await?;
    }
    let (mut conversation, mut interim) =
        chat::conversation(&config.dialog, &registry, agent.clone(), fixture.caller.clone());
    let mut transcript = format!("== {} ({})\n", fixture.title, path.display());
    let greeting = conversation.greet().await;
    transcript.push_str(&format!("agent: {}\n", greeting.say));
    let fail = |transcript: &str, why: String| Err(format!("{transcript}!! {why}"));
    for phrase in &fixture.expect.greeting {
        if !greeting.say.to_lowercase().contains(&phrase.to_lowercase()) {
            return fail(&transcript, format!("greeting lacks `{phrase}`"));
        }
    }
    let mut last = AgentTurn::default();
    for turn in &fixture.turns {
        if turn.greeting.is_some() {
            return fail(&transcript, "`greeting` belongs in [expect]".into());
        }
        if let Some(at) = turn.taken {
            book_elsewhere(at, someone(), Some("other@example.com".into()), None).await?;
            transcript.push_str(&format!("   (someone else books {at})\n"));
        }
        let user = UserTurn { text: turn.caller.clone(), dtmf: turn.dtmf.clone() };
        transcript.push_str(&format!(
            "caller: {}{}\n",
            turn.caller,
            if turn.dtmf.is_empty() { String::new() } else { format!(" [dtmf {}]", turn.dtmf) }
        ));
        last = conversation.turn(user).await;
        while let Ok(sentence) = interim.try_recv() {
            transcript.push_str(&format!("agent (interim): {sentence}\n"));
        }
        for call in &last.tool_calls {
            transcript.push_str(&format!("   # {} -> {}\n", call.call.display(), call.outcome));
        }
        transcript.push_str(&format!("agent: {}\n", last.say));
        let say = last.say.to_lowercase();
        for phrase in &turn.agent {
            if !say.contains(&phrase.to_lowercase()) {
                return fail(&transcript, format!("the agent did not say `{phrase}`"));
            }
        }
        for phrase in &turn.not {
            if say.contains(&phrase.to_lowercase()) {
                return fail(&transcript, format!("the agent said `{phrase}`"));
            }
        }
        if last.end_call {
            break;
        }
    }
    if last.end_call != fixture.expect.hangup {
        return fail(&transcript, format!("hangup: expected {}, got {}", fixture.expect.hangup, last.end_call));
    }
    let outcome = conversation.finish();
    if outcome.as_str() != fixture.expect.outcome {
        return fail(&transcript, format!("outcome: expected {}, got {}", fixture.expect.outcome, outcome.as_str()));
    }
    let filter = RecordFilter { agent_id: Some(AGENT_ID), limit: 100, ..RecordFilter::default() };
    let bookings = store.list_bookings(&filter).await.map_err(|e| e.to_string())?;
    let ours: Vec<_> = bookings.iter().filter(|b| b.attendee_name != someone()).collect();
    let shown: Vec<String> = ours
        .iter()
        .map(|b| {
            format!(
                "{} {} {} {:?} {:?}",
                b.start_at.with_timezone(&tz).naive_local(),
                b.status,
                b.attendee_name,
                b.attendee_email,
                b.attendee_phone
            )
        })
        .collect();
    if ours.len() != fixture.expect.bookings.len() {
        return fail(&transcript, format!("bookings: expected {}, got {shown:?}", fixture.expect.bookings.len()));
    }
    for want in &fixture.expect.bookings {
        let found = ours.iter().any(|b| {
            b.start_at == local(tz, want.start)
                && b.status == want.status
                && want.name.as_ref().is_none_or(|n| &b.attendee_name == n)
                && want.email.as_ref().is_none_or(|e| b.attendee_email.as_ref() == Some(e))
                && want.phone.as_ref().is_none_or(|p| b.attendee_phone.as_ref() == Some(p))
                && (want.existing || b.source_call_id.as_deref().is_some_and(|id| id.starts_with("chat-")))
        });
        if !found {
            return fail(&transcript, format!("no booking like {want:?} among {shown:?}"));
        }
    }
    Ok(transcript)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dialog_corpus_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dialogs");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/dialogs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    // DIALOG=<part of a file name> runs only the matching fixtures and prints their transcripts.
    let only = std::env::var("DIALOG").ok();
    assert!(only.is_some() || paths.len() >= 40, "the corpus has at least 40 conversations, found {}", paths.len());
    let mut failures = Vec::new();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for path in &paths {
        if only.as_ref().is_some_and(|o| !path.to_string_lossy().contains(o.as_str())) {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(kind) = text.lines().find_map(|l| l.strip_prefix("calendar = ")) {
            *kinds.entry(kind.trim_matches('"').to_string()).or_default() += 1;
        }
        match run(path).await {
            Ok(transcript) => {
                if only.is_some() {
                    println!("{transcript}");
                }
            }
            Err(report) => failures.push(format!("{}:\n{report}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{} of {} dialogs failed:\n\n{}", failures.len(), paths.len(), failures.join("\n\n"));
    if only.is_none() {
        assert!(kinds.get("demo").is_some_and(|n| *n >= 5), "demo calendar conversations: {kinds:?}");
        assert!(kinds.get("builtin").is_some_and(|n| *n >= 5), "built-in calendar conversations: {kinds:?}");
    }
}
