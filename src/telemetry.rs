//! Tracing setup: human-readable or JSON lines on standard error, filtered by `log.level`.
//!
//! Secrets are kept out of logs by construction: configuration secrets are [`crate::config::Secret`]
//! (redacted `Debug`), sealed keys are never decrypted outside the calendar client, and request bodies are
//! never logged.

use std::io::IsTerminal as _;

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Safe to call more than once (later calls are ignored).
pub fn init(log: &LogConfig) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true);
    let _already_set = match log.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
