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
//! continues = true                # the whole of the turn before, which went on after an early end
//! unsure = ["Garsha"]             # words the recogniser was unsure of (passed on the UserTurn)
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
pub(crate) struct Fixture {
    pub(crate) title: String,
    /// The spoken corpus's kind of conversation (booking, cancel, …).
    pub(crate) category: Option<String>,
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
    pub(crate) turns: Vec<Turn>,
    /// What the caller says to put a wrong read-back right (spoken corpus).
    pub(crate) repair: Option<Repair>,
    pub(crate) expect: Expect,
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
pub(crate) struct Turn {
    #[serde(default)]
    pub(crate) caller: String,
    /// What the caller says instead when the agent asks again after this turn (spoken corpus).
    pub(crate) retry: Option<String>,
    /// The whole turn again, heard after the caller went on speaking right after an early end of the
    /// turn before: the engine answers it instead of that turn.
    #[serde(default)]
    continues: bool,
    #[serde(default)]
    dtmf: String,
    #[serde(default)]
    agent: Vec<String>,
    #[serde(default)]
    not: Vec<String>,
    #[serde(default, deserialize_with = "optional_local_time")]
    taken: Option<NaiveDateTime>,
    greeting: Option<Vec<String>>,
    /// Words of `caller` the recogniser was unsure of (its token probabilities), as written in the line.
    #[serde(default)]
    unsure: Vec<String>,
}

/// A caller's corrections of a read-back: after "No, that's not right." and "The name." / "The email.".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Repair {
    /// The name again, each word spelled after it ("Grace, G R A C E. Hopper, H O P P E R.").
    pub(crate) name: Option<String>,
    /// The email again, spelled ("g r a c e at example dot com").
    pub(crate) email: Option<String>,
}

/// What the caller says to name the part of a read-back to change.
pub(crate) const THE_NAME: &str = "The name.";
pub(crate) const THE_EMAIL: &str = "The email.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Expect {
    outcome: String,
    hangup: bool,
    #[serde(default)]
    pub(crate) bookings: Vec<ExpectBooking>,
    #[serde(default)]
    greeting: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpectBooking {
    #[serde(deserialize_with = "local_time")]
    pub(crate) start: NaiveDateTime,
    pub(crate) status: String,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) phone: Option<String>,
    /// Made before the conversation (listed in `[[existing]]`), so not carrying the chat's id.
    #[serde(default)]
    pub(crate) existing: bool,
}

fn local(tz: Tz, at: NaiveDateTime) -> DateTime<Utc> {
    tz.from_local_datetime(&at).earliest().expect("a local time that exists").with_timezone(&Utc)
}

/// Reads a fixture file.
pub(crate) fn load(path: &Path) -> Result<Fixture, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    toml::from_str(&text).map_err(|e| format!("fixture: {e}"))
}

/// Runs one fixture as written; returns the transcript, or the transcript with the first failure.
async fn run(path: &Path) -> Result<String, String> {
    let fixture = load(path)?;
    let played = play(&fixture, path, None).await?;
    match played.failure {
        None => Ok(played.transcript),
        Some(why) => Err(format!("{}!! {why}", played.transcript)),
    }
}

/// How one conversation went.
pub(crate) struct Played {
    /// Both sides, with tool calls.
    pub(crate) transcript: String,
    /// The first expectation that did not hold (a phrase as written, the hang-up, the outcome, the
    /// bookings); `None` when the calendar ended as the caller asked.
    pub(crate) failure: Option<String>,
    /// Confirmed bookings the call made that no expectation describes: wrong day, time, name or contact.
    pub(crate) wrong: Vec<String>,
    /// Every success the agent announced was a tool call that succeeded, and its last reply said something.
    pub(crate) honest: bool,
    /// The agent's last words.
    pub(crate) last_say: String,
}

/// What a speech recogniser heard of each caller line: the spoken corpus's caller. It answers the agent
/// the way a caller on the phone does: says a turn's `retry` once when the agent asks again (spells its
/// email or name when asked to spell it), and answers a read-back that does not match what it asked for
/// with a "no" and hangs up, rather than with the script's yes.
pub(crate) trait Hearing {
    /// What the engine receives for `line`.
    fn heard(&self, line: &str) -> String;
    /// The words of what was heard of `line` that the recogniser was unsure of.
    fn unsure(&self, _line: &str) -> Vec<String> {
        Vec::new()
    }
}

/// The caller's lines when a read-back is wrong (rendered with the corpus).
pub(crate) const REFUSE: &str = "No, that's not right.";
pub(crate) const LEAVE: &str = "Never mind, goodbye.";

/// Success announcements and the tool whose success they need.
const CLAIMS: [(&str, &str); 4] = [
    ("you're all set", "schedule_appointment"),
    ("is booked for", "schedule_appointment"),
    ("has been cancelled", "cancel_appointment"),
    ("your appointment is now on", "reschedule_appointment"),
];

