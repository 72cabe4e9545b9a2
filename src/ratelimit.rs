//! Rate limits for `/mcp`: one GCRA bucket per client address, checked before
//! any token lookup so a flood of bad tokens cannot exhaust the server, and
//! one per token id so a busy client cannot starve the others.
//!
//! IPv6 clients are keyed by their /64 (one host usually owns a whole /64 and
//! could otherwise rotate addresses); IPv4-mapped IPv6 addresses count as
//! their IPv4 address. Keys whose bucket is full again are evicted every few
//! thousand checks (and whenever [`RateLimiter::evict_stale`] is called), so
//! a flood of distinct addresses cannot grow memory without bound.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio_util::sync::CancellationToken;

use crate::config::RateLimits;

/// Audited per-address denials per minute and burst, per address.
const DENIAL_AUDIT_PER_MINUTE: u32 = 10;
const DENIAL_AUDIT_BURST: u32 = 10;

/// Checks between two automatic evictions of idle keys.
const EVICT_EVERY: u64 = 4096;

/// Per-address and per-token limiters. Share it as `Arc<RateLimiter>`.
#[derive(Debug)]
pub struct RateLimiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_token: DefaultKeyedRateLimiter<i64>,
    /// How many per-address denials of one address get an audit record.
    denial_audit: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(rate).allow_burst(burst)
}

/// The key an address is limited under.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl RateLimiter {
    /// Limiters with the configured rates and bursts (a zero is treated as 1).
    pub fn new(limits: &RateLimits) -> RateLimiter {
        RateLimiter {
            per_ip: DefaultKeyedRateLimiter::keyed(quota(
                limits.per_ip_per_minute,
                limits.per_ip_burst,
            )),
            per_token: DefaultKeyedRateLimiter::keyed(quota(
                limits.per_token_per_minute,
                limits.per_token_burst,
            )),
            denial_audit: DefaultKeyedRateLimiter::keyed(quota(
                DENIAL_AUDIT_PER_MINUTE,
                DENIAL_AUDIT_BURST,
            )),
            checks: AtomicU64::new(0),
        }
    }

    /// Whether a per-address denial of `ip` should be audited. A flooding
    /// address would otherwise turn every refused request into a synchronous
    /// audit write and starve the tool calls' own audit appends; past a burst
    /// of 10, one denial per address is audited every 6 seconds.
    pub fn audit_ip_denial(&self, ip: IpAddr) -> bool {
        self.denial_audit.check_key(&ip_key(ip)).is_ok()
    }

    /// Counts one request from `ip`; `Err` carries how long to wait.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        self.tick();
        self.per_ip
            .check_key(&ip_key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.per_ip.clock().now()))
    }

    /// Counts one request with token `token_id`; `Err` carries how long to wait.
    pub fn check_token(&self, token_id: i64) -> Result<(), Duration> {
        self.tick();
        self.per_token
            .check_key(&token_id)
            .map_err(|not_until| not_until.wait_time_from(self.per_token.clock().now()))
    }

    /// Forgets keys whose bucket is full again (they behave as new keys).
    pub fn evict_stale(&self) {
        self.per_ip.retain_recent();
        self.per_ip.shrink_to_fit();
        self.per_token.retain_recent();
        self.per_token.shrink_to_fit();
        self.denial_audit.retain_recent();
        self.denial_audit.shrink_to_fit();
    }

    /// Keys currently tracked (addresses, tokens).
    pub fn tracked_keys(&self) -> (usize, usize) {
        (self.per_ip.len(), self.per_token.len())
    }

    fn tick(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % EVICT_EVERY == EVICT_EVERY - 1 {
            self.evict_stale();
        }
    }
}

/// Calls [`RateLimiter::evict_stale`] every `every` until `shutdown` fires;
/// spawn it next to the listeners so idle keys go even when traffic stops.
pub async fn evict_periodically(
    limiter: Arc<RateLimiter>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => limiter.evict_stale(),
        }
    }
}

/// Seconds for a `Retry-After` header: the wait rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(burst: u32) -> RateLimits {
        RateLimits {
            per_token_per_minute: 60,
            per_token_burst: burst,
            per_ip_per_minute: 60,
            per_ip_burst: burst,
        }
    }

    #[test]
    fn token_burst_then_limited_and_other_tokens_unaffected() {
        let limiter = RateLimiter::new(&limits(5));
        for _ in 0..5 {
            assert_eq!(limiter.check_token(1), Ok(()));
        }
        let wait = limiter.check_token(1).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(retry_after_secs(wait), 1);
        assert_eq!(limiter.check_token(2), Ok(()));
    }

    #[test]
    fn ip_burst_then_limited_per_address() {
        let limiter = RateLimiter::new(&limits(3));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            limiter.check_ip(a).unwrap();
        }
        assert!(limiter.check_ip(a).is_err());
        // The same address written as IPv4-mapped IPv6 shares the bucket.
        assert!(
            limiter
                .check_ip("::ffff:10.0.0.1".parse().unwrap())
                .is_err()
        );
        assert!(limiter.check_ip("10.0.0.2".parse().unwrap()).is_ok());
        // Addresses of one IPv6 /64 share a bucket, another /64 does not.
        for i in 0..3 {
            limiter
                .check_ip(format!("2001:db8::{i}").parse().unwrap())
                .unwrap();
        }
        assert!(limiter.check_ip("2001:db8::ffff".parse().unwrap()).is_err());
        assert!(limiter.check_ip("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn idle_keys_are_evicted() {
        let limiter = RateLimiter::new(&RateLimits {
            per_ip_per_minute: 60_000,
            per_ip_burst: 1,
            ..limits(1)
        });
        for i in 0..200u32 {
            limiter.check_ip(IpAddr::from(i.to_be_bytes())).unwrap();
        }
        assert_eq!(limiter.tracked_keys().0, 200);
        std::thread::sleep(Duration::from_millis(5));
        limiter.evict_stale();
        assert_eq!(limiter.tracked_keys().0, 0);
    }

    #[test]
    fn per_address_denials_are_audited_up_to_a_burst() {
        let limiter = RateLimiter::new(&limits(1));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let audited = (0..100).filter(|_| limiter.audit_ip_denial(ip)).count();
        assert_eq!(audited, 10);
        assert!(limiter.audit_ip_denial("10.0.0.2".parse().unwrap()));
    }

    #[tokio::test]
    async fn periodic_eviction_runs_until_shutdown() {
        let limiter = Arc::new(RateLimiter::new(&RateLimits {
            per_ip_per_minute: 60_000,
            per_ip_burst: 1,
            ..limits(1)
        }));
        limiter.check_ip("10.0.0.1".parse().unwrap()).unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(evict_periodically(
            limiter.clone(),
            Duration::from_millis(5),
            shutdown.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(limiter.tracked_keys().0, 0);
        shutdown.cancel();
        task.await.unwrap();
    }

    #[test]
    fn zero_limits_still_allow_one() {
        let limiter = RateLimiter::new(&RateLimits {
            per_token_per_minute: 0,
            per_token_burst: 0,
            per_ip_per_minute: 0,
            per_ip_burst: 0,
        });
        assert!(limiter.check_token(7).is_ok());
        assert!(limiter.check_token(7).is_err());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
