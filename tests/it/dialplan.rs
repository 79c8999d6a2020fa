//! `slotline dialplan check|apply` with the shipped example and broken files.

use std::path::PathBuf;

use slotline::storage::Store;

use crate::helpers::{command, test_config, Db, TestDb};

crate::on_every_backend!(example_applies_idempotently, broken_files_get_line_errors_and_change_nothing);

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dialplans/example.toml")
}

fn slotline(db: &TestDb, args: &[&str]) -> std::process::Output {
    command()
        .env("SLOTLINE_DATA_DIR", db.data_dir())
        .env("SLOTLINE_DATABASE__URL", &db.url)
        .args(args)
        .output()
        .expect("run slotline")
}

async fn routing_state(store: &dyn Store) -> (Vec<(String, uuid::Uuid)>, Vec<(String, uuid::Uuid)>) {
    let numbers = store.list_numbers(None).await.expect("numbers").into_iter().map(|n| (n.e164, n.agent_id)).collect();
    let prefixes = store.list_prefixes().await.expect("prefixes").into_iter().map(|p| (p.prefix, p.agent_id)).collect();
    (numbers, prefixes)
}

async fn example_applies_idempotently(db: Db) {
    let test_db = TestDb::new(db).await;
    let example = example();
    let example = example.to_str().expect("path");
    let check = slotline(&test_db, &["dialplan", "check", example]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("ok, 2 route(s)"));

    let first = slotline(&test_db, &["dialplan", "apply", example]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied 1 number(s) and 1 prefix(es)"));
    let store = slotline::app::open_store(&test_config(&test_db)).await.expect("store");
    let after_first = routing_state(store.as_ref()).await;
    let demo = store.find_agent_by_name("Demo Agent").await.expect("find").expect("demo agent");
    assert_eq!(after_first.0, vec![("+15550100000".to_string(), demo.id)]);
    assert_eq!(after_first.1, vec![("+155501001".to_string(), demo.id)]);
    assert_eq!(store.route_number("+15550100142").await.expect("route"), Some(demo.id));

    let second = slotline(&test_db, &["dialplan", "apply", example]);
    assert!(second.status.success());
    assert_eq!(routing_state(store.as_ref()).await, after_first, "applying twice leaves the same state");
}

async fn broken_files_get_line_errors_and_change_nothing(db: Db) {
    let test_db = TestDb::new(db).await;
    let file = test_db.data_dir().join("broken.toml");
    std::fs::write(
        &file,
        "[[route]]\nnumber = \"+15550100100\"\nagent = \"Demo Agent\"\n\n[[route]]\nnumber = \"call me\"\nagent = \"Demo Agent\"\n\n[[route]]\nnumber = \"+15550100200\"\nagent = \"Nobody\"\n",
    )
    .expect("write");
    let path = file.to_str().expect("path");
    let output = slotline(&test_db, &["dialplan", "apply", path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{path}:6:10: number `call me`")), "{stderr}");

    // Fix the syntax error: the unknown agent is reported at its line, and still nothing is written.
    std::fs::write(&file, std::fs::read_to_string(&file).expect("read").replace("call me", "+15550100300"))
        .expect("write");
    let output = slotline(&test_db, &["dialplan", "apply", path]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{path}:11:9: no agent named `Nobody`")), "{stderr}");
    let store = slotline::app::open_store(&test_config(&test_db)).await.expect("store");
    let (numbers, prefixes) = routing_state(store.as_ref()).await;
    assert_eq!(numbers.len(), 1, "only the demo number: {numbers:?}");
    assert!(prefixes.is_empty());

    let output = slotline(&test_db, &["dialplan", "check", "/nonexistent/dialplan.toml"]);
    assert_eq!(output.status.code(), Some(2));
    let unparsable = test_db.data_dir().join("unparsable.toml");
    std::fs::write(&unparsable, "[[route]\nnumber = 1\n").expect("write");
    let output = slotline(&test_db, &["dialplan", "check", unparsable.to_str().expect("path")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("unparsable.toml:1:"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
