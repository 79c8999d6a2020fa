//! The admin API against its own OpenAPI document, tested by schemathesis (PyPI; `scripts/setup.sh --test`
//! makes `data/schemathesis/python`): examples, boundary values and random requests, valid and invalid, on
//! every operation with an admin token, and without one. No answer is a 5xx; every status, content type,
//! header and body is the one the document gives; invalid requests are refused and unauthenticated ones
//! get 401.
//!
//! One check is left out: `positive_data_acceptance` expects every schema-valid request to be accepted,
//! but slotline checks more than a JSON Schema can say (IANA time zones, E.164 numbers, agents that exist),
//! and answers those with a 422 naming the field.
//!
//! The run is bounded in time (90 s, a fixed seed), like the fuzz targets; schemathesis runs with one
//! worker, because Python 3.11's parser fails under its threads ("AST constructor recursion depth
//! mismatch").

use std::sync::Arc;

use slotline::calendar::SystemClock;
use slotline::config::Secret;

use crate::helpers::{setup_file, spawn_app_with, Db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_the_answers_the_openapi_document_gives() {
    let python = setup_file("IT_SCHEMATHESIS_PYTHON", "schemathesis/python");
    let app = spawn_app_with(Db::Sqlite, Arc::new(SystemClock), |c| {
        // LiveKit is configured so its token and webhook operations answer for real (both are local: the
        // token is signed here, the webhook verified here); nothing listens at the URL, and nothing needs to.
        c.livekit.url = Some("ws://127.0.0.1:9".into());
        c.livekit.api_key = Some("APIschemathesis".into());
        c.livekit.api_secret = Some(Secret::new("schemathesis-secret-0123456789abcdef"));
        c.livekit.sync_interval_secs = 0;
    })
    .await;
    app.create_agent("Schema Agent").await;
    let work = tempfile::tempdir().expect("tempdir");
    let authorization = format!("Authorization: Bearer {}", app.admin);
    let output = tokio::process::Command::new(python)
        .current_dir(work.path())
        .args([
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; sys.exit(schemathesis())",
            "run",
            &app.url("/v1/openapi.json"),
            "--header",
            &authorization,
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "50",
            "--max-time",
            "90",
            "--workers",
            "1",
            "--seed",
            "1",
            "--suppress-health-check",
            "all",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .output()
        .await
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "schemathesis ran test cases:\n{report}");
    app.stop().await;
}
