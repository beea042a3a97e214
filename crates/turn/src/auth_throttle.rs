//! Slows password guessing: a client address whose requests keep failing
//! authentication is answered less and less often.
//!
//! RFC 8489 §9.2 leaves brute force to the server; coturn offers no limit by
//! default. Each address has a token bucket: a credential failure (unknown
//! user, wrong password, expired REST credential) takes a token, one comes
//! back every `refill`. With the bucket empty, signed requests from that
//! address are dropped unanswered until a token returns, so a guesser gets
//! `burst` tries at once and then one per `refill`, while a user who mistyped
//! waits a few seconds at most. The first, unsigned request of every client
//! (the 401 challenge) is never counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The bucket's shape. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthThrottleLimits {
    /// Failures allowed at once from one address (10).
    pub burst: u32,
    /// One failure is forgiven per this long (6 s: ten a minute).
    pub refill: Duration,
    /// Addresses tracked at most; past it, failures of new addresses are not
    /// counted until old ones are forgiven (bounded memory).
    pub max_addresses: usize,
}

impl Default for AuthThrottleLimits {
    fn default() -> Self {
        AuthThrottleLimits {
            burst: 10,
            refill: Duration::from_secs(6),
            max_addresses: 16_384,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens at `updated`.
    tokens: u32,
    /// When `tokens` was last brought up to date (whole refills only).
    updated: Instant,
}

/// The buckets of every address that failed recently.
#[derive(Debug)]
pub(crate) struct AuthThrottle {
    limits: AuthThrottleLimits,
    buckets: HashMap<IpAddr, Bucket>,
    /// When the table was last pruned because it was full.
    pruned_at: Option<Instant>,
}

impl AuthThrottle {
    pub(crate) fn new(limits: AuthThrottleLimits) -> Self {
        AuthThrottle {
            limits,
            buckets: HashMap::new(),
            pruned_at: None,
        }
    }

    /// True when a signed request from `ip` may be answered now.
    pub(crate) fn allows(&mut self, now: Instant, ip: IpAddr) -> bool {
        let limits = self.limits;
        match self.buckets.get_mut(&ip) {
            None => true,
            Some(bucket) => {
                refill(bucket, now, limits);
                bucket.tokens > 0
            }
        }
    }

    /// Counts a credential failure of `ip`.
    pub(crate) fn failed(&mut self, now: Instant, ip: IpAddr) {
        if self.limits.burst == 0 {
            return;
        }
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.limits.max_addresses {
            self.prune(now);
            if self.buckets.len() >= self.limits.max_addresses {
                return;
            }
        }
        let limits = self.limits;
        let bucket = self.buckets.entry(ip).or_insert(Bucket {
            tokens: limits.burst,
            updated: now,
        });
        refill(bucket, now, limits);
        bucket.tokens = bucket.tokens.saturating_sub(1);
    }

    /// Addresses tracked now.
    pub(crate) fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// Forgets addresses whose bucket is full again; at most once a second,
    /// so a full table of busy guessers does not cost a scan per failure.
    fn prune(&mut self, now: Instant) {
        if self
            .pruned_at
            .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        self.pruned_at = Some(now);
        let limits = self.limits;
        self.buckets.retain(|_, bucket| {
            refill(bucket, now, limits);
            bucket.tokens < limits.burst
        });
    }
}

/// Adds the tokens earned since `bucket.updated`, keeping the remainder of a
/// partial refill period for next time.
fn refill(bucket: &mut Bucket, now: Instant, limits: AuthThrottleLimits) {
    if limits.refill.is_zero() {
        bucket.tokens = limits.burst;
        bucket.updated = now;
        return;
    }
    let elapsed = now.saturating_duration_since(bucket.updated);
    let earned = elapsed.as_nanos() / limits.refill.as_nanos();
    if earned == 0 {
        return;
    }
    let earned = u32::try_from(earned).unwrap_or(u32::MAX);
    bucket.tokens = bucket.tokens.saturating_add(earned).min(limits.burst);
    bucket.updated = if bucket.tokens == limits.burst {
        now
    } else {
        bucket.updated + limits.refill * earned
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of virtual time; tests move it by hand from here.
    #[allow(clippy::disallowed_methods)]
    fn start() -> Instant {
        Instant::now()
    }

    fn limits() -> AuthThrottleLimits {
        AuthThrottleLimits {
            burst: 3,
            refill: Duration::from_secs(6),
            max_addresses: 2,
        }
    }

    #[test]
    fn a_burst_then_one_try_per_refill() {
        let start = start();
        let mut t = AuthThrottle::new(limits());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(t.allows(start, ip));
            t.failed(start, ip);
        }
        assert!(!t.allows(start, ip));
        assert!(!t.allows(start + Duration::from_millis(5_999), ip));
        let later = start + Duration::from_secs(6);
        assert!(t.allows(later, ip));
        t.failed(later, ip);
        assert!(!t.allows(later, ip));
        // Another address is not affected.
        assert!(t.allows(later, "192.0.2.2".parse().unwrap()));
        // A long pause forgives everything, and no more than the burst.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(t.allows(much_later, ip));
            t.failed(much_later, ip);
        }
        assert!(!t.allows(much_later, ip));
    }

    #[test]
    fn the_table_is_bounded_and_forgiven_addresses_make_room() {
        let start = start();
        let mut t = AuthThrottle::new(limits());
        let [a, b, c]: [IpAddr; 3] =
            ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map(|s| s.parse().unwrap());
        t.failed(start, a);
        t.failed(start, b);
        t.failed(start, c);
        assert_eq!(t.tracked(), 2);
        assert!(t.allows(start, c), "not tracked: not throttled");
        // After a and b are forgiven, c is counted.
        let later = start + Duration::from_secs(7);
        t.failed(later, c);
        assert_eq!(t.tracked(), 1);
    }
}
