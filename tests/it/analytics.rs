//! Booking analytics as an analyst gets them: the metrics table of `docs/metrics.md` and the catalogue in
//! `src/metrics.rs` agree; the Grafana dashboards are well-formed and name only metrics that exist;
//! promtool accepts the rules and their unit tests; and a real Prometheus (Debian `prometheus`) scraping a
//! live slotline while a scripted mix of conversations runs answers every dashboard query and recording
//! rule with data, with the booking success ratio the script implies.
//!
//! The live test runs on SQLite only: the metrics do not depend on the backend, and a Prometheus per
//! backend would double the slowest test of this file for nothing.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use slotline::agent::dialog::{self, Conversation, UserTurn};
use slotline::calendar::{CalendarRegistry, SystemClock};
use slotline::call::WayIn;
use slotline::config::Config;
use slotline::storage::crypto::MasterKey;

use crate::calcom_double::{CalcomDouble, DoubleConfig};
use crate::helpers::{free_port, spawn_app_with, Db, TestApp};
use crate::speech::model_path;
use crate::voice_call::{place_call, summary};
use crate::voice_caller::Cue;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every metric name `src/metrics.rs` declares (`pub const NAME: &str = "slotline_...";`).
fn catalogue() -> BTreeSet<String> {
    let names: BTreeSet<String> = read("src/metrics.rs")
        .lines()
        .filter(|l| l.starts_with("pub const ") && l.contains(": &str = \"slotline_"))
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        .collect();
    assert!(names.len() > 40, "the catalogue was read: {names:?}");
    names
}

/// The names of the recording rules in `prometheus/recording_rules.yml`.
fn recorded() -> BTreeSet<String> {
    let names: BTreeSet<String> = read("prometheus/recording_rules.yml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:").map(|n| n.trim().to_string()))
        .collect();
    assert!(!names.is_empty(), "the recording rules were read");
    names
}

/// The metric names a PromQL expression mentions: identifiers starting `slotline_` or holding `:slotline_`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    let mut in_string = false;
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            in_string = !in_string;
            word.clear();
            continue;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if word.starts_with("slotline_") || word.contains(":slotline_") {
            names.push(word.clone());
        }
        word.clear();
    }
    names
}

/// Whether `name` is in the catalogue (histograms as `_bucket`, `_sum`, `_count` too) or is a recording rule.
fn known(name: &str, catalogue: &BTreeSet<String>, recorded: &BTreeSet<String>) -> bool {
    catalogue.contains(name)
        || recorded.contains(name)
        || ["_bucket", "_sum", "_count"]
            .iter()
            .any(|s| name.strip_suffix(s).is_some_and(|base| catalogue.contains(base) && base.ends_with("_seconds")))
}

#[test]
fn the_metrics_table_matches_the_catalogue() {
    let page = read("docs/metrics.md");
    let section = page.split("\n## Metrics\n").nth(1).expect("docs/metrics.md has a Metrics section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let table: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `slotline_"))
        .filter_map(|rest| rest.split('`').next().map(|n| format!("slotline_{n}")))
        .collect();
    let catalogue = catalogue();
    let undocumented: Vec<_> = catalogue.difference(&table).collect();
    let unknown: Vec<_> = table.difference(&catalogue).collect();
    assert!(undocumented.is_empty(), "metrics missing from the table in docs/metrics.md: {undocumented:?}");
    assert!(unknown.is_empty(), "docs/metrics.md lists metrics src/metrics.rs does not declare: {unknown:?}");
}

/// Every `$name`, `${name}` and `[[name]]` in `text`, without Grafana's own `$__` variables.
fn variables_used(text: &str, used: &mut BTreeSet<String>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let name_at = match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => i + 2,
            b'$' => i + 1,
            b'[' if bytes.get(i + 1) == Some(&b'[') => i + 2,
            _ => {
                i += 1;
                continue;
            }
        };
        let name: String = text[name_at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() && !name.starts_with("__") {
            used.insert(name.clone());
        }
        i = name_at + name.len().max(1);
    }
}

