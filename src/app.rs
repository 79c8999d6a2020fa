//! Builds the running system from a [`Config`] and runs it until shutdown.
//!
//! [`Application::build`] opens and migrates the database, loads the master key, seeds the demo agent on
//! an empty database and binds the listeners (port 0 works, so tests run the real server); [`Application::run`]
//! serves until the [`CancellationToken`] fires, then drains in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use std::time::Duration;

use crate::agent::calls::AgentCalls;
use crate::agent::session::{Voice, VoiceSettings};
use crate::api::limits::ApiLimits;
use crate::api::{self, AppState};
use crate::calendar::{CalendarKind, CalendarRegistry, Clock, SystemClock};
use crate::call::CallHandler;
use crate::config::{Config, DemoConfig, SttEngineKind, TtsEngineKind};
use crate::livekit::job::{JobRunner, RoomWatch};
use crate::livekit::media::RoomMedia;
use crate::livekit::worker::Worker;
use crate::livekit::LivekitSettings;
use crate::media::ports::PortPool;
use crate::media::session::MediaSettings;
use crate::phone;
use crate::sip::admission::{Credentials, Trunk};
use crate::sip::server::{SipServer, SipSettings};
use crate::sip::transaction::Timing;
use crate::sip::transport::TcpLimits;
use crate::speech::stt::openai::OpenAiStt;
use crate::speech::tts::espeak::EspeakTts;
use crate::speech::tts::external::ExternalTts;
use crate::speech::tts::hibari::Choice;
use crate::speech::tts::openai::OpenAiTts;
use crate::speech::tts::voices::{AgentVoice, VoiceCatalog, VoiceEngine, Voices};
use crate::speech::vad::EndpointSettings;
use crate::speech::{SpeechToText, TextToSpeech};
use crate::storage::crypto::{KeySource, MasterKey, KEY_FILE};
use crate::storage::{self, AgentRecord, CalendarConfig, Store, StoreError};

/// Name of the agent created on an empty database.
pub const DEMO_AGENT_NAME: &str = "Demo Agent";

/// A built, bound, not yet running slotline.
pub struct Application {
    state: AppState,
    sip: SipServer,
    sip_task: tokio::task::JoinHandle<()>,
    /// The LiveKit agent worker, when `livekit.worker` is on.
    worker: Option<Worker>,
    shutdown: CancellationToken,
    /// Voice sessions and transcript writes (the agent pipeline's); waited for at shutdown.
    sessions: TaskTracker,
    drain_timeout: Duration,
    api_limits: ApiLimits,
    api_listener: TcpListener,
    metrics_listener: TcpListener,
    metrics: PrometheusHandle,
}

