//! Configuration: defaults → optional `slotline.toml` (or `--config FILE`) → `SLOTLINE_*` environment
//! variables (`__` separates nesting levels) → command-line flags.
//!
//! Every setting has a default that works on one machine. [`Config::load`] returns a [`ConfigError`] that
//! names the offending setting; the binary turns it into exit code 2.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The file read when `--config` is not given (only if it exists).
pub const DEFAULT_CONFIG_FILE: &str = "slotline.toml";

/// Prefix of every environment variable that configures slotline.
pub const ENV_PREFIX: &str = "SLOTLINE_";

/// Accepted besides `SLOTLINE_CALCOM__API_KEY` for `calcom.api_key`.
pub const CAL_KEY_ALIAS: &str = "CAL_KEY";

/// The whole configuration of one slotline process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for the SQLite database, the generated master key and recordings.
    pub data_dir: PathBuf,
    /// Key that encrypts secrets at rest (64 hex characters or base64 of 32 bytes). When absent, a key
    /// file `master.key` is generated once in `data_dir`.
    pub master_key: Option<Secret>,
    /// Database connection.
    pub database: DatabaseConfig,
    /// Admin HTTP API listener.
    pub api: ApiConfig,
    /// Prometheus `/metrics` listener.
    pub metrics: MetricsConfig,
    /// Logging.
    pub log: LogConfig,
    /// The demo agent created on first start.
    pub demo: DemoConfig,
    /// Cal.com API access.
    pub calcom: CalcomConfig,
    /// The SIP user agent server.
    pub sip: SipConfig,
    /// RTP media.
    pub rtp: RtpConfig,
    /// What calls hear and what is kept of them.
    pub media: MediaConfig,
    /// The conversation: which dialog engine, and the LLM endpoint when it is `llm`.
    pub dialog: DialogConfig,
    /// The offline speech engines.
    pub speech: SpeechConfig,
    /// The voice pipeline of calls: turn-taking and transcripts.
    pub voice: VoiceConfig,
    /// LiveKit: SIP sync, agent tokens, webhooks and the agent worker.
    pub livekit: LivekitConfig,
}

/// `livekit.*` settings. LiveKit is off until `url`, `api_key` and `api_secret` are all set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivekitConfig {
    /// The LiveKit server (`ws://`, `wss://`, `http://` or `https://`; both the API and the agent socket).
    pub url: Option<String>,
    /// API key.
    pub api_key: Option<String>,
    /// API secret: signs tokens, verifies webhooks. Never logged or returned.
    pub api_secret: Option<Secret>,
    /// The agent name the worker registers and dispatch rules and tokens dispatch.
    pub agent_name: String,
    /// Run the agent worker inside `slotline serve`.
    pub worker: bool,
    /// Jobs one worker runs at once; further job offers are declined.
    pub max_jobs: u32,
    /// Seconds a draining worker lets running jobs go on after SIGTERM.
    pub drain_timeout_secs: u64,
    /// Seconds between syncs of numbers to LiveKit SIP inside `serve` (0: only after changes).
    pub sync_interval_secs: u64,
    /// `per_number` (a dispatch rule per number, carrying its agent) or `shared` (one rule for the
    /// trunk; the worker resolves the agent from the dialed number).
    pub dispatch: LivekitDispatch,
    /// Prefix of the room each call gets.
    pub room_prefix: String,
    /// The inbound trunk slotline keeps in LiveKit SIP.
    pub trunk: LivekitTrunkConfig,
    /// LiveKit's FFI library (`liblivekit_ffi.so`) the worker joins rooms with (default
    /// `<data_dir>/livekit/liblivekit_ffi.so`, made by `scripts/setup.sh --livekit`).
    pub ffi_lib: Option<PathBuf>,
}

/// How dispatch rules map numbers to agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LivekitDispatch {
    /// One rule per number, filtering on the dialed number, with the agent id in its dispatch metadata.
    PerNumber,
    /// One rule for the whole trunk.
    Shared,
}

/// `livekit.trunk.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivekitTrunkConfig {
    /// The trunk's name in LiveKit.
    pub name: String,
    /// Source addresses or CIDRs LiveKit SIP accepts calls from (empty: any, then credentials are needed).
    pub allowed_addresses: Vec<String>,
    /// Digest username callers must present.
    pub auth_username: Option<String>,
    /// Digest password.
    pub auth_password: Option<Secret>,
}

impl LivekitConfig {
    /// Whether LiveKit is configured (url, key and secret all set).
    pub fn enabled(&self) -> bool {
        self.url.is_some() && self.api_key.is_some() && self.api_secret.is_some()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let set = [self.url.is_some(), self.api_key.is_some(), self.api_secret.is_some()];
        if set.iter().any(|s| *s) && !set.iter().all(|s| *s) {
            let missing = ["livekit.url", "livekit.api_key", "livekit.api_secret"]
                .iter()
                .zip(set)
                .find_map(|(name, set)| (!set).then_some(*name))
                .unwrap_or("livekit.url");
            return Err(ConfigError::new(missing, "must be set together with the other livekit connection settings"));
        }
        if let Some(url) = &self.url {
            if !["ws://", "wss://", "http://", "https://"].iter().any(|scheme| url.starts_with(scheme)) {
                return Err(ConfigError::new("livekit.url", "must be a ws://, wss://, http:// or https:// URL"));
            }
        }
        if self.agent_name.trim().is_empty() {
            return Err(ConfigError::new("livekit.agent_name", "must not be empty"));
        }
        if !(1..=1000).contains(&self.max_jobs) {
            return Err(ConfigError::new("livekit.max_jobs", "must be between 1 and 1000"));
        }
        if self.room_prefix.is_empty()
            || !self.room_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            return Err(ConfigError::new("livekit.room_prefix", "must be letters, digits, - or _"));
        }
        if self.trunk.name.trim().is_empty() {
            return Err(ConfigError::new("livekit.trunk.name", "must not be empty"));
        }
        if self.trunk.auth_username.is_some() != self.trunk.auth_password.is_some() {
            return Err(ConfigError::new("livekit.trunk.auth_password", "must be set together with auth_username"));
        }
        if self.worker && !self.enabled() {
            return Err(ConfigError::new(
                "livekit.worker",
                "needs livekit.url, livekit.api_key and livekit.api_secret",
            ));
        }
        Ok(())
    }
}

