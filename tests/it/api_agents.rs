//! Agents over HTTP: authentication, CRUD, validation errors that name the field.

use reqwest::Method;
use serde_json::json;

use std::sync::Arc;

use slotline::calendar::SystemClock;

use crate::helpers::{assert_error, setup_file, spawn_app, spawn_app_with, Db};

crate::on_every_backend!(
    health_and_readiness_need_no_token,
    tokens_gate_every_route,
    agents_crud,
    invalid_agents_name_the_field,
    duplicate_names_conflict,
    first_start_creates_the_demo_agent,
    openapi_covers_every_route,
    agents_have_a_voice_of_their_own,
);

async fn health_and_readiness_need_no_token(db: Db) {
    let app = spawn_app(db).await;
    assert_eq!(app.call(Method::GET, "/healthz", None, None).await, (200, json!({"status": "ok"})));
    assert_eq!(app.call(Method::GET, "/readyz", None, None).await, (200, json!({"status": "ok"})));
    let (status, body) = app.call(Method::GET, "/nowhere", None, None).await;
    assert_error(status, &body, 404, "not_found", None);
    app.stop().await;
}

async fn tokens_gate_every_route(db: Db) {
    let app = spawn_app(db).await;
    let create = json!({"name": "Analyst made", "timezone": "UTC", "calendar": {"kind": "demo"}});
    for path in ["/v1/agents", "/v1/numbers", "/v1/bookings", "/v1/calls"] {
        let (status, body) = app.call(Method::GET, path, None, None).await;
        assert_error(status, &body, 401, "unauthorized", None);
        let (status, body) = app.call(Method::GET, path, Some("slt_not-a-real-token"), None).await;
        assert_error(status, &body, 401, "unauthorized", None);
        let (status, _) = app.call(Method::GET, path, Some(&app.analyst), None).await;
        assert_eq!(status, 200, "analyst reads {path}");
    }
    let response = app.http.get(app.url("/v1/agents")).header("authorization", "Basic abc").send().await.expect("send");
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    let (status, body) = app.call(Method::POST, "/v1/agents", Some(&app.analyst), Some(create.clone())).await;
    assert_error(status, &body, 403, "forbidden", None);
    let (status, body) = app
        .call(
            Method::PUT,
            "/v1/numbers/+15550100999",
            Some(&app.analyst),
            Some(json!({"agent_id": uuid::Uuid::new_v4()})),
        )
        .await;
    assert_error(status, &body, 403, "forbidden", None);
    let (status, _) = app.call(Method::POST, "/v1/agents", Some(&app.admin), Some(create)).await;
    assert_eq!(status, 201);
    app.stop().await;
}

