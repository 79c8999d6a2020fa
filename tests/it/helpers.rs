//! Shared test fixtures: a fresh database per test (SQLite temp file or a new PostgreSQL database that is
//! dropped afterwards) and [`spawn_app`], the real server on port 0 with admin and analyst tokens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use slotline::api::auth::generate_token;
use slotline::app::Application;
use slotline::calendar::{Clock, SystemClock};
use slotline::config::{Config, Secret};
use slotline::storage::{self, ApiTokenRecord, Store, TokenScope};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use crate::local::{free_port, free_sip_port, setup_file};

/// Server URL of the PostgreSQL used by tests; each test creates and drops its own database on it.
/// `scripts/test.sh` starts a throwaway server and sets it; without it, a server on 127.0.0.1:5432.
/// (Not `SLOTLINE_*`: that prefix is slotline's own configuration.)
pub fn postgres_admin_url() -> String {
    std::env::var("IT_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(db: Db)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Postgres).await
                }
            )*
        }
    };
}

/// A fresh, empty database; removed when dropped.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    postgres_name: Option<String>,
}

impl TestDb {
    pub async fn new(db: Db) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match db {
            Db::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("slotline.db").display());
                Self { url, dir, postgres_name: None }
            }
            Db::Postgres => {
                let name = format!("slotline_it_{}", Uuid::new_v4().simple());
                let admin = postgres_admin_url();
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.expect(
                    "PostgreSQL must run at IT_POSTGRES_URL (scripts/test.sh starts one; default 127.0.0.1:5432)",
                );
                sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create test database");
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
                Self { url: format!("{base}/{name}"), dir, postgres_name: Some(name) }
            }
        }
    }

    /// A placeholder that owns nothing (used when a [`TestDb`] moves to a restarted app).
    fn detached() -> Self {
        Self { url: String::new(), dir: tempfile::tempdir().expect("temp dir"), postgres_name: None }
    }

    /// An opened, migrated store (no demo agent).
    pub async fn store(&self) -> Arc<dyn Store> {
        let store = storage::connect(&self.url, 5).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else { return };
        let admin = postgres_admin_url();
        // Drop runs inside the test's runtime: use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
                    let _ = sqlx::Executor::execute(
                        &mut conn,
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                    )
                    .await;
                }
            });
        })
        .join();
    }
}

/// Configuration for a test instance: everything on loopback port 0, data in the test's temp dir.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config { data_dir: db.data_dir().to_path_buf(), ..Config::default() };
    config.database.url = Some(Secret::new(db.url.clone()));
    config.database.max_connections = 5;
    config.api.addr = "127.0.0.1:0".parse().expect("addr");
    config.metrics.addr = "127.0.0.1:0".parse().expect("addr");
    config.sip.addr = "127.0.0.1:0".parse().expect("addr");
    config.sip.drain_timeout_secs = 1;
    // Calls hear the greeting chime unless a test turns the voice pipeline on (see `voice_config`).
    config.voice.enabled = false;
    config
}

/// A running slotline with an admin and an analyst token.
pub struct TestApp {
    pub base: String,
    pub sip_addr: std::net::SocketAddr,
    pub metrics_url: String,
    pub http: reqwest::Client,
    pub admin: String,
    pub analyst: String,
    pub store: Arc<dyn Store>,
    /// Kept alive so the database outlives the server; dropped (and removed) with the app.
    _db: TestDb,
    /// The configuration it runs with, for [`TestApp::restart`].
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, Arc::new(SystemClock), |_| {}).await
}

/// [`spawn_app`] with a pinned clock and configuration changes.
pub async fn spawn_app_with(db: Db, clock: Arc<dyn Clock>, configure: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new(db).await;
    let mut config = test_config(&db);
    configure(&mut config);
    let app = Application::build_with_clock(&config, clock.clone()).await.expect("build app");
    let base = format!("http://{}", app.api_addr());
    let metrics_url = format!("http://{}/metrics", app.metrics_addr());
    let sip_addr = app.sip_addr();
    let store = app.store();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let admin = insert_token(store.as_ref(), TokenScope::Admin).await;
    let analyst = insert_token(store.as_ref(), TokenScope::Analyst).await;
    TestApp {
        base,
        sip_addr,
        metrics_url,
        http: reqwest::Client::new(),
        admin,
        analyst,
        store,
        _db: db,
        config,
        clock,
        shutdown,
        server: Some(server),
    }
}