/// `voice.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceConfig {
    /// Answered calls talk with their agent (speech in, speech out); `false` plays the greeting chime.
    pub enabled: bool,
    /// Silence (ms) that ends the caller's turn.
    pub end_silence_ms: u32,
    /// The shortest pause (ms) that ends the caller's turn when its words already answer the agent's
    /// question; 0 turns speculative transcription and the early end off.
    pub pause_ms: u32,
    /// Silence (ms) after which the words so far are transcribed speculatively (at most `pause_ms`),
    /// so the transcript is ready, or nearly, when the pause is long enough to end the turn.
    pub speculate_ms: u32,
    /// End the caller's turn at a `pause_ms` pause when its words already answer the agent's question.
    pub early_end: bool,
    /// Speech (ms) that starts a caller turn (and a barge-in).
    pub start_speech_ms: u32,
    /// Silence (ms) after the agent finished before the caller is prompted again.
    pub no_input_ms: u64,
    /// Stop the agent's audio when the caller speaks over it.
    pub barge_in: bool,
    /// Keep a transcript of both sides of every call.
    pub transcripts: bool,
    /// Days transcripts are kept (0 keeps them forever).
    pub transcript_retention_days: u32,
}

impl VoiceConfig {
    /// Checks the `voice.*` timings: multiples of the 20 ms frame, each within its range.
    fn validate(&self) -> Result<(), ConfigError> {
        if !(200..=3000).contains(&self.end_silence_ms) || self.end_silence_ms % 20 != 0 {
            return Err(ConfigError::new("voice.end_silence_ms", "must be a multiple of 20 between 200 and 3000"));
        }
        let pause = self.pause_ms;
        if pause != 0 && (pause % 20 != 0 || !(100..self.end_silence_ms).contains(&pause)) {
            return Err(ConfigError::new(
                "voice.pause_ms",
                "must be 0 (off) or a multiple of 20 from 100 up to below voice.end_silence_ms",
            ));
        }
        let speculate = self.speculate_ms;
        if pause != 0 && (speculate % 20 != 0 || !(40..=pause).contains(&speculate)) {
            return Err(ConfigError::new(
                "voice.speculate_ms",
                "must be a multiple of 20 from 40 up to voice.pause_ms",
            ));
        }
        if !(20..=500).contains(&self.start_speech_ms) || self.start_speech_ms % 20 != 0 {
            return Err(ConfigError::new("voice.start_speech_ms", "must be a multiple of 20 between 20 and 500"));
        }
        if !(1000..=60_000).contains(&self.no_input_ms) {
            return Err(ConfigError::new("voice.no_input_ms", "must be between 1000 and 60000"));
        }
        Ok(())
    }
}

/// `dialog.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialogConfig {
    /// `rules` (offline, deterministic) or `llm` (OpenAI-compatible tool calling).
    pub engine: DialogEngineKind,
    /// Say "Let me check available slots for you." when a slot listing takes longer than this (ms).
    pub interim_after_ms: u64,
    /// The LLM endpoint.
    pub llm: LlmConfig,
}

impl DialogConfig {
    /// Checks the `dialog.*` settings and the LLM engine's.
    fn validate(&self) -> Result<(), ConfigError> {
        let llm = &self.llm;
        if !(llm.base_url.starts_with("http://") || llm.base_url.starts_with("https://")) {
            return Err(ConfigError::new("dialog.llm.base_url", "must be an http:// or https:// URL"));
        }
        if self.engine == DialogEngineKind::Llm && llm.model.trim().is_empty() {
            return Err(ConfigError::new("dialog.llm.model", "must name a model when dialog.engine is llm"));
        }
        if !(100..=300_000).contains(&llm.timeout_ms) {
            return Err(ConfigError::new("dialog.llm.timeout_ms", "must be between 100 and 300000"));
        }
        if !(1..=16).contains(&llm.max_tool_rounds) {
            return Err(ConfigError::new("dialog.llm.max_tool_rounds", "must be between 1 and 16"));
        }
        if !(0.0..=2.0).contains(&llm.temperature) {
            return Err(ConfigError::new("dialog.llm.temperature", "must be between 0 and 2"));
        }
        if self.interim_after_ms > 60_000 {
            return Err(ConfigError::new("dialog.interim_after_ms", "must be at most 60000"));
        }
        Ok(())
    }
}

/// Which dialog engine agents use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DialogEngineKind {
    /// The offline rules engine.
    Rules,
    /// An OpenAI-compatible chat-completions endpoint with tool calling.
    Llm,
}

/// `dialog.llm.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL up to and including `/v1` (`POST {base_url}/chat/completions`).
    pub base_url: String,
    /// Model name sent with every request.
    pub model: String,
    /// Bearer key (env `SLOTLINE_DIALOG__LLM__API_KEY`); never logged.
    pub api_key: Option<Secret>,
    /// Timeout of one chat-completions request, in milliseconds.
    pub timeout_ms: u64,
    /// Most model round trips (tool calls answered) in one caller turn.
    pub max_tool_rounds: u32,
    /// Sampling temperature.
    pub temperature: f32,
}