/// Every string in `value`, with the key it sits under.
fn strings<'a>(value: &'a Value, key: &str, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((key.to_string(), s)),
        Value::Array(items) => items.iter().for_each(|v| strings(v, key, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| strings(v, k, out)),
        _ => {}
    }
}

/// The dashboards: file name and parsed JSON.
fn dashboards() -> Vec<(String, Value)> {
    let mut boards: Vec<(String, Value)> = std::fs::read_dir(repo("grafana/dashboards"))
        .expect("grafana/dashboards")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read dashboard");
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), json)
        })
        .collect();
    boards.sort_by(|a, b| a.0.cmp(&b.0));
    boards
}

/// Panels, rows' panels included.
fn panels(board: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in board["panels"].as_array().into_iter().flatten() {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

/// `(dashboard, panel title, expr)` of every query of every panel.
fn panel_queries() -> Vec<(String, String, String)> {
    let mut queries = Vec::new();
    for (file, board) in dashboards() {
        for panel in panels(&board) {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let title = panel["title"].as_str().unwrap_or_default().to_string();
                queries.push((file.clone(), title, target["expr"].as_str().unwrap_or_default().to_string()));
            }
        }
    }
    queries
}

#[test]
fn dashboards_are_well_formed_and_name_only_known_metrics() {
    let (catalogue, recorded) = (catalogue(), recorded());
    let boards = dashboards();
    let files: BTreeSet<&str> = boards.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(files, BTreeSet::from(["bookings.json", "calendars.json", "gateway.json", "voice.json"]));
    let datasource = json!({"type": "prometheus", "uid": "${datasource}"});
    for (file, board) in &boards {
        let variables = board["templating"]["list"].as_array().unwrap_or_else(|| panic!("{file}: templating.list"));
        let defined: BTreeSet<String> =
            variables.iter().filter_map(|v| v["name"].as_str().map(str::to_string)).collect();
        assert!(
            variables
                .iter()
                .any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"),
            "{file}: a `datasource` variable of type datasource picks the Prometheus"
        );
        let mut ids = HashSet::new();
        let mut used = BTreeSet::new();
        for panel in panels(board) {
            let title = panel["title"].as_str().unwrap_or_default();
            let id = panel["id"].as_u64().unwrap_or_else(|| panic!("{file}: panel {title} has a numeric id"));
            assert!(ids.insert(id), "{file}: panel id {id} is used twice");
            assert!(!title.is_empty(), "{file}: panel {id} has a title");
            assert!(panel["description"].as_str().is_some_and(|d| !d.is_empty()), "{file}: {title} says what it shows");
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(panel["datasource"], datasource, "{file}: {title}'s datasource is the variable");
            let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{file}: {title} has targets"));
            assert!(!targets.is_empty(), "{file}: {title} has a query");
            for target in targets {
                assert_eq!(target["datasource"], datasource, "{file}: {title}'s queries use the variable");
                let expr = target["expr"].as_str().unwrap_or_default();
                let names = metric_names(expr);
                assert!(!names.is_empty(), "{file}: {title}: `{expr}` names a slotline metric");
                for name in names {
                    assert!(
                        known(&name, &catalogue, &recorded),
                        "{file}: {title} names `{name}`, which is not exported"
                    );
                }
            }
            let mut texts = Vec::new();
            strings(panel, "", &mut texts);
            texts.iter().for_each(|(_, s)| variables_used(s, &mut used));
        }
        for variable in variables.iter().filter(|v| v["type"] == "query") {
            let name = variable["name"].as_str().unwrap_or_default();
            assert_eq!(variable["datasource"], datasource, "{file}: variable {name} queries the datasource variable");
            let query = variable["query"]["query"].as_str().or(variable["definition"].as_str()).unwrap_or_default();
            for metric in metric_names(query) {
                assert!(known(&metric, &catalogue, &recorded), "{file}: variable {name} reads unknown `{metric}`");
            }
            let mut own = BTreeSet::new();
            variables_used(query, &mut own);
            used.extend(own);
        }
        let undefined: Vec<_> = used.difference(&defined).collect();
        assert!(undefined.is_empty(), "{file}: variables used but not defined: {undefined:?}");
        let mut texts = Vec::new();
        strings(board, "", &mut texts);
        for (key, value) in texts.iter().filter(|(k, _)| k == "uid") {
            assert!(
                *value == "${datasource}" || Some(*value) == board["uid"].as_str(),
                "{file}: `{key}: {value}` is a hard-coded uid"
            );
        }
    }
    let provisioning = read("grafana/provisioning/dashboards/slotline.yml");
    assert!(provisioning.contains("path:"), "the dashboard provider points at the dashboards folder");
    let datasource_file = read("grafana/provisioning/datasources/prometheus.yml");
    assert!(datasource_file.contains("type: prometheus"), "the provisioned datasource is a Prometheus");
}

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package `prometheus`; scripts/setup.sh --test installs it)");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write to promtool");
    }
    drop(input);
    let output = child.wait_with_output().expect("promtool ran");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn promtool_checks_the_rules_and_runs_their_unit_tests() {
    let (ok, out) = promtool(&["check", "rules", "prometheus/recording_rules.yml", "prometheus/alerts.yml"], None);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = promtool(&["check", "config", "prometheus/prometheus.yml"], None);
    assert!(ok, "promtool check config:\n{out}");
    let (ok, out) = promtool(&["test", "rules", "prometheus/tests/alerts_test.yml"], None);
    assert!(ok, "promtool test rules:\n{out}");
    let alerts: BTreeSet<String> = read("prometheus/alerts.yml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:").map(|n| n.trim().to_string()))
        .collect();
    let tests = read("prometheus/tests/alerts_test.yml");
    let docs = read("docs/analytics.md");
    for alert in &alerts {
        let cases: Vec<&str> = tests.split("- alertname: ").skip(1).filter(|c| c.starts_with(alert.as_str())).collect();
        assert!(cases.iter().any(|c| c.contains("exp_labels")), "{alert} has a firing test");
        assert!(cases.iter().any(|c| c.contains("exp_alerts: []")), "{alert} has a not-firing test");
        assert!(docs.contains(&format!("### {alert}")), "{alert} has a runbook paragraph in docs/analytics.md");
    }
    assert_eq!(alerts.len(), 8, "{alerts:?}");
}

