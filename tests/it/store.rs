//! The `Store` conformance suite: the same scenarios against SQLite and PostgreSQL.

use chrono::{Duration, TimeZone as _, Utc};
use slotline::calendar::CalendarKind;
use slotline::storage::{
    self, AgentDeletion, AgentRecord, ApiTokenRecord, Backend, CalendarConfig, CallRecord, RecordFilter, SealedSecret,
    StoreError, TokenScope,
};
use uuid::Uuid;

use crate::helpers::{Db, TestDb};

crate::on_every_backend!(
    migrations_are_idempotent,
    agents_round_trip,
    agent_names_are_unique,
    numbers_route_exact_then_longest_prefix,
    numbers_need_an_existing_agent,
    deleting_an_agent_with_numbers_needs_force,
    tokens_are_found_by_hash,
    calls_filter_by_agent_and_time,
);

fn agent(name: &str) -> AgentRecord {
    let now = storage::now();
    AgentRecord {
        id: Uuid::new_v4(),
        name: name.to_string(),
        description: "test agent".into(),
        prompt: "book things".into(),
        greeting: "hello".into(),
        language: "en-US".into(),
        timezone: "Asia/Kolkata".into(),
        calendar: CalendarConfig {
            kind: CalendarKind::Calcom,
            calcom_api_key: Some(SealedSecret { sealed: vec![1, 0, 255, 7], hint: "wxyz".into() }),
            event_type_slug: Some("consult".into()),
            event_type_id: Some(4_000_000_123),
            username: Some("dr-who".into()),
            slot_minutes: 45,
            rules: None,
            calcom_webhook_secret: Some(vec![9, 9, 9]),
        },
        voice: None,
        created_at: now,
        updated_at: now,
    }
}

async fn migrations_are_idempotent(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    store.migrate().await.expect("second migrate is a no-op");
    assert_eq!(store.backend(), if db == Db::Sqlite { Backend::Sqlite } else { Backend::Postgres });
    store.ping().await.expect("ping");
    assert!(store.list_agents().await.expect("list").is_empty());
}

async fn agents_round_trip(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    let mut a = agent("Dr Who");
    store.insert_agent(&a).await.expect("insert");
    assert_eq!(store.get_agent(a.id).await.expect("get"), Some(a.clone()));
    assert_eq!(store.find_agent_by_name("Dr Who").await.expect("by name"), Some(a.clone()));
    assert_eq!(store.get_agent(Uuid::new_v4()).await.expect("get"), None);

    a.name = "Dr Who II".into();
    a.timezone = "Australia/Lord_Howe".into();
    a.calendar = CalendarConfig {
        kind: CalendarKind::Builtin,
        calcom_api_key: None,
        event_type_slug: None,
        event_type_id: None,
        username: None,
        slot_minutes: 20,
        rules: Some(
            slotline::calendar::builtin::Rules { horizon_days: 30, ..Default::default() }.to_stored().expect("rules"),
        ),
        calcom_webhook_secret: None,
    };
    a.updated_at = storage::now();
    assert!(store.update_agent(&a).await.expect("update"));
    assert_eq!(store.get_agent(a.id).await.expect("get"), Some(a.clone()));
    assert!(!store.update_agent(&agent("ghost")).await.expect("update missing"));

    let b = agent("Alpha");
    store.insert_agent(&b).await.expect("insert");
    let names: Vec<String> = store.list_agents().await.expect("list").into_iter().map(|a| a.name).collect();
    assert_eq!(names, vec!["Alpha", "Dr Who II"]);
}

async fn agent_names_are_unique(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    store.insert_agent(&agent("Same")).await.expect("first");
    let err = store.insert_agent(&agent("Same")).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict { what: "agent name" }), "{err:?}");
    let mut other = agent("Other");
    store.insert_agent(&other).await.expect("other");
    other.name = "Same".into();
    assert!(matches!(store.update_agent(&other).await, Err(StoreError::Conflict { .. })));
}

async fn numbers_route_exact_then_longest_prefix(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    let (a, b, c) = (agent("A"), agent("B"), agent("C"));
    for x in [&a, &b, &c] {
        store.insert_agent(x).await.expect("insert");
    }
    let (record, created) = store.put_number("+15550100100", a.id).await.expect("put");
    assert!(created);
    assert_eq!(record.agent_id, a.id);
    let (record, created) = store.put_number("+15550100100", b.id).await.expect("move");
    assert!(!created, "moving a number is not a creation");
    assert_eq!(record.agent_id, b.id);
    store.put_number("+15550100101", a.id).await.expect("put");
    store.put_prefix("+1555", a.id).await.expect("prefix");
    store.put_prefix("+155502", c.id).await.expect("prefix");

    assert_eq!(store.route_number("+15550100100").await.expect("route"), Some(b.id), "exact wins");
    assert_eq!(store.route_number("+15550200000").await.expect("route"), Some(c.id), "longest prefix");
    assert_eq!(store.route_number("+15559999999").await.expect("route"), Some(a.id), "short prefix");
    assert_eq!(store.route_number("+4930123456").await.expect("route"), None);

    let of_a: Vec<String> = store.list_numbers(Some(a.id)).await.expect("list").into_iter().map(|n| n.e164).collect();
    assert_eq!(of_a, vec!["+15550100101"]);
    assert_eq!(store.list_numbers(None).await.expect("all").len(), 2);
    assert_eq!(store.list_prefixes().await.expect("prefixes").len(), 2);
    assert!(store.delete_number("+15550100101").await.expect("delete"));
    assert!(!store.delete_number("+15550100101").await.expect("delete again"));
    assert_eq!(store.get_number("+15550100101").await.expect("get"), None);
}

