//! Agents' voices: an agent may speak with a voice of its own (`voice` in the admin API) instead of the
//! gateway's default (`speech.tts_engine`).
//!
//! - [`AgentVoice`]: the engine (`hibari`, `piper` or `espeak`), for espeak-ng a voice name, and a speed;
//!   stored as JSON text in `agents.voice`;
//! - [`VoiceCatalog`]: what this gateway can speak with, asked when an agent is created or changed (a
//!   voice whose engine is not installed is refused, naming what is missing), and the engine of a voice;
//! - [`Voices`]: the engines calls speak with, the default one and one per agent voice in use, started
//!   on first use and shared by every call with that voice. A stored voice that can no longer speak
//!   here (its engine was removed since) speaks with the default voice, with one warning per voice.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::espeak::{self, EspeakTts};
use super::external::ExternalTts;
use super::hibari;
use crate::config::{is_espeak_voice_name, Config, ESPEAK_RATES};
use crate::speech::{SpeechError, TextToSpeech};

/// Slowest speed an agent's voice may have.
pub const MIN_SPEED: f32 = 0.5;
/// Fastest speed.
pub const MAX_SPEED: f32 = 2.0;

/// The engines an agent can speak with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VoiceEngine {
    /// hibari-tts, the neural default voice (one voice), through the reference sidecar.
    Hibari,
    /// piper-tts with its en_US "joe" voice (one voice), through the reference sidecar.
    Piper,
    /// espeak-ng, with any of its voices.
    Espeak,
}

impl VoiceEngine {
    /// The engine's name in the API, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hibari => "hibari",
            Self::Piper => "piper",
            Self::Espeak => "espeak",
        }
    }
}

/// An agent's own voice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentVoice {
    /// `hibari` (neural, the default engine), `piper` (neural) or `espeak` (espeak-ng). The engine must
    /// be installed on the gateway.
    pub engine: VoiceEngine,
    /// espeak-ng's voice, e.g. `en-gb` or `en-us+f3` (`espeak-ng --voices` lists them; default
    /// `speech.tts_voice`). hibari and piper have one voice each and take no name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Speaking speed, 0.5 to 2.0 (default 1.0, the voice's own; for espeak-ng a multiple of
    /// `speech.tts_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.5, maximum = 2.0)]
    pub speed: Option<f32>,
}

impl AgentVoice {
    /// Checks the fields and rounds the speed to hundredths; the error names the field.
    pub fn normalised(mut self) -> Result<Self, (&'static str, String)> {
        if let Some(speed) = self.speed {
            if !(MIN_SPEED..=MAX_SPEED).contains(&speed) {
                return Err(("voice.speed", format!("must be between {MIN_SPEED} and {MAX_SPEED}")));
            }
            self.speed = Some((speed * 100.0).round() / 100.0);
        }
        match (&self.name, self.engine) {
            (None, _) => {}
            (Some(name), VoiceEngine::Espeak) => {
                if !is_espeak_voice_name(name) {
                    return Err(("voice.name", format!("`{name}` is not an espeak-ng voice name such as `en-gb+f3`")));
                }
            }
            (Some(_), engine) => {
                return Err(("voice.name", format!("{} has one voice: leave the name out", engine.as_str())));
            }
        }
        Ok(self)
    }

    /// The voice as stored in `agents.voice`.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored voice.
    pub fn from_stored(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("agents.voice is not a voice: {e}"))
    }

    fn speed_or_default(&self) -> f32 {
        self.speed.unwrap_or(1.0)
    }
}

/// What this gateway can speak with, from its configuration.
#[derive(Debug, Clone)]
pub struct VoiceCatalog {
    hibari_python: PathBuf,
    piper_python: PathBuf,
    espeak_voice: String,
    espeak_rate: u32,
    timeout_ms: u64,
    processes: usize,
}

