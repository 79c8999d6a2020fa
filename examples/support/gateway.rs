//! The gateway the voice benchmarks call: slotline with its whole voice pipeline, SQLite in a temporary
//! directory, the demo agent on `+15550100000`, every listener on an ephemeral loopback port. Settings
//! come from the defaults and `SLOTLINE_…` variables (e.g. `SLOTLINE_VOICE__PAUSE_MS=0`), then the
//! benchmark's own. Shared by `examples/turn_latency.rs` and `examples/barge_in.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use slotline::app::Application;
use slotline::calendar::SystemClock;
use slotline::config::{Config, Overrides, Secret};
use slotline::speech::tts::espeak::EspeakTts;
use slotline::speech::TextToSpeech;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::voice_caller::{Cue, Turn};

/// The demo agent's number.
pub const DEMO_NUMBER: &str = "+15550100000";

/// A running gateway.
pub struct Gateway {
    /// The settings it runs with.
    pub config: Config,
    /// Its SIP address.
    pub sip: SocketAddr,
    metrics_url: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts slotline with the voice pipeline on `model`, `stt_workers` speech-to-text workers.
    pub async fn start(model: PathBuf, stt_workers: usize) -> anyhow::Result<Self> {
        Self::start_with(model, stt_workers, |_| {}).await
    }

    /// [`Gateway::start`] with more settings changed by `configure`.
    pub async fn start_with(
        model: PathBuf,
        stt_workers: usize,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let overrides = Overrides { data_dir: Some(dir.path().to_path_buf()), ..Overrides::default() };
        let mut config = Config::load(None, &overrides)?;
        config.database.url = Some(Secret::new(format!("sqlite://{}", dir.path().join("slotline.db").display())));
        config.api.addr = "127.0.0.1:0".parse()?;
        config.metrics.addr = "127.0.0.1:0".parse()?;
        config.sip.addr = "127.0.0.1:0".parse()?;
        config.sip.drain_timeout_secs = 1;
        config.voice.enabled = true;
        config.speech.model_path = Some(model);
        config.speech.stt_workers = stt_workers;
        configure(&mut config);
        let app = Application::build_with_clock(&config, Arc::new(SystemClock)).await?;
        let (sip, metrics_url) = (app.sip_addr(), format!("http://{}/metrics", app.metrics_addr()));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run(shutdown.clone()));
        Ok(Self { config, sip, metrics_url, http: reqwest::Client::new(), shutdown, server, _dir: dir })
    }

    /// The `/metrics` page.
    pub async fn scrape(&self) -> anyhow::Result<String> {
        Ok(self.http.get(&self.metrics_url).send().await?.error_for_status()?.text().await?)
    }

    /// The sum of every series of the metric `name` (a counter, or a histogram's `_sum`/`_count`).
    pub async fn total(&self, name: &str) -> anyhow::Result<f64> {
        Ok(series(&self.scrape().await?, name).map(|(_, value)| value).sum())
    }

    /// Stops the gateway (calls are drained for `sip.drain_timeout_secs`).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await?
    }
}

/// The series of metric `name` on a `/metrics` page: (the labels between the braces, the value).
pub fn series<'a>(page: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    page.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        Some((labels, value.trim().parse().ok()?))
    })
}

/// The `p` quantile (0..=1, nearest rank) of sorted durations; zero when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The benchmarks' caller, in espeak-ng's male US voice at 130 wpm: asks for an appointment, says
/// "sorry, can you repeat that?" at each of `repeats`, then "no, that's all, goodbye". Nothing is
/// booked, so concurrent calls hold the same conversation.
pub async fn repeating_caller(repeats: impl IntoIterator<Item = Cue>) -> anyhow::Result<Vec<Turn>> {
    let voice = EspeakTts::new("en-us+m3", 130)?;
    let mut script = vec![("I'd like to schedule an appointment", Cue::AfterPrompt)];
    script.extend(repeats.into_iter().map(|cue| ("sorry, can you repeat that?", cue)));
    script.push(("no, that's all, goodbye", Cue::AfterPrompt));
    let mut spoken = Vec::new();
    for (text, cue) in script {
        spoken.push(Turn { text: text.to_string(), audio: voice.synthesize(text).await?, key: None, cue });
    }
    Ok(spoken)
}

/// The sipp scenario the caller's signalling runs (`tests/sipp/voice_caller.xml`).
pub fn scenario() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/voice_caller.xml")
}
