//! Who may place calls: each trunk lists the source networks it accepts (CIDRs; loopback only by
//! default) and may require digest authentication; every source address has a rate limit on
//! out-of-dialog requests, checked first. A stranger gets one 403, sent without transaction state, and
//! never reaches media.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference as _};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
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

/// Sources whose rate-limit state is kept per class; beyond that, new sources share one bucket.
pub const MAX_SOURCES: usize = 16_384;

/// How often state of sources that are back to a full bucket is dropped.
const RETAIN_EVERY: Duration = Duration::from_secs(10);

type Keyed<C> = RateLimiter<IpAddr, HashMapStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Shared<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Whether a source address belongs to a trunk: the two are limited apart, so that a flood from
/// (spoofed) strangers never fills the table the trunks' addresses live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceClass {
    /// In some trunk's networks.
    Trunk,
    /// In none.
    Stranger,
}

/// Out-of-dialog SIP requests per source address (GCRA, `governor`), checked before the core spends
/// anything on a request: no `100 Trying`, no transaction, no database row.
///
/// State is bounded: each class keeps at most [`MAX_SOURCES`] addresses (IPv6 by /64, the unit one
/// subscriber gets); sources whose bucket is full again are forgotten every [`RETAIN_EVERY`], and while a
/// class's table stays full its new sources share one bucket of the same size.
pub struct SourceRateLimit<C: Clock + Clone = DefaultClock> {
    classes: [(Keyed<C>, Shared<C>); 2],
    max_sources: usize,
    clock: C,
    retained: Mutex<C::Instant>,
}

impl SourceRateLimit {
    /// `per_second` sustained per source, bursts of `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self::with_clock(per_second, burst, MAX_SOURCES, DefaultClock::default())
    }
}

impl<C: Clock + Clone> SourceRateLimit<C> {
    /// With a clock of the caller's (tests) and a table size.
    pub fn with_clock(per_second: u32, burst: u32, max_sources: usize, clock: C) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        let class = || {
            (
                RateLimiter::hashmap_with_clock(quota, clock.clone()),
                RateLimiter::direct_with_clock(quota, clock.clone()),
            )
        };
        Self { classes: [class(), class()], max_sources, retained: Mutex::new(clock.now()), clock }
    }

    /// Takes one request from `source`'s allowance; `false` when it is over the limit.
    pub fn allow(&self, source: IpAddr, class: SourceClass) -> bool {
        self.retain();
        let (keyed, shared) = &self.classes[class as usize];
        if keyed.len() >= self.max_sources {
            return shared.check().is_ok();
        }
        keyed.check_key(&key_of(source)).is_ok()
    }

    /// Sources whose state is kept now (both classes).
    pub fn sources(&self) -> usize {
        self.classes.iter().map(|(keyed, _)| keyed.len()).sum()
    }

    fn retain(&self) {
        let now = self.clock.now();
        let mut retained = self.retained.lock().unwrap_or_else(|e| e.into_inner());
        if now.duration_since(*retained) < RETAIN_EVERY.into() {
            return;
        }
        *retained = now;
        for (keyed, _) in &self.classes {
            keyed.retain_recent();
            keyed.shrink_to_fit();
        }
    }
}

/// The rate-limit key of an address: IPv4 (and IPv4-mapped) as is, IPv6 by its /64.
fn key_of(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

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
    fn rate_limit_refills_per_source_and_class() {
        let clock = FakeRelativeClock::default();
        let limit = SourceRateLimit::with_clock(2, 3, 8, clock.clone());
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!((0..3).all(|_| limit.allow(ip, SourceClass::Trunk)));
        assert!(!limit.allow(ip, SourceClass::Trunk));
        clock.advance(Duration::from_millis(600));
        assert!(limit.allow(ip, SourceClass::Trunk));
        assert!(limit.allow("127.0.0.2".parse().expect("ip"), SourceClass::Trunk), "per source");
        assert!(limit.allow(ip, SourceClass::Stranger), "per class");
    }

    #[test]
    fn state_stays_bounded_and_is_forgotten_when_idle() {
        let clock = FakeRelativeClock::default();
        let limit = SourceRateLimit::with_clock(1, 1, 4, clock.clone());
        let spoofed = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0xc000_0200 + i));
        // Four spoofed strangers fill their table; the rest share one bucket of one.
        assert!((0..4).all(|i| limit.allow(spoofed(i), SourceClass::Stranger)));
        assert!(limit.allow(spoofed(10), SourceClass::Stranger));
        assert!(!limit.allow(spoofed(11), SourceClass::Stranger));
        assert_eq!(limit.sources(), 4);
        // The trunk's own table is untouched by them.
        assert!(limit.allow("127.0.0.1".parse().expect("ip"), SourceClass::Trunk));
        // An IPv6 /64 is one source.
        let a: IpAddr = "2001:db8::1".parse().expect("ip");
        let b: IpAddr = "2001:db8::2".parse().expect("ip");
        assert!(limit.allow(a, SourceClass::Trunk));
        assert!(!limit.allow(b, SourceClass::Trunk));
        clock.advance(Duration::from_secs(11));
        assert!(limit.allow(spoofed(12), SourceClass::Stranger));
        assert_eq!(limit.sources(), 1, "full buckets are forgotten");
    }
}