impl Application {
    /// Opens storage, seeds the demo agent when the database is empty, and binds every listener.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with the clock calendars read (tests pin it).
    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store = open_store(config).await?;
        let (master_key, source) = MasterKey::load(config.master_key.as_ref().map(|k| k.expose()), &config.data_dir)
            .context("loading the master key")?;
        if source == KeySource::GeneratedFile {
            tracing::warn!(
                path = %config.data_dir.join(KEY_FILE).display(),
                "no master_key configured: generated a key file (mode 0600); back it up, the stored Cal.com keys \
                 cannot be read without it, and set SLOTLINE_MASTER_KEY when several instances share a database"
            );
        }
        if store.count_tokens().await? == 0 {
            tracing::info!("no API tokens yet: create one with `slotline token create --name admin --scope admin`");
        }
        let metrics = crate::metrics::install();
        for agent in store.list_agents().await? {
            crate::agent::funnel::agent_series(&agent.name, agent.calendar.kind.as_str());
        }
        let api_listener = TcpListener::bind(config.api.addr)
            .await
            .with_context(|| format!("binding api.addr {}", config.api.addr))?;
        let metrics_listener = TcpListener::bind(config.metrics.addr)
            .await
            .with_context(|| format!("binding metrics.addr {}", config.metrics.addr))?;
        let master_key = Arc::new(master_key);
        let calendars = Arc::new(CalendarRegistry::new(store.clone(), master_key.clone(), clock, &config.calcom));
        let shutdown = CancellationToken::new();
        let settings = sip_settings(config, &master_key)?;
        let mut sessions = TaskTracker::new();
        let handler: Option<Arc<dyn CallHandler>> = if config.voice.enabled {
            let calls = agent_calls(config, store.clone(), calendars.clone()).await?;
            sessions = calls.tasks();
            Some(Arc::new(calls))
        } else {
            tracing::warn!("voice.enabled is false: answered calls hear the greeting chime only");
            None
        };
        if config.voice.transcripts && config.voice.transcript_retention_days > 0 {
            spawn_transcript_retention(store.clone(), config.voice.transcript_retention_days, shutdown.clone());
        }
        let livekit = match config.livekit.enabled() {
            true => Some(Arc::new(LivekitSettings::from_config(&config.livekit)?)),
            false => None,
        };
        let worker = match &livekit {
            Some(settings) if config.livekit.worker => {
                Some(livekit_worker(config, settings.clone(), store.clone(), handler.clone())?)
            }
            _ => None,
        };
        let (sip, sip_task) = SipServer::start(settings, store.clone(), handler, shutdown.clone())
            .await
            .with_context(|| format!("binding sip.addr {}", config.sip.addr))?;
        let state = AppState {
            store,
            master_key,
            calendars,
            livekit,
            routing_changed: Arc::default(),
            dialog: Arc::new(config.dialog.clone()),
            chats: Arc::default(),
            voices: Arc::new(VoiceCatalog::from_config(config)),
        };
        let drain_timeout = Duration::from_secs(config.sip.drain_timeout_secs);
        Ok(Self {
            state,
            sip,
            sip_task,
            worker,
            shutdown,
            sessions,
            drain_timeout,
            api_limits: ApiLimits::from(&config.api),
            api_listener,
            metrics_listener,
            metrics,
        })
    }

    /// Where the admin API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Where `/metrics` is served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Where SIP listens (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip.local_addr()
    }

    /// The database this application uses.
    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// Serves until `shutdown` fires, then finishes in-flight requests and drains calls (new INVITEs get
    /// 503; calls still up after `sip.drain_timeout_secs` are hung up).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(api = %self.api_addr(), metrics = %self.metrics_addr(), sip = %self.sip_addr(), "slotline is serving");
        let sip_shutdown = self.shutdown.clone();
        let forward = shutdown.clone();
        tokio::spawn(async move {
            forward.cancelled().await;
            sip_shutdown.cancel();
        });
        if let Some(settings) = &self.state.livekit {
            let (settings, store, changed) =
                (settings.clone(), self.state.store.clone(), self.state.routing_changed.clone());
            tokio::spawn(crate::livekit::sync::keep_in_sync(settings, store, changed, shutdown.clone()));
        }
        let worker = match self.worker {
            Some(worker) => tokio::spawn(worker.run(shutdown.clone())),
            None => tokio::spawn(async {}),
        };
        let api = axum::serve(self.api_listener, api::router(self.state, self.api_limits))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let metrics = axum::serve(self.metrics_listener, metrics_router(self.metrics))
            .with_graceful_shutdown(shutdown.cancelled_owned());
        let (api, metrics, sip, worker) = tokio::join!(api, metrics, self.sip_task, worker);
        if sip.is_err() {
            tracing::error!("SIP server task failed");
        }
        if worker.is_err() {
            tracing::error!("LiveKit worker task failed");
        }
        // Calls are hung up by now; their sessions write their last transcript lines.
        self.sessions.close();
        if tokio::time::timeout(self.drain_timeout, self.sessions.wait()).await.is_err() {
            tracing::warn!("voice sessions still running after sip.drain_timeout_secs; stopping without them");
        }
        api.context("admin API server")?;
        metrics.context("metrics server")?;
        tracing::info!("slotline stopped");
        Ok(())
    }
}

