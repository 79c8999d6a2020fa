//! Secrets at rest: Cal.com API keys (and later other credentials) are sealed with XChaCha20-Poly1305
//! under the master key before they reach the database.
//!
//! The master key comes from `master_key` (`SLOTLINE_MASTER_KEY`) or, when that is absent, from
//! `<data_dir>/master.key`, generated once with mode 0600. A sealed value is
//! `version (1 byte) ‖ nonce (24 bytes) ‖ ciphertext+tag`, and the associated data binds it to its purpose
//! and owner so a sealed key cannot be copied onto another agent.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
/// Name of the generated key file inside the data dir.
pub const KEY_FILE: &str = "master.key";

/// Errors of key loading and sealing.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The configured key is not 32 bytes in hex or base64.
    #[error("master key must be 64 hex characters or base64 of 32 bytes")]
    BadKey,
    /// The key file could not be read or written.
    #[error("master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The AEAD refused to seal (only for absurdly large values).
    #[error("secret cannot be sealed")]
    Seal,
    /// The sealed value was not made with this key for this owner, or is corrupt.
    #[error("sealed secret cannot be opened with this master key")]
    Open,
}

/// Where the master key came from (logged at start, never the key itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `master_key` setting / `SLOTLINE_MASTER_KEY`.
    Config,
    /// An existing `master.key` in the data dir.
    ExistingFile,
    /// `master.key` was generated now.
    GeneratedFile,
}

/// The key that seals secrets at rest.
#[derive(Clone)]
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
    bytes: [u8; KEY_LEN],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Parses a configured master key: 64 hex characters or standard base64 of 32 bytes.
pub fn parse_master_key(text: &str) -> Result<[u8; KEY_LEN], CryptoError> {
    let text = text.trim();
    let bytes = if text.len() == 2 * KEY_LEN {
        hex::decode(text).map_err(|_| CryptoError::BadKey)?
    } else {
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| CryptoError::BadKey)?
    };
    bytes.try_into().map_err(|_| CryptoError::BadKey)
}

impl MasterKey {
    /// Builds a key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(&bytes.into()), bytes }
    }

    /// Loads the configured key, or reads / generates `<data_dir>/master.key`.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<(Self, KeySource), CryptoError> {
        if let Some(text) = configured {
            return Ok((Self::from_bytes(parse_master_key(text)?), KeySource::Config));
        }
        let path = data_dir.join(KEY_FILE);
        let file_error = |source| CryptoError::KeyFile { path: path.display().to_string(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Self::from_bytes(parse_master_key(&text)?), KeySource::ExistingFile)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; KEY_LEN];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                std::fs::create_dir_all(data_dir).map_err(file_error)?;
                write_private(&path, format!("{}\n", hex::encode(bytes)).as_bytes()).map_err(file_error)?;
                Ok((Self::from_bytes(bytes), KeySource::GeneratedFile))
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// A secret for `purpose` derived from the master key (HMAC-SHA256), e.g. the SIP digest nonce key:
    /// the same on every instance that shares the master key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::Mac as _;
        let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&self.bytes) else { return [0; 32] };
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Seals `plaintext` for `context` (what it is and whose, e.g. `agent:<id>:calcom_api_key`).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a value sealed by [`MasterKey::seal`] with the same context.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(CryptoError::Open);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| CryptoError::Open)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_is_bound_to_context() {
        let key = MasterKey::from_bytes([7; 32]);
        let sealed = key.seal("agent:a:calcom_api_key", b"cal_live_abc").expect("seals");
        assert!(!sealed.windows(12).any(|w| w == b"cal_live_abc"));
        assert_eq!(key.open("agent:a:calcom_api_key", &sealed).expect("opens"), b"cal_live_abc");
        assert!(key.open("agent:b:calcom_api_key", &sealed).is_err());
        assert!(MasterKey::from_bytes([8; 32]).open("agent:a:calcom_api_key", &sealed).is_err());
    }

    #[test]
    fn key_file_is_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, source) = MasterKey::load(None, dir.path()).expect("generates");
        assert_eq!(source, KeySource::GeneratedFile);
        let (second, source) = MasterKey::load(None, dir.path()).expect("reads");
        assert_eq!(source, KeySource::ExistingFile);
        let sealed = first.seal("x", b"secret").expect("seals");
        assert_eq!(second.open("x", &sealed).expect("same key"), b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn configured_keys_parse_as_hex_or_base64() {
        assert!(parse_master_key(&"ab".repeat(32)).is_ok());
        assert!(parse_master_key(&base64::engine::general_purpose::STANDARD.encode([1u8; 32])).is_ok());
        assert!(parse_master_key("short").is_err());
    }
}
