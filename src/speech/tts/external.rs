//! Text to speech by a sidecar: a long-running program (`speech.external.command` with
//! `speech.external.args`) that keeps its voice loaded and speaks a line protocol on its standard input
//! and output. `scripts/tts_sidecar.py` is the reference sidecar, with espeak-ng, hibari-tts or piper-tts
//! behind the protocol (`--engine`); another engine fits behind the same few lines of Python.
//!
//! # Protocol
//!
//! slotline writes one request per line to the sidecar's standard input, a JSON object with a request
//! id (counting up from 1 across the pool, so one process sees them increasing) and the text, which is one sentence or a short reply:
//!
//! ```text
//! {"id":7,"text":"Your appointment is on Tuesday at two."}
//! ```
//!
//! The sidecar answers each request, in order, on its standard output with one JSON header line, then,
//! on success, exactly `samples × 2` bytes of 16-bit little-endian mono PCM at `rate` Hz (8 000 to
//! 192 000; slotline resamples to 8 kHz):
//!
//! ```text
//! {"id":7,"rate":22050,"samples":31752}\n<63504 bytes of PCM>
//! {"id":8,"error":"the voice has no phonemes for this text"}\n
//! ```
//!
//! An `error` answer carries no PCM; the sidecar stays up and the request fails with that message.
//! Standard output carries nothing else (logs go to standard error, which slotline logs line by line).
//! A header longer than 64 KiB, audio longer than 10 minutes, or an answer to another id breaks the
//! protocol.
//!
//! # Lifecycle
//!
//! [`ExternalTts::start_pool`] starts `speech.tts_processes` sidecars at once (one for
//! [`ExternalTts::start`]); a sentence takes a free one, so sentences of concurrent calls are spoken at the
//! same time, each by its own process, and wait only when every process is busy. Each request is bounded
//! by `speech.external.timeout_ms` from writing the request to the last PCM byte (the first request of
//! each process gets 30 s more, for loading a voice). When a sidecar exits, breaks the protocol or times
//! out, that request fails with what happened (exit status and the last line of its standard error) and
//! the process is killed; the next request on its place in the pool starts a new one. So does a request
//! whose caller stopped waiting half-way (a barge-in),
//! since the pipes are then out of step.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::ExternalTtsConfig;
use crate::speech::openai::excerpt;
use crate::speech::resample::Resampler;
use crate::speech::tts::{to_telephone, MAX_ENGINE_RATE, MIN_ENGINE_RATE};
use crate::speech::{Missing, SpeechError, TextToSpeech, RATE};

/// The engine's name in errors.
pub const ENGINE: &str = "external-tts";

/// The setting naming the sidecar program.
pub const COMMAND_SETTING: &str = "speech.external.command";

/// Longest header line.
const MAX_HEADER_BYTES: u64 = 64 * 1024;
/// Longest answer, in seconds of audio.
const MAX_AUDIO_SECS: u64 = 600;
/// The rate espeak-ng and piper's common voices speak at: its converter is built once.
const USUAL_RATE: u32 = 22_050;
/// Extra time a new sidecar has for its first answer (loading a voice).
const STARTUP_GRACE: Duration = Duration::from_secs(30);
/// How long a sidecar that broke off is given to report its exit status and last words.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Where `command` is: a path (anything with a `/`) when it is a file, or a name found on `PATH`.
pub fn find_command(command: &Path) -> Option<PathBuf> {
    if command.components().count() > 1 || command.is_absolute() {
        return command.is_file().then(|| command.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(command)).find(|candidate| candidate.is_file())
}

/// One request line.
#[derive(Debug, Serialize)]
struct Request<'a> {
    id: u64,
    text: &'a str,
}

/// One header line.
#[derive(Debug, Deserialize)]
struct Header {
    id: u64,
    rate: Option<u32>,
    samples: Option<u64>,
    error: Option<String>,
}