/// The LiveKit agent worker: its jobs join their rooms through LiveKit's FFI library and talk with
/// `handler`, the same agent pipeline as direct calls. Without a voice pipeline (`voice.enabled = false`)
/// jobs only hold their place while their room exists. Fails, saying how to install it, when the FFI
/// library is missing or of another version.
pub fn livekit_worker(
    config: &Config,
    settings: Arc<LivekitSettings>,
    store: Arc<dyn Store>,
    handler: Option<Arc<dyn CallHandler>>,
) -> anyhow::Result<Worker> {
    let runner: Arc<dyn JobRunner> = match handler {
        Some(handler) => {
            let path = config.livekit_ffi_path();
            let ffi =
                slotline_lkffi::Ffi::load(&path).with_context(|| format!("livekit.ffi_lib {}", path.display()))?;
            Arc::new(RoomMedia::new(ffi, store.clone(), settings.clone(), handler))
        }
        None => {
            tracing::warn!("voice.enabled is false: LiveKit jobs hold their place but join no room");
            Arc::new(RoomWatch::new(settings.clone()))
        }
    };
    Ok(Worker::new(settings, store, runner))
}

/// The voice pipeline of calls: checks the speech engines are installed (the error says what is missing),
/// starts the configured engines once, and pre-synthesises every agent's greeting and the fixed prompts.
pub async fn agent_calls(
    config: &Config,
    store: Arc<dyn Store>,
    calendars: Arc<CalendarRegistry>,
) -> anyhow::Result<AgentCalls> {
    crate::speech::check(config).map_err(|e| {
        anyhow::anyhow!("{e}. (Set voice.enabled = false to answer calls with the greeting chime only.)")
    })?;
    let stt = speech_to_text(config).await?;
    let (tts, engine) = text_to_speech(config).await?;
    let endpoint = EndpointSettings {
        end_frames: config.voice.end_silence_ms / 20,
        // Speculation starts at `speculate_ms`; the early end waits for `pause_ms` (the session's).
        pause_frames: if config.voice.pause_ms == 0 { 0 } else { config.voice.speculate_ms / 20 },
        start_frames: config.voice.start_speech_ms / 20,
        ..EndpointSettings::default()
    };
    let settings = VoiceSettings {
        vad_aggressiveness: config.speech.vad_aggressiveness,
        endpoint,
        no_input: Duration::from_millis(config.voice.no_input_ms),
        barge_in: config.voice.barge_in,
        early_end: config.voice.early_end,
        early_end_pause: Duration::from_millis(u64::from(config.voice.pause_ms)),
    };
    // An agent voice equal to the default one speaks with the default's engine.
    let as_agent_voice = match engine {
        "hibari" => {
            Some(AgentVoice { engine: VoiceEngine::Hibari, name: None, speed: Some(config.speech.hibari.speed) })
        }
        "espeak" => Some(AgentVoice { engine: VoiceEngine::Espeak, name: None, speed: None }),
        _ => None,
    };
    let voices = Voices::new(VoiceCatalog::from_config(config), tts, engine, as_agent_voice);
    let voice = Arc::new(Voice::new(stt, voices, settings));
    let agents = store.list_agents().await?;
    let (warm, workers) = (voice.clone(), config.speech.stt_workers);
    // whisper.cpp decodes its first utterance slowly; a remote endpoint is not sent silence.
    let warm_stt = config.speech.stt_engine == SttEngineKind::Whisper;
    tokio::spawn(async move {
        // Each agent's voice is started here, and its greeting and the fixed prompts spoken once.
        for agent in &agents {
            let speaking = warm.voices().for_agent(agent.voice.as_deref()).await;
            let mut prompts = vec![agent.greeting.as_str()];
            prompts.extend(crate::agent::dialog::rules::FIXED_PROMPTS.iter().copied());
            warm.prepare(&speaking, &prompts).await;
        }
        if warm_stt {
            warm.warm_up(workers).await;
        }
    });
    Ok(AgentCalls::new(store, calendars, config.dialog.clone(), voice, config.voice.transcripts))
}

