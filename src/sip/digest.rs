//! HTTP Digest authentication for SIP, server side (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760):
//! challenges with MD5 and SHA-256, `qop="auth"`, and stateless nonces — a timestamp and random bytes
//! signed with HMAC-SHA256 under a server secret, so any instance can check them and an old one is
//! `stale`.
//!
//! A captured `Authorization` header must not place other calls: its `uri` has to be the request's
//! Request-URI, and each (nonce, nc) pair is accepted once ([`UsedNonces`], a bounded record kept by
//! the SIP core).

use std::collections::{HashMap, VecDeque};
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
    /// Right credentials for a (nonce, nc) already used: a replay, or a client that reuses counts.
    Replayed,
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

/// What a request is checked against: its method and Request-URI, and who may call.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The request's Request-URI (the digest's `uri` must be exactly this).
    pub uri: &'a str,
    /// Our realm.
    pub realm: &'a str,
    /// The trunk's username.
    pub username: &'a str,
    /// The trunk's password.
    pub password: &'a str,
}

/// Checks an `Authorization: Digest ...` value against `expected`; a valid one is recorded in `used`.
pub fn verify(header: &str, expected: &Expected<'_>, secret: &[u8; 32], used: &mut UsedNonces) -> Verdict {
    let Some(params) = header.trim().strip_prefix("Digest").map(parse_params) else { return Verdict::Invalid };
    let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let (Some(user), Some(their_realm), Some(nonce), Some(uri), Some(response)) =
        (get("username"), get("realm"), get("nonce"), get("uri"), get("response"))
    else {
        return Verdict::Invalid;
    };
    let Expected { method, realm, username, password, .. } = *expected;
    // The response signs `uri`, not the Request-URI: a header made for one number must not call another.
    if user != username || their_realm != realm || uri != expected.uri {
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
    // Without qop there is no nonce count: the nonce itself may be used once (count 0).
    let (expected_response, count) = match get("qop") {
        Some(qop) if qop.eq_ignore_ascii_case("auth") => {
            let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else { return Verdict::Invalid };
            let Some(count) = (nc.len() == 8).then(|| u32::from_str_radix(nc, 16).ok()).flatten() else {
                return Verdict::Invalid;
            };
            (hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")), count)
        }
        Some(_) => return Verdict::Invalid,
        None => (hash(&format!("{ha1}:{nonce}:{ha2}")), 0),
    };
    if !constant_time_eq(expected_response.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
        return Verdict::Invalid;
    }
    let now = now_secs();
    if now.saturating_sub(issued) > NONCE_LIFETIME.as_secs() {
        return Verdict::Stale;
    }
    used.accept(nonce, issued, count, now)
}

/// The nonce counts already accepted, per nonce, for nonces still within their lifetime.
///
/// Bounded: at capacity the oldest nonce's record is dropped, and every nonce issued no later than a
/// dropped one is from then on answered [`Verdict::Stale`] (a fresh challenge), so forgetting a record
/// never lets its replays in.
#[derive(Debug)]
pub struct UsedNonces {
    capacity: usize,
    highest: HashMap<String, u32>,
    /// Nonces in the order first used, with their issue time.
    order: VecDeque<(u64, String)>,
    /// Nonces issued at or before this time are no longer accepted.
    forgotten_up_to: Option<u64>,
}

impl UsedNonces {
    /// A record of at most `capacity` nonces.
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), highest: HashMap::new(), order: VecDeque::new(), forgotten_up_to: None }
    }

    /// Accepts `count` for `nonce` when it is higher than any count accepted for it before.
    fn accept(&mut self, nonce: &str, issued: u64, count: u32, now: u64) -> Verdict {
        if self.forgotten_up_to.is_some_and(|t| issued <= t) {
            return Verdict::Stale;
        }
        if let Some(highest) = self.highest.get_mut(nonce) {
            if count <= *highest {
                return Verdict::Replayed;
            }
            *highest = count;
            return Verdict::Valid;
        }
        // Expired nonces are answered `Stale` before they get here: their records can go.
        while self.order.front().is_some_and(|(t, _)| now.saturating_sub(*t) > NONCE_LIFETIME.as_secs()) {
            if let Some((_, old)) = self.order.pop_front() {
                self.highest.remove(&old);
            }
        }
        while self.order.len() >= self.capacity {
            let Some((t, old)) = self.order.pop_front() else { break };
            self.highest.remove(&old);
            self.forgotten_up_to = Some(self.forgotten_up_to.map_or(t, |f| f.max(t)));
        }
        if self.forgotten_up_to.is_some_and(|t| issued <= t) {
            return Verdict::Stale;
        }
        self.highest.insert(nonce.to_string(), count);
        self.order.push_back((issued, nonce.to_string()));
        Verdict::Valid
    }

    /// Nonces on record.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no nonce is on record.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// 8 bytes of issue time, 8 random bytes (two challenges in one second differ), 16 bytes of signature.
