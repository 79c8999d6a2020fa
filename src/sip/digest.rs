//! HTTP Digest authentication for SIP, server side (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760):
//! challenges with MD5 and SHA-256, `qop="auth"`, and stateless nonces — a timestamp signed with
//! HMAC-SHA256 under a server secret, so any instance can check them and an old one is `stale`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use md5::Md5;
use sha2::{Digest as _, Sha256};

/// How long a nonce is accepted.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// The outcome of checking an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Right credentials, fresh nonce.
    Valid,
    /// Right credentials, expired nonce: challenge again with `stale=true`.
    Stale,
    /// Anything else.
    Invalid,
}

/// `WWW-Authenticate` values, most compatible first (MD5, then SHA-256).
pub fn challenges(realm: &str, secret: &[u8; 32], stale: bool) -> Vec<String> {
    let nonce = make_nonce(secret, now_secs());
    ["MD5", "SHA-256"]
        .iter()
        .map(|algorithm| {
            let mut value = format!(
                "Digest realm=\"{realm}\", nonce=\"{nonce}\", opaque=\"slotline\", algorithm={algorithm}, qop=\"auth\""
            );
            if stale {
                value.push_str(", stale=true");
            }
            value
        })
        .collect()
}

/// The first (MD5) challenge.
pub fn challenge(realm: &str, secret: &[u8; 32], stale: bool) -> String {
    challenges(realm, secret, stale).remove(0)
}

/// Checks an `Authorization: Digest ...` value for `method` against `username`/`password`.
pub fn verify(header: &str, method: &str, realm: &str, secret: &[u8; 32], username: &str, password: &str) -> Verdict {
    let Some(params) = header.trim().strip_prefix("Digest").map(parse_params) else { return Verdict::Invalid };
    let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let (Some(user), Some(their_realm), Some(nonce), Some(uri), Some(response)) =
        (get("username"), get("realm"), get("nonce"), get("uri"), get("response"))
    else {
        return Verdict::Invalid;
    };
    if user != username || their_realm != realm {
        return Verdict::Invalid;
    }
    let Some(issued) = check_nonce(secret, nonce) else { return Verdict::Invalid };
    let hash: fn(&str) -> String = match get("algorithm").unwrap_or("MD5").to_ascii_uppercase().as_str() {
        "MD5" => |s| hex::encode(Md5::digest(s.as_bytes())),
        "SHA-256" => |s| hex::encode(Sha256::digest(s.as_bytes())),
        _ => return Verdict::Invalid,
    };
    let ha1 = hash(&format!("{username}:{realm}:{password}"));
    let ha2 = hash(&format!("{method}:{uri}"));
    let expected = match get("qop") {
        Some(qop) if qop.eq_ignore_ascii_case("auth") => {
            let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else { return Verdict::Invalid };
            hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
        }
        Some(_) => return Verdict::Invalid,
        None => hash(&format!("{ha1}:{nonce}:{ha2}")),
    };
    if !constant_time_eq(expected.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
        return Verdict::Invalid;
    }
    if now_secs().saturating_sub(issued) > NONCE_LIFETIME.as_secs() {
        Verdict::Stale
    } else {
        Verdict::Valid
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn make_nonce(secret: &[u8; 32], issued: u64) -> String {
    let mut bytes = issued.to_be_bytes().to_vec();
    bytes.extend_from_slice(&sign(secret, issued)[..16]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(secret: &[u8; 32], issued: u64) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return Vec::new() };
    mac.update(&issued.to_be_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The issue time of a nonce we made, or `None`.
fn check_nonce(secret: &[u8; 32], nonce: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(nonce).ok()?;
    if bytes.len() != 24 {
        return None;
    }
    let issued = u64::from_be_bytes(bytes[..8].try_into().ok()?);
    let expected = sign(secret, issued);
    (expected.len() >= 16 && constant_time_eq(&expected[..16], &bytes[8..])).then_some(issued)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `name=value` / `name="quoted, value"` pairs.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            v.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    other => v.push(other),
                }
            }
            value = v;
            rest = quoted[end.min(quoted.len())..].trim_start().trim_start_matches(',').trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = rest[end..].trim_start_matches(',').trim_start();
        }
        if out.len() < 32 {
            out.push((name, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 §3.5 (the HTTP example; the formula is the one SIP uses).
        let ha1 = hex::encode(Md5::digest(b"Mufasa:testrealm@host.com:Circle Of Life"));
        let ha2 = hex::encode(Md5::digest(b"GET:/dir/index.html"));
        let response = hex::encode(Md5::digest(
            format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}").as_bytes(),
        ));
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    fn authorization(secret: &[u8; 32], algorithm: &str, password: &str, issued: u64) -> String {
        let nonce = make_nonce(secret, issued);
        let hash = |s: String| match algorithm {
            "SHA-256" => hex::encode(Sha256::digest(s.as_bytes())),
            _ => hex::encode(Md5::digest(s.as_bytes())),
        };
        let ha1 = hash(format!("trunk:slotline:{password}"));
        let ha2 = hash("INVITE:sip:+15550100000@127.0.0.1".to_string());
        let response = hash(format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
        format!(
            "Digest username=\"trunk\", realm=\"slotline\", nonce=\"{nonce}\", uri=\"sip:+15550100000@127.0.0.1\", \
             response=\"{response}\", algorithm={algorithm}, qop=auth, nc=00000001, cnonce=\"abc\", opaque=\"slotline\""
        )
    }

    #[test]
    fn md5_and_sha256_verify_and_nonces_expire() {
        let secret = [3u8; 32];
        for algorithm in ["MD5", "SHA-256"] {
            let good = authorization(&secret, algorithm, "s3cret", now_secs());
            assert_eq!(verify(&good, "INVITE", "slotline", &secret, "trunk", "s3cret"), Verdict::Valid, "{algorithm}");
            assert_eq!(verify(&good, "INVITE", "slotline", &secret, "trunk", "other"), Verdict::Invalid);
            assert_eq!(
                verify(&good, "INVITE", "slotline", &[4u8; 32], "trunk", "s3cret"),
                Verdict::Invalid,
                "forged nonce"
            );
            let old = authorization(&secret, algorithm, "s3cret", now_secs() - 3600);
            assert_eq!(verify(&old, "INVITE", "slotline", &secret, "trunk", "s3cret"), Verdict::Stale);
        }
        assert_eq!(verify("Basic abc", "INVITE", "slotline", &secret, "trunk", "x"), Verdict::Invalid);
        assert!(challenge("slotline", &secret, true).contains("stale=true"));
        assert_eq!(challenges("slotline", &secret, false).len(), 2);
    }

    #[test]
    fn params_with_quotes_and_commas() {
        let p = parse_params(r#" username="a\"b", realm="x, y",nc=00000001 , qop=auth"#);
        assert_eq!(p[0], ("username".into(), "a\"b".into()));
        assert_eq!(p[1], ("realm".into(), "x, y".into()));
        assert_eq!(p[2], ("nc".into(), "00000001".into()));
        assert_eq!(p[3], ("qop".into(), "auth".into()));
    }
}