/// Plays `fixture` with the rules engine. `hearing` `None`: the lines as written, every phrase checked
/// (the first miss stops the play); otherwise what a recogniser heard, and only the calendar's end state
/// (and honesty) counts.
#[allow(
    clippy::too_many_lines,
    reason = "the fixture player: one loop over the fixture's lines with the checks each line asks for"
)]
pub(crate) async fn play(fixture: &Fixture, path: &Path, hearing: Option<&dyn Hearing>) -> Result<Played, String> {
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
            rules: fixture.rules.as_ref().map(|rules| rules.to_stored().expect("rules")),
            calcom_webhook_secret: None,
        },
        voice: None,
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
    let mut played =
        Played { transcript: String::new(), failure: None, wrong: Vec::new(), honest: true, last_say: String::new() };
    let strict = hearing.is_none();
    let fail = |transcript: &str, why: String| Played {
        transcript: transcript.to_string(),
        failure: Some(why),
        ..Played::empty()
    };
    for phrase in &fixture.expect.greeting {
        if !greeting.say.to_lowercase().contains(&phrase.to_lowercase()) {
            return Ok(fail(&transcript, format!("greeting lacks `{phrase}`")));
        }
    }
    let readback = Readback::of(fixture, tz);
    let mut last = AgentTurn::default();
    let mut lines: std::collections::VecDeque<(usize, String, String)> =
        fixture.turns.iter().enumerate().map(|(i, t)| (i, t.caller.clone(), t.dtmf.clone())).collect();
    let mut retried = vec![false; fixture.turns.len()];
    let mut repaired: Vec<&'static str> = Vec::new();
    let mut gave_email = false;
    while let Some((index, mut line, dtmf)) = lines.pop_front() {
        let turn = &fixture.turns[index];
        if turn.greeting.is_some() {
            return Ok(fail(&transcript, "`greeting` belongs in [expect]".into()));
        }
        if let Some(at) = turn.taken {
            book_elsewhere(at, someone(), Some("other@example.com".into()), None).await?;
            transcript.push_str(&format!("   (someone else books {at})\n"));
        }
        // A caller asked for their address gives it when their next words are not one (the address they
        // gave earlier was lost in the hearing), spelled as to correct a read-back, once.
        if !strict && !gave_email && asks_for_email(&last.say) && dtmf.is_empty() && !gives_contact(&line) {
            if let Some(email) = fixture.repair.as_ref().and_then(|r| r.email.clone()) {
                gave_email = true;
                lines.push_front((index, line.clone(), dtmf.clone()));
                line = email;
            }
        }
        // A caller who listens: a read-back that is not what they asked for gets a no; a wrong name or
        // email is spelled once, anything else makes them leave.
        if !strict && readback.is_asked(&last.say, &line, &dtmf) && !readback.matches(&last.say, fixture.now) {
            let repair = readback.repair(&last.say, fixture.now, fixture.repair.as_ref(), &mut repaired);
            let yes = (index, line.clone(), dtmf.clone());
            lines.clear();
            match repair {
                Some((part, again)) => {
                    lines.push_back((index, part.to_string(), String::new()));
                    lines.push_back((index, again, String::new()));
                    lines.push_back(yes);
                }
                None => lines.push_back((index, LEAVE.to_string(), String::new())),
            }
            line = REFUSE.to_string();
        }
        let (said, unsure) = match hearing {
            Some(h) if !line.trim().is_empty() => (h.heard(&line), h.unsure(&line)),
            // As written, the fixture's own doubts go with the turn's script line.
            _ if line == turn.caller => (line.clone(), turn.unsure.clone()),
            _ => (line.clone(), Vec::new()),
        };
        let user = UserTurn { dtmf: dtmf.clone(), ..UserTurn::text(said.clone()) }.with_unsure(unsure);
        let heard_note = if said == line { String::new() } else { format!("   (said: {line})") };
        transcript.push_str(&format!(
            "caller: {said}{}{heard_note}\n",
            if dtmf.is_empty() { String::new() } else { format!(" [dtmf {dtmf}]") }
        ));
        last = if turn.continues { conversation.continue_turn(user).await } else { conversation.turn(user).await };
        while let Ok(sentence) = interim.try_recv() {
            transcript.push_str(&format!("agent (interim): {sentence}\n"));
        }
        for call in &last.tool_calls {
            transcript.push_str(&format!("   # {} -> {}\n", call.call.display(), call.outcome));
        }
        transcript.push_str(&format!("agent: {}\n", last.say));
        let say = last.say.to_lowercase();
        for (claim, tool) in CLAIMS {
            let done = last.tool_calls.iter().any(|c| c.outcome == "ok" && c.call.display().starts_with(tool));
            if say.contains(claim) && !done {
                played.honest = false;
                transcript.push_str(&format!("   !! claims `{claim}` without a successful {tool}\n"));
            }
        }
        if !last.say.trim().is_empty() {
            played.last_say = last.say.clone();
        }
        if strict {
            for phrase in &turn.agent {
                if !say.contains(&phrase.to_lowercase()) {
                    return Ok(fail(&transcript, format!("the agent did not say `{phrase}`")));
                }
            }
            for phrase in &turn.not {
                if say.contains(&phrase.to_lowercase()) {
                    return Ok(fail(&transcript, format!("the agent said `{phrase}`")));
                }
            }
        } else if asks_again(&say) && !retried[index] && line != REFUSE {
            retried[index] = true;
            if let Some(retry) = turn.retry.clone().or_else(|| spelled_when_asked(&say, fixture.repair.as_ref())) {
                lines.push_front((index, retry, String::new()));
            }
        }
        if last.end_call {
            break;
        }
    }
    played.transcript = transcript;
    if last.end_call != fixture.expect.hangup && played.failure.is_none() {
        played.failure = Some(format!("hangup: expected {}, got {}", fixture.expect.hangup, last.end_call));
    }
    let outcome = conversation.finish();
    if outcome.as_str() != fixture.expect.outcome && played.failure.is_none() {
        played.failure = Some(format!("outcome: expected {}, got {}", fixture.expect.outcome, outcome.as_str()));
    }
    let filter = RecordFilter { agent_id: Some(AGENT_ID), limit: 100, ..RecordFilter::default() };
    let bookings = store.list_bookings(&filter).await.map_err(|e| e.to_string())?;
    let ours: Vec<_> = bookings.iter().filter(|b| b.attendee_name != someone()).collect();
    let show = |b: &storage::BookingRecord| {
        format!(
            "{} {} {} {:?} {:?}",
            b.start_at.with_timezone(&tz).naive_local(),
            b.status,
            b.attendee_name,
            b.attendee_email,
            b.attendee_phone
        )
    };
    let shown: Vec<String> = ours.iter().map(|b| show(b)).collect();
    let described = |b: &storage::BookingRecord, want: &ExpectBooking| {
        b.start_at == local(tz, want.start)
            && b.status == want.status
            && want.name.as_ref().is_none_or(|n| &b.attendee_name == n)
            && want.email.as_ref().is_none_or(|e| b.attendee_email.as_ref() == Some(e))
            && want.phone.as_ref().is_none_or(|p| b.attendee_phone.as_ref() == Some(p))
            && (want.existing || b.source_call_id.as_deref().is_some_and(|id| id.starts_with("chat-")))
    };
    let untouched = |b: &storage::BookingRecord| fixture.existing.iter().any(|e| b.start_at == local(tz, e.start));
    played.wrong = ours
        .iter()
        .filter(|b| {
            b.status == "confirmed" && !untouched(b) && !fixture.expect.bookings.iter().any(|w| described(b, w))
        })
        .map(|b| show(b))
        .collect();
    if played.failure.is_none() {
        if ours.len() != fixture.expect.bookings.len() {
            played.failure = Some(format!("bookings: expected {}, got {shown:?}", fixture.expect.bookings.len()));
        } else if let Some(want) = fixture.expect.bookings.iter().find(|w| !ours.iter().any(|b| described(b, w))) {
            played.failure = Some(format!("no booking like {want:?} among {shown:?}"));
        }
    }
    if played.failure.is_some() && played.last_say.trim().is_empty() {
        played.honest = false;
    }
    if let Some(why) = &played.failure {
        played.transcript.push_str(&format!("!! {why}\n"));
    }
    Ok(played)
}

