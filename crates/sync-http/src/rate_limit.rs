//! Client-side rate limiting: a token bucket (GCRA, from `governor`) on tokio's clock, and
//! for APIs that count a rolling window (HubSpot), a window guard that never lets more than
//! the window's budget through and spreads requests evenly instead of bursting.
//! The window can be learned from what the API announces on each response
//! ([`RateLimiter::observe`]).

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
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
/// // A token bucket: 100 requests per 10 seconds, bursts of 100.
/// let bucket = RateLimit::new(100, Duration::from_secs(10));
/// // HubSpot's rolling window: never more than 100 in any 10 s, spread evenly.
/// let hubspot = RateLimit::rolling(100, Duration::from_secs(10));
/// assert_eq!(bucket.burst, 100);
/// assert_eq!(hubspot.burst, 2);
/// assert!(hubspot.is_valid());
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
    /// The API counts a rolling window (a sliding log, as HubSpot does) rather than a
    /// bucket: never send more than `requests` in any span of `per`, and pace them evenly.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rolling: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// The share of a rolling window kept free, so that requests whose trip to the server
/// takes a little longer or shorter than the one before never land `requests + 1` in one
/// window as the server counts it.
const ROLLING_MARGIN_DIVISOR: u32 = 33;

impl RateLimit {
    /// `requests` per `per`, bursts of up to `requests`.
    pub fn new(requests: u32, per: Duration) -> Self {
        Self {
            requests,
            per,
            burst: requests,
            rolling: false,
        }
    }

