//! The real LiveKit for tests: a throwaway Redis and a livekit-server (installed by `scripts/setup.sh
//! --test`) per test, on free loopback ports, with keys of the test's own and STUN pointed at loopback,
//! so nothing leaves the machine. LiveKit keeps SIP trunks and dispatch rules in Redis without a key
//! prefix, so tests running in parallel each get their own Redis.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::local::{free_port, setup_file};

/// How long a server gets to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A Redis server without persistence.
pub struct Redis {
    child: Child,
    pub host: IpAddr,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Redis on loopback.
    pub async fn start() -> Self {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST)).await
    }

    /// Redis on `host` (a test host: protected mode off, nothing else can reach it).
    pub async fn start_on(host: IpAddr) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", &host.to_string(), "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed (scripts/setup.sh --test)");
        wait_for_tcp(host, port, "redis-server").await;
        Self { child, host, port, _dir: dir }
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
    pub host: IpAddr,
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
        Self::prepare_on(redis, webhook_url, IpAddr::V4(Ipv4Addr::LOCALHOST), "lo")
    }

    /// [`LivekitServer::prepare`] on a test host `host` whose interface is `interface` (WebRTC media).
    pub fn prepare_on(redis: &Redis, webhook_url: Option<&str>, host: IpAddr, interface: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let api_key = format!("key{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let api_secret = uuid::Uuid::new_v4().simple().to_string();
        let webhook = match webhook_url {
            Some(url) => format!("webhook:\n  api_key: {api_key}\n  urls: [\"{url}\"]\n"),
            None => String::new(),
        };
        let loopback = host.is_loopback();
        let yaml = format!(
            "port: {port}\nbind_addresses: [\"{host}\"]\nkeys:\n  {api_key}: {api_secret}\n\
             redis:\n  address: {redis_host}:{redis}\n\
             rtc:\n  tcp_port: {tcp}\n  udp_port: {udp}\n  node_ip: {host}\n  use_external_ip: false\n  \
             stun_servers: [\"{host}:3478\"]\n  enable_loopback_candidate: {loopback}\n  \
             interfaces:\n    includes: [\"{interface}\"]\n\
             {webhook}logging:\n  level: info\n",
            redis_host = redis.host,
            redis = redis.port,
            tcp = free_port(),
            udp = free_port(),
        );
        let config = dir.path().join("livekit.yaml");
        std::fs::write(&config, yaml).expect("write livekit config");
        let log = dir.path().join("livekit.log");
        Self { child: None, host, port, api_key, api_secret, config, log, dir }
    }

    /// Runs the server and waits until it answers HTTP.
    pub async fn start(mut self) -> Self {
        self.spawn().await;
        self
    }

    async fn spawn(&mut self) {
        let binary = setup_file("IT_LIVEKIT_SERVER", "livekit/livekit-server");
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
        format!("ws://{}:{}", self.host, self.port)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
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

async fn wait_for_tcp(host: IpAddr, port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::net::TcpStream::connect((host, port)).await.is_err() {
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

/// livekit-sip: LiveKit's SIP service, sharing Redis with the server.
pub struct LivekitSip {
    child: Child,
    pub sip: std::net::SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LivekitSip {
    /// livekit-sip for `server` on `host` (SIP on a free UDP/TCP port, RTP on a small free range).
    pub async fn start(server: &LivekitServer, redis: &Redis, host: IpAddr) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let sip_port = free_port();
        let rtp = free_port();
        let health = free_port();
        // On two shared cores the CPU is often busy: a load limit would make livekit-sip refuse calls.
        let yaml = format!(
            "api_key: {key}\napi_secret: {secret}\nws_url: {ws}\nredis:\n  address: {redis_host}:{redis}\n\
             sip_port: {sip_port}\nrtp_port: {rtp}-{rtp_end}\nuse_external_ip: false\n\
             nat_1_to_1_ip: {host}\nlisten_ip: {host}\nhealth_port: {health}\nmax_cpu_utilization: 1.0\n\
             logging:\n  level: debug\n",
            key = server.api_key,
            secret = server.api_secret,
            ws = server.ws_url(),
            redis_host = redis.host,
            redis = redis.port,
            rtp_end = rtp + 100,
        );
        let config = dir.path().join("sip.yaml");
        std::fs::write(&config, yaml).expect("write livekit-sip config");
        let log = dir.path().join("livekit-sip.log");
        let file = std::fs::File::create(&log).expect("log file");
        let binary = setup_file("IT_LIVEKIT_SIP", "livekit/livekit-sip");
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("start livekit-sip");
        let sip = Self { child, sip: std::net::SocketAddr::new(host, sip_port), log, _dir: dir };
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while !sip.log_text().contains("service ready") {
            assert!(tokio::time::Instant::now() < deadline, "livekit-sip did not start: {}", sip.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sip
    }

    /// What livekit-sip logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LivekitSip {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
