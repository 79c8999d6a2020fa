//! The LLM dialog engine against the chat-completions double: the booking flow of the rules engine (list
//! slots, offer, pick, book into the demo calendar on SQLite, hang up), the protocol it speaks (tools,
//! `tool` messages answering each `tool_call_id`, the bearer key, the system facts), and how it fails:
//! HTTP errors, timeouts, replies that are not JSON, bad tool arguments, too many tool rounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone as _, Utc};
use serde_json::{json, Value};
use slotline::agent::dialog::llm::{LlmEngine, FALLBACK};
use slotline::agent::dialog::{self, CallContext, Conversation, DialogEngine as _, UserTurn};
use slotline::agent::tools::{Outcome, ToolCall, ToolContext, Toolbox};
use slotline::calendar::{Calendar, CalendarKind, CalendarRegistry, FixedClock, Slot};
use slotline::config::{Config, DialogEngineKind, LlmConfig, Secret};
use slotline::storage::crypto::MasterKey;
use slotline::storage::{self, AgentRecord, CalendarConfig, RecordFilter, Store};
use uuid::Uuid;

use crate::helpers::{Db, TestDb};
use crate::llm_double::{answer, last_user, slot_ids, step, tool_results, LlmDouble, Recorded, Reply, Step};

const KEY: &str = "sk-test-7f3a9c2e51d04b8a";
const TIMEZONE: &str = "America/New_York";
const PROMPT: &str = "You are the receptionist of Harbor Dental.";
const GREETING: &str = "Hello, Harbor Dental, how can I help?";

/// Tuesday, March 4th 2031, 10:00 AM in New York.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 3, 4, 15, 0, 0).single().expect("instant")
}

/// Given an agent with the demo calendar on SQLite, the clock pinned to [`now`].
struct Fixture {
    _db: TestDb,
    store: Arc<dyn Store>,
    agent: AgentRecord,
    calendar: Arc<dyn Calendar>,
    toolbox: Arc<Toolbox>,
    context: CallContext,
}

async fn given_demo_agent() -> Fixture {
    let db = TestDb::new(Db::Sqlite).await;
    let store = db.store().await;
    let at = storage::now();
    let agent = AgentRecord {
        id: Uuid::new_v4(),
        name: "Harbor Dental".into(),
        description: "LLM engine test".into(),
        prompt: PROMPT.into(),
        greeting: GREETING.into(),
        language: "en".into(),
        timezone: TIMEZONE.into(),
        calendar: CalendarConfig {
            kind: CalendarKind::Demo,
            calcom_api_key: None,
            event_type_slug: None,
            event_type_id: None,
            username: None,
            slot_minutes: 30,
            rules: None,
            calcom_webhook_secret: None,
        },
        voice: None,
        created_at: at,
        updated_at: at,
    };
    store.insert_agent(&agent).await.expect("insert agent");
    let clock = Arc::new(FixedClock(now()));
    let registry = CalendarRegistry::new(
        store.clone(),
        Arc::new(MasterKey::from_bytes([9; 32])),
        clock.clone(),
        &Config::default().calcom,
    );
    let calendar = registry.calendar(&agent).expect("demo calendar");
    let timezone = TIMEZONE.parse().expect("zone");
    let call_id = format!("call-{}", Uuid::new_v4().simple());
    let caller = Some("+15550123456".to_string());
    let toolbox = Arc::new(Toolbox::new(
        ToolContext {
            call_id: call_id.clone(),
            agent_name: agent.name.clone(),
            timezone,
            caller: caller.clone(),
            clock: clock.clone(),
        },
        Ok(calendar.clone()),
    ));
    let context = CallContext { call_id, agent: agent.clone(), timezone, caller, clock };
    Fixture { _db: db, store, agent, calendar, toolbox, context }
}

fn llm_config(double: &LlmDouble) -> LlmConfig {
    LlmConfig {
        base_url: double.base_url.clone(),
        model: "double-model".into(),
        api_key: Some(Secret::new(KEY)),
        timeout_ms: 2_000,
        max_tool_rounds: 4,
        temperature: 0.2,
    }
}