async fn numbers_need_an_existing_agent(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    let err = store.put_number("+15550100100", Uuid::new_v4()).await.expect_err("no agent");
    assert!(matches!(err, StoreError::MissingReference { .. }), "{err:?}");
    assert!(store.list_numbers(None).await.expect("list").is_empty());
}

async fn deleting_an_agent_with_numbers_needs_force(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    let a = agent("A");
    store.insert_agent(&a).await.expect("insert");
    store.put_number("+15550100100", a.id).await.expect("put");
    store.put_number("+15550100101", a.id).await.expect("put");
    store.put_prefix("+1666", a.id).await.expect("prefix");
    let call = call_record(Some(a.id), Utc::now());
    store.insert_call(&call).await.expect("call");

    assert_eq!(store.delete_agent(a.id, false).await.expect("delete"), AgentDeletion::HasNumbers(2));
    assert!(store.get_agent(a.id).await.expect("get").is_some());
    assert_eq!(store.delete_agent(a.id, true).await.expect("force"), AgentDeletion::Deleted);
    assert_eq!(store.get_agent(a.id).await.expect("get"), None);
    assert!(store.list_numbers(None).await.expect("numbers").is_empty());
    assert!(store.list_prefixes().await.expect("prefixes").is_empty());
    let calls = store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls");
    assert_eq!(calls.len(), 1, "call history survives the agent");
    assert_eq!(calls[0].agent_id, None);
    assert_eq!(store.delete_agent(a.id, true).await.expect("again"), AgentDeletion::NotFound);
}

async fn tokens_are_found_by_hash(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    assert_eq!(store.count_tokens().await.expect("count"), 0);
    let token = ApiTokenRecord {
        id: Uuid::new_v4(),
        name: "ci".into(),
        scope: TokenScope::Analyst,
        token_hash: "ab".repeat(32),
        created_at: storage::now(),
        expires_at: None,
    };
    store.insert_token(&token).await.expect("insert");
    assert_eq!(store.find_token(&"ab".repeat(32)).await.expect("find"), Some(token.clone()));
    assert_eq!(store.find_token(&"cd".repeat(32)).await.expect("find"), None);
    assert_eq!(store.count_tokens().await.expect("count"), 1);

    // An expiring token keeps its expiry; listing shows both, oldest first; deleting removes one.
    let expiring = ApiTokenRecord {
        id: Uuid::new_v4(),
        name: "temp".into(),
        scope: TokenScope::Admin,
        token_hash: "ef".repeat(32),
        created_at: token.created_at + chrono::Duration::seconds(1),
        expires_at: Some(token.created_at + chrono::Duration::days(30)),
    };
    store.insert_token(&expiring).await.expect("insert expiring");
    assert_eq!(store.find_token(&"ef".repeat(32)).await.expect("find"), Some(expiring.clone()));
    assert!(
        !expiring.is_expired(token.created_at) && expiring.is_expired(token.created_at + chrono::Duration::days(30))
    );
    assert_eq!(store.list_tokens().await.expect("list"), vec![token.clone(), expiring.clone()]);
    assert!(store.delete_token(token.id).await.expect("delete"));
    assert!(!store.delete_token(token.id).await.expect("delete again"), "a second delete finds nothing");
    assert_eq!(store.find_token(&"ab".repeat(32)).await.expect("find"), None);
    assert_eq!(store.list_tokens().await.expect("list"), vec![expiring]);
}

fn call_record(agent_id: Option<Uuid>, started_at: chrono::DateTime<Utc>) -> CallRecord {
    use chrono::SubsecRound as _;
    let started_at = started_at.trunc_subsecs(6);
    CallRecord {
        id: Uuid::new_v4(),
        sip_call_id: format!("{}@127.0.0.1", Uuid::new_v4()),
        agent_id,
        dialed: "+15550100000".into(),
        caller: "+15551234567".into(),
        transport: "udp".into(),
        started_at,
        answered_at: Some(started_at + Duration::milliseconds(250)),
        ended_at: Some(started_at + Duration::seconds(61)),
        end_reason: Some("caller_bye".into()),
        sip_status: Some(200),
        room: None,
        room_sid: None,
    }
}

async fn calls_filter_by_agent_and_time(db: Db) {
    let test_db = TestDb::new(db).await;
    let store = test_db.store().await;
    let a = agent("A");
    store.insert_agent(&a).await.expect("insert");
    let t0 = Utc.with_ymd_and_hms(2026, 3, 8, 6, 0, 0).single().expect("time");
    let first = call_record(Some(a.id), t0);
    let second = call_record(Some(a.id), t0 + Duration::hours(1));
    let other = call_record(None, t0 + Duration::minutes(30));
    for call in [&first, &second, &other] {
        store.insert_call(call).await.expect("insert call");
    }
    let all = store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("all");
    assert_eq!(all, vec![second.clone(), other.clone(), first.clone()], "newest first, fields round-trip");
    let of_a =
        store.list_calls(&RecordFilter { agent_id: Some(a.id), limit: 10, ..Default::default() }).await.expect("a");
    assert_eq!(of_a.len(), 2);
    let window = RecordFilter {
        from: Some(t0 + Duration::minutes(1)),
        to: Some(t0 + Duration::hours(1)),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.list_calls(&window).await.expect("window"), vec![other]);
    let limited = store.list_calls(&RecordFilter { limit: 1, ..Default::default() }).await.expect("limit");
    assert_eq!(limited, vec![second]);
    assert!(store.list_bookings(&RecordFilter { limit: 10, ..Default::default() }).await.expect("bookings").is_empty());
}
