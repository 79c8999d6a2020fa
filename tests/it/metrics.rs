//! `/metrics` on its own listener, checked by Prometheus' own linter (`promtool check metrics`).

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::helpers::{spawn_app, Db};

crate::on_every_backend!(metrics_pass_promtool);

async fn metrics_pass_promtool(db: Db) {
    let app = spawn_app(db).await;
    app.get("/v1/agents").await;
    app.call(reqwest::Method::GET, "/v1/agents", None, None).await;
    let agent = app.create_agent("Metered").await;
    app.get(&format!("/v1/agents/{agent}")).await;

    let response = app.http.get(&app.metrics_url).send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/plain"));
    let text = response.text().await.expect("body");
    for needle in [
        "slotline_build_info{version=\"",
        "slotline_http_requests_total{method=\"GET\",route=\"/v1/agents\",status=\"200\"}",
        "slotline_http_requests_total{method=\"GET\",route=\"/v1/agents\",status=\"401\"}",
        "slotline_http_requests_total{method=\"POST\",route=\"/v1/agents\",status=\"201\"}",
        "slotline_http_requests_total{method=\"GET\",route=\"/v1/agents/{id}\",status=\"200\"}",
        "slotline_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/agents/{id}\",le=\"0.005\"}",
        "slotline_api_auth_failures_total{reason=\"missing\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains(&agent), "ids never become label values");

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package `prometheus`; .ci/run installs it)");
    promtool.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let output = promtool.wait_with_output().expect("promtool");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    app.stop().await;
}
