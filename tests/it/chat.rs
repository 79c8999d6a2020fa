//! `slotline chat` as an admin or a script uses it: the real binary, fed a conversation on stdin, books
//! into the demo agent's calendar in the same database a running server reads.

use std::io::Write as _;
use std::process::Stdio;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_error, command, spawn_app, Db};
use crate::on_every_backend;

async fn chat_books_a_demo_slot_that_the_api_lists(db: Db) {
    let app = spawn_app(db).await;
    let script =
        "I'd like to schedule an appointment\nthe first one\nJane Doe\nj a n e at example dot com\nyes\nno thanks\n";
    let mut child = command()
        .current_dir(app.data_dir())
        .env("SLOTLINE_DATA_DIR", app.data_dir())
        .env("SLOTLINE_DATABASE__URL", app.database_url())
        .args(["chat", "--agent", "Demo Agent", "--as", "+1 (555) 010-2000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run slotline chat");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write script");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("chat ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("agent: Hello, thanks for calling"), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("# tool: list_available_slots(range_days=14) -> ok")), "{stdout}");
    assert!(
        lines.iter().any(|l| l.starts_with("# tool: schedule_appointment(")
            && l.contains("-> ok")
            && l.contains("jane@example.com")),
        "{stdout}"
    );
    assert!(stdout.contains("agent: You're all set, Jane!"), "{stdout}");
    assert_eq!(lines.last(), Some(&"# hangup"), "the goodbye ends the chat: {stdout}");

    let (status, bookings) = app.get("/v1/bookings").await;
    assert_eq!(status, 200, "{bookings}");
    let items = bookings["bookings"].as_array().or_else(|| bookings.as_array()).expect("a list of bookings");
    assert_eq!(items.len(), 1, "{bookings}");
    let booking = &items[0];
    assert_eq!(booking["attendee_name"], "Jane Doe");
    assert_eq!(booking["attendee_email"], "jane@example.com");
    assert_eq!(booking["attendee_phone"], "+15550102000", "--as is normalised to E.164");
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["calendar_kind"], "demo");
    assert!(booking["source_call_id"].as_str().is_some_and(|id| id.starts_with("chat-")), "{booking}");
    let spoken = stdout.lines().find(|l| l.starts_with("agent: You're all set")).unwrap_or_default().to_string();
    let start: chrono::DateTime<chrono::Utc> = booking["start_at"].as_str().expect("start").parse().expect("instant");
    let local = start.with_timezone(&chrono_tz::America::New_York);
    let said = slotline::agent::speak::time(local.time());
    assert!(
        spoken.contains(&format!("at {said}")),
        "the agent said the booked time ({said}) in the agent's zone: {spoken}"
    );
    app.stop().await;
}

async fn chat_names_unknown_agents_and_bad_numbers(db: Db) {
    let app = spawn_app(db).await;
    let run = |args: &[&str]| {
        command()
            .current_dir(app.data_dir())
            .env("SLOTLINE_DATA_DIR", app.data_dir())
            .env("SLOTLINE_DATABASE__URL", app.database_url())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run slotline chat")
    };
    let output = run(&["chat", "--agent", "Nobody"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no agent `Nobody`") && stderr.contains("Demo Agent"), "{stderr}");
    let output = run(&["chat", "--agent", "Demo Agent", "--as", "call me maybe"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--as"));
    let output = run(&["chat", "--agent", "Demo Agent"]);
    assert!(output.status.success(), "end of input hangs up cleanly");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("agent: Hello"));
    app.stop().await;
}

/// The chat API the console's "Try the agent" panel uses: the same conversation over HTTP, one turn per
/// request, admin only.
async fn chat_over_http_books_and_hangs_up(db: Db) {
    let app = spawn_app(db).await;
    let (_, agents) = app.get("/v1/agents").await;
    let agent = agents["agents"][0]["id"].as_str().expect("demo agent").to_string();
    let start = format!("/v1/agents/{agent}/chats");
    let (status, body) = app.call(Method::POST, &start, Some(&app.analyst.clone()), Some(json!({}))).await;
    assert_error(status, &body, 403, "forbidden", None);
    let (status, body) = app.post(&start, json!({"caller": "call me"})).await;
    assert_error(status, &body, 422, "validation_failed", Some("caller"));
    let (status, started) = app.post(&start, json!({"caller": "+1 (555) 010-2000"})).await;
    assert_eq!(status, 201, "{started}");
    assert!(started["say"][0].as_str().is_some_and(|s| s.starts_with("Hello, thanks for calling")), "{started}");
    let chat = started["chat_id"].as_str().expect("chat id").to_string();
    let turns = format!("/v1/chats/{chat}/turns");
    // Another admin token cannot go on with (or end) this chat.
    let other = crate::helpers::insert_token(app.store.as_ref(), slotline::storage::TokenScope::Admin).await;
    let (status, body) = app.call(Method::POST, &turns, Some(&other), Some(json!({"text": "hello"}))).await;
    assert_error(status, &body, 404, "not_found", None);
    let (status, _) = app.call(Method::DELETE, &format!("/v1/chats/{chat}"), Some(&other), None).await;
    assert_eq!(status, 404);
    let mut last = Value::Null;
    for text in
        ["I'd like to schedule an appointment", "the first one", "Jane Doe", "j a n e at example dot com", "yes"]
    {
        let (status, reply) = app.post(&turns, json!({"text": text})).await;
        assert_eq!(status, 200, "{text}: {reply}");
        last = reply;
    }
    let booked =
        last["tool_calls"].as_array().and_then(|calls| calls.iter().find(|c| c["name"] == "schedule_appointment"));
    assert_eq!(booked.map(|c| &c["outcome"]), Some(&json!("ok")), "{last}");
    assert!(last["say"].to_string().contains("You're all set, Jane"), "{last}");
    let (_, bookings) = app.get("/v1/bookings").await;
    assert_eq!(bookings["bookings"][0]["attendee_phone"], "+15550102000", "the caller's number, normalised");
    let (status, reply) = app.post(&turns, json!({"text": "no thanks"})).await;
    assert_eq!((status, reply["ended"].as_bool()), (200, Some(true)), "{reply}");
    let (status, body) = app.post(&turns, json!({"text": "hello?"})).await;
    assert_error(status, &body, 404, "not_found", None);
    let (status, _) = app.delete(&format!("/v1/chats/{chat}")).await;
    assert_eq!(status, 404, "a hung-up chat is gone");
    app.stop().await;
}

on_every_backend!(
    chat_books_a_demo_slot_that_the_api_lists,
    chat_names_unknown_agents_and_bad_numbers,
    chat_over_http_books_and_hangs_up
);