/// A Prometheus server on a free loopback port with its data in a temp dir; killed when dropped.
struct Prometheus {
    child: std::process::Child,
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus with the repository's example configuration, scraping `target` every second and
    /// evaluating the rules every second.
    async fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = read("prometheus/prometheus.yml")
            .replace("127.0.0.1:9464", target)
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
        assert!(config.contains(target), "the example scrapes 127.0.0.1:9464");
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write config");
        for rules in ["recording_rules.yml", "alerts.yml"] {
            std::fs::copy(repo(&format!("prometheus/{rules}")), dir.path().join(rules)).expect("copy rules");
        }
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (Debian package `prometheus`; scripts/setup.sh --test installs it)");
        let prometheus =
            Self { child, url: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new(), _dir: dir };
        let ready = format!("{}/-/ready", prometheus.url);
        prometheus
            .wait("Prometheus to be ready", || async {
                prometheus.http.get(&ready).send().await.is_ok_and(|r| r.status().is_success()).then_some(())
            })
            .await;
        prometheus
    }

    /// Polls `check` until it returns a value; fails after a generous minute.
    async fn wait<T, F: std::future::Future<Output = Option<T>>>(&self, what: &str, check: impl Fn() -> F) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(value) = check().await {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// An instant query: `Err(message)` when Prometheus rejects it, else the samples as (labels, value).
    async fn query(&self, expr: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>, String> {
        let response = self
            .http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{body}"));
        }
        let result = body["data"]["result"].as_array().ok_or_else(|| format!("not a vector: {body}"))?;
        Ok(result
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                    .unwrap_or_default();
                let value = s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
                (labels, value)
            })
            .collect())
    }

    /// Fails at once when Prometheus rejects `expr`, and after a minute when it still returns no number:
    /// an empty answer, or only NaN (a quantile or ratio over series that never moved), is no data.
    async fn wait_data(&self, expr: &str, what: &str) {
        self.wait(&format!("{what}: `{expr}` to return a number"), || async {
            let samples = self.query(expr).await.unwrap_or_else(|e| panic!("{what}: `{expr}` is rejected: {e}"));
            samples.iter().any(|(_, value)| value.is_finite()).then_some(())
        })
        .await;
    }

    /// Fails at once when Prometheus rejects `expr`, and after a minute when it still returns no series
    /// (NaN counts: for panels over events the mix does not cause).
    async fn wait_series(&self, expr: &str, what: &str) {
        self.wait(&format!("{what}: `{expr}` to return a series"), || async {
            let samples = self.query(expr).await.unwrap_or_else(|e| panic!("{what}: `{expr}` is rejected: {e}"));
            (!samples.is_empty()).then_some(())
        })
        .await;
    }

    /// The one value of `expr` once it is above zero.
    async fn wait_positive(&self, expr: &str) -> f64 {
        self.wait(&format!("`{expr}` to be above zero"), || async {
            match self.query(expr).await.as_deref() {
                Ok([(_, value)]) if *value > 0.0 => Some(*value),
                _ => None,
            }
        })
        .await
    }

    /// The one value of `expr`, once it is `want` (a missing series never reads as a value).
    async fn wait_value(&self, expr: &str, want: f64) {
        let last = std::sync::Mutex::new(None);
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let result = self.query(expr).await;
                if let Ok([(_, value)]) = result.as_deref() {
                    if (value - want).abs() < 1e-9 {
                        return;
                    }
                }
                *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
        .await;
        assert!(found.is_ok(), "`{expr}` never became {want}; last answer: {:?}", last.into_inner());
    }
}