/// What a sidecar answered.
enum Answer {
    /// PCM at a rate.
    Audio { samples: Vec<i16>, rate: u32 },
    /// An `error` header.
    Refused(String),
}

/// Why an exchange broke off; the sidecar is not used again.
enum Broken {
    /// Its standard output ended (it exited, or closed it).
    Ended,
    /// A pipe failed.
    Io(std::io::Error),
    /// It wrote something the protocol does not allow.
    Protocol(String),
}

impl From<std::io::Error> for Broken {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::BrokenPipe => Self::Ended,
            _ => Self::Io(e),
        }
    }
}

/// A running sidecar and its pipes.
struct Sidecar {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The last line it wrote to standard error.
    last_stderr: Arc<StdMutex<Option<String>>>,
    /// Logs standard error until it closes.
    stderr_task: tokio::task::JoinHandle<()>,
    /// `false` while a request is on the pipes; a request abandoned half-way leaves it `false`.
    in_step: bool,
    /// It has answered a request (so it has loaded its voice).
    answered: bool,
}

impl Sidecar {
    /// Why this sidecar cannot take a request, if it cannot.
    fn unusable(&mut self) -> Option<String> {
        if !self.in_step {
            return Some("an earlier request was abandoned half-way".into());
        }
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!("it exited ({status})")),
            Err(e) => Some(format!("its state is unknown ({e})")),
        }
    }

    /// Sends request `id` and reads its answer.
    async fn exchange(&mut self, id: u64, text: &str) -> Result<Answer, Broken> {
        let mut line = serde_json::to_vec(&Request { id, text }).map_err(|e| Broken::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        let mut header = Vec::new();
        (&mut self.stdout).take(MAX_HEADER_BYTES).read_until(b'\n', &mut header).await?;
        if !header.ends_with(b"\n") {
            return Err(if header.len() as u64 >= MAX_HEADER_BYTES {
                Broken::Protocol("a header line longer than 64 KiB".into())
            } else {
                Broken::Ended
            });
        }
        let header: Header = serde_json::from_slice(&header).map_err(|e| {
            Broken::Protocol(format!("a header line that is not the protocol's JSON ({e}): {}", excerpt(&header)))
        })?;
        if header.id != id {
            return Err(Broken::Protocol(format!("an answer to request {} while request {id} was waiting", header.id)));
        }
        if let Some(error) = header.error {
            return Ok(Answer::Refused(excerpt(error.as_bytes())));
        }
        let (Some(rate), Some(samples)) = (header.rate, header.samples) else {
            return Err(Broken::Protocol("a header without `rate` and `samples` (or `error`)".into()));
        };
        if !(MIN_ENGINE_RATE..=MAX_ENGINE_RATE).contains(&rate) {
            return Err(Broken::Protocol(format!(
                "a sample rate of {rate} Hz (must be {MIN_ENGINE_RATE} to {MAX_ENGINE_RATE})"
            )));
        }
        if samples > u64::from(rate) * MAX_AUDIO_SECS {
            return Err(Broken::Protocol(format!("{samples} samples, more than {MAX_AUDIO_SECS} s at {rate} Hz")));
        }
        let len = usize::try_from(samples * 2).map_err(|e| Broken::Protocol(e.to_string()))?;
        let mut pcm = vec![0u8; len];
        self.stdout.read_exact(&mut pcm).await?;
        Ok(Answer::Audio { samples: pcm.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(), rate })
    }

    /// What became of a sidecar whose standard output ended: its exit status and last words.
    async fn obituary(&mut self) -> String {
        let status = match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("exit status unknown: {e}"),
            Err(_) => "still running, killed".to_string(),
        };
        let _ = tokio::time::timeout(EXIT_GRACE, &mut self.stderr_task).await;
        let last = self.last_stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match last {
            Some(line) => format!("the sidecar exited before answering ({status}); its last words: {line}"),
            None => format!("the sidecar exited before answering ({status})"),
        }
    }
}