    /// At most `requests` in any rolling `per`, at an even pace (a 3% margin of the window
    /// is kept for network jitter). The burst of 2 only lets a request that was woken late
    /// (timers tick in milliseconds) be made up by the next one, so the pace does not drift
    /// below the budget; the window itself is never exceeded.
    pub fn rolling(requests: u32, per: Duration) -> Self {
        Self {
            requests,
            per,
            burst: 2.min(requests.max(1)),
            rolling: true,
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
        if self.rolling {
            self.guard_window() / self.requests.max(1)
        } else {
            self.per / self.requests.max(1)
        }
    }

    /// The span in which a rolling limit admits at most `requests`: the window plus margin.
    fn guard_window(&self) -> Duration {
        self.per + self.per / ROLLING_MARGIN_DIVISOR
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

/// What an API announced about its rate-limit window on one response (HubSpot:
/// `X-HubSpot-RateLimit-Max`, `-Remaining` and `-Interval-Milliseconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnnouncedLimit {
    /// Requests allowed in the window.
    pub max: u32,
    /// Requests left in the window when the server answered, if announced.
    pub remaining: Option<u32>,
    /// The window.
    pub interval: Duration,
}

impl AnnouncedLimit {
    /// `max` requests per `interval`, with `remaining` left.
    pub fn new(max: u32, remaining: Option<u32>, interval: Duration) -> Self {
        Self {
            max,
            remaining,
            interval,
        }
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

type Bucket = Gcra<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Instant>>;

/// A token-bucket limiter, with a rolling-window guard for [rolling](RateLimit::rolling)
/// limits. Share it with `Arc`: every clone of an [`HttpClient`](crate::HttpClient) shares
/// the client's limiter, and a caller may attach an extra one to some requests (HubSpot
/// search's own 5/s budget) with [`RequestBuilder::limiter`](crate::RequestBuilder::limiter).
pub struct RateLimiter {
    state: Mutex<State>,
}

struct State {
    limit: RateLimit,
    bucket: Bucket,
    /// When the requests of the last guard window were sent (rolling limits only).
    sent: VecDeque<Instant>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limit", &self.limit())
            .finish()
    }
}

fn bucket(limit: RateLimit) -> Option<Bucket> {
    let burst = NonZeroU32::new(limit.burst)?;
    if !limit.is_valid() {
        return None;
    }
    let quota = Quota::with_period(limit.period())?.allow_burst(burst);
    Some(Gcra::direct_with_clock(quota, TokioClock))
}

impl State {
    /// Takes a permit at `now`, or says how long to wait for one.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        // Every limit keeps the log, so that switching to a learned rolling window later
        // still counts what was sent before.
        let window = self.limit.guard_window();
        while self
            .sent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= window)
        {
            self.sent.pop_front();
        }
        if self.limit.rolling
            && self.sent.len() >= self.limit.requests as usize
            && let Some(&oldest) = self.sent.front()
        {
            return Err((oldest + window).saturating_duration_since(now));
        }
        match self.bucket.check() {
            Ok(()) => {
                self.sent.push_back(now);
                Ok(())
            }
            Err(not_until) => Err(not_until.wait_time_from(now)),
        }
    }
}

impl RateLimiter {
    /// A limiter for `limit`; `None` when the budget is not [valid](RateLimit::is_valid).
    pub fn new(limit: RateLimit) -> Option<Self> {
        Some(Self {
            state: Mutex::new(State {
                limit,
                bucket: bucket(limit)?,
                sent: VecDeque::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The budget: as configured, or as last announced by the API.
    pub fn limit(&self) -> RateLimit {
        self.lock().limit
    }

    /// Waits (on tokio's clock) until a request may be sent, and takes its permit.
    pub async fn acquire(&self) {
        loop {
            let now = TokioClock.now();
            let taken = self.lock().take(now);
            match taken {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait.max(Duration::from_millis(1))).await,
            }
        }
    }

    /// Takes a permit if one is free now, without waiting.
    pub fn try_acquire(&self) -> bool {
        self.lock().take(TokioClock.now()).is_ok()
    }

    /// Learns the window the API announced on a response.
    ///
    /// The announced window becomes this limiter's [rolling](RateLimit::rolling) limit
    /// (replacing the configured one: the server's count is the one that refuses), and the
    /// requests sent in the current window are kept, so the switch never lets a burst
    /// through. When the server counts more requests in its window than this limiter sent
    /// (another process using the same app), the difference is booked as sent now, so
    /// the shared budget is not exceeded either. Nonsensical announcements (a zero
    /// budget or window) are ignored.
    pub fn observe(&self, announced: AnnouncedLimit) {
        if announced.max == 0 || announced.interval.is_zero() {
            return;
        }
        let now = TokioClock.now();
        let mut s = self.lock();
        let learned = RateLimit::rolling(announced.max, announced.interval);
        if s.limit != learned {
            let Some(b) = bucket(learned) else { return };
            s.limit = learned;
            s.bucket = b;
            // Whatever happened before the switch stays counted.
            let _ = s.bucket.check();
        }
        if let Some(remaining) = announced.remaining {
            let window = learned.guard_window();
            let ours = s
                .sent
                .iter()
                .filter(|&&t| now.saturating_duration_since(t) < window)
                .count();
            let server = announced.max.saturating_sub(remaining) as usize;
            let room = (announced.max as usize).saturating_sub(s.sent.len());
            for _ in 0..server.saturating_sub(ours).min(room) {
                s.sent.push_back(now);
            }
        }
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

    /// The most acquisitions (at the given offsets) within any span of `window`.
    fn most_in_any(times: &[Duration], window: Duration) -> usize {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| **t < times[i] + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_rolling_limit_never_fills_a_window_past_its_budget_and_spreads_requests() {
        let limiter = RateLimiter::new(RateLimit::rolling(10, Duration::from_secs(1))).unwrap();
        let start = tokio::time::Instant::now();
        let mut times = Vec::new();
        for _ in 0..40 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        assert!(most_in_any(&times, Duration::from_secs(1)) <= 10);
        assert!(
            most_in_any(&times, Duration::from_millis(50)) <= 2,
            "no bursts: {times:?}"
        );
        // 40 requests at 10 per 1.02 s: the budget is used, minus the margin.
        assert!(times[39] < Duration::from_millis(4_000), "{times:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_announced_window_replaces_the_configured_one_and_counts_what_was_sent() {
        // A bucket that would let 100 through at once.
        let limiter = RateLimiter::new(RateLimit::new(100, Duration::from_secs(10))).unwrap();
        let start = tokio::time::Instant::now();
        for _ in 0..8 {
            limiter.acquire().await;
        }
        limiter.observe(AnnouncedLimit::new(10, Some(2), Duration::from_secs(1)));
        assert_eq!(
            limiter.limit(),
            RateLimit::rolling(10, Duration::from_secs(1))
        );
        let mut times = vec![Duration::ZERO; 8];
        for _ in 0..12 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        assert!(
            most_in_any(&times, Duration::from_secs(1)) <= 10,
            "the 8 sent before the switch count: {times:?}"
        );
        // Nonsense is ignored.
        limiter.observe(AnnouncedLimit::new(0, None, Duration::from_secs(1)));
        assert_eq!(limiter.limit().requests, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_another_process_made_are_left_room_for() {
        let limiter = RateLimiter::new(RateLimit::rolling(10, Duration::from_secs(1))).unwrap();
        limiter.acquire().await;
        // The server counts the whole window used: nine by someone else.
        limiter.observe(AnnouncedLimit::new(10, Some(0), Duration::from_secs(1)));
        assert!(!limiter.try_acquire());
        tokio::time::advance(Duration::from_millis(1_100)).await;
        assert!(limiter.try_acquire());
    }

    #[test]
    fn serde_round_trip() {
        let l = RateLimit::new(100, Duration::from_secs(10)).with_burst(20);
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(json, r#"{"requests":100,"per":10000,"burst":20}"#);
        assert_eq!(serde_json::from_str::<RateLimit>(&json).unwrap(), l);
        let r = RateLimit::rolling(100, Duration::from_secs(10));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<RateLimit>(&json).unwrap(), r);
    }
}
