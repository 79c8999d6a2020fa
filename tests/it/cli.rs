//! The binary's contract with operators: invalid configuration exits 2 naming the setting.

use crate::helpers::command;

#[test]
fn invalid_settings_exit_2_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &str, &str); 5] = [
        ("SLOTLINE_API__ADDR", "localhost-ish", "api.addr"),
        ("SLOTLINE_METRICS__ADDR", "1.2.3.4", "metrics.addr"),
        ("SLOTLINE_DATABASE__URL", "mysql://db", "database.url"),
        ("SLOTLINE_MASTER_KEY", "too-short", "master_key"),
        ("SLOTLINE_LOG__FORMAT", "xml", "log.format"),
    ];
    for (var, value, setting) in cases {
        let output = command().current_dir(dir.path()).env(var, value).arg("migrate").output().expect("run slotline");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(&format!("`{setting}`")), "{var}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one clear error: {stderr}");
        assert!(!stderr.contains(value) || setting != "master_key", "the bad key is not echoed: {stderr}");
    }
    let output = command().current_dir(dir.path()).args(["--config", "missing.toml", "migrate"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.toml"));
    std::fs::write(dir.path().join("slotline.toml"), "[api]\nadress = \"127.0.0.1:1\"\n").expect("write");
    let output = command().current_dir(dir.path()).arg("migrate").output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`api.adress`"));
}

#[test]
fn migrate_creates_the_sqlite_database_in_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = command().current_dir(dir.path()).arg("migrate").output().expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(dir.path().join("data/slotline.db").exists(), "default sqlite://./data/slotline.db");
    let output = command().current_dir(dir.path()).arg("migrate").output().expect("run again");
    assert!(output.status.success());
}
