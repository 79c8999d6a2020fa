//! `GET /v1/bookings` and `GET /v1/calls`: filters and their validation.

use chrono::{Duration, SubsecRound as _, Utc};
use serde_json::json;
use slotline::storage::CallRecord;
use uuid::Uuid;

use crate::helpers::{assert_error, spawn_app, Db};

crate::on_every_backend!(calls_list_with_filters, record_filters_are_validated);

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