/// The speech-to-text engine `speech.stt_engine` names.
async fn speech_to_text(config: &Config) -> anyhow::Result<Arc<dyn SpeechToText>> {
    match config.speech.stt_engine {
        SttEngineKind::Whisper => whisper(config).await,
        SttEngineKind::Openai => Ok(Arc::new(OpenAiStt::new(&config.speech.openai))),
    }
}

/// The offline speech-to-text engine: whisper.cpp with the configured model, loaded once.
#[cfg(feature = "whisper")]
async fn whisper(config: &Config) -> anyhow::Result<Arc<dyn SpeechToText>> {
    use crate::speech::stt::whisper::{WhisperOptions, WhisperStt};
    let options = WhisperOptions {
        workers: config.speech.stt_workers,
        threads: config.speech.stt_threads,
        ..WhisperOptions::default()
    };
    let stt = WhisperStt::load(&config.speech_model_path(), options).await.context("loading the speech model")?;
    Ok(Arc::new(stt))
}

/// This build has no offline speech-to-text engine.
#[cfg(not(feature = "whisper"))]
async fn whisper(_config: &Config) -> anyhow::Result<Arc<dyn SpeechToText>> {
    anyhow::bail!(
        "this slotline was built without whisper.cpp (feature `whisper`); set speech.stt_engine = \"openai\" \
         or voice.enabled = false"
    )
}

/// The text-to-speech engine `speech.tts_engine` names (the default voice), and its name in metrics.
async fn text_to_speech(config: &Config) -> anyhow::Result<(Arc<dyn TextToSpeech>, &'static str)> {
    let processes = config.speech.tts_processes;
    Ok(match config.speech.tts_engine {
        TtsEngineKind::Hibari => match crate::speech::tts::hibari::choose(config) {
            Choice::Hibari(sidecar) => {
                let pool = ExternalTts::start_pool(&sidecar, processes)
                    .await
                    .context("starting the hibari voice's sidecars")?;
                (Arc::new(pool), "hibari")
            }
            Choice::NotInstalled(python) => {
                tracing::warn!("{}", crate::speech::tts::hibari::not_installed(&python));
                (Arc::new(espeak(config)?), "espeak")
            }
        },
        TtsEngineKind::Espeak => (Arc::new(espeak(config)?), "espeak"),
        TtsEngineKind::Openai => (Arc::new(OpenAiTts::new(&config.speech.openai)), "openai"),
        TtsEngineKind::External => {
            let pool = ExternalTts::start_pool(&config.speech.external, processes)
                .await
                .context("starting the text-to-speech sidecars")?;
            (Arc::new(pool), "external")
        }
    })
}

fn espeak(config: &Config) -> anyhow::Result<EspeakTts> {
    EspeakTts::new(&config.speech.tts_voice, config.speech.tts_rate).context("starting espeak-ng")
}

/// Deletes transcript lines older than `days` every hour.
fn spawn_transcript_retention(store: Arc<dyn Store>, days: u32, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let before = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
            match store.purge_transcripts(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(lines = n, days, "purged old transcript lines"),
                Err(e) => tracing::warn!(error = %e, "cannot purge old transcripts"),
            }
        }
    });
}