/// `speech.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechConfig {
    /// Which engine turns the caller's speech into text.
    pub stt_engine: SttEngineKind,
    /// Which engine speaks the agent's replies.
    pub tts_engine: TtsEngineKind,
    /// whisper.cpp model file; defaults to `<data_dir>/models/ggml-tiny.en-q8_0.bin`, the Q8_0 quantization
    /// of tiny.en that `scripts/setup.sh` makes beside the fp16 model (`ggml-tiny.en.bin`).
    pub model_path: Option<PathBuf>,
    /// Utterances transcribed at once, each on a blocking thread.
    pub stt_workers: usize,
    /// CPU threads whisper.cpp uses for one utterance.
    pub stt_threads: u16,
    /// espeak-ng voice, e.g. `en-us` or `en-gb`.
    pub tts_voice: String,
    /// espeak-ng speaking rate in words per minute.
    pub tts_rate: u32,
    /// Sidecar processes per sidecar voice (hibari, piper, `external`): sentences spoken at once.
    pub tts_processes: usize,
    /// WebRTC VAD aggressiveness: 0 counts the most frames as speech, 3 the fewest.
    pub vad_aggressiveness: u8,
    /// The OpenAI-compatible speech endpoints (`stt_engine` or `tts_engine` = `openai`).
    pub openai: OpenAiSpeechConfig,
    /// The text-to-speech sidecar process (`tts_engine` = `external`).
    pub external: ExternalTtsConfig,
    /// The hibari neural voice (`tts_engine` = `hibari`, the default).
    pub hibari: HibariConfig,
    /// The piper neural voice (agents whose `voice` is piper).
    pub piper: PiperConfig,
}

/// The espeak-ng speaking rates slotline accepts (words per minute).
pub const ESPEAK_RATES: std::ops::RangeInclusive<u32> = 80..=450;

/// Whether `name` has the shape of an espeak-ng voice name (`en-us`, `en-gb+f3`, `mb/mb-en1`): at most 40
/// letters, digits, `-`, `_`, `+` and `/`, starting with a letter or digit (so never an option).
pub fn is_espeak_voice_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/'))
}

impl SpeechConfig {
    /// Checks the `speech.*` settings of the local engines.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.model_path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(ConfigError::new("speech.model_path", "must not be empty"));
        }
        if !(1..=64).contains(&self.stt_workers) {
            return Err(ConfigError::new("speech.stt_workers", "must be between 1 and 64"));
        }
        if !(1..=16).contains(&self.stt_threads) {
            return Err(ConfigError::new("speech.stt_threads", "must be between 1 and 16"));
        }
        let voice = &self.tts_voice;
        if !is_espeak_voice_name(voice) {
            return Err(ConfigError::new(
                "speech.tts_voice",
                format!("`{voice}` is not an espeak-ng voice name such as `en-us` or `en-gb+f3`"),
            ));
        }
        if !ESPEAK_RATES.contains(&self.tts_rate) {
            return Err(ConfigError::new("speech.tts_rate", "must be between 80 and 450 words per minute"));
        }
        if !(1..=16).contains(&self.tts_processes) {
            return Err(ConfigError::new("speech.tts_processes", "must be between 1 and 16"));
        }
        if self.vad_aggressiveness > 3 {
            return Err(ConfigError::new("speech.vad_aggressiveness", "must be 0, 1, 2 or 3"));
        }
        Ok(())
    }
}

/// `speech.hibari.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HibariConfig {
    /// The Python that has hibari-tts; defaults to `<data_dir>/hibari/python` (made by `scripts/setup.sh`).
    pub python: Option<PathBuf>,
    /// Speaking speed, 1.0 being the voice's own.
    pub speed: f32,
}

/// `speech.piper.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiperConfig {
    /// The Python that has piper-tts; defaults to `<data_dir>/piper/python` (made by `scripts/setup.sh --piper`).
    pub python: Option<PathBuf>,
}

/// Which speech-to-text engine calls use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SttEngineKind {
    /// whisper.cpp, offline (feature `whisper`).
    Whisper,
    /// `POST {speech.openai.base_url}/audio/transcriptions`.
    Openai,
}

/// Which text-to-speech engine calls use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtsEngineKind {
    /// The hibari neural voice, offline, through slotline's own sidecar script run by the Python that has
    /// hibari-tts; espeak-ng (with one warning) where that Python is not installed.
    Hibari,
    /// The `espeak-ng` program, offline.
    Espeak,
    /// `POST {speech.openai.base_url}/audio/speech`.
    Openai,
    /// A long-running sidecar process speaking slotline's line protocol on standard input and output.
    External,
}

/// The audio an OpenAI-compatible speech endpoint is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TtsAudioFormat {
    /// A 16-bit PCM WAV file at any rate.
    Wav,
    /// Headerless 16-bit little-endian mono PCM at 24 kHz.
    Pcm,
}

impl TtsAudioFormat {
    /// The `response_format` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Pcm => "pcm",
        }
    }
}

/// `speech.openai.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiSpeechConfig {
    /// Base URL up to and including `/v1` (`{base_url}/audio/transcriptions`, `{base_url}/audio/speech`).
    pub base_url: String,
    /// Bearer key (env `SLOTLINE_SPEECH__OPENAI__API_KEY`); never logged.
    pub api_key: Option<Secret>,
    /// Transcription model.
    pub stt_model: String,
    /// Speech model.
    pub tts_model: String,
    /// Voice of the speech model.
    pub tts_voice: String,
    /// Audio format the speech endpoint answers with.
    pub tts_format: TtsAudioFormat,
    /// Timeout of one request, in milliseconds.
    pub timeout_ms: u64,
}