impl Played {
    fn empty() -> Self {
        Self { transcript: String::new(), failure: None, wrong: Vec::new(), honest: true, last_say: String::new() }
    }
}

/// A caller asked to spell their email address or their name spells it, as they would to correct a
/// read-back: the fixture's `[repair].email` or `[repair].name`, when the turn has no `retry` of its own.
fn spelled_when_asked(say: &str, repair: Option<&Repair>) -> Option<String> {
    if !say.contains("spell") {
        return None;
    }
    let repair = repair?;
    if say.contains("email") {
        repair.email.clone()
    } else if say.contains("name") {
        repair.name.clone()
    } else {
        None
    }
}

/// Whether the agent asked for the caller's email address.
fn asks_for_email(say: &str) -> bool {
    say.to_lowercase().contains("what email address")
}

/// Whether a caller's line gives an address or says how to be reached instead.
fn gives_contact(line: &str) -> bool {
    let line = line.to_lowercase();
    [" at ", "@", "phone", "number", "no email"].iter().any(|p| line.contains(p)) || line.starts_with("at ")
}

/// Whether the agent asked again: the caller's words were not understood.
fn asks_again(say: &str) -> bool {
    ["didn't catch", "didn't get", "could you spell", "still there"].iter().any(|p| say.contains(p))
}

