//! The admin API bounds what it takes on and who it lets in: a request that runs past
//! `api.request_timeout_secs` gets `408`, one beyond `api.max_concurrent_requests` gets `503` with
//! `Retry-After` at once (and the held ones still finish), and tokens can be listed, revoked (refused from
//! the next request on) and made to expire.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use slotline::calendar::SystemClock;
use slotline::storage::{self, ApiTokenRecord, TokenScope};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::helpers::{assert_error, command, spawn_app_with, Db, TestApp};
use crate::on_every_backend;

on_every_backend!(
    a_request_beyond_the_concurrency_limit_is_refused_at_once,
    revoked_and_expired_tokens_are_refused_from_the_next_request
);

/// Opens a request whose body never completes, so it holds its place in the API until the connection
/// closes (the handler waits for the body).
async fn stalled_request(app: &TestApp) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /v1/agents HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\":",
        app.admin
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream
}

/// Reads a whole response from a raw stream (the server closes or answers within the wait).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf))
            .await
            .expect("the server answers the stalled request");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
        if String::from_utf8_lossy(&response).contains("\r\n\r\n{") && response.ends_with(b"}") {
            break;
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_running_past_the_timeout_gets_408() {
    let app = spawn_app_with(Db::Sqlite, Arc::new(SystemClock), |config| {
        config.api.request_timeout_secs = 1;
    })
    .await;
    let mut stalled = stalled_request(&app).await;
    let response = read_response(&mut stalled).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains(r#""code":"request_timeout""#), "the API's error shape: {response}");
    // Quick requests are unaffected.
    let (status, body) = app.get("/v1/agents").await;
    assert_eq!(status, 200, "{body}");
    let timed_out = app.metric("slotline_http_requests_total", &[r#"status="408""#]).await;
    assert_eq!(timed_out, Some(1.0), "the 408 is counted");
    app.stop().await;
}

async fn a_request_beyond_the_concurrency_limit_is_refused_at_once(db: Db) {
    let app = spawn_app_with(db, Arc::new(SystemClock), |config| {
        config.api.max_concurrent_requests = 2;
    })
    .await;
    let held = [stalled_request(&app).await, stalled_request(&app).await];
    // The held requests take their places once the server has read their heads; until then a third request
    // may still get in, so ask until one is refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let response = app.http.get(app.url("/v1/agents")).bearer_auth(&app.admin).send().await.expect("request");
        if response.status() == 503 {
            break response;
        }
        assert_eq!(response.status(), 200);
        assert!(tokio::time::Instant::now() < deadline, "no request was refused while two were held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert_error(503, &body, 503, "overloaded", None);
    assert!(app.metric("slotline_http_requests_total", &[r#"status="503""#]).await.is_some_and(|n| n >= 1.0));

    // Closing the held connections frees their places.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = app.get("/v1/agents").await;
        if status == 200 {
            break;
        }
        assert_error(status, &body, 503, "overloaded", None);
        assert!(tokio::time::Instant::now() < deadline, "the held places were never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    command()
        .env("SLOTLINE_DATA_DIR", app.data_dir())
        .env("SLOTLINE_DATABASE__URL", app.database_url())
        .env("SLOTLINE_LOG__LEVEL", "warn")
        .args(args)
        .output()
        .expect("run slotline")
}

async fn revoked_and_expired_tokens_are_refused_from_the_next_request(db: Db) {
    let app = spawn_app_with(db, Arc::new(SystemClock), |_| {}).await;
    let created = cli(&app, &["token", "create", "--name", "rotating", "--scope", "admin", "--expires-in-days", "7"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let token = String::from_utf8(created.stdout).expect("utf8").trim().to_string();
    let (status, body) = app.call(Method::GET, "/v1/agents", Some(&token), None).await;
    assert_eq!(status, 200, "a fresh token works: {body}");

    let listed = cli(&app, &["token", "list"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listing = String::from_utf8(listed.stdout).expect("utf8");
    assert!(!listing.contains(&token), "the list never shows a token: {listing}");
    let line = listing.lines().find(|l| l.ends_with("rotating")).expect("the new token is listed");
    let expires = (storage::now() + chrono::Duration::days(7)).format("%Y-%m-%d").to_string();
    assert!(line.contains("admin") && line.contains(&expires), "scope and expiry: {line}");
    assert_eq!(listing.lines().filter(|l| l.contains("never")).count(), 2, "the app's own tokens never expire");
    let id = line.split_whitespace().next().expect("id column").to_string();

    let revoked = cli(&app, &["token", "revoke", &id]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let (status, body) = app.call(Method::GET, "/v1/agents", Some(&token), None).await;
    assert_error(status, &body, 401, "unauthorized", None);
    let again = cli(&app, &["token", "revoke", &id]);
    assert_eq!(again.status.code(), Some(2), "an unknown id is a usage error");
    assert!(String::from_utf8_lossy(&again.stderr).contains(&id));

    // A token past its expiry is refused and counted as such.
    let expired = slotline::api::auth::generate_token();
    let now = storage::now();
    let record = ApiTokenRecord {
        id: Uuid::new_v4(),
        name: "expired".into(),
        scope: TokenScope::Admin,
        token_hash: expired.hash,
        created_at: now - chrono::Duration::days(2),
        expires_at: Some(now - chrono::Duration::seconds(1)),
    };
    app.store.insert_token(&record).await.expect("insert");
    let (status, body) = app.call(Method::GET, "/v1/agents", Some(&expired.secret), None).await;
    assert_error(status, &body, 401, "unauthorized", None);
    assert_eq!(body["error"]["message"], "expired bearer token");
    let counted = app.metric("slotline_api_auth_failures_total", &[r#"reason="expired""#]).await;
    assert_eq!(counted, Some(1.0));
    app.stop().await;
}
