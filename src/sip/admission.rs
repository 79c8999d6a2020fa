//! Who may place calls: each trunk lists the source networks it accepts (CIDRs; loopback only by
//! default) and may require digest authentication; every source address has an INVITE rate limit.
//! A stranger gets 403 and never reaches media.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::config::Secret;

/// A SIP trunk (or PBX, or softphone group) allowed to call in.
#[derive(Debug, Clone)]
pub struct Trunk {
    /// Name, for logs and metrics.
    pub name: String,
    /// Source networks this trunk's requests come from.
    pub allow: Vec<IpNet>,
    /// Digest credentials the trunk must present, when set.
    pub credentials: Option<Credentials>,
}

/// Digest credentials of a trunk.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Username.
    pub username: String,
    /// Password.
    pub password: Secret,
}

impl Trunk {
    /// The default: loopback only, no authentication.
    pub fn loopback() -> Self {
        Self {
            name: "loopback".into(),
            allow: ["127.0.0.0/8", "::1/128"].iter().filter_map(|n| n.parse().ok()).collect(),
            credentials: None,
        }
    }
}

/// The trunk a source address belongs to (the most specific network wins).
pub fn trunk_for(trunks: &[Trunk], source: IpAddr) -> Option<&Trunk> {
    let source = match source {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    trunks
        .iter()
        .flat_map(|t| t.allow.iter().filter(move |net| net.contains(&source)).map(move |net| (net.prefix_len(), t)))
        .max_by_key(|(prefix, _)| *prefix)
        .map(|(_, t)| t)
}

/// A token bucket per source address for INVITEs.
#[derive(Debug)]
pub struct InviteRateLimit {
    per_second: f64,
    burst: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl InviteRateLimit {
    /// `per_second` sustained, `burst` at once.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self { per_second: f64::from(per_second.max(1)), burst: f64::from(burst.max(1)), buckets: HashMap::new() }
    }

    /// Takes a token for `source`; `false` when over the limit.
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if self.buckets.len() > 10_000 {
            let idle = Duration::from_secs(60);
            self.buckets.retain(|_, (_, last)| now.duration_since(*last) < idle);
        }
        let (per_second, burst) = (self.per_second, self.burst);
        let (tokens, last) = self.buckets.entry(source).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * per_second).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_trunk_wins_and_strangers_have_none() {
        let mut carrier = Trunk::loopback();
        carrier.name = "carrier".into();
        carrier.allow = vec!["127.0.0.2/32".parse().expect("net")];
        let trunks = vec![Trunk::loopback(), carrier];
        assert_eq!(trunk_for(&trunks, "127.0.0.2".parse().expect("ip")).map(|t| t.name.as_str()), Some("carrier"));
        assert_eq!(trunk_for(&trunks, "127.0.0.1".parse().expect("ip")).map(|t| t.name.as_str()), Some("loopback"));
        assert_eq!(
            trunk_for(&trunks, "::ffff:127.0.0.1".parse().expect("ip")).map(|t| t.name.as_str()),
            Some("loopback")
        );
        assert!(trunk_for(&trunks, "192.0.2.1".parse().expect("ip")).is_none());
    }

    #[test]
    fn rate_limit_refills() {
        let mut limit = InviteRateLimit::new(2, 3);
        let (ip, t0) = ("127.0.0.1".parse().expect("ip"), Instant::now());
        assert!((0..3).all(|_| limit.allow(ip, t0)));
        assert!(!limit.allow(ip, t0));
        assert!(limit.allow(ip, t0 + Duration::from_millis(600)));
        assert!(limit.allow("127.0.0.2".parse().expect("ip"), t0), "per source");
    }
}
