//! Client-side rate limiting: a token bucket (GCRA, from `governor`) on tokio's clock.

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Gcra};
use serde::{Deserialize, Serialize};

/// A request budget: `requests` per `per`, with bursts of up to `burst` requests.
///
/// ```
/// use std::time::Duration;
/// use sync_http::RateLimit;
///
/// // HubSpot private apps: 100 requests per 10 seconds.
/// let hubspot = RateLimit::new(100, Duration::from_secs(10));
/// // HubSpot search: 5 per second, no bursts beyond that.
/// let search = RateLimit::new(5, Duration::from_secs(1));
/// assert_eq!(hubspot.burst, 100);
/// assert!(search.is_valid());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window, in milliseconds when serialized.
    #[serde(with = "window_ms")]
    pub per: Duration,
    /// The most requests sent back to back; defaults to `requests`.
    pub burst: u32,
}

impl RateLimit {
    /// `requests` per `per`, bursts of up to `requests`.
    pub fn new(requests: u32, per: Duration) -> Self {
        Self {
            requests,
            per,
            burst: requests,
        }
    }

    /// Sets the burst size.
    #[must_use]
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Whether the numbers make a usable budget (non-zero everything).
    pub fn is_valid(&self) -> bool {
        self.requests > 0 && self.burst > 0 && !self.per.is_zero()
    }

    /// The time between two requests at the sustained rate.
    pub fn period(&self) -> Duration {
        self.per / self.requests.max(1)
    }
}

mod window_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// governor's clock reading tokio's time, so a paused test clock drives the limiter too.
#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = Instant;

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A token-bucket limiter. Share it with `Arc`: every clone of an
/// [`HttpClient`](crate::HttpClient) shares the client's limiter, and a caller may attach an
/// extra one to some requests (HubSpot search's own 5/s budget) with
/// [`RequestBuilder::limiter`](crate::RequestBuilder::limiter).
pub struct RateLimiter {
    limit: RateLimit,
    gcra: Gcra<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Instant>>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limit", &self.limit)
            .finish()
    }
}

impl RateLimiter {
    /// A limiter for `limit`; `None` when the budget is not [valid](RateLimit::is_valid).
    pub fn new(limit: RateLimit) -> Option<Self> {
        let burst = NonZeroU32::new(limit.burst)?;
        if !limit.is_valid() {
            return None;
        }
        let quota = Quota::with_period(limit.period())?.allow_burst(burst);
        Some(Self {
            limit,
            gcra: Gcra::direct_with_clock(quota, TokioClock),
        })
    }

    /// The budget.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Waits (on tokio's clock) until a request may be sent, and takes its permit.
    pub async fn acquire(&self) {
        loop {
            match self.gcra.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(TokioClock.now());
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                }
            }
        }
    }

    /// Takes a permit if one is free now, without waiting.
    pub fn try_acquire(&self) -> bool {
        self.gcra.check().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_budgets_are_refused() {
        assert!(RateLimiter::new(RateLimit::new(0, Duration::from_secs(1))).is_none());
        assert!(RateLimiter::new(RateLimit::new(5, Duration::ZERO)).is_none());
        assert!(
            RateLimiter::new(RateLimit::new(5, Duration::from_secs(1)).with_burst(0)).is_none()
        );
        assert!(RateLimiter::new(RateLimit::new(5, Duration::from_secs(1))).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_paces_to_the_budget_on_tokio_time() {
        let limiter = RateLimiter::new(RateLimit::new(5, Duration::from_secs(1))).unwrap();
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the burst goes out at once"
        );
        assert!(!limiter.try_acquire());
        for _ in 0..10 {
            limiter.acquire().await;
        }
        // Ten more at 200 ms apart.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(2100), "{elapsed:?}");
    }

    #[test]
    fn serde_round_trip() {
        let l = RateLimit::new(100, Duration::from_secs(10)).with_burst(20);
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, r#"{"requests":100,"per":10000,"burst":20}"#);
        assert_eq!(serde_json::from_str::<RateLimit>(&json).unwrap(), l);
    }
}
