//! Client-side rate limit: each Cal.com API key stays under its request budget per minute (Cal.com's
//! default for API keys is 120 per 60 s, after which the key is blocked for a minute).
//!
//! A sliding window of the last request instants per key, shared by every agent that uses the key. A
//! request that would exceed the budget waits for the oldest to age out, unless that takes longer than
//! the caller can wait, in which case it is refused without being sent.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

/// Instants of the requests sent with one key in the current window.
type RequestLog = Arc<Mutex<VecDeque<Instant>>>;

/// One limiter per process, keyed by a hash of the API key (the key itself is never kept here).
#[derive(Debug)]
pub struct RateLimiter {
    budget: usize,
    window: Duration,
    keys: Mutex<HashMap<[u8; 32], RequestLog>>,
}

impl RateLimiter {
    /// At most `budget` requests per `window` for each key.
    pub fn new(budget: usize, window: Duration) -> Self {
        Self { budget: budget.max(1), window, keys: Mutex::new(HashMap::new()) }
    }

    /// Waits for a request slot for `api_key` and returns how long it waited; `Err(wait)` when the slot is
    /// further away than `max_wait`.
    pub async fn acquire(&self, api_key: &str, max_wait: Duration) -> Result<Duration, Duration> {
        let started = Instant::now();
        let mut slept = false;
        let digest: [u8; 32] = Sha256::digest(api_key.as_bytes()).into();
        let log = {
            let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            keys.entry(digest).or_default().clone()
        };
        loop {
            let wait = {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                while log.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                    log.pop_front();
                }
                if log.len() < self.budget {
                    log.push_back(now);
                    return Ok(if slept { now.duration_since(started) } else { Duration::ZERO });
                }
                log.front().map_or(Duration::ZERO, |oldest| self.window.saturating_sub(now.duration_since(*oldest)))
            };
            if wait > max_wait {
                return Err(wait);
            }
            tokio::time::sleep(wait).await;
            slept = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keeps_each_key_under_its_budget() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire("cal_a", Duration::ZERO).await.expect("within budget");
        }
        assert!(limiter.acquire("cal_b", Duration::ZERO).await.is_ok(), "keys are separate");
        let refused = limiter.acquire("cal_a", Duration::from_secs(1)).await.expect_err("over budget");
        assert!(refused > Duration::from_secs(59));
        let waited = limiter.acquire("cal_a", Duration::from_secs(120)).await.expect("waits for the window");
        assert!(waited > Duration::from_secs(59), "{waited:?}");
        assert!(Instant::now().duration_since(start) >= Duration::from_secs(60));
    }
}
