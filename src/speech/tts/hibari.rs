//! The default voice: hibari-tts, a neural voice (Apache-2.0, 7.9 MB, distilled from Kokoro), spoken by
//! slotline's reference sidecar (`scripts/tts_sidecar.py`, carried inside the binary) under the Python that
//! `scripts/setup.sh` installs hibari-tts into. Where that Python is missing, calls speak with espeak-ng
//! and one warning line says what is missing and how to install it.

use std::path::{Path, PathBuf};

use crate::config::{Config, ExternalTtsConfig};

/// The reference sidecar, run with `python -c`, so an installed binary needs no checkout beside it.
pub const SIDECAR: &str = include_str!("../../../scripts/tts_sidecar.py");

/// How the hibari voice runs here.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// The sidecar, with this configuration.
    Hibari(ExternalTtsConfig),
    /// espeak-ng instead: the Python with hibari-tts is not at this path.
    NotInstalled(PathBuf),
}

/// The hibari sidecar for `config`, or why it cannot run.
pub fn choose(config: &Config) -> Choice {
    let python = config.hibari_python();
    if !python.is_file() {
        return Choice::NotInstalled(python);
    }
    Choice::Hibari(sidecar(&python, "hibari", config.speech.hibari.speed, config.speech.external.timeout_ms))
}

/// The reference sidecar's command line for one of its engines (`hibari` or `piper`):
/// `python -c <script> --engine ENGINE --speed S`.
pub(crate) fn sidecar(python: &Path, engine: &str, speed: f32, timeout_ms: u64) -> ExternalTtsConfig {
    ExternalTtsConfig {
        command: Some(python.to_path_buf()),
        args: ["-c", SIDECAR, "--engine", engine, "--speed", &speed.to_string()].map(String::from).to_vec(),
        timeout_ms,
    }
}

/// The warning when the voice is not installed.
pub fn not_installed(python: &Path) -> String {
    format!(
        "the neural voice is not installed ({} is missing): speaking with espeak-ng; run scripts/setup.sh to \
         install hibari-tts",
        python.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_its_python_the_voice_is_not_installed() {
        let config = Config { data_dir: PathBuf::from("/nonexistent/data"), ..Config::default() };
        assert_eq!(choose(&config), Choice::NotInstalled(PathBuf::from("/nonexistent/data/hibari/python")));
        assert!(not_installed(Path::new("/x/python")).contains("/x/python is missing"));
    }

    #[test]
    fn the_sidecar_runs_the_bundled_script_with_hibari() {
        let sidecar = sidecar(Path::new("/venv/python"), "hibari", 1.1, 5000);
        assert_eq!(sidecar.command.as_deref(), Some(Path::new("/venv/python")));
        assert_eq!(sidecar.args[0], "-c");
        assert!(sidecar.args[1].contains("class HibariVoice"));
        assert_eq!(sidecar.args[2..], ["--engine", "hibari", "--speed", "1.1"]);
        assert_eq!(sidecar.timeout_ms, 5000);
    }
}