/// SIP and media settings from the configuration.
fn sip_settings(config: &Config, master_key: &MasterKey) -> anyhow::Result<SipSettings> {
    let greeting = match &config.media.greeting_wav {
        Some(path) => crate::audio::wav::read(path).map_err(anyhow::Error::msg)?,
        None => crate::audio::wav::greeting_chime(),
    };
    let ip = config.sip.addr.ip();
    let public_host = config.sip.public_host.clone().unwrap_or_else(|| {
        if ip.is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            ip.to_string()
        }
    });
    let trunks = config
        .sip
        .trunks
        .iter()
        .map(|t| Trunk {
            name: t.name.clone(),
            allow: t.allow.clone(),
            credentials: match (&t.username, &t.password) {
                (Some(username), Some(password)) => {
                    Some(Credentials { username: username.clone(), password: password.clone() })
                }
                _ => None,
            },
        })
        .collect();
    Ok(SipSettings {
        addr: config.sip.addr,
        public_host,
        max_calls: config.sip.max_calls,
        invites_per_second: config.sip.invites_per_second,
        trunks,
        realm: config.sip.realm.clone(),
        nonce_secret: master_key.derive("sip digest nonce"),
        timing: Timing::default(),
        media: MediaSettings {
            ports: PortPool::new(ip, config.rtp.port_min, config.rtp.port_max),
            timeout: Duration::from_secs(config.rtp.timeout_secs),
            max_call: Duration::from_secs(config.media.max_call_secs),
            greeting: Arc::new(greeting),
            recordings: config.media.record_calls.then(|| config.data_dir.join("recordings")),
        },
        drain_timeout: Duration::from_secs(config.sip.drain_timeout_secs),
        answer_after: Duration::from_millis(config.sip.answer_after_ms),
        tcp: TcpLimits {
            max_connections: config.sip.tcp_max_connections,
            idle_timeout: Duration::from_secs(config.sip.tcp_idle_timeout_secs),
        },
    })
}

/// Connects to the configured database, applies pending migrations and, on an empty database, creates the
/// demo agent.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = storage::connect(config.database_url().expose(), config.database.max_connections)
        .await
        .context("opening the database (database.url)")?;
    store.migrate().await.context("migrating the database")?;
    seed_demo(store.as_ref(), &config.demo).await.context("creating the demo agent")?;
    Ok(store)
}

/// Serves `/metrics` on `addr` until `shutdown` (for processes without the admin API, like `worker`).
pub async fn serve_metrics(addr: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding metrics.addr {addr}"))?;
    axum::serve(listener, metrics_router(crate::metrics::install()))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("metrics server")
}

fn metrics_router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
            }
        }),
    )
}

/// Creates the demo agent (demo calendar) and maps the demo number to it, when the database has no agent.
pub async fn seed_demo(store: &dyn Store, demo: &DemoConfig) -> Result<(), StoreError> {
    if !demo.enabled || !store.list_agents().await?.is_empty() {
        return Ok(());
    }
    let number = match phone::normalize(&demo.number) {
        Ok(number) => number,
        Err(e) => {
            tracing::warn!(error = %e, "demo.number is not a phone number; demo agent not created");
            return Ok(());
        }
    };
    let now = storage::now();
    let agent = AgentRecord {
        id: Uuid::new_v4(),
        name: DEMO_AGENT_NAME.to_string(),
        description: "Created on first start: books into the demo calendar (30-minute slots, 09:00-18:00 on weekdays)."
            .to_string(),
        prompt: api::DEFAULT_PROMPT.to_string(),
        greeting: api::default_greeting("the slotline demo"),
        language: "en".to_string(),
        timezone: demo.timezone.clone(),
        calendar: CalendarConfig {
            kind: CalendarKind::Demo,
            calcom_api_key: None,
            event_type_slug: None,
            event_type_id: None,
            username: None,
            slot_minutes: 30,
            rules: None,
            calcom_webhook_secret: None,
        },
        voice: None,
        created_at: now,
        updated_at: now,
    };
    match store.insert_agent(&agent).await {
        Ok(()) => {}
        // Another instance sharing the database seeded it first.
        Err(StoreError::Conflict { .. }) => return Ok(()),
        Err(e) => return Err(e),
    }
    store.put_number(number.as_str(), agent.id).await?;
    tracing::info!(agent_id = %agent.id, number = %number, timezone = %demo.timezone, "created the demo agent");
    Ok(())
}