/// One place in the pool: a sidecar, or none until the next request starts one.
struct Slot {
    /// Its place in the pool (the index of its process id in [`ExternalTts::process_ids`]).
    index: usize,
    sidecar: Option<Sidecar>,
}

/// A slot taken for one request; dropped, it goes back to the idle slots (even when the request was
/// abandoned half-way: its sidecar is then out of step and the next request restarts it).
struct Lease<'a> {
    pool: &'a ExternalTts,
    slot: Option<Slot>,
    /// Released after the slot is back (fields drop after [`Drop::drop`]).
    _permit: SemaphorePermit<'a>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let pid = slot.sidecar.as_ref().and_then(|s| s.child.id());
            lock(&self.pool.pids)[slot.index] = pid;
            lock(&self.pool.idle).push(slot);
        }
    }
}

fn lock<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pool of text-to-speech sidecar processes, each restarted when it fails. Requests run at once on
/// different processes, as many as the pool has; further requests wait for a free one.
pub struct ExternalTts {
    command: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    /// One permit per slot: a request holding one finds an idle slot.
    permits: Semaphore,
    /// The slots no request holds (the last used on top, so one caller at a time keeps one process).
    idle: StdMutex<Vec<Slot>>,
    /// The process id of each slot's sidecar, as it was when its last request ended.
    pids: StdMutex<Vec<Option<u32>>>,
    next_id: AtomicU64,
    /// 22.05 → 8 kHz, built once and cloned per sentence spoken at that rate.
    resampler: Resampler,
}

impl std::fmt::Debug for ExternalTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalTts").field("command", &self.command).field("args", &self.args).finish_non_exhaustive()
    }
}

impl ExternalTts {
    /// Starts one sidecar of `config`. Fails when `speech.external.command` is unset or cannot be started.
    pub async fn start(config: &ExternalTtsConfig) -> Result<Self, SpeechError> {
        Self::start_pool(config, 1).await
    }

    /// Starts `processes` sidecars of `config` (at least one), which speak sentences at the same time.
    pub async fn start_pool(config: &ExternalTtsConfig, processes: usize) -> Result<Self, SpeechError> {
        let command = config.command.clone().ok_or_else(|| failed(format!("{COMMAND_SETTING} is not set")))?;
        let processes = processes.max(1);
        let engine = Self {
            command,
            args: config.args.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
            permits: Semaphore::new(processes),
            idle: StdMutex::new(Vec::with_capacity(processes)),
            pids: StdMutex::new(vec![None; processes]),
            next_id: AtomicU64::new(1),
            resampler: Resampler::new(USUAL_RATE, RATE),
        };
        // Slot 0 on top of the idle stack: a lone caller uses the first process.
        for index in (0..processes).rev() {
            let sidecar = engine.spawn()?;
            lock(&engine.pids)[index] = sidecar.child.id();
            lock(&engine.idle).push(Slot { index, sidecar: Some(sidecar) });
        }
        Ok(engine)
    }

    /// The process id of the first sidecar (a pool of one's only one), if it runs.
    pub async fn process_id(&self) -> Option<u32> {
        lock(&self.pids).first().copied().flatten()
    }

    /// The process id of every sidecar in the pool, as it was when its last request ended (`None`: it
    /// failed and is started again by the next request it takes).
    pub fn process_ids(&self) -> Vec<Option<u32>> {
        lock(&self.pids).clone()
    }

    /// The number of sidecar processes.
    pub fn processes(&self) -> usize {
        lock(&self.pids).len()
    }

