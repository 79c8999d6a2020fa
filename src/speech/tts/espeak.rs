//! `espeak-ng` as a text-to-speech engine: formant synthesis, offline, well under 50 ms a sentence.
//!
//! espeak-ng's library is GPL-3.0, so slotline (Apache-2.0) never links it: each [`EspeakTts::synthesize`]
//! runs the `espeak-ng` program (`tokio::process`, killed if the caller stops waiting), hands it the text
//! on standard input, reads the WAV it writes to standard output (22.05 kHz), and resamples to 8 kHz.

use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt as _;

use crate::audio::wav;
use crate::speech::resample::Resampler;
use crate::speech::{Missing, SpeechError, TextToSpeech, RATE};

/// The program.
pub const PROGRAM: &str = "espeak-ng";
/// The Debian package that installs it.
pub const PACKAGE: &str = "espeak-ng";

/// The rate espeak-ng speaks at.
const ESPEAK_RATE: u32 = 22_050;

/// Where `espeak-ng` is on `PATH`, if it is.
pub fn find_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(PROGRAM)).find(|candidate| candidate.is_file())
}

/// The espeak-ng engine with one voice and speaking rate.
#[derive(Debug, Clone)]
pub struct EspeakTts {
    program: PathBuf,
    voice: String,
    words_per_minute: u32,
    /// 22.05 → 8 kHz, built once (its filter has 24 320 coefficients) and cloned per sentence.
    resampler: Resampler,
}

impl EspeakTts {
    /// An engine speaking with `voice` (an espeak-ng voice such as `en-us`) at `words_per_minute`;
    /// fails when `espeak-ng` is not on `PATH`.
    pub fn new(voice: &str, words_per_minute: u32) -> Result<Self, SpeechError> {
        let program = find_program().ok_or_else(missing)?;
        Ok(Self { program, voice: voice.to_string(), words_per_minute, resampler: Resampler::new(ESPEAK_RATE, RATE) })
    }
}

fn missing() -> SpeechError {
    SpeechError::Missing(vec![Missing::Program { program: PROGRAM, package: PACKAGE }])
}

fn failed(message: String) -> SpeechError {
    SpeechError::Engine { engine: PROGRAM, message }
}

#[async_trait]
impl TextToSpeech for EspeakTts {
    async fn synthesize(&self, text: &str) -> Result<Vec<i16>, SpeechError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let mut child = tokio::process::Command::new(&self.program)
            .args(["--stdout", "--stdin", "-v", &self.voice, "-s", &self.words_per_minute.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| if e.kind() == std::io::ErrorKind::NotFound { missing() } else { failed(e.to_string()) })?;
        let mut stdin = child.stdin.take().ok_or_else(|| failed("no standard input".into()))?;
        let text = text.to_string();
        // Write while espeak-ng writes its output, so a long text cannot fill both pipes.
        let writer = async move {
            let written = stdin.write_all(text.as_bytes()).await;
            drop(stdin);
            written
        };
        let (written, output) = tokio::join!(writer, child.wait_with_output());
        let output = output.map_err(|e| failed(e.to_string()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(failed(format!("{} ({})", stderr.trim(), output.status)));
        }
        written.map_err(|e| failed(format!("writing the text: {e}")))?;
        let pcm = wav::parse(&output.stdout).map_err(|e| failed(format!("its WAV output: {e}")))?;
        // A few milliseconds of arithmetic per sentence, off the async runtime.
        super::to_telephone(pcm.samples, pcm.rate, &self.resampler, ESPEAK_RATE).await.map_err(failed)
    }
}
