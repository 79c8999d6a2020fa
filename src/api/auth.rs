//! Bearer-token authentication. Tokens are `slt_` + 43 base64url characters (32 random bytes), shown
//! once by `slotline token create`; only their SHA-256 is stored. `admin` tokens read and write,
//! `analyst` tokens only read. Every request looks its token up, so a revoked (deleted) token is refused
//! from the next request on, and so is one past its optional expiry.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::error::ApiError;
use super::AppState;
use crate::metrics::API_AUTH_FAILURES_TOTAL;
use crate::storage::TokenScope;

const TOKEN_PREFIX: &str = "slt_";

/// A freshly generated token: the secret for the operator and the hash for the database.
#[derive(Debug)]
pub struct NewToken {
    /// Printed once, never stored.
    pub secret: String,
    /// Hex SHA-256 of `secret`.
    pub hash: String,
}

/// Generates a random token.
pub fn generate_token() -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_token(&secret);
    NewToken { secret, hash }
}

/// Hex SHA-256 of a token (tokens carry 256 bits of entropy, so a plain hash is enough).
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// The token's id.
    pub token_id: Uuid,
    /// What it may do.
    pub scope: TokenScope,
}

/// Extractor for read endpoints: any valid token.
#[derive(Debug, Clone, Copy)]
pub struct ReadAccess(pub Caller);

/// Extractor for write endpoints: an `admin` token.
#[derive(Debug, Clone, Copy)]
pub struct WriteAccess(pub Caller);

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(refuse("missing", ApiError::Unauthorized("missing bearer token")));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(refuse("invalid", ApiError::Unauthorized("authorization must be `Bearer <token>`")));
    };
    match state.store.find_token(&hash_token(token)).await? {
        Some(record) if record.is_expired(crate::storage::now()) => {
            Err(refuse("expired", ApiError::Unauthorized("expired bearer token")))
        }
        Some(record) => Ok(Caller { token_id: record.id, scope: record.scope }),
        None => Err(refuse("invalid", ApiError::Unauthorized("invalid bearer token"))),
    }
}

fn refuse(reason: &'static str, error: ApiError) -> ApiError {
    metrics::counter!(API_AUTH_FAILURES_TOTAL, "reason" => reason).increment(1);
    error
}

impl FromRequestParts<AppState> for ReadAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).await.map(ReadAccess)
    }
}

impl FromRequestParts<AppState> for WriteAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = authenticate(parts, state).await?;
        match caller.scope {
            TokenScope::Admin => Ok(WriteAccess(caller)),
            TokenScope::Analyst => Err(refuse("forbidden", ApiError::Forbidden("writes"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_matches() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("slt_") && a.secret.len() == 4 + 43);
        assert_eq!(hash_token(&a.secret), a.hash);
        assert!(!a.hash.contains(&a.secret));
    }
}