impl VoiceCatalog {
    /// The catalog of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            hibari_python: config.hibari_python(),
            piper_python: config.piper_python(),
            espeak_voice: config.speech.tts_voice.clone(),
            espeak_rate: config.speech.tts_rate,
            timeout_ms: config.speech.external.timeout_ms,
            processes: config.speech.tts_processes,
        }
    }

    /// Identifies the engine `voice` needs: voices with the same key share one.
    pub fn key(&self, voice: &AgentVoice) -> String {
        let name = match voice.engine {
            VoiceEngine::Espeak => voice.name.as_deref().unwrap_or(&self.espeak_voice),
            VoiceEngine::Hibari | VoiceEngine::Piper => "",
        };
        format!("{}:{name}:{:.2}", voice.engine.as_str(), voice.speed_or_default())
    }

    /// Why `voice` cannot speak on this gateway, if it cannot, and the field at fault: its engine is not
    /// installed (`voice.engine`; the message says what is missing and how to install it), or espeak-ng
    /// does not know the voice name (`voice.name`).
    pub async fn unavailable(&self, voice: &AgentVoice) -> Option<(&'static str, String)> {
        let python = match voice.engine {
            VoiceEngine::Hibari => &self.hibari_python,
            VoiceEngine::Piper => &self.piper_python,
            VoiceEngine::Espeak => return self.espeak_unavailable(voice.name.as_deref()).await,
        };
        (!python.is_file()).then(|| {
            let engine = voice.engine.as_str();
            let message = format!(
                "the {engine} voice is not installed on this gateway ({} is missing; `scripts/setup.sh --{engine}` \
                 installs it)",
                python.display()
            );
            ("voice.engine", message)
        })
    }

    /// espeak-ng is missing, or does not know `name` (it fails on an unknown voice).
    async fn espeak_unavailable(&self, name: Option<&str>) -> Option<(&'static str, String)> {
        let Some(program) = espeak::find_program() else {
            let message = format!(
                "espeak-ng is not installed on this gateway (install the Debian package `{}`)",
                espeak::PACKAGE
            );
            return Some(("voice.engine", message));
        };
        let name = name?;
        let status = tokio::process::Command::new(program)
            .args(["-q", "-v", name, ""])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await;
        match status {
            Ok(status) if status.success() => None,
            Ok(_) => Some(("voice.name", format!("espeak-ng has no voice `{name}` (`espeak-ng --voices` lists them)"))),
            Err(e) => Some(("voice.engine", format!("espeak-ng cannot be run: {e}"))),
        }
    }

    /// Starts the engine of `voice` (a pool of `speech.tts_processes` sidecars for hibari and piper).
    pub async fn start(&self, voice: &AgentVoice) -> Result<Arc<dyn TextToSpeech>, SpeechError> {
        let speed = voice.speed_or_default();
        Ok(match voice.engine {
            VoiceEngine::Hibari => {
                let sidecar = hibari::sidecar(&self.hibari_python, "hibari", speed, self.timeout_ms);
                Arc::new(ExternalTts::start_pool(&sidecar, self.processes).await?)
            }
            VoiceEngine::Piper => {
                let sidecar = hibari::sidecar(&self.piper_python, "piper", speed, self.timeout_ms);
                Arc::new(ExternalTts::start_pool(&sidecar, self.processes).await?)
            }
            VoiceEngine::Espeak => {
                let name = voice.name.as_deref().unwrap_or(&self.espeak_voice);
                let rate = (self.espeak_rate as f32 * speed).round() as u32;
                Arc::new(EspeakTts::new(name, rate.clamp(*ESPEAK_RATES.start(), *ESPEAK_RATES.end()))?)
            }
        })
    }
}

/// A voice a call speaks with: its engine, and the key its sentences are cached under.
#[derive(Clone)]
pub struct Speaking {
    /// Identifies the voice (cached sentences of one voice are not another's).
    pub key: Arc<str>,
    /// The engine's name in metrics and logs: `hibari`, `piper`, `espeak`, `openai` or `external`.
    pub engine: &'static str,
    /// The engine.
    pub tts: Arc<dyn TextToSpeech>,
}

impl std::fmt::Debug for Speaking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaking").field("key", &self.key).field("engine", &self.engine).finish_non_exhaustive()
    }
}

/// The engines calls speak with: the default voice and the agents' own, each started once.
pub struct Voices {
    catalog: VoiceCatalog,
    default: Speaking,
    /// The key of the default voice when an agent voice can be the same (hibari or espeak-ng defaults):
    /// an agent asking for it shares the default's engine.
    default_key: Option<String>,
    /// Agent voices by key: the engine, or `None` when it cannot speak here (warned once).
    started: tokio::sync::Mutex<HashMap<String, Option<Speaking>>>,
    /// Stored voices that are not voices (warned once each).
    unreadable: StdMutex<Vec<String>>,
}

impl Voices {
    /// The default voice `default` (engine name `engine`; `as_agent_voice` when an agent voice is the
    /// same) and the agents' voices `catalog` can start.
    pub fn new(
        catalog: VoiceCatalog,
        default: Arc<dyn TextToSpeech>,
        engine: &'static str,
        as_agent_voice: Option<AgentVoice>,
    ) -> Self {
        let default = Speaking { key: Arc::from("default"), engine, tts: default };
        let default_key = as_agent_voice.map(|voice| catalog.key(&voice));
        let (started, unreadable) = (tokio::sync::Mutex::new(HashMap::new()), StdMutex::new(vec![]));
        Self { catalog, default, default_key, started, unreadable }
    }

    /// The gateway's default voice.
    pub fn default_voice(&self) -> Speaking {
        self.default.clone()
    }