/// `speech.external.*` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalTtsConfig {
    /// The sidecar program: a path, or a name looked up on `PATH`.
    pub command: Option<PathBuf>,
    /// Its arguments.
    pub args: Vec<String>,
    /// Timeout of one sentence (request to last PCM byte), in milliseconds; a new process has 30 s more
    /// for its first answer.
    pub timeout_ms: u64,
}

/// `sip.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// Address for SIP over UDP and TCP.
    pub addr: SocketAddr,
    /// Host or IP written in Contact and SDP; required when `addr` is a wildcard and callers are remote.
    pub public_host: Option<String>,
    /// Most simultaneous calls; more get 503 with Retry-After.
    pub max_calls: usize,
    /// INVITEs per second accepted from one source address (burst: twice that).
    pub invites_per_second: u32,
    /// Digest authentication realm.
    pub realm: String,
    /// Seconds calls may go on after SIGTERM before slotline hangs up.
    pub drain_timeout_secs: u64,
    /// Ring this many milliseconds (180 Ringing) before answering; 0 answers at once.
    pub answer_after_ms: u64,
    /// Most SIP TCP connections open at once (in and out); more are closed as they are accepted.
    pub tcp_max_connections: usize,
    /// A SIP TCP connection that brings no bytes (messages or CRLF keep-alives) this many seconds is
    /// closed.
    pub tcp_idle_timeout_secs: u64,
    /// Who may call: source networks and optional digest credentials.
    pub trunks: Vec<TrunkConfig>,
}

impl SipConfig {
    /// Checks the `sip.*` limits and that each trunk has both or neither credential.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_calls == 0 {
            return Err(ConfigError::new("sip.max_calls", "must be at least 1"));
        }
        if self.tcp_max_connections == 0 {
            return Err(ConfigError::new("sip.tcp_max_connections", "must be at least 1"));
        }
        if self.tcp_idle_timeout_secs == 0 {
            return Err(ConfigError::new("sip.tcp_idle_timeout_secs", "must be at least 1"));
        }
        for (i, trunk) in self.trunks.iter().enumerate() {
            if trunk.username.is_some() != trunk.password.is_some() {
                return Err(ConfigError::new(format!("sip.trunks[{i}].password"), "username and password go together"));
            }
        }
        Ok(())
    }
}

/// One `[[sip.trunks]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Name (logs, metrics).
    pub name: String,
    /// Source networks (CIDR) allowed to send INVITEs.
    pub allow: Vec<ipnet::IpNet>,
    /// Digest username the trunk must present.
    pub username: Option<String>,
    /// Digest password.
    pub password: Option<Secret>,
}

/// `rtp.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtpConfig {
    /// Lowest RTP port (even).
    pub port_min: u16,
    /// Highest RTP port.
    pub port_max: u16,
    /// Seconds without RTP from the caller (outside hold) before slotline hangs up.
    pub timeout_secs: u64,
}

impl RtpConfig {
    /// Checks the `rtp.*` port range and timeout.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.port_min < 1024 || self.port_max <= self.port_min + 2 {
            return Err(ConfigError::new("rtp.port_max", "rtp.port_min must be >= 1024 and below rtp.port_max - 2"));
        }
        if self.timeout_secs == 0 {
            return Err(ConfigError::new("rtp.timeout_secs", "must be at least 1"));
        }
        Ok(())
    }
}

/// `media.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// 8 kHz mono 16-bit WAV played after the answer (a generated chime when unset).
    pub greeting_wav: Option<PathBuf>,
    /// Record the caller's audio to `<data_dir>/recordings/<call id>.wav`.
    pub record_calls: bool,
    /// Longest call in seconds.
    pub max_call_secs: u64,
}

impl MediaConfig {
    /// Checks that `media.greeting_wav` is a WAV file slotline can play.
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(path) = &self.greeting_wav {
            crate::audio::wav::read(path).map_err(|e| ConfigError::new("media.greeting_wav", e))?;
        }
        Ok(())
    }
}

/// `calcom.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalcomConfig {
    /// API base URL without `/v2` (self-hosted Cal.com, or a local double in tests).
    pub base_url: String,
    /// Timeout of each Cal.com call, in milliseconds.
    pub timeout_ms: u64,
    /// Client-side budget per API key and minute (Cal.com's default limit is 120).
    pub requests_per_minute: u32,
    /// Global Cal.com API key for Cal.com agents that have none of their own (an agent's own key wins).
    /// Also read from `CAL_KEY`, the seed's name for it. Never logged or returned.
    pub api_key: Option<Secret>,
}

impl CalcomConfig {
    /// Checks the `calcom.*` settings; an invalid key is never repeated in the message.
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(ConfigError::new("calcom.base_url", "must be an http:// or https:// URL"));
        }
        if !(100..=120_000).contains(&self.timeout_ms) {
            return Err(ConfigError::new("calcom.timeout_ms", "must be between 100 and 120000"));
        }
        if !(1..=10_000).contains(&self.requests_per_minute) {
            return Err(ConfigError::new("calcom.requests_per_minute", "must be between 1 and 10000"));
        }
        if let Some(key) = &self.api_key {
            let key = key.expose();
            if key.len() < 8 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                // The message never repeats the value.
                return Err(ConfigError::new(
                    "calcom.api_key",
                    "is not a Cal.com API key (8 or more characters, no spaces)",
                ));
            }
        }
        Ok(())
    }
}

/// `database.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://...`; defaults to `sqlite://<data_dir>/slotline.db`.
    pub url: Option<Secret>,
    /// Upper bound of the connection pool.
    pub max_connections: u32,
}