async fn agents_crud(db: Db) {
    let app = spawn_app(db).await;
    let (status, created) = app
        .post(
            "/v1/agents",
            json!({
                "name": "Berlin Dental",
                "description": "front desk",
                "greeting": "Guten Tag!",
                "language": "de-DE",
                "timezone": "Europe/Berlin",
                "calendar": {"kind": "calcom", "api_key": "cal_live_0123456789abcdefWXYZ", "event_type_slug": "checkup", "slot_minutes": 20}
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["calendar"]["kind"], "calcom");
    assert_eq!(created["calendar"]["has_api_key"], true);
    assert_eq!(created["calendar"]["api_key_last4"], "WXYZ");
    assert_eq!(created["calendar"]["slot_minutes"], 20);
    assert!(created["calendar"].get("api_key").is_none());
    assert!(created["prompt"].as_str().is_some_and(|p| p.contains("appointment")), "default prompt");

    let (status, fetched) = app.get(&format!("/v1/agents/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);

    // PATCH: rename, move time zone, keep the stored key while changing the slug.
    let (status, patched) = app
        .patch(
            &format!("/v1/agents/{id}"),
            json!({"name": "Berlin Dental Mitte", "timezone": "Asia/Kolkata", "calendar": {"kind": "calcom", "event_type_slug": "cleaning"}}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], "Berlin Dental Mitte");
    assert_eq!(patched["timezone"], "Asia/Kolkata");
    assert_eq!(patched["greeting"], "Guten Tag!", "untouched fields stay");
    assert_eq!(patched["calendar"]["api_key_last4"], "WXYZ", "key kept");
    assert_eq!(patched["calendar"]["event_type_slug"], "cleaning");

    // Switching to the built-in calendar drops the Cal.com settings and key.
    let (status, patched) =
        app.patch(&format!("/v1/agents/{id}"), json!({"calendar": {"kind": "builtin", "slot_minutes": 15}})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["calendar"]["has_api_key"], false);
    assert_eq!(patched["calendar"]["event_type_slug"], serde_json::Value::Null);
    let stored = app.store.get_agent(id.parse().expect("uuid")).await.expect("get").expect("agent");
    assert_eq!(stored.calendar.calcom_api_key, None, "no secret kept for a calendar that does not use it");

    let (status, list) = app.get("/v1/agents").await;
    assert_eq!(status, 200);
    let names: Vec<&str> =
        list["agents"].as_array().expect("agents").iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, vec!["Berlin Dental Mitte", "Demo Agent"]);

    let (status, _) = app.delete(&format!("/v1/agents/{id}")).await;
    assert_eq!(status, 204);
    let (status, body) = app.get(&format!("/v1/agents/{id}")).await;
    assert_error(status, &body, 404, "not_found", None);
    let (status, body) = app.delete(&format!("/v1/agents/{id}")).await;
    assert_error(status, &body, 404, "not_found", None);
    let (status, body) = app.get("/v1/agents/not-a-uuid").await;
    assert_error(status, &body, 404, "not_found", None);
    let (status, body) = app.patch(&format!("/v1/agents/{}", uuid::Uuid::new_v4()), json!({"name": "x"})).await;
    assert_error(status, &body, 404, "not_found", None);
    app.stop().await;
}

async fn invalid_agents_name_the_field(db: Db) {
    let app = spawn_app(db).await;
    let cases = [
        (json!({"timezone": "UTC", "calendar": {"kind": "demo"}}), "name"),
        (json!({"name": "  ", "timezone": "UTC", "calendar": {"kind": "demo"}}), "name"),
        (json!({"name": "x", "timezone": "Mars/Olympus", "calendar": {"kind": "demo"}}), "timezone"),
        (json!({"name": "x", "timezone": "EST5EDT-ish", "calendar": {"kind": "demo"}}), "timezone"),
        (json!({"name": "x", "timezone": "UTC"}), "calendar"),
        (json!({"name": "x", "timezone": "UTC", "calendar": {"kind": "google"}}), "calendar.kind"),
        (
            json!({"name": "x", "timezone": "UTC", "calendar": {"kind": "calcom", "event_type_slug": "a"}}),
            "calendar.api_key",
        ),
        (
            json!({"name": "x", "timezone": "UTC", "calendar": {"kind": "calcom", "api_key": "cal_live_abcdefgh"}}),
            "calendar.event_type_slug",
        ),
        (
            json!({"name": "x", "timezone": "UTC", "calendar": {"kind": "calcom", "api_key": "cal_live_abcdefgh", "event_type_slug": "a b"}}),
            "calendar.event_type_slug",
        ),
        (
            json!({"name": "x", "timezone": "UTC", "calendar": {"kind": "builtin", "slot_minutes": 2}}),
            "calendar.slot_minutes",
        ),
        (
            json!({"name": "x", "timezone": "UTC", "calendar": {"kind": "builtin", "slot_minutes": "long"}}),
            "calendar.slot_minutes",
        ),
        (
            json!({"name": "x", "timezone": "UTC", "calendar": {"kind": "demo", "slot_minutes": 60}}),
            "calendar.slot_minutes",
        ),
        (
            json!({"name": "x", "timezone": "UTC", "calendar": {"kind": "demo", "api_key": "cal_live_abcdefgh"}}),
            "calendar.api_key",
        ),
        (
            json!({"name": "x", "timezone": "UTC", "language": "english please", "calendar": {"kind": "demo"}}),
            "language",
        ),
        (json!({"name": "x", "timezone": "UTC", "colour": "red", "calendar": {"kind": "demo"}}), "colour"),
    ];
    for (body, field) in cases {
        let (status, response) = app.post("/v1/agents", body.clone()).await;
        assert_error(status, &response, 422, "validation_failed", Some(field));
    }
    let response = app
        .http
        .post(app.url("/v1/agents"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "bad_request");
    let response =
        app.http.post(app.url("/v1/agents")).bearer_auth(&app.admin).body("name=x").send().await.expect("send");
    assert_eq!(response.status(), 415);
    let (_, list) = app.get("/v1/agents").await;
    assert_eq!(list["agents"].as_array().map(Vec::len), Some(1), "nothing but the demo agent was created");
    app.stop().await;
}

async fn duplicate_names_conflict(db: Db) {
    let app = spawn_app(db).await;
    app.create_agent("Twin").await;
    let other = app.create_agent("Other").await;
    let (status, body) =
        app.post("/v1/agents", json!({"name": "Twin", "timezone": "UTC", "calendar": {"kind": "demo"}})).await;
    assert_error(status, &body, 409, "conflict", Some("name"));
    let (status, body) = app.patch(&format!("/v1/agents/{other}"), json!({"name": "Twin"})).await;
    assert_error(status, &body, 409, "conflict", Some("name"));
    app.stop().await;
}

async fn first_start_creates_the_demo_agent(db: Db) {
    let app = spawn_app(db).await;
    let (status, list) = app.get("/v1/agents").await;
    assert_eq!(status, 200);
    let demo = &list["agents"][0];
    assert_eq!(demo["name"], "Demo Agent");
    assert_eq!(demo["calendar"]["kind"], "demo");
    assert_eq!(demo["calendar"]["slot_minutes"], 30);
    assert_eq!(demo["timezone"], "America/New_York");
    assert_eq!(demo["numbers"], json!(["+15550100000"]));
    let (status, number) = app.get("/v1/numbers/+15550100000").await;
    assert_eq!(status, 200);
    assert_eq!(number["agent_id"], demo["id"]);
    app.stop().await;
}

async fn openapi_covers_every_route(db: Db) {
    let app = spawn_app(db).await;
    let (status, doc) = app.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let expected = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/v1/openapi.json", "get"),
        ("/v1/agents", "get"),
        ("/v1/agents", "post"),
        ("/v1/agents/{id}", "get"),
        ("/v1/agents/{id}", "patch"),
        ("/v1/agents/{id}", "delete"),
        ("/v1/numbers", "get"),
        ("/v1/numbers/{e164}", "get"),
        ("/v1/numbers/{e164}", "put"),
        ("/v1/numbers/{e164}", "delete"),
        ("/v1/bookings", "get"),
        ("/v1/calls", "get"),
        ("/v1/calls/{id}/transcript", "get"),
        ("/v1/agents/{id}/slots", "get"),
        ("/v1/agents/{id}/bookings", "post"),
        ("/v1/bookings/{id}/cancel", "post"),
        ("/v1/bookings/{id}/reschedule", "post"),
        ("/v1/webhooks/calcom/{agent_id}", "post"),
        ("/v1/agents/{id}/livekit-token", "post"),
        ("/v1/webhooks/livekit", "post"),
        ("/v1/me", "get"),
        ("/v1/stats/daily", "get"),
        ("/v1/agents/{id}/chats", "post"),
        ("/v1/chats/{id}/turns", "post"),
        ("/v1/chats/{id}", "delete"),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    let documented: usize = paths.values().map(|p| p.as_object().map_or(0, |ops| ops.len())).sum();
    assert_eq!(documented, expected.len(), "every served route is documented, nothing else: {:?}", paths.keys());
    for (path, method) in expected {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing");
        // Every documented route answers (not 404/405) — the document matches the router.
        let concrete = path
            .replace("{id}", &uuid::Uuid::new_v4().to_string())
            .replace("{agent_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{e164}", "+15550100000");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let response = app.http.request(method.clone(), app.url(&concrete)).send().await.expect("send");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {concrete}");
        assert_ne!(body["error"]["message"], "route not found", "{method} {concrete} is documented but not served");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    app.stop().await;
}

/// Given a gateway with hibari and espeak-ng installed but not piper, when agents are given voices of
/// their own, then the voice is stored, returned and cleared again, and a voice the gateway cannot speak
/// with (piper missing, an unknown espeak-ng voice) or malformed is refused with a 422 naming the field.
async fn agents_have_a_voice_of_their_own(db: Db) {
    let app = spawn_app_with(db, Arc::new(SystemClock), |config| {
        config.speech.hibari.python = Some(setup_file("IT_HIBARI_PYTHON", "hibari/python"));
        config.speech.piper.python = Some(config.data_dir.join("no-piper/python"));
    })
    .await;
    let create = |voice: serde_json::Value| json!({"name": "Voiced", "timezone": "UTC", "calendar": {"kind": "demo"}, "voice": voice});
    let (status, created) =
        app.post("/v1/agents", create(json!({"engine": "espeak", "name": "en-gb", "speed": 1.25}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["voice"], json!({"engine": "espeak", "name": "en-gb", "speed": 1.25}));
    let id = created["id"].as_str().expect("id").to_string();
    let (status, fetched) = app.get(&format!("/v1/agents/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["voice"], created["voice"]);

    let (status, patched) = app.patch(&format!("/v1/agents/{id}"), json!({"voice": {"engine": "hibari"}})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["voice"], json!({"engine": "hibari"}));
    let (status, patched) = app.patch(&format!("/v1/agents/{id}"), json!({"description": "kept"})).await;
    assert_eq!((status, &patched["voice"]), (200, &json!({"engine": "hibari"})), "an absent voice is kept");
    let (status, patched) = app.patch(&format!("/v1/agents/{id}"), json!({"voice": null})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["voice"], serde_json::Value::Null, "null: the default voice again");
    let stored = app.store.get_agent(id.parse().expect("uuid")).await.expect("get").expect("agent");
    assert_eq!(stored.voice, None);
    let (status, demo) = app.get("/v1/agents").await;
    assert_eq!(status, 200);
    assert!(demo["agents"].as_array().expect("agents").iter().all(|a| a["voice"].is_null()), "{demo}");

    let refused = [
        (json!({"engine": "piper"}), "voice.engine", "not installed"),
        (json!({"engine": "festival"}), "voice.engine", ""),
        (json!({"engine": "espeak", "name": "xx-no-such-voice"}), "voice.name", "no voice"),
        (json!({"engine": "espeak", "name": "-v"}), "voice.name", ""),
        (json!({"engine": "hibari", "name": "joe"}), "voice.name", "one voice"),
        (json!({"engine": "hibari", "speed": 2.5}), "voice.speed", ""),
        (json!({"engine": "hibari", "pitch": 2}), "voice.pitch", "unknown field"),
        (json!("hibari"), "voice", ""),
    ];
    for (voice, field, words) in refused {
        let (status, body) = app.post("/v1/agents", create(voice.clone())).await;
        assert_error(status, &body, 422, "validation_failed", Some(field));
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{voice}: {message}");
        let (status, body) = app.patch(&format!("/v1/agents/{id}"), json!({"voice": voice})).await;
        assert_error(status, &body, 422, "validation_failed", Some(field));
    }
    let (status, body) = app.get(&format!("/v1/agents/{id}")).await;
    assert_eq!((status, &body["voice"]), (200, &serde_json::Value::Null), "refused changes changed nothing");
    app.stop().await;
}