/// Grafana's variables as an analyst with every agent and way in selected sees them.
fn substitute(expr: &str, agent: &str, way_in: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__range", "10m")
        .replace("$__interval", "15s")
        .replace("$agent", agent)
        .replace("$way_in", way_in)
        .replace("$provider", ".*")
}

/// Says `lines` one turn each; the conversation must still be going after each one except, when
/// `ends`, the last.
async fn say(conversation: &mut Conversation, lines: &[&str], ends: bool) -> Vec<String> {
    let mut said = vec![conversation.greet().await.say];
    for (i, line) in lines.iter().enumerate() {
        let reply = conversation.turn(UserTurn::text(*line)).await;
        said.push(reply.say.clone());
        let last = i + 1 == lines.len();
        assert_eq!(reply.end_call, ends && last, "after `{line}` the agent said {said:#?}");
    }
    said
}

const DEMO: &str = "Demo Agent";
const BROKEN: &str = "Broken Cal";
const CLINIC: &str = "Cal Clinic";

/// Panels over events the mix does not cause, which may show "no data" (NaN) after it: no Cal.com request
/// waits for the client-side rate limit (120 a minute per key, a few in the mix).
const NOTHING_TO_SHOW_IN_THE_MIX: [(&str, &str); 1] = [("calendars.json", "Rate-limit waits")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines, reason = "a scripted scenario, read top to bottom")]
async fn prometheus_answers_every_panel_and_rule_during_a_scripted_mix() {
    let double = CalcomDouble::start(DoubleConfig::default()).await;
    let base = double.base_url.clone();
    let app = spawn_app_with(Db::Sqlite, Arc::new(SystemClock), move |c| {
        c.calcom.base_url = base;
        c.voice.enabled = true;
        c.speech.model_path = Some(model_path());
    })
    .await;
    for (name, key) in [(BROKEN, "cal_live_rejected_key_0002"), (CLINIC, "cal_live_double_key_0001")] {
        let (status, body) = app
            .post(
                "/v1/agents",
                json!({"name": name, "timezone": "Europe/Berlin",
                       "calendar": {"kind": "calcom", "api_key": key, "event_type_slug": "checkup"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let target = app.metrics_url.trim_start_matches("http://").trim_end_matches("/metrics").to_string();
    let prometheus = Prometheus::start(&target).await;

    // Every agent's funnel and outcome series exist at zero before the first conversation, so that
    // rates over them count the conversations to come.
    let zeros = format!(r#"count(slotline_conversations_total{{agent=~"{DEMO}|{BROKEN}"}} == 0)"#);
    prometheus.wait_value(&zeros, 60.0).await;

    run_the_mix(&app, &double).await;
    for (agent, outcome, count) in [
        (DEMO, "booked", 2.0),
        (DEMO, "slot_taken", 1.0),
        (DEMO, "caller_hung_up", 1.0),
        (DEMO, "not_understood", 1.0),
        (DEMO, "cancelled", 1.0),
        (BROKEN, "calendar_error", 1.0),
        (CLINIC, "booked", 1.0),
    ] {
        let labels = [&format!("agent=\"{agent}\"")[..], "way_in=\"chat\"", &format!("outcome=\"{outcome}\"")[..]];
        assert_eq!(
            app.metric("slotline_conversations_total", &labels).await,
            Some(count),
            "{agent} had {count} {outcome} conversations"
        );
    }
    // A spoken call: the caller talks over the greeting and says goodbye; the agent hangs up. It gives
    // the voice panels a turn, a barge-in, speech engine timings and RTP to measure.
    let log = place_call(&app, &[("no thanks, goodbye", Cue::WhileAgentSpeaks(Duration::from_millis(1500)))]).await;
    assert!(log.error.is_none() && log.sipp_code == 0, "the spoken call: {}", summary(&log));

    // Prometheus has scraped the end of the mix: 6 chat conversations of the demo agent, 1 call.
    let finished = format!(r#"sum(slotline_conversations_total{{agent="{DEMO}",way_in="chat"}})"#);
    prometheus.wait_value(&finished, 6.0).await;
    prometheus.wait_value(r#"sum(slotline_calls_ended_total{reason="agent_bye"})"#, 1.0).await;
    prometheus.wait_value(&format!(r#"sum(slotline_conversations_total{{agent="{DEMO}",way_in="sip"}})"#), 1.0).await;

    // The Cal.com latency series were born in the mix with their first counts, and a rate needs them to
    // grow after Prometheus first saw them: once it has, the clinic lists its slots once more.
    prometheus
        .wait_data(r#"slotline_calcom_http_request_duration_seconds_count{endpoint="/v2/slots"}"#, "Cal.com latency")
        .await;
    let clinic = app.store.find_agent_by_name(CLINIC).await.expect("store").expect("the clinic agent");
    let (status, body) = app.get(&format!("/v1/agents/{}/slots?range_days=7", clinic.id)).await;
    assert_eq!(status, 200, "{body}");

    // The voice and Cal.com panels show what happened, not only that their series exist.
    for (file, title) in [
        ("voice.json", "Barge-ins and no-input"),
        ("voice.json", "Turn gap parts p95"),
        ("voice.json", "STT and TTS latency p50"),
        ("calendars.json", "Cal.com 429s"),
        ("calendars.json", "Cal.com latency p95"),
    ] {
        let (_, _, expr) = panel_queries()
            .into_iter()
            .find(|(f, t, _)| f == file && t == title)
            .unwrap_or_else(|| panic!("{file} has the panel {title}"));
        // Over ten minutes: the 429 came early in the mix, before the spoken call.
        let expr = format!("max({})", substitute(&expr.replace("$__rate_interval", "10m"), ".*", ".*"));
        let value = prometheus.wait_positive(&expr).await;
        eprintln!("{file}: {title}: {value}");
    }
    prometheus.wait_positive(r#"max(part:slotline_turn_latency_seconds:p95_5m{part="total"})"#).await;

    // The success ratio is 2 booked of 6 conversations for the demo agent, 0 of 1 for the broken one: in
    // the recording rules and in the Bookings dashboard's own query.
    for window in ["5m", "1h", "1d"] {
        let rule = format!("agent_way_in:slotline_booking_success:ratio_rate{window}");
        prometheus.wait_value(&format!(r#"{rule}{{agent="{DEMO}",way_in="chat"}}"#), 2.0 / 6.0).await;
        prometheus.wait_value(&format!(r#"{rule}{{agent="{BROKEN}",way_in="chat"}}"#), 0.0).await;
    }
    let (_, _, ratio) = panel_queries()
        .into_iter()
        .find(|(file, title, _)| file == "bookings.json" && title == "Booking success ratio")
        .expect("the Bookings dashboard has the success ratio");
    prometheus.wait_value(&substitute(&ratio, DEMO, "chat"), 2.0 / 6.0).await;

    // The funnel counts each step once per conversation: the taken slot was offered twice, chosen once.
    for (step, count) in
        [("answered", 6.0), ("intent", 4.0), ("offered", 4.0), ("chosen", 3.0), ("details", 3.0), ("booked", 2.0)]
    {
        let expr = format!(r#"sum(slotline_booking_funnel_total{{agent="{DEMO}",way_in="chat",step="{step}"}})"#);
        prometheus.wait_value(&expr, count).await;
    }

    // Every recording rule and every panel query, with the variables at "All", is valid and has data.
    // (A rate needs two scrapes of a series: a query with none yet is asked again until it has data.)
    for rule in recorded() {
        prometheus.wait_data(&rule, &format!("recording rule {rule}")).await;
    }
    for (file, title, expr) in panel_queries() {
        let what = format!("{file}: {title}");
        if NOTHING_TO_SHOW_IN_THE_MIX.contains(&(file.as_str(), title.as_str())) {
            prometheus.wait_series(&substitute(&expr, ".*", ".*"), &what).await;
        } else {
            prometheus.wait_data(&substitute(&expr, ".*", ".*"), &what).await;
        }
    }
    for (file, board) in dashboards() {
        for variable in board["templating"]["list"].as_array().into_iter().flatten().filter(|v| v["type"] == "query") {
            let query = variable["query"]["query"].as_str().unwrap_or_default();
            let inner = query.trim_start_matches("label_values(").trim_end_matches(')');
            let (metric, label) = inner.split_once(',').expect("label_values(metric, label)");
            let values = prometheus.query(&format!("count by ({}) ({})", label.trim(), metric.trim())).await;
            assert!(values.is_ok_and(|v| !v.is_empty()), "{file}: variable {} has values", variable["name"]);
        }
    }

    // The live scrape, funnel included, passes Prometheus' own linter.
    let scrape = app.http.get(&app.metrics_url).send().await.expect("scrape").text().await.expect("text");
    assert!(!scrape.contains("jane@example.com") && !scrape.contains("+15550102000"), "no caller data in labels");
    let (ok, out) = promtool(&["check", "metrics"], Some(&scrape));
    assert!(ok, "promtool check metrics:\n{out}");
    drop(prometheus);
    app.stop().await;
}

/// The scripted conversations through the text path (the dialog engine, tools and calendars that calls
/// use) and the scheduling API: two bookings, a slot taken meanwhile, a caller who hangs up, a caller
/// who cannot be understood, a cancellation by phone, a calendar that fails, and a cancellation and a
/// reschedule through the API.
async fn run_the_mix(app: &TestApp, double: &CalcomDouble) {
    let mut config = Config::default();
    config.calcom.base_url = double.base_url.to_string();
    let (master_key, _) = MasterKey::load(None, app.data_dir()).expect("the app's key file");
    let registry =
        CalendarRegistry::new(app.store.clone(), Arc::new(master_key), Arc::new(SystemClock), &config.calcom);
    let agent = |name: &'static str| async move {
        app.store.find_agent_by_name(name).await.expect("store").unwrap_or_else(|| panic!("agent {name}"))
    };
    let (demo, broken, clinic) = (agent(DEMO).await, agent(BROKEN).await, agent(CLINIC).await);
    let start = |agent: &slotline::storage::AgentRecord, caller: &str, id: &str| {
        dialog::start(&config.dialog, &registry, agent.clone(), Some(caller.to_string()), id.to_string(), WayIn::Chat).0
    };
    let booking = ["I'd like to schedule an appointment", "the first one"];

    // Ada gets as far as the read-back of the first free slot...
    let mut taken = start(&demo, "+15550102001", "chat-taken");
    say(&mut taken, &[booking[0], booking[1], "Ada Lovelace", "a d a at example dot com"], false).await;
    // ...while Jane books that very slot, and Bob books the next.
    let mut jane = start(&demo, "+15550102000", "chat-jane");
    let said =
        say(&mut jane, &[booking[0], booking[1], "Jane Doe", "j a n e at example dot com", "yes", "no thanks"], true)
            .await;
    assert!(said.iter().any(|s| s.starts_with("You're all set, Jane!")), "{said:#?}");
    // Ada's yes finds the slot taken; she is offered others and hangs up.
    let reply = taken.turn(UserTurn::text("yes")).await;
    assert!(reply.tool_calls.iter().any(|c| c.outcome == "slot_taken"), "{reply:?}");
    taken.finish();
    let mut bob = start(&demo, "+15550102002", "chat-bob");
    let said =
        say(&mut bob, &[booking[0], booking[1], "Bob Smith", "b o b at example dot com", "yes", "no thanks"], true)
            .await;
    assert!(said.iter().any(|s| s.starts_with("You're all set, Bob!")), "{said:#?}");
    // A caller who asks for an appointment and hangs up when the slots are read.
    let mut gone = start(&demo, "+15550102003", "chat-gone");
    say(&mut gone, &[booking[0]], false).await;
    gone.finish();
    // A caller the agent cannot understand, three times.
    let mut lost = start(&demo, "+15550102004", "chat-lost");
    say(&mut lost, &["purple monkey dishwasher", "zebra xylophone quartz", "wobble wibble fnord"], true).await;
    // Jane calls again to cancel.
    let mut cancel = start(&demo, "+15550102000", "chat-cancel");
    let said = say(&mut cancel, &["I need to cancel my appointment", "yes", "no thanks"], true).await;
    assert!(said.iter().any(|s| s.to_lowercase().contains("cancelled")), "{said:#?}");
    // The Cal.com agent's key is rejected: the calendar fails.
    let mut failing = start(&broken, "+15550102005", "chat-broken");
    say(&mut failing, &[booking[0], "no thanks"], true).await;
    // Cal.com answers the clinic's first slot search with a 429: the client waits out the reset and books.
    double.fail_next("GET /v2/slots", 429, 1);
    let mut clinic_call = start(&clinic, "+15550102006", "chat-clinic");
    let said = say(
        &mut clinic_call,
        &[booking[0], booking[1], "Cal Doe", "c a l at example dot com", "yes", "no thanks"],
        true,
    )
    .await;
    assert!(said.iter().any(|s| s.starts_with("You're all set, Cal!")), "{said:#?}");
    assert_eq!(double.bookings().len(), 1, "the clinic's booking is on Cal.com");

    // Through the API: Bob's booking is moved, then cancelled.
    let (status, bookings) = app.get("/v1/bookings").await;
    assert_eq!(status, 200, "{bookings}");
    let items = bookings["bookings"].as_array().or_else(|| bookings.as_array()).expect("bookings");
    let bob_booking = items
        .iter()
        .find(|b| b["attendee_name"] == "Bob Smith" && b["status"] == "confirmed")
        .and_then(|b| b["id"].as_str())
        .expect("Bob's booking")
        .to_string();
    let (status, slots) = app.get(&format!("/v1/agents/{}/slots?range_days=14", demo.id)).await;
    assert_eq!(status, 200, "{slots}");
    let slot = slots["slots"][3]["id"].as_str().expect("a free slot").to_string();
    let (status, moved) = app.post(&format!("/v1/bookings/{bob_booking}/reschedule"), json!({"slot_id": slot})).await;
    assert_eq!(status, 201, "{moved}");
    let moved_id = moved["id"].as_str().expect("the moved booking").to_string();
    let (status, body) = app.post(&format!("/v1/bookings/{moved_id}/cancel"), json!({"reason": "travel"})).await;
    assert_eq!(status, 200, "{body}");
}