/// `api.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address the admin API listens on.
    pub addr: SocketAddr,
    /// A request still unanswered after this many seconds gets `408 Request Timeout`.
    pub request_timeout_secs: u64,
    /// Requests served at once; a request beyond them gets `503` with `Retry-After` at once.
    pub max_concurrent_requests: usize,
}

impl ApiConfig {
    /// Checks the `api.*` limits.
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3600).contains(&self.request_timeout_secs) {
            return Err(ConfigError::new("api.request_timeout_secs", "must be between 1 and 3600"));
        }
        if !(1..=100_000).contains(&self.max_concurrent_requests) {
            return Err(ConfigError::new("api.max_concurrent_requests", "must be between 1 and 100000"));
        }
        Ok(())
    }
}

/// `metrics.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address the Prometheus exporter listens on (`GET /metrics`).
    pub addr: SocketAddr,
}

/// `log.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `slotline=debug,sqlx=warn`.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `demo.*` settings: the agent created when the database has no agent at all.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Create the demo agent and number on an empty database.
    pub enabled: bool,
    /// IANA time zone of the demo agent.
    pub timezone: String,
    /// Phone number (E.164) mapped to the demo agent.
    pub number: String,
}

impl Default for Config {
    #[allow(clippy::too_many_lines, reason = "one literal per setting; splitting it would scatter the defaults")]
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            master_key: None,
            database: DatabaseConfig { url: None, max_connections: 10 },
            api: ApiConfig {
                addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
                request_timeout_secs: 60,
                max_concurrent_requests: 256,
            },
            metrics: MetricsConfig { addr: SocketAddr::from(([127, 0, 0, 1], 9464)) },
            log: LogConfig { level: "info".into(), format: LogFormat::Pretty },
            demo: DemoConfig { enabled: true, timezone: "America/New_York".into(), number: "+15550100000".into() },
            calcom: CalcomConfig {
                base_url: "https://api.cal.com".into(),
                timeout_ms: 10_000,
                requests_per_minute: 120,
                api_key: None,
            },
            sip: SipConfig {
                addr: SocketAddr::from(([0, 0, 0, 0], 5060)),
                public_host: None,
                max_calls: 100,
                invites_per_second: 20,
                realm: "slotline".into(),
                drain_timeout_secs: 30,
                answer_after_ms: 0,
                tcp_max_connections: 1024,
                tcp_idle_timeout_secs: 300,
                trunks: vec![TrunkConfig {
                    name: "loopback".into(),
                    allow: ["127.0.0.0/8", "::1/128"].iter().filter_map(|n| n.parse().ok()).collect(),
                    username: None,
                    password: None,
                }],
            },
            rtp: RtpConfig { port_min: 20000, port_max: 20999, timeout_secs: 30 },
            media: MediaConfig { greeting_wav: None, record_calls: false, max_call_secs: 3600 },
            dialog: DialogConfig {
                engine: DialogEngineKind::Rules,
                interim_after_ms: 700,
                llm: LlmConfig {
                    base_url: "https://api.openai.com/v1".into(),
                    model: "gpt-4o-mini".into(),
                    api_key: None,
                    timeout_ms: 15_000,
                    max_tool_rounds: 4,
                    temperature: 0.2,
                },
            },
            voice: VoiceConfig {
                enabled: true,
                end_silence_ms: 500,
                pause_ms: 200,
                speculate_ms: 100,
                early_end: true,
                start_speech_ms: 60,
                no_input_ms: 7000,
                barge_in: true,
                transcripts: true,
                transcript_retention_days: 30,
            },
            speech: SpeechConfig {
                stt_engine: SttEngineKind::Whisper,
                tts_engine: TtsEngineKind::Hibari,
                model_path: None,
                stt_workers: 1,
                stt_threads: 2,
                tts_voice: "en-us".into(),
                tts_rate: 160,
                tts_processes: 2,
                vad_aggressiveness: 2,
                openai: OpenAiSpeechConfig {
                    base_url: "https://api.openai.com/v1".into(),
                    api_key: None,
                    stt_model: "whisper-1".into(),
                    tts_model: "tts-1".into(),
                    tts_voice: "alloy".into(),
                    tts_format: TtsAudioFormat::Wav,
                    timeout_ms: 15_000,
                },
                external: ExternalTtsConfig { command: None, args: Vec::new(), timeout_ms: 10_000 },
                hibari: HibariConfig { python: None, speed: 1.0 },
                piper: PiperConfig { python: None },
            },
            livekit: LivekitConfig {
                url: None,
                api_key: None,
                api_secret: None,
                agent_name: "slotline".into(),
                worker: false,
                max_jobs: 20,
                drain_timeout_secs: 30,
                sync_interval_secs: 300,
                dispatch: LivekitDispatch::PerNumber,
                room_prefix: "call-".into(),
                trunk: LivekitTrunkConfig {
                    name: "slotline".into(),
                    allowed_addresses: Vec::new(),
                    auth_username: None,
                    auth_password: None,
                },
                ffi_lib: None,
            },
        }
    }
}

/// A configuration value that must never be printed (keys, database passwords).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Values given on the command line; they win over every other layer.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    /// `--data-dir`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--database-url`
    #[serde(skip_serializing_if = "Option::is_none", rename = "database.url")]
    pub database_url: Option<String>,
    /// `--api-addr`
    #[serde(skip_serializing_if = "Option::is_none", rename = "api.addr")]
    pub api_addr: Option<SocketAddr>,
    /// `--metrics-addr`
    #[serde(skip_serializing_if = "Option::is_none", rename = "metrics.addr")]
    pub metrics_addr: Option<SocketAddr>,
}

/// Why the configuration cannot be used. `setting` is the dotted name an operator writes.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{setting}`: {message}")]
pub struct ConfigError {
    /// Dotted setting name, e.g. `api.addr`.
    pub setting: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self { setting: setting.into(), message: message.into() }
    }
}

