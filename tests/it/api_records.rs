//! `GET /v1/bookings` and `GET /v1/calls`: filters and their validation.

use chrono::{Duration, SubsecRound as _, Utc};
use serde_json::json;
use slotline::storage::CallRecord;
use uuid::Uuid;

use crate::helpers::{assert_error, spawn_app, Db};

crate::on_every_backend!(
    calls_list_with_filters,
    record_filters_are_validated,
    transcripts_are_listed_in_order_and_purged
);

async fn calls_list_with_filters(db: Db) {
    let app = spawn_app(db).await;
    let a = app.create_agent("A").await;
    let now = Utc::now().trunc_subsecs(0);
    for (agent, minutes_ago) in [(Some(a.parse::<Uuid>().expect("uuid")), 10), (None, 5)] {
        let call = CallRecord {
            id: Uuid::new_v4(),
            sip_call_id: Uuid::new_v4().to_string(),
            agent_id: agent,
            dialed: "+15550100000".into(),
            caller: "+15551234567".into(),
            transport: "tcp".into(),
            started_at: now - Duration::minutes(minutes_ago),
            answered_at: None,
            ended_at: None,
            end_reason: Some("not_found".into()),
            sip_status: Some(404),
            room: None,
            room_sid: None,
        };
        app.store.insert_call(&call).await.expect("insert call");
    }
    let (status, body) = app.call(reqwest::Method::GET, "/v1/calls", Some(&app.analyst.clone()), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["calls"].as_array().map(Vec::len), Some(2));
    let (_, body) = app.get(&format!("/v1/calls?agent_id={a}")).await;
    assert_eq!(body["calls"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["calls"][0]["transport"], "tcp");
    assert_eq!(body["calls"][0]["sip_status"], 404);
    let from = (now - Duration::minutes(7)).to_rfc3339().replace('+', "%2B");
    let (_, body) = app.get(&format!("/v1/calls?from={from}")).await;
    assert_eq!(body["calls"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["calls"][0]["agent_id"], json!(null));
    let (_, body) = app.get("/v1/calls?limit=1").await;
    assert_eq!(body["calls"].as_array().map(Vec::len), Some(1));
    let (status, body) = app.get("/v1/bookings").await;
    assert_eq!((status, body), (200, json!({"bookings": []})));
    app.stop().await;
}

async fn transcripts_are_listed_in_order_and_purged(db: Db) {
    use slotline::storage::TranscriptLine;
    let app = spawn_app(db).await;
    let now = Utc::now().trunc_subsecs(0);
    let call = CallRecord {
        id: Uuid::new_v4(),
        sip_call_id: "t-1@127.0.0.1".into(),
        agent_id: None,
        dialed: "+15550100000".into(),
        caller: "+15551234567".into(),
        transport: "udp".into(),
        started_at: now,
        answered_at: Some(now),
        ended_at: None,
        end_reason: None,
        sip_status: Some(200),
        room: None,
        room_sid: None,
    };
    app.store.insert_call(&call).await.expect("insert call");
    // Within the default 30-day retention, so the app's own sweeper (which may run at any
    // moment) keeps them; the explicit purge below uses a shorter cut-off.
    let lines = [("agent", "Hello, how can I help?", 20), ("caller", "I'd like to book", 19), ("agent", "Goodbye!", 1)];
    for (seq, (speaker, text, days_ago)) in lines.iter().enumerate() {
        let line = TranscriptLine {
            call_id: call.id,
            seq: seq as i64,
            speaker: speaker.to_string(),
            text: text.to_string(),
            at: now - Duration::days(*days_ago),
        };
        app.store.insert_transcript_line(&line).await.expect("insert line");
    }
    let (status, body) = app
        .call(reqwest::Method::GET, &format!("/v1/calls/{}/transcript", call.id), Some(&app.analyst.clone()), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["sip_call_id"], "t-1@127.0.0.1");
    let said: Vec<(&str, &str)> = body["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| (l["speaker"].as_str().unwrap_or(""), l["text"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(said, vec![("agent", "Hello, how can I help?"), ("caller", "I'd like to book"), ("agent", "Goodbye!")]);
    let purged = app.store.purge_transcripts(now - Duration::days(10)).await.expect("purge");
    assert_eq!(purged, 2, "lines older than the retention go");
    assert_eq!(app.store.list_transcript(call.id).await.expect("list").len(), 1);
    let (status, body) = app.get(&format!("/v1/calls/{}/transcript", Uuid::new_v4())).await;
    assert_error(status, &body, 404, "not_found", None);
    let (status, _) = app.get("/v1/calls/not-a-uuid/transcript").await;
    assert_eq!(status, 404);
    app.stop().await;
}

async fn record_filters_are_validated(db: Db) {
    let app = spawn_app(db).await;
    for path in ["/v1/calls", "/v1/bookings"] {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=5000", "limit"),
            ("limit=ten", "limit"),
            ("agent_id=42", "agent_id"),
            ("from=yesterday", "from"),
            ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
            ("colour=red", "colour"),
        ] {
            let (status, body) = app.get(&format!("{path}?{query}")).await;
            assert_error(status, &body, 422, "validation_failed", Some(field));
        }
    }
    app.stop().await;
}
