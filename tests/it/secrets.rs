//! A Cal.com key set through the API, or the global one from `CAL_KEY`, never reaches the SQLite file, the
//! logs or an API response, and an agent's key can still be opened with the master key.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use slotline::calendar::calcom_key_context;
use slotline::storage::crypto::MasterKey;

use crate::helpers::{command, free_port, TestDb};

const FIRST_KEY: &str = "cal_live_5ecret0first0key0a1b2c3d4e5f";
const SECOND_KEY: &str = "cal_live_5ecret0second0key09f8e7d6c5b";
/// The global key (`CAL_KEY`), for agents without their own.
const GLOBAL_KEY: &str = "cal_live_5ecret0global0key0aa11bb22cc";

struct Server {
    child: Child,
}

impl Server {
    fn stop(mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "graceful shutdown exits 0: {status}");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let mut logs = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut logs).expect("logs");
        }
        logs
    }
}

#[tokio::test]
#[allow(clippy::too_many_lines, reason = "a scripted scenario, read top to bottom")]
async fn calcom_keys_never_leak_into_the_database_file_logs_or_responses() {
    let db = TestDb::new(crate::helpers::Db::Sqlite).await;
    let data_dir = db.data_dir().to_path_buf();
    let api_port = free_port();
    let metrics_port = free_port();
    let run = |args: &[&str]| {
        let mut cmd = command();
        // The voice pipeline is not what this test is about (and needs the speech model).
        cmd.env("SLOTLINE_DATA_DIR", &data_dir)
            .env("SLOTLINE_LOG__LEVEL", "trace")
            .env("SLOTLINE_VOICE__ENABLED", "false")
            .env("SLOTLINE_SIP__ADDR", "127.0.0.1:0")
            .env("CAL_KEY", GLOBAL_KEY)
            .args(args);
        cmd
    };
    let token = run(&["token", "create", "--name", "ci", "--scope", "admin"]).output().expect("token create");
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).expect("utf8").trim().to_string();
    assert!(token.starts_with("slt_"), "stdout is the token alone: {token}");

    let child = run(&[
        "serve",
        "--api-addr",
        &format!("127.0.0.1:{api_port}"),
        "--metrics-addr",
        &format!("127.0.0.1:{metrics_port}"),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("serve");
    let server = Server { child };
    let base = format!("http://127.0.0.1:{api_port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{base}/readyz")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut responses = String::new();
    let created = http
        .post(format!("{base}/v1/agents"))
        .bearer_auth(&token)
        .json(&json!({"name": "Secret keeper", "timezone": "America/New_York",
                      "calendar": {"kind": "calcom", "api_key": FIRST_KEY, "event_type_slug": "intro"}}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.expect("json");
    responses.push_str(&created.to_string());
    let id = created["id"].as_str().expect("id").to_string();
    let patched = http
        .patch(format!("{base}/v1/agents/{id}"))
        .bearer_auth(&token)
        .json(&json!({"calendar": {"kind": "calcom", "api_key": SECOND_KEY, "event_type_slug": "intro"}}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    responses.push_str(&patched.text().await.expect("body"));
    // An agent without a key of its own uses the global key, and says so without showing it.
    let keyless = http
        .post(format!("{base}/v1/agents"))
        .bearer_auth(&token)
        .json(&json!({"name": "Global keeper", "timezone": "America/New_York",
                      "calendar": {"kind": "calcom", "event_type_slug": "intro"}}))
        .send()
        .await
        .expect("create keyless");
    assert_eq!(keyless.status(), 201);
    let keyless: serde_json::Value = keyless.json().await.expect("json");
    assert_eq!(keyless["calendar"]["api_key_source"], "global", "{keyless}");
    responses.push_str(&keyless.to_string());
    // A rejected request that carries a key must not echo it either.
    let rejected = http
        .post(format!("{base}/v1/agents"))
        .bearer_auth(&token)
        .json(&json!({"name": "Secret keeper", "timezone": "America/New_York",
                      "calendar": {"kind": "calcom", "api_key": FIRST_KEY, "event_type_slug": "intro"}}))
        .send()
        .await
        .expect("duplicate");
    assert_eq!(rejected.status(), 409);
    responses.push_str(&rejected.text().await.expect("body"));
    for path in ["/v1/agents", &format!("/v1/agents/{id}"), "/v1/openapi.json", "/v1/me"] {
        responses.push_str(
            &http
                .get(format!("{base}{path}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("get")
                .text()
                .await
                .expect("body"),
        );
    }
    responses.push_str(
        &http
            .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body"),
    );
    let logs = server.stop();

    assert!(logs.contains("agent created"), "trace logs were captured:\n{logs}");
    assert!(responses.contains("\"api_key_last4\":\"6c5b\""), "{responses}");
    let mut database_bytes = Vec::new();
    for entry in std::fs::read_dir(&data_dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("slotline.db")) {
            database_bytes.extend(std::fs::read(&path).expect("read db file"));
        }
    }
    assert!(database_bytes.len() > 4096, "the database files were read");
    for key in [FIRST_KEY, SECOND_KEY, GLOBAL_KEY] {
        let secret_part = &key["cal_live_".len()..];
        assert!(!contains(&database_bytes, secret_part.as_bytes()), "key found in the SQLite files");
        assert!(!logs.contains(secret_part), "key found in the logs");
        assert!(!responses.contains(secret_part), "key found in an API response");
    }

    // The sealed key is still usable: it opens with the master key for this agent only.
    let store = db.store().await;
    let agent = store.get_agent(id.parse().expect("uuid")).await.expect("get").expect("agent");
    let sealed = agent.calendar.calcom_api_key.expect("sealed key stored");
    let (key, _) = MasterKey::load(None, &data_dir).expect("master key file");
    let opened = key.open(&calcom_key_context(agent.id), &sealed.sealed).expect("opens");
    assert_eq!(opened, SECOND_KEY.as_bytes());
    assert!(key.open(&calcom_key_context(uuid::Uuid::new_v4()), &sealed.sealed).is_err());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