    /// Waits for a free slot.
    async fn lease(&self) -> Result<Lease<'_>, SpeechError> {
        let permit = self.permits.acquire().await.map_err(|e| failed(format!("the sidecar pool is closed: {e}")))?;
        let slot = lock(&self.idle).pop();
        match slot {
            Some(slot) => Ok(Lease { pool: self, slot: Some(slot), _permit: permit }),
            None => Err(failed("no idle sidecar although a permit was free".into())),
        }
    }
    fn spawn(&self) -> Result<Sidecar, SpeechError> {
        let mut child = tokio::process::Command::new(&self.command)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    SpeechError::Missing(vec![Missing::Command {
                        setting: COMMAND_SETTING,
                        command: self.command.clone(),
                    }])
                } else {
                    failed(format!("cannot start {}: {e}", self.command.display()))
                }
            })?;
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
            return Err(failed("the sidecar's pipes are missing".into()));
        };
        let last_stderr = Arc::new(StdMutex::new(None));
        let last = last_stderr.clone();
        let pid = child.id();
        let stderr_task = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(pid, line = %line, "text-to-speech sidecar");
                *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(excerpt(line.as_bytes()));
            }
        });
        tracing::info!(pid, command = %self.command.display(), "started the text-to-speech sidecar");
        Ok(Sidecar {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            last_stderr,
            stderr_task,
            in_step: true,
            answered: false,
        })
    }

    /// Speaks `text` on a free sidecar (started anew when its last one failed): PCM and its rate.
    async fn speak(&self, text: &str) -> Result<(Vec<i16>, u32), SpeechError> {
        let mut lease = self.lease().await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = lease.slot.as_mut() else { return Err(failed("the lease holds no slot".into())) };
        let sidecar = match slot.sidecar.take() {
            Some(mut sidecar) => match sidecar.unusable() {
                None => slot.sidecar.insert(sidecar),
                Some(reason) => {
                    tracing::warn!(reason = %reason, slot = slot.index, "restarting a text-to-speech sidecar");
                    drop(sidecar);
                    slot.sidecar.insert(self.spawn()?)
                }
            },
            None => slot.sidecar.insert(self.spawn()?),
        };
        sidecar.in_step = false;
        let timeout = if sidecar.answered { self.timeout } else { self.timeout + STARTUP_GRACE };
        let message = match tokio::time::timeout(timeout, sidecar.exchange(id, text)).await {
            Ok(Ok(Answer::Audio { samples, rate })) => {
                (sidecar.in_step, sidecar.answered) = (true, true);
                return Ok((samples, rate));
            }
            Ok(Ok(Answer::Refused(message))) => {
                (sidecar.in_step, sidecar.answered) = (true, true);
                return Err(failed(format!("the sidecar could not speak the text: {message}")));
            }
            Ok(Err(Broken::Ended)) => sidecar.obituary().await,
            Ok(Err(Broken::Io(e))) => format!("talking with the sidecar failed: {e}"),
            Ok(Err(Broken::Protocol(what))) => format!("the sidecar broke the protocol with {what}"),
            Err(_) => format!("no answer within the timeout of {} ms", timeout.as_millis()),
        };
        // Killed when dropped; the next request on this slot starts a new one.
        slot.sidecar = None;
        Err(failed(format!("{message}; the sidecar is restarted for the next request")))
    }
}

fn failed(message: String) -> SpeechError {
    SpeechError::Engine { engine: ENGINE, message }
}

#[async_trait]
impl TextToSpeech for ExternalTts {
    async fn synthesize(&self, text: &str) -> Result<Vec<i16>, SpeechError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let (samples, rate) = self.speak(text).await?;
        to_telephone(samples, rate, &self.resampler, USUAL_RATE).await.map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_by_path_or_on_path() {
        assert!(find_command(Path::new("sh")).is_some_and(|p| p.is_absolute()));
        assert_eq!(find_command(Path::new("/bin/sh")), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_command(Path::new("slotline-no-such-sidecar")), None);
        assert_eq!(find_command(Path::new("./no/such/sidecar")), None);
    }

    #[test]
    fn requests_are_one_line_of_json() {
        let line = serde_json::to_string(&Request { id: 3, text: "Line one.\nLine \"two\"." }).unwrap_or_default();
        assert_eq!(line, r#"{"id":3,"text":"Line one.\nLine \"two\"."}"#);
        assert!(!line.contains('\n'));
    }
}
