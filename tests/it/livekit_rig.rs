//! The real LiveKit for tests: a throwaway Redis and a livekit-server (installed by `scripts/setup.sh
//! --test`) per test, on free loopback ports, with keys of the test's own and STUN pointed at loopback,
//! so nothing leaves the machine. LiveKit keeps SIP trunks and dispatch rules in Redis without a key
//! prefix, so tests running in parallel each get their own Redis.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::helpers::{free_port, setup_file};

/// How long a server gets to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A Redis server without persistence.
pub struct Redis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed (scripts/setup.sh --test)");
        wait_for_tcp(port, "redis-server").await;
        Self { child, port, _dir: dir }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A livekit-server.
pub struct LivekitServer {
    child: Option<Child>,
    pub port: u16,
    pub api_key: String,
    pub api_secret: String,
    config: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl LivekitServer {
    /// A server on a port chosen now (so slotline can be configured before the server runs); call
    /// [`LivekitServer::start`] to run it.
    pub fn prepare(redis: &Redis, webhook_url: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let api_key = format!("key{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let api_secret = uuid::Uuid::new_v4().simple().to_string();
        let webhook = match webhook_url {
            Some(url) => format!("webhook:\n  api_key: {api_key}\n  urls: [\"{url}\"]\n"),
            None => String::new(),
        };
        let yaml = format!(
            "port: {port}\nbind_addresses: [\"127.0.0.1\"]\nkeys:\n  {api_key}: {api_secret}\n\
             redis:\n  address: 127.0.0.1:{redis}\n\
             rtc:\n  tcp_port: {tcp}\n  udp_port: {udp}\n  node_ip: 127.0.0.1\n  use_external_ip: false\n  \
             stun_servers: [\"127.0.0.1:3478\"]\n  enable_loopback_candidate: true\n  \
             interfaces:\n    includes: [\"lo\"]\n\
             {webhook}logging:\n  level: info\n",
            redis = redis.port,
            tcp = free_port(),
            udp = free_port(),
        );
        let config = dir.path().join("livekit.yaml");
        std::fs::write(&config, yaml).expect("write livekit config");
        let log = dir.path().join("livekit.log");
        Self { child: None, port, api_key, api_secret, config, log, dir }
    }

    /// Runs the server and waits until it answers HTTP.
    pub async fn start(mut self) -> Self {
        self.spawn().await;
        self
    }

    async fn spawn(&mut self) {
        let binary = setup_file("SLOTLINE_LIVEKIT_SERVER", "livekit/livekit-server");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let child = Command::new(binary)
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start livekit-server");
        self.child = Some(child);
        let url = format!("{}/", self.http_url());
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(response) = reqwest::get(&url).await {
                if response.status().is_success() {
                    return;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "livekit-server did not start: {}", self.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the server (as a crash would) and waits for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the killed server again on the same ports and keys.
    pub async fn restart(&mut self) {
        self.spawn().await;
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the server logged so far (for assertion messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Points slotline's `livekit.*` settings at this server.
    pub fn configure(&self, config: &mut slotline::config::Config) {
        config.livekit.url = Some(self.ws_url());
        config.livekit.api_key = Some(self.api_key.clone());
        config.livekit.api_secret = Some(slotline::config::Secret::new(self.api_secret.clone()));
    }
}

impl Drop for LivekitServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}

async fn wait_for_tcp(port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not start on port {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds, polling every 100 ms, at most `timeout`; fails with `what`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