impl Config {
    /// Loads the layered configuration. `file` is `--config`; without it `slotline.toml` is read when present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::new("--config", format!("file {} does not exist", path.display())));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        }
        // `CAL_KEY` (the seed's name for the global Cal.com key) under `SLOTLINE_CALCOM__API_KEY`, which wins.
        let figment = figment
            .merge(Env::raw().only(&[CAL_KEY_ALIAS]).map(|_| "calcom.api_key".into()))
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .merge(dotted_overrides(overrides));
        let config: Config = figment.extract().map_err(from_figment)?;
        config.validate()?;
        Ok(config)
    }

    /// The database URL in effect (the SQLite file in the data dir unless `database.url` is set).
    pub fn database_url(&self) -> Secret {
        match &self.database.url {
            Some(url) => url.clone(),
            None => Secret::new(format!("sqlite://{}", self.data_dir.join("slotline.db").display())),
        }
    }

    /// The speech-to-text model file in effect (`<data_dir>/models/ggml-tiny.en-q8_0.bin` unless
    /// `speech.model_path` is set).
    pub fn speech_model_path(&self) -> PathBuf {
        match &self.speech.model_path {
            Some(path) => path.clone(),
            None => self.data_dir.join("models").join("ggml-tiny.en-q8_0.bin"),
        }
    }

    /// The Python that runs the hibari voice.
    pub fn hibari_python(&self) -> PathBuf {
        match &self.speech.hibari.python {
            Some(path) => path.clone(),
            None => self.data_dir.join("hibari").join("python"),
        }
    }

    /// The Python that runs the piper voice.
    pub fn piper_python(&self) -> PathBuf {
        match &self.speech.piper.python {
            Some(path) => path.clone(),
            None => self.data_dir.join("piper").join("python"),
        }
    }

    /// The LiveKit FFI library in effect.
    pub fn livekit_ffi_path(&self) -> PathBuf {
        match &self.livekit.ffi_lib {
            Some(path) => path.clone(),
            None => self.data_dir.join("livekit").join("liblivekit_ffi.so"),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }
        let url = self.database_url();
        if !(url.expose().starts_with("sqlite:")
            || url.expose().starts_with("postgres://")
            || url.expose().starts_with("postgresql://"))
        {
            return Err(ConfigError::new("database.url", "must start with sqlite:, postgres:// or postgresql://"));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new("database.max_connections", "must be at least 1"));
        }
        self.api.validate()?;
        if self.api.addr == self.metrics.addr && self.api.addr.port() != 0 {
            return Err(ConfigError::new("metrics.addr", "must differ from api.addr"));
        }
        if let Some(key) = &self.master_key {
            crate::storage::crypto::parse_master_key(key.expose())
                .map_err(|e| ConfigError::new("master_key", e.to_string()))?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::new("log.level", e.to_string()))?;
        if self.demo.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::new(
                "demo.timezone",
                format!("`{}` is not an IANA time zone", self.demo.timezone),
            ));
        }
        self.livekit.validate()?;
        self.calcom.validate()?;
        self.voice.validate()?;
        self.dialog.validate()?;
        self.rtp.validate()?;
        self.sip.validate()?;
        self.media.validate()?;
        self.speech.validate()?;
        self.validate_speech_engines()?;
        crate::phone::normalize(&self.demo.number).map_err(|e| ConfigError::new("demo.number", e.to_string()))?;
        Ok(())
    }
}

impl Config {
    /// The settings of the OpenAI-compatible and external speech engines.
    fn validate_speech_engines(&self) -> Result<(), ConfigError> {
        let speech = &self.speech;
        let openai = &speech.openai;
        if !(openai.base_url.starts_with("http://") || openai.base_url.starts_with("https://")) {
            return Err(ConfigError::new("speech.openai.base_url", "must be an http:// or https:// URL"));
        }
        if openai.api_key.as_ref().is_some_and(|key| key.expose().trim().is_empty()) {
            return Err(ConfigError::new("speech.openai.api_key", "must not be empty (leave it unset for no key)"));
        }
        if speech.stt_engine == SttEngineKind::Openai && openai.stt_model.trim().is_empty() {
            return Err(ConfigError::new(
                "speech.openai.stt_model",
                "must name a model when speech.stt_engine is openai",
            ));
        }
        if speech.tts_engine == TtsEngineKind::Openai {
            if openai.tts_model.trim().is_empty() {
                return Err(ConfigError::new(
                    "speech.openai.tts_model",
                    "must name a model when speech.tts_engine is openai",
                ));
            }
            if openai.tts_voice.trim().is_empty() {
                return Err(ConfigError::new(
                    "speech.openai.tts_voice",
                    "must name a voice when speech.tts_engine is openai",
                ));
            }
        }
        if !(100..=300_000).contains(&openai.timeout_ms) {
            return Err(ConfigError::new("speech.openai.timeout_ms", "must be between 100 and 300000"));
        }
        let external = &speech.external;
        if external.command.as_ref().is_some_and(|c| c.as_os_str().is_empty()) {
            return Err(ConfigError::new("speech.external.command", "must not be empty"));
        }
        if speech.tts_engine == TtsEngineKind::External && external.command.is_none() {
            return Err(ConfigError::new(
                "speech.external.command",
                "must name the sidecar program when speech.tts_engine is external",
            ));
        }
        if !(0.5..=2.0).contains(&speech.hibari.speed) {
            return Err(ConfigError::new("speech.hibari.speed", "must be between 0.5 and 2.0"));
        }
        if !(100..=300_000).contains(&external.timeout_ms) {
            return Err(ConfigError::new("speech.external.timeout_ms", "must be between 100 and 300000"));
        }
        Ok(())
    }
}

