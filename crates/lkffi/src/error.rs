//! What can go wrong loading LiveKit's FFI library and talking to it: one error type for the crate.

use std::path::PathBuf;
use std::time::Duration;

use crate::library::EXPECTED_VERSION;

/// An error of the LiveKit FFI binding. Loading errors are one line that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FfiError {
    /// The library file does not exist.
    #[error(
        "LiveKit's FFI library {} is missing: install it with `scripts/setup.sh --livekit` (or set livekit.ffi_lib to \
         liblivekit_ffi.so {EXPECTED_VERSION} from the PyPI wheel livekit==1.2.1)",
        path.display()
    )]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file exists but the dynamic loader refused it, or a symbol is missing.
    #[error("cannot load LiveKit's FFI library {}: {source}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// What the loader said.
        #[source]
        source: libloading::Error,
    },
    /// The library is another livekit-ffi version than the one whose protocol this crate was built from.
    #[error(
        "{} is livekit-ffi {found}, but slotline speaks livekit-ffi {EXPECTED_VERSION} (PyPI wheel livekit==1.2.1): \
         install it with `scripts/setup.sh --livekit`",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it reports (or why none could be read).
        found: String,
    },
    /// This process already loaded the library from another file (it is loaded once and never unloaded).
    #[error("LiveKit's FFI library is already loaded from {}, not {}", loaded.display(), requested.display())]
    AlreadyLoaded {
        /// The file in use.
        loaded: PathBuf,
        /// The file asked for.
        requested: PathBuf,
    },
    /// `livekit_ffi_request` returned no response: the library could not decode the request or refused a
    /// handle in it (it logs the reason on stderr).
    #[error("LiveKit FFI: the library refused the {0} request")]
    Rejected(&'static str),
    /// A response or event could not be decoded.
    #[error("LiveKit FFI: cannot decode the answer to {what}: {source}")]
    Decode {
        /// The request.
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: prost::DecodeError,
    },
    /// The library answered a request with a message of another request.
    #[error("LiveKit FFI: unexpected answer to {0}")]
    Unexpected(&'static str),
    /// The library's callback for an asynchronous request did not come in time.
    #[error("LiveKit FFI: no answer to {0} within {1:?}")]
    Timeout(&'static str, Duration),
    /// The library reported an error for a request (its message).
    #[error("LiveKit FFI: {op} failed: {message}")]
    Failed {
        /// The request.
        op: &'static str,
        /// The library's message.
        message: String,
    },
    /// An argument this crate checks before sending it (sample rates, frame sizes).
    #[error("LiveKit FFI: {0}")]
    InvalidArgument(String),
    /// The room was disconnected with [`crate::Room::disconnect`].
    #[error("LiveKit FFI: the room is disconnected")]
    Disconnected,
    /// The library panicked or was disposed; nothing works in this process any more.
    #[error("LiveKit FFI: the library stopped: {0}")]
    Stopped(String),
}