/// What the caller expects to hear read back before saying yes: the slot (or the appointment to cancel),
/// the name and the contact of the booking the fixture expects.
#[derive(Clone)]
struct Readback {
    tz: Tz,
    /// The local start to be booked or moved to, or cancelled.
    start: Option<NaiveDateTime>,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

impl Readback {
    fn of(fixture: &Fixture, tz: Tz) -> Self {
        let existing = |at: NaiveDateTime| fixture.existing.iter().any(|e| e.start == at);
        let goal = fixture
            .expect
            .bookings
            .iter()
            .find(|b| b.status == "confirmed" && !existing(b.start))
            .or_else(|| fixture.expect.bookings.iter().find(|b| b.status == "cancelled"));
        Self {
            tz,
            start: goal.map(|g| g.start),
            name: goal.and_then(|g| g.name.clone()).filter(|_| goal.is_some_and(|g| !g.existing)),
            email: goal.and_then(|g| g.email.clone()),
            phone: goal.and_then(|g| g.phone.clone()),
        }
    }

    /// The agent read something back and the caller is about to say yes to it.
    fn is_asked(&self, say: &str, line: &str, dtmf: &str) -> bool {
        let lower = line.trim().to_lowercase();
        let yes =
            dtmf == "1" || ["yes", "correct", "go ahead", "yep", "that's right"].iter().any(|y| lower.starts_with(y));
        let read_back = say.contains("Just to confirm") || say.contains("Would you like me to cancel");
        yes && read_back
    }

    /// The line that names the wrong part of a read-back and the fixture's correction of it, when only the
    /// name or the email is wrong and it was not corrected before.
    fn repair(
        &self,
        say: &str,
        now: DateTime<Utc>,
        repair: Option<&Repair>,
        repaired: &mut Vec<&'static str>,
    ) -> Option<(&'static str, String)> {
        let said = say.to_lowercase();
        let name_ok = self.name.as_ref().is_none_or(|n| read_back_as(&said, n));
        let email_ok = self.spoken_email().is_none_or(|e| said.contains(&e));
        let only = Self { name: None, email: None, ..self.clone() };
        if !only.matches(say, now) {
            return None;
        }
        let (part, again) = if !name_ok {
            (THE_NAME, repair?.name.clone()?)
        } else if !email_ok {
            (THE_EMAIL, repair?.email.clone()?)
        } else {
            return None;
        };
        if repaired.contains(&part) {
            return None;
        }
        repaired.push(part);
        Some((part, again))
    }

    fn spoken_email(&self) -> Option<String> {
        self.email.as_ref().map(|e| e.replace('.', " dot ").replace('@', " at "))
    }

    /// The read-back names what the caller asked for (when the fixture says what that is).
    fn matches(&self, say: &str, now: DateTime<Utc>) -> bool {
        let said = say.to_lowercase();
        let when = self.start.map(|s| slotline::agent::speak::instant(local(self.tz, s), self.tz, now).to_lowercase());
        let spoken_email = self.email.as_ref().map(|e| e.replace('.', " dot ").replace('@', " at "));
        let phone = self.phone.as_ref().map(|p| format!("ending in {}", &p[p.len().saturating_sub(4)..]));
        let name_ok = self.name.as_ref().is_none_or(|n| read_back_as(&said, n));
        name_ok && [when, spoken_email, phone].into_iter().flatten().all(|part| said.contains(&part))
    }
}

/// Whether a read-back (lowercased) names the caller as `name` and nothing more: "for grace hopper on …",
/// not "for grace hopper er on …" nor "for jane doe jane doe on …".
fn read_back_as(said: &str, name: &str) -> bool {
    let name = name.to_lowercase();
    said.match_indices(&name).any(|(at, _)| {
        let after = &said[at + name.len()..];
        let before = &said[..at];
        (before.is_empty() || before.ends_with("for "))
            && (after.starts_with(" on ") || !after.starts_with(|c: char| c.is_alphanumeric() || c == ' '))
    })
}

#[test]
fn a_read_back_must_name_the_caller_exactly() {
    assert!(read_back_as("just to confirm: an appointment for jane doe on tuesday", "Jane Doe"));
    assert!(read_back_as("for jane doe, spelled d o e, on tuesday", "Jane Doe"));
    assert!(!read_back_as("an appointment for jane doe jane doe on tuesday", "Jane Doe"));
    assert!(!read_back_as("an appointment for grace hopper er on tuesday", "Grace Hopper"));
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