/// Flags are given as dotted keys so they merge into nested tables.
fn dotted_overrides(overrides: &Overrides) -> Figment {
    let mut figment = Figment::new();
    if let Some(dir) = &overrides.data_dir {
        figment = figment.merge(Serialized::default("data_dir", dir));
    }
    if let Some(url) = &overrides.database_url {
        figment = figment.merge(Serialized::default("database.url", url));
    }
    if let Some(addr) = overrides.api_addr {
        figment = figment.merge(Serialized::default("api.addr", addr));
    }
    if let Some(addr) = overrides.metrics_addr {
        figment = figment.merge(Serialized::default("metrics.addr", addr));
    }
    figment
}

fn from_figment(error: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let mut setting = error.path.join(".");
    let field = match &error.kind {
        Kind::UnknownField(field, _) => Some(field.to_string()),
        Kind::MissingField(field) => Some(field.to_string()),
        _ => None,
    };
    if let Some(field) = field {
        if setting.is_empty() {
            setting = field;
        } else if !setting.ends_with(&field) {
            setting = format!("{setting}.{field}");
        }
    }
    let source = match &error.metadata {
        Some(meta) => format!(" (from {})", meta.name),
        None => String::new(),
    };
    let message = match &error.kind {
        Kind::UnknownField(..) => "is not a slotline setting".to_string(),
        other => other.to_string(),
    };
    ConfigError::new(if setting.is_empty() { "<root>".into() } else { setting }, format!("{message}{source}"))
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn defaults_work_on_one_machine() {
        figment::Jail::expect_with(|_jail| {
            let config = Config::load(None, &Overrides::default()).expect("defaults load");
            assert_eq!(config.api.addr.to_string(), "127.0.0.1:8080");
            assert_eq!(config.metrics.addr.to_string(), "127.0.0.1:9464");
            assert_eq!(config.database_url().expose(), "sqlite://./data/slotline.db");
            assert_eq!(config.speech_model_path(), PathBuf::from("./data/models/ggml-tiny.en-q8_0.bin"));
            assert_eq!(config.speech.stt_workers, 1);
            Ok(())
        });
    }

    #[test]
    fn the_global_calcom_key_is_read_from_cal_key_and_slotline_wins() {
        figment::Jail::expect_with(|jail| {
            assert!(Config::load(None, &Overrides::default()).expect("loads").calcom.api_key.is_none());
            jail.set_env("CAL_KEY", "cal_live_from_cal_key");
            let config = Config::load(None, &Overrides::default()).expect("loads");
            assert_eq!(config.calcom.api_key.as_ref().map(Secret::expose), Some("cal_live_from_cal_key"));
            jail.set_env("SLOTLINE_CALCOM__API_KEY", "cal_live_from_slotline");
            let config = Config::load(None, &Overrides::default()).expect("loads");
            assert_eq!(config.calcom.api_key.as_ref().map(Secret::expose), Some("cal_live_from_slotline"));
            assert!(!format!("{config:?}").contains("cal_live_from"), "the key is never printed");
            jail.set_env("SLOTLINE_CALCOM__API_KEY", "a b");
            let error = Config::load(None, &Overrides::default()).expect_err("a key with a space");
            assert_eq!(error.setting, "calcom.api_key");
            assert!(!error.to_string().contains("a b"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn env_nests_with_double_underscore_and_flags_win() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("slotline.toml", "data_dir = \"/srv/slotline\"\n[api]\naddr = \"127.0.0.1:1\"\n")?;
            jail.set_env("SLOTLINE_API__ADDR", "127.0.0.1:2");
            jail.set_env("SLOTLINE_DATABASE__URL", "postgres://db/slotline");
            let flags = Overrides { metrics_addr: Some("127.0.0.1:3".parse().expect("addr")), ..Default::default() };
            let config = Config::load(None, &flags).expect("loads");
            assert_eq!(config.data_dir, PathBuf::from("/srv/slotline"));
            assert_eq!(config.api.addr.port(), 2);
            assert_eq!(config.metrics.addr.port(), 3);
            assert_eq!(config.database_url().expose(), "postgres://db/slotline");
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_setting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SLOTLINE_API__ADDR", "not an address");
            let err = Config::load(None, &Overrides::default()).expect_err("invalid");
            assert_eq!(err.setting, "api.addr");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("SLOTLINE_DEMO__TIMEZONE", "Mars/Olympus");
            let err = Config::load(None, &Overrides::default()).expect_err("invalid");
            assert_eq!(err.setting, "demo.timezone");
            Ok(())
        });
        for (variable, value, setting) in [
            ("SLOTLINE_SPEECH__STT_WORKERS", "0", "speech.stt_workers"),
            ("SLOTLINE_VOICE__PAUSE_MS", "610", "voice.pause_ms"),
            ("SLOTLINE_VOICE__SPECULATE_MS", "220", "voice.speculate_ms"),
            ("SLOTLINE_SPEECH__STT_THREADS", "0", "speech.stt_threads"),
            ("SLOTLINE_SPEECH__VAD_AGGRESSIVENESS", "4", "speech.vad_aggressiveness"),
            ("SLOTLINE_SPEECH__TTS_VOICE", "--help", "speech.tts_voice"),
            ("SLOTLINE_SPEECH__TTS_RATE", "20", "speech.tts_rate"),
            ("SLOTLINE_SPEECH__TTS_PROCESSES", "0", "speech.tts_processes"),
        ] {
            figment::Jail::expect_with(|jail| {
                jail.set_env(variable, value);
                let err = Config::load(None, &Overrides::default()).expect_err("invalid");
                assert_eq!(err.setting, setting);
                Ok(())
            });
        }
        figment::Jail::expect_with(|jail| {
            jail.create_file("slotline.toml", "[api]\nadress = \"127.0.0.1:1\"\n")?;
            let err = Config::load(None, &Overrides::default()).expect_err("typo");
            assert_eq!(err.setting, "api.adress");
            Ok(())
        });
    }

    #[test]
    fn speech_engines_are_chosen_and_configured_from_env() {
        figment::Jail::expect_with(|jail| {
            let config = Config::load(None, &Overrides::default()).expect("defaults load");
            assert_eq!(
                (config.speech.stt_engine, config.speech.tts_engine),
                (SttEngineKind::Whisper, TtsEngineKind::Hibari)
            );
            assert_eq!(config.speech.openai.stt_model, "whisper-1");
            assert_eq!(config.speech.openai.tts_model, "tts-1");
            assert_eq!(config.speech.openai.tts_voice, "alloy");
            assert_eq!(config.speech.openai.tts_format, TtsAudioFormat::Wav);
            jail.set_env("SLOTLINE_SPEECH__STT_ENGINE", "openai");
            jail.set_env("SLOTLINE_SPEECH__TTS_ENGINE", "external");
            jail.set_env("SLOTLINE_SPEECH__OPENAI__API_KEY", "sk-speech-secret");
            jail.set_env("SLOTLINE_SPEECH__OPENAI__TTS_FORMAT", "pcm");
            jail.set_env("SLOTLINE_SPEECH__OPENAI__BASE_URL", "http://127.0.0.1:9000/v1");
            jail.set_env("SLOTLINE_SPEECH__EXTERNAL__COMMAND", "python3");
            jail.set_env("SLOTLINE_SPEECH__EXTERNAL__ARGS", r#"["scripts/tts_sidecar.py", "--voice", "en-gb"]"#);
            jail.set_env("SLOTLINE_SPEECH__EXTERNAL__TIMEOUT_MS", "2500");
            let config = Config::load(None, &Overrides::default()).expect("loads");
            assert_eq!(config.speech.stt_engine, SttEngineKind::Openai);
            assert_eq!(config.speech.tts_engine, TtsEngineKind::External);
            assert_eq!(config.speech.openai.api_key.as_ref().map(Secret::expose), Some("sk-speech-secret"));
            assert!(!format!("{config:?}").contains("sk-speech-secret"));
            assert_eq!(config.speech.openai.tts_format, TtsAudioFormat::Pcm);
            assert_eq!(config.speech.openai.base_url, "http://127.0.0.1:9000/v1");
            assert_eq!(config.speech.external.command, Some(PathBuf::from("python3")));
            assert_eq!(config.speech.external.args, ["scripts/tts_sidecar.py", "--voice", "en-gb"]);
            assert_eq!(config.speech.external.timeout_ms, 2500);
            Ok(())
        });
    }

    #[test]
    fn speech_engine_errors_name_the_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("SLOTLINE_SPEECH__STT_ENGINE", "vosk")], "speech.stt_engine"),
            (&[("SLOTLINE_SPEECH__TTS_ENGINE", "piper")], "speech.tts_engine"),
            (&[("SLOTLINE_SPEECH__OPENAI__BASE_URL", "api.openai.com/v1")], "speech.openai.base_url"),
            (&[("SLOTLINE_SPEECH__OPENAI__API_KEY", " ")], "speech.openai.api_key"),
            (
                &[("SLOTLINE_SPEECH__STT_ENGINE", "openai"), ("SLOTLINE_SPEECH__OPENAI__STT_MODEL", " ")],
                "speech.openai.stt_model",
            ),
            (
                &[("SLOTLINE_SPEECH__TTS_ENGINE", "openai"), ("SLOTLINE_SPEECH__OPENAI__TTS_MODEL", "")],
                "speech.openai.tts_model",
            ),
            (
                &[("SLOTLINE_SPEECH__TTS_ENGINE", "openai"), ("SLOTLINE_SPEECH__OPENAI__TTS_VOICE", "")],
                "speech.openai.tts_voice",
            ),
            (&[("SLOTLINE_SPEECH__OPENAI__TTS_FORMAT", "mp3")], "speech.openai.tts_format"),
            (&[("SLOTLINE_SPEECH__OPENAI__TIMEOUT_MS", "50")], "speech.openai.timeout_ms"),
            (&[("SLOTLINE_SPEECH__OPENAI__VOICE", "alloy")], "speech.openai.voice"),
            (&[("SLOTLINE_SPEECH__TTS_ENGINE", "external")], "speech.external.command"),
            (&[("SLOTLINE_SPEECH__EXTERNAL__COMMAND", "")], "speech.external.command"),
            (&[("SLOTLINE_SPEECH__EXTERNAL__TIMEOUT_MS", "400000")], "speech.external.timeout_ms"),
        ];
        for (variables, setting) in cases {
            figment::Jail::expect_with(|jail| {
                for (variable, value) in *variables {
                    jail.set_env(variable, value);
                }
                let err = Config::load(None, &Overrides::default()).expect_err("invalid");
                assert_eq!(err.setting, *setting, "{variables:?}: {err}");
                Ok(())
            });
        }
        // A model or voice the engine in use does not need may stay empty.
        figment::Jail::expect_with(|jail| {
            jail.set_env("SLOTLINE_SPEECH__OPENAI__STT_MODEL", "");
            jail.set_env("SLOTLINE_SPEECH__OPENAI__TTS_VOICE", "");
            Config::load(None, &Overrides::default()).expect("unused settings may be empty");
            Ok(())
        });
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let secret = Secret::new("cal_live_supersecret");
        assert!(!format!("{secret:?}").contains("supersecret"));
    }
}