    /// The voice of an agent whose stored voice is `stored` (`None`: the default voice). A voice that
    /// cannot speak here falls back to the default, with one warning per voice.
    pub async fn for_agent(&self, stored: Option<&str>) -> Speaking {
        let Some(stored) = stored else { return self.default.clone() };
        let voice = match AgentVoice::from_stored(stored) {
            Ok(voice) => voice,
            Err(e) => {
                let mut unreadable = self.unreadable.lock().unwrap_or_else(|e| e.into_inner());
                if !unreadable.iter().any(|s| s == stored) {
                    unreadable.push(stored.to_string());
                    tracing::warn!(error = %e, "an agent's stored voice is unreadable: it speaks with the default voice");
                }
                return self.default.clone();
            }
        };
        let key = self.catalog.key(&voice);
        if self.default_key.as_ref() == Some(&key) {
            return self.default.clone();
        }
        let mut started = self.started.lock().await;
        if let Some(known) = started.get(&key) {
            return known.clone().unwrap_or_else(|| self.default.clone());
        }
        let speaking = self.start(&voice, &key).await;
        started.insert(key, speaking.clone());
        speaking.unwrap_or_else(|| self.default.clone())
    }

    async fn start(&self, voice: &AgentVoice, key: &str) -> Option<Speaking> {
        let reason = match self.catalog.unavailable(voice).await {
            Some((_, reason)) => reason,
            None => match self.catalog.start(voice).await {
                Ok(tts) => {
                    tracing::info!(voice = key, "started an agent's voice");
                    return Some(Speaking { key: Arc::from(key), engine: voice.engine.as_str(), tts });
                }
                Err(e) => e.to_string(),
            },
        };
        tracing::warn!(voice = key, reason = %reason, "an agent's voice cannot speak here: its calls speak with the default voice");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A default voice that says nothing.
    struct Silent;

    #[async_trait::async_trait]
    impl TextToSpeech for Silent {
        async fn synthesize(&self, _text: &str) -> Result<Vec<i16>, SpeechError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn the_default_voice_speaks_for_itself_and_for_voices_that_cannot_speak_here() {
        let config = Config { data_dir: PathBuf::from("/nonexistent/data"), ..Config::default() };
        let hibari = AgentVoice { engine: VoiceEngine::Hibari, name: None, speed: Some(1.0) };
        let voices = Voices::new(VoiceCatalog::from_config(&config), Arc::new(Silent), "hibari", Some(hibari));
        for stored in [None, Some(r#"{"engine":"hibari"}"#), Some(r#"{"engine":"piper"}"#), Some("not json")] {
            let speaking = voices.for_agent(stored).await;
            assert_eq!((&*speaking.key, speaking.engine), ("default", "hibari"), "{stored:?}");
        }
        // Asked again, the piper voice that is not installed is not looked for again.
        assert_eq!(voices.started.lock().await.len(), 1);
        assert_eq!(&*voices.for_agent(Some(r#"{"engine":"piper"}"#)).await.key, "default");
    }

    fn voice(engine: VoiceEngine, name: Option<&str>, speed: Option<f32>) -> AgentVoice {
        AgentVoice { engine, name: name.map(String::from), speed }
    }

    #[test]
    fn voices_are_checked_and_name_the_field() {
        let ok = voice(VoiceEngine::Espeak, Some("en-gb+f3"), Some(1.234)).normalised().expect("valid");
        assert_eq!(ok.speed, Some(1.23));
        assert_eq!(voice(VoiceEngine::Hibari, None, Some(3.0)).normalised().map_err(|e| e.0), Err("voice.speed"));
        assert_eq!(voice(VoiceEngine::Hibari, None, Some(f32::NAN)).normalised().map_err(|e| e.0), Err("voice.speed"));
        assert_eq!(voice(VoiceEngine::Piper, Some("joe"), None).normalised().map_err(|e| e.0), Err("voice.name"));
        for bad in ["-x", "", "en us", "en;rm"] {
            assert_eq!(voice(VoiceEngine::Espeak, Some(bad), None).normalised().map_err(|e| e.0), Err("voice.name"));
        }
    }

    #[test]
    fn stored_voices_read_back_and_share_engines_by_key() {
        let stored = voice(VoiceEngine::Hibari, None, Some(1.1)).to_stored();
        assert_eq!(stored, r#"{"engine":"hibari","speed":1.1}"#);
        let read = AgentVoice::from_stored(&stored).expect("reads");
        let catalog = VoiceCatalog::from_config(&Config::default());
        assert_eq!(catalog.key(&read), "hibari::1.10");
        let key = |engine, name, speed| catalog.key(&voice(engine, name, speed));
        assert_eq!(key(VoiceEngine::Hibari, None, None), key(VoiceEngine::Hibari, None, Some(1.0)));
        assert_eq!(key(VoiceEngine::Espeak, None, None), key(VoiceEngine::Espeak, Some("en-us"), None), "the default");
        assert_ne!(key(VoiceEngine::Espeak, None, None), key(VoiceEngine::Espeak, Some("en-gb"), None));
        assert!(AgentVoice::from_stored(r#"{"engine":"festival"}"#).is_err());
    }
}
