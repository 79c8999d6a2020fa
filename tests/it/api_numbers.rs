//! Phone numbers over HTTP: E.164 normalisation, one agent per number, deletion rules.

use serde_json::json;

use crate::helpers::{assert_error, spawn_app, Db};

crate::on_every_backend!(
    numbers_crud_normalises_to_e164,
    bad_numbers_and_agents_are_422,
    agents_with_numbers_need_force
);

async fn numbers_crud_normalises_to_e164(db: Db) {
    let app = spawn_app(db).await;
    let a = app.create_agent("A").await;
    let b = app.create_agent("B").await;
    // `+1 (555) 010-0100`, percent-encoded in the path.
    let typed = "/v1/numbers/%2B1%20(555)%20010-0100";
    let (status, body) = app.put(typed, json!({"agent_id": a})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["e164"], "+15550100100");
    assert_eq!(body["agent_id"], a.as_str());
    let (status, body) = app.put("/v1/numbers/+15550100100", json!({"agent_id": b})).await;
    assert_eq!(status, 200, "an existing number moves: {body}");
    assert_eq!(body["agent_id"], b.as_str());
    app.put("/v1/numbers/+4930901820", json!({"agent_id": b})).await;

    let (status, body) = app.get(typed).await;
    assert_eq!((status, body["e164"].as_str()), (200, Some("+15550100100")));
    let (_, list) = app.get(&format!("/v1/numbers?agent_id={b}")).await;
    let numbers: Vec<&str> =
        list["numbers"].as_array().expect("numbers").iter().filter_map(|n| n["e164"].as_str()).collect();
    assert_eq!(numbers, vec!["+15550100100", "+4930901820"]);
    let (_, list) = app.get(&format!("/v1/numbers?agent_id={a}")).await;
    assert_eq!(list["numbers"], json!([]));
    let (_, agent) = app.get(&format!("/v1/agents/{b}")).await;
    assert_eq!(agent["numbers"], json!(["+15550100100", "+4930901820"]));

    let (status, _) = app.delete("/v1/numbers/+1-555-010-0100").await;
    assert_eq!(status, 204);
    let (status, body) = app.get("/v1/numbers/+15550100100").await;
    assert_error(status, &body, 404, "not_found", None);
    let (status, body) = app.delete("/v1/numbers/+15550100100").await;
    assert_error(status, &body, 404, "not_found", None);
    app.stop().await;
}

async fn bad_numbers_and_agents_are_422(db: Db) {
    let app = spawn_app(db).await;
    let a = app.create_agent("A").await;
    for garbage in ["garbage", "5550100", "+0123456789", "+1234567890123456"] {
        let (status, body) = app.put(&format!("/v1/numbers/{garbage}"), json!({"agent_id": a})).await;
        assert_error(status, &body, 422, "validation_failed", Some("e164"));
        let (status, body) = app.get(&format!("/v1/numbers/{garbage}")).await;
        assert_error(status, &body, 422, "validation_failed", Some("e164"));
    }
    let (status, body) = app.put("/v1/numbers/+15550100100", json!({"agent_id": uuid::Uuid::new_v4()})).await;
    assert_error(status, &body, 422, "validation_failed", Some("agent_id"));
    let (status, body) = app.put("/v1/numbers/+15550100100", json!({"agent_id": "nope"})).await;
    assert_error(status, &body, 422, "validation_failed", Some("agent_id"));
    let (status, body) = app.put("/v1/numbers/+15550100100", json!({})).await;
    assert_error(status, &body, 422, "validation_failed", Some("agent_id"));
    let (status, body) = app.get("/v1/numbers?agent_id=xyz").await;
    assert_error(status, &body, 422, "validation_failed", Some("agent_id"));
    let (_, list) = app.get("/v1/numbers").await;
    assert_eq!(list["numbers"].as_array().map(Vec::len), Some(1), "only the demo number exists");
    app.stop().await;
}

async fn agents_with_numbers_need_force(db: Db) {
    let app = spawn_app(db).await;
    let a = app.create_agent("A").await;
    app.put("/v1/numbers/+15550100100", json!({"agent_id": a})).await;
    let (status, body) = app.delete(&format!("/v1/agents/{a}")).await;
    assert_error(status, &body, 409, "conflict", None);
    let (status, _) = app.get(&format!("/v1/agents/{a}")).await;
    assert_eq!(status, 200, "nothing was deleted");
    let (status, body) = app.delete(&format!("/v1/agents/{a}?force=maybe")).await;
    assert_error(status, &body, 422, "validation_failed", Some("force"));
    let (status, _) = app.delete(&format!("/v1/agents/{a}?force=true")).await;
    assert_eq!(status, 204);
    let (status, _) = app.get("/v1/numbers/+15550100100").await;
    assert_eq!(status, 404, "the agent's numbers went with it");
    app.stop().await;
}