pub async fn insert_token(store: &dyn Store, scope: TokenScope) -> String {
    let token = generate_token();
    let record = ApiTokenRecord {
        id: Uuid::new_v4(),
        name: format!("{scope:?}"),
        scope,
        token_hash: token.hash,
        created_at: storage::now(),
        expires_at: None,
    };
    store.insert_token(&record).await.expect("insert token");
    token.secret
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with `token` (None: no Authorization header) and returns status + JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json =
            if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, Some(&self.admin.clone()), None).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::POST, path, Some(&self.admin.clone()), Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::PATCH, path, Some(&self.admin.clone()), Some(body)).await
    }

    pub async fn put(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::PUT, path, Some(&self.admin.clone()), Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::DELETE, path, Some(&self.admin.clone()), None).await
    }

    /// The sum of the samples of metric `name` whose labels contain every one of `labels` (`key="value"`),
    /// or `None` when no such sample is exported.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> Option<f64> {
        let text = self.http.get(&self.metrics_url).send().await.expect("scrape").text().await.expect("text");
        let samples: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .collect();
        (!samples.is_empty()).then(|| samples.iter().sum())
    }

    /// [`TestApp::metric`] of a series that must be exported: a missing series fails the test instead of
    /// reading as 0.
    pub async fn value(&self, name: &str, labels: &[&str]) -> f64 {
        match self.metric(name, labels).await {
            Some(value) => value,
            None => panic!("{name} {labels:?} is not exported"),
        }
    }

    /// [`TestApp::value`] of a series written as Prometheus prints it: `name{key="value",…}` or `name`.
    pub async fn series(&self, series: &str) -> f64 {
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let labels: Vec<&str> = labels.trim_end_matches('}').split(',').filter(|l| !l.is_empty()).collect();
        self.value(name, &labels).await
    }

    /// Creates an agent with the demo calendar and returns its id.
    pub async fn create_agent(&self, name: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/agents",
                serde_json::json!({"name": name, "timezone": "Europe/Berlin", "calendar": {"kind": "demo"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Stops this server and starts a new one with the same configuration, database and data dir (same
    /// tokens).
    pub async fn restart(mut self) -> TestApp {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran cleanly");
        }
        let app = Application::build_with_clock(&self.config, self.clock.clone()).await.expect("rebuild app");
        let shutdown = CancellationToken::new();
        let base = format!("http://{}", app.api_addr());
        let metrics_url = format!("http://{}/metrics", app.metrics_addr());
        let sip_addr = app.sip_addr();
        let store = app.store();
        let server = tokio::spawn(app.run(shutdown.clone()));
        TestApp {
            base,
            sip_addr,
            metrics_url,
            http: self.http.clone(),
            admin: self.admin.clone(),
            analyst: self.analyst.clone(),
            store,
            _db: std::mem::replace(&mut self._db, TestDb::detached()),
            config: self.config.clone(),
            clock: self.clock.clone(),
            shutdown,
            server: Some(server),
        }
    }

    /// The database URL (SQLite file or PostgreSQL database) this app uses.
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    /// The data dir (recordings, key file).
    pub fn data_dir(&self) -> &Path {
        self._db.data_dir()
    }

    /// Asks the server to shut down (as SIGTERM does) without waiting.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran cleanly");
        }
    }
}

/// Asserts an error response in the API's one shape.
pub fn assert_error(
    status: u16,
    body: &serde_json::Value,
    want_status: u16,
    want_code: &str,
    want_field: Option<&str>,
) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    match want_field {
        Some(field) => assert_eq!(body["error"]["field"], field, "{body}"),
        None => assert!(body["error"].get("field").is_none(), "{body}"),
    }
}

/// The compiled `slotline` binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_slotline"))
}

/// A `slotline` command with a clean `SLOTLINE_*` environment.
pub fn command() -> std::process::Command {
    let mut command = std::process::Command::new(binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("SLOTLINE_") {
            command.env_remove(key);
        }
    }
    command
}

/// `slotline serve` as a child process. Its standard error is read all along (a full pipe never blocks
/// it), and it is killed if the test ends before it exited.
pub struct ServeProcess {
    child: std::process::Child,
    stderr: Option<std::thread::JoinHandle<String>>,
    exited: bool,
}

impl ServeProcess {
    /// Starts `serve` with `command`'s environment; `args` go after `serve`.
    pub fn start(mut command: std::process::Command, args: &[&str]) -> Self {
        use std::io::Read as _;
        let mut child = command
            .arg("serve")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("slotline serve starts");
        let mut pipe = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        Self { child, stderr: Some(stderr), exited: false }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
    }

    /// Waits up to `within` for the process to exit; its status and everything it wrote to standard error.
    pub async fn exit(mut self, within: std::time::Duration) -> (std::process::ExitStatus, String) {
        let deadline = tokio::time::Instant::now() + within;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            assert!(tokio::time::Instant::now() < deadline, "slotline did not exit within {within:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        self.exited = true;
        let stderr = self.stderr.take().expect("read once").join().expect("stderr reader");
        (status, stderr)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