/// The value of one Prometheus sample, e.g. `slotline_llm_failures_total{reason="timeout"}` (0 if absent).
fn sample(series: &str) -> f64 {
    let rendered = slotline::metrics::install().render();
    rendered.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

fn failures(reason: &str) -> f64 {
    sample(&format!("slotline_llm_failures_total{{reason=\"{reason}\"}}"))
}

/// Every assistant `tool_calls` entry is answered by the `tool` messages right after it, id by id.
fn assert_tool_calls_answered(request: &Recorded) {
    let messages = request.messages();
    for (i, message) in messages.iter().enumerate() {
        let Some(calls) = message["tool_calls"].as_array() else { continue };
        assert_eq!(message["role"], "assistant");
        for (k, call) in calls.iter().enumerate() {
            let reply = &messages[i + 1 + k];
            assert_eq!(reply["role"], "tool", "{messages:#?}");
            assert_eq!(reply["tool_call_id"], call["id"], "{messages:#?}");
            assert!(call["function"]["arguments"].is_string(), "arguments are a JSON string: {call}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "a scripted scenario, read top to bottom")]
async fn books_the_slot_the_model_saw_through_the_tools() {
    let fixture = given_demo_agent().await;
    let offered: Vec<Slot> = fixture.calendar.list_available_slots(7).await.expect("demo slots");
    let script: Vec<Step> = vec![
        step(|messages| {
            assert!(last_user(messages).contains("schedule an appointment"));
            Reply::tool_calls(&[("call_list", "list_available_slots", json!({"range_days": 7}))])
        }),
        step(|messages| {
            let listing = tool_results(messages).pop().unwrap_or_default();
            assert!(!slot_ids(&listing).is_empty(), "{listing}");
            Reply::text("I have Tuesday at 11 AM or 11:30 AM. Which would you like, and your name and email?")
        }),
        step(|messages| {
            // The caller pressed 1: the first slot of the listing.
            assert!(last_user(messages).contains("[DTMF: 1]"), "{}", last_user(messages));
            let slot = tool_results(messages).iter().flat_map(|t| slot_ids(t)).next().unwrap_or_default();
            Reply::tool_calls(&[(
                "call_book",
                "schedule_appointment",
                json!({"slot_id": slot, "attendee_name": "Jane Doe", "attendee_email": "jane@example.com"}),
            )])
        }),
        answer(Reply::text("You're booked, Jane. Anything else?")),
        answer(Reply::raw_tool_calls(Some("Thank you for calling. Goodbye!"), &[("call_bye", "end_call", "{}")])),
    ];
    let double = LlmDouble::start(script).await;
    let mut config = Config::default().dialog;
    config.engine = DialogEngineKind::Llm;
    config.llm = llm_config(&double);
    let engine = dialog::engine(&config, fixture.context.clone(), fixture.toolbox.clone());
    assert_eq!(engine.name(), "llm");
    let mut conversation = Conversation::new(engine, fixture.toolbox.clone());

    let greeting = conversation.greet().await;
    assert_eq!(greeting.say, GREETING);
    assert!(double.requests().is_empty(), "the greeting needs no model call");

    let offer = conversation.turn(UserTurn::text("I'd like to schedule an appointment")).await;
    assert!(offer.say.starts_with("I have Tuesday"), "{}", offer.say);
    assert_eq!(offer.tool_calls.len(), 1);
    assert_eq!(offer.tool_calls[0].call, ToolCall::ListAvailableSlots { range_days: 7 });
    assert_eq!(offer.tool_calls[0].outcome, "ok");
    assert!(!offer.end_call);

    let pick = UserTurn { dtmf: "1".into(), ..UserTurn::text("I'm Jane Doe, jane@example.com") };
    let booked = conversation.turn(pick).await;
    assert_eq!(booked.say, "You're booked, Jane. Anything else?");
    assert_eq!(booked.tool_calls.len(), 1, "{:?}", booked.tool_calls);
    let ToolCall::ScheduleAppointment { slot_id, .. } = &booked.tool_calls[0].call else {
        panic!("expected a booking, got {:?}", booked.tool_calls[0].call);
    };
    assert_eq!(booked.tool_calls[0].outcome, "ok", "{}", booked.tool_calls[0].result);
    assert_eq!(conversation.outcome(), Outcome::Booked);

    let bye = conversation.turn(UserTurn::text("No, that's all, thanks")).await;
    assert_eq!(bye.say, "Thank you for calling. Goodbye!");
    assert!(bye.end_call, "end_call hangs up");

    // Then the booking is in the database: the first listed slot, the attendee, this call.
    let slot = offered.iter().find(|s| s.id.as_str() == slot_id).expect("the booked slot was listed");
    assert_eq!(slot.id, offered[0].id, "DTMF 1 picked the first slot");
    let bookings = fixture
        .store
        .list_bookings(&RecordFilter { agent_id: Some(fixture.agent.id), limit: 10, ..RecordFilter::default() })
        .await
        .expect("bookings");
    assert_eq!(bookings.len(), 1, "{bookings:?}");
    let booking = &bookings[0];
    assert_eq!(booking.start_at, slot.start);
    assert_eq!(booking.end_at, slot.end);
    assert_eq!(booking.attendee_name, "Jane Doe");
    assert_eq!(booking.attendee_email.as_deref(), Some("jane@example.com"));
    assert_eq!(booking.status, "confirmed");
    assert_eq!(booking.source_call_id.as_deref(), Some(fixture.context.call_id.as_str()));

    // And the protocol: five requests (the goodbye came with end_call, no sixth round trip).
    let requests = double.requests();
    assert_eq!(requests.len(), 5);
    for request in &requests {
        assert_eq!(request.authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
        assert_eq!(request.body["model"], "double-model");
        assert_eq!(request.body["tool_choice"], "auto");
        assert!((request.body["temperature"].as_f64().unwrap_or_default() - 0.2).abs() < 1e-6);
        assert_eq!(
            request.tool_names(),
            [
                "list_available_slots",
                "schedule_appointment",
                "find_appointments",
                "cancel_appointment",
                "reschedule_appointment",
                "get_current_time",
                "end_call"
            ]
        );
        assert_tool_calls_answered(request);
    }
    let first = requests[0].messages();
    assert_eq!(first[0]["role"], "system");
    let system = first[0]["content"].as_str().unwrap_or_default();
    for fact in [PROMPT, "Harbor Dental", TIMEZONE, "Tuesday, March 4, 2031, 10:00 AM", "+15550123456"] {
        assert!(system.contains(fact), "system message lacks {fact:?}: {system}");
    }
    for rule in ["list_available_slots", "confirm", "phone call", "ids", "end_call"] {
        assert!(system.to_lowercase().contains(&rule.to_lowercase()), "system message lacks {rule:?}: {system}");
    }
    assert_eq!(first[1], json!({"role": "assistant", "content": GREETING}));
    assert_eq!(first[2], json!({"role": "user", "content": "I'd like to schedule an appointment"}));
    assert_eq!(first.len(), 3);

    let second = requests[1].messages();
    assert_eq!(second[3]["tool_calls"][0]["id"], "call_list");
    assert_eq!(second[4]["tool_call_id"], "call_list");
    let listing = second[4]["content"].as_str().unwrap_or_default();
    assert!(listing.contains(&format!("{} = ", offered[0].id.as_str())), "{listing}");
    assert!(listing.contains(TIMEZONE), "{listing}");

    let fourth = requests[3].messages();
    let result = fourth.last().expect("tool result");
    assert_eq!(result["tool_call_id"], "call_book");
    assert!(result["content"].as_str().unwrap_or_default().starts_with("Booked "), "{result}");
    assert_eq!(last_user(fourth), "I'm Jane Doe, jane@example.com [DTMF: 1]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_error_falls_back_and_the_next_turn_still_works() {
    let fixture = given_demo_agent().await;
    let script = vec![
        answer(Reply::Status(500, format!("upstream exploded; Incorrect API key provided: {KEY}"))),
        step(|messages| {
            assert_eq!(messages[messages.len() - 2], json!({"role": "assistant", "content": FALLBACK}));
            Reply::text("Sure. What day suits you?")
        }),
    ];
    let double = LlmDouble::start(script).await;
    let mut engine = LlmEngine::new(llm_config(&double), fixture.context.clone(), fixture.toolbox.clone());
    let before = failures("http_status");

    let turn = engine.on_user_turn(UserTurn::text("I need an appointment")).await;

    assert_eq!(turn.say, FALLBACK);
    assert!(!turn.end_call);
    assert_eq!(failures("http_status") - before, 1.0);
    let failure = engine.last_failure().expect("a failure");
    assert_eq!(failure.reason(), "http_status");
    let described = failure.to_string();
    assert!(described.contains("500") && described.contains("[redacted]"), "{described}");
    assert!(!described.contains(KEY), "the key is never echoed: {described}");

    let again = engine.on_user_turn(UserTurn::text("I need an appointment")).await;
    assert_eq!(again.say, "Sure. What day suits you?");
    assert!(engine.last_failure().is_none());
    assert_eq!(double.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_times_out_without_a_key_header() {
    let fixture = given_demo_agent().await;
    let double = LlmDouble::start(vec![answer(Reply::Hang)]).await;
    let config = LlmConfig { api_key: None, timeout_ms: 300, ..llm_config(&double) };
    let mut engine = LlmEngine::new(config, fixture.context.clone(), fixture.toolbox.clone());
    let before = failures("timeout");

    let started = Instant::now();
    let turn = engine.on_user_turn(UserTurn::text("Hello?")).await;

    assert_eq!(turn.say, FALLBACK);
    assert!(started.elapsed() < Duration::from_secs(3), "gave up after {:?}", started.elapsed());
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(engine.last_failure().map(|f| f.reason()), Some("timeout"));
    assert_eq!(failures("timeout") - before, 1.0);
    let requests = double.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].authorization, None, "no key, no Authorization header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_is_not_json_falls_back() {
    let fixture = given_demo_agent().await;
    let double = LlmDouble::start(vec![answer(Reply::Malformed)]).await;
    let mut engine = LlmEngine::new(llm_config(&double), fixture.context.clone(), fixture.toolbox.clone());
    let before = failures("invalid_response");

    let turn = engine.on_user_turn(UserTurn::text("Hi")).await;

    assert_eq!(turn.say, FALLBACK);
    assert_eq!(engine.last_failure().map(|f| f.reason()), Some("invalid_response"));
    assert_eq!(failures("invalid_response") - before, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tool_arguments_go_back_to_the_model_as_errors() {
    let fixture = given_demo_agent().await;
    let script = vec![
        answer(Reply::raw_tool_calls(
            None,
            &[
                ("call_a", "schedule_appointment", r#"{"slot_id": "ST_aaaaaaaaaaaaa"}"#),
                ("call_b", "list_available_slots", "{not json"),
                ("call_c", "transfer_to_human", "{}"),
            ],
        )),
        answer(Reply::text("May I have your name, please?")),
    ];
    let double = LlmDouble::start(script).await;
    let mut engine = LlmEngine::new(llm_config(&double), fixture.context.clone(), fixture.toolbox.clone());

    let turn = engine.on_user_turn(UserTurn::text("Book me in for the slot")).await;

    assert_eq!(turn.say, "May I have your name, please?");
    assert!(turn.tool_calls.is_empty(), "nothing ran: {:?}", turn.tool_calls);
    assert!(engine.last_failure().is_none());
    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    assert_tool_calls_answered(&requests[1]);
    let results: Vec<(Value, String)> = requests[1]
        .messages()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| (m["tool_call_id"].clone(), m["content"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].0, "call_a");
    assert_eq!(results[0].1, "error: argument `attendee_name` of schedule_appointment: is required");
    assert!(results[1].1.starts_with("error: the arguments are not valid JSON"), "{}", results[1].1);
    assert_eq!(results[2].1, "error: unknown tool `transfer_to_human`");
    let bookings = fixture.store.list_bookings(&RecordFilter { limit: 10, ..RecordFilter::default() }).await;
    assert!(bookings.expect("bookings").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_never_stops_calling_tools_runs_out_of_rounds() {
    let fixture = given_demo_agent().await;
    let clock_call = |id: &'static str| answer(Reply::tool_calls(&[(id, "get_current_time", json!({}))]));
    let script = vec![
        clock_call("call_1"),
        clock_call("call_2"),
        clock_call("call_3"),
        answer(Reply::text("It is ten in the morning.")),
    ];
    let double = LlmDouble::start(script).await;
    let config = LlmConfig { max_tool_rounds: 2, ..llm_config(&double) };
    let mut engine = LlmEngine::new(config, fixture.context.clone(), fixture.toolbox.clone());
    let before = failures("rounds_exhausted");

    let turn = engine.on_user_turn(UserTurn::text("What time is it?")).await;

    assert_eq!(turn.say, FALLBACK);
    assert_eq!(turn.tool_calls.len(), 2, "two rounds ran, the third call did not");
    assert!(turn.tool_calls.iter().all(|r| r.call == ToolCall::GetCurrentTime && r.outcome == "ok"));
    assert_eq!(engine.last_failure().map(|f| f.reason()), Some("rounds_exhausted"));
    assert_eq!(failures("rounds_exhausted") - before, 1.0);
    assert_eq!(double.requests().len(), 3);

    // The unanswered third call is not kept: the next request is valid chat history.
    let next = engine.on_user_turn(UserTurn::text("What time is it?")).await;
    assert_eq!(next.say, "It is ten in the morning.");
    let requests = double.requests();
    assert_eq!(requests.len(), 4);
    assert_tool_calls_answered(&requests[3]);
    let ids: Vec<&Value> =
        requests[3].messages().iter().filter_map(|m| m["tool_calls"].as_array()).flatten().map(|c| &c["id"]).collect();
    assert_eq!(ids, [&json!("call_1"), &json!("call_2")]);
    let time = tool_results(requests[3].messages()).pop().unwrap_or_default();
    assert!(time.contains("March 4th 2031") && time.contains(TIMEZONE), "{time}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_falls_back() {
    let fixture = given_demo_agent().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let double = LlmDouble::start(Vec::new()).await;
    let config = LlmConfig { base_url: format!("http://127.0.0.1:{port}/v1"), ..llm_config(&double) };
    let mut engine = LlmEngine::new(config, fixture.context.clone(), fixture.toolbox.clone());
    let before = failures("transport");

    let turn = engine.on_user_turn(UserTurn::text("Hi")).await;

    assert_eq!(turn.say, FALLBACK);
    assert_eq!(engine.last_failure().map(|f| f.reason()), Some("transport"));
    assert_eq!(failures("transport") - before, 1.0);
}