fn make_nonce(secret: &[u8; 32], issued: u64) -> String {
    let salt: [u8; 8] = rand::random();
    let mut bytes = issued.to_be_bytes().to_vec();
    bytes.extend_from_slice(&salt);
    bytes.extend_from_slice(&sign(secret, issued, &salt)[..16]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(secret: &[u8; 32], issued: u64, salt: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return Vec::new() };
    mac.update(&issued.to_be_bytes());
    mac.update(salt);
    mac.finalize().into_bytes().to_vec()
}

/// The issue time of a nonce we made, or `None`.
fn check_nonce(secret: &[u8; 32], nonce: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(nonce).ok()?;
    if bytes.len() != 32 {
        return None;
    }
    let issued = u64::from_be_bytes(bytes[..8].try_into().ok()?);
    let expected = sign(secret, issued, &bytes[8..16]);
    (expected.len() >= 16 && constant_time_eq(&expected[..16], &bytes[16..])).then_some(issued)
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

    const URI: &str = "sip:+15550100000@127.0.0.1";

    fn authorization(secret: &[u8; 32], algorithm: &str, password: &str, issued: u64) -> String {
        signed(&make_nonce(secret, issued), algorithm, password, URI, "00000001")
    }

    fn signed(nonce: &str, algorithm: &str, password: &str, uri: &str, nc: &str) -> String {
        let hash = |s: String| match algorithm {
            "SHA-256" => hex::encode(Sha256::digest(s.as_bytes())),
            _ => hex::encode(Md5::digest(s.as_bytes())),
        };
        let ha1 = hash(format!("trunk:slotline:{password}"));
        let ha2 = hash(format!("INVITE:{uri}"));
        let response = hash(format!("{ha1}:{nonce}:{nc}:abc:auth:{ha2}"));
        format!(
            "Digest username=\"trunk\", realm=\"slotline\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm={algorithm}, qop=auth, nc={nc}, cnonce=\"abc\", opaque=\"slotline\""
        )
    }

    fn expected(password: &str) -> Expected<'_> {
        Expected { method: "INVITE", uri: URI, realm: "slotline", username: "trunk", password }
    }

    fn check(header: &str, password: &str, secret: &[u8; 32]) -> Verdict {
        verify(header, &expected(password), secret, &mut UsedNonces::new(16))
    }

    #[test]
    fn md5_and_sha256_verify_and_nonces_expire() {
        let secret = [3u8; 32];
        for algorithm in ["MD5", "SHA-256"] {
            let good = authorization(&secret, algorithm, "s3cret", now_secs());
            assert_eq!(check(&good, "s3cret", &secret), Verdict::Valid, "{algorithm}");
            assert_eq!(check(&good, "other", &secret), Verdict::Invalid);
            assert_eq!(check(&good, "s3cret", &[4u8; 32]), Verdict::Invalid, "forged nonce");
            let old = authorization(&secret, algorithm, "s3cret", now_secs() - 3600);
            assert_eq!(check(&old, "s3cret", &secret), Verdict::Stale);
        }
        assert_eq!(check("Basic abc", "x", &secret), Verdict::Invalid);
        assert!(challenge("slotline", &secret, true).contains("stale=true"));
        assert_eq!(challenges("slotline", &secret, false).len(), 2);
        assert_ne!(make_nonce(&secret, 1), make_nonce(&secret, 1), "two challenges in one second differ");
    }

    #[test]
    fn a_captured_header_works_once_and_only_for_its_uri() {
        let secret = [5u8; 32];
        let mut used = UsedNonces::new(16);
        let nonce = make_nonce(&secret, now_secs());
        let first = signed(&nonce, "MD5", "s3cret", URI, "00000001");
        assert_eq!(verify(&first, &expected("s3cret"), &secret, &mut used), Verdict::Valid);
        assert_eq!(verify(&first, &expected("s3cret"), &secret, &mut used), Verdict::Replayed, "same nc again");
        let other_number = Expected { uri: "sip:+15550100999@127.0.0.1", ..expected("s3cret") };
        let fresh = signed(&make_nonce(&secret, now_secs()), "MD5", "s3cret", URI, "00000001");
        assert_eq!(verify(&fresh, &other_number, &secret, &mut used), Verdict::Invalid, "uri is not the R-URI");
        let next = signed(&nonce, "MD5", "s3cret", URI, "00000002");
        assert_eq!(verify(&next, &expected("s3cret"), &secret, &mut used), Verdict::Valid, "a higher nc");
        assert_eq!(verify(&first, &expected("s3cret"), &secret, &mut used), Verdict::Replayed, "a lower one");
    }

    #[test]
    fn the_record_is_bounded_and_forgetting_never_admits_a_replay() {
        let mut used = UsedNonces::new(2);
        let now = now_secs();
        assert_eq!(used.accept("a", now - 3, 1, now), Verdict::Valid);
        assert_eq!(used.accept("b", now - 2, 1, now), Verdict::Valid);
        assert_eq!(used.accept("c", now - 1, 1, now), Verdict::Valid);
        assert_eq!(used.len(), 2);
        assert_eq!(used.accept("a", now - 3, 1, now), Verdict::Stale, "forgotten: challenged afresh");
        assert_eq!(used.accept("c", now - 1, 1, now), Verdict::Replayed);
        // Expired records make room without forgetting anything live.
        let mut aging = UsedNonces::new(2);
        assert_eq!(aging.accept("old", now - 400, 1, now - 390), Verdict::Valid);
        assert_eq!(aging.accept("new", now, 1, now), Verdict::Valid);
        assert_eq!(aging.accept("newer", now, 1, now), Verdict::Valid);
        assert_eq!(aging.accept("new", now, 1, now), Verdict::Replayed);
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
