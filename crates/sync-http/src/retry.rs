//! The retry policy as data, and the pure function that decides whether to retry.
//!
//! [`decide`] knows nothing about time sources, sockets or randomness: the client feeds it
//! the attempt count, the elapsed time and what happened, and executes its verdict with
//! `backon` (sleeping on tokio's clock, so tests can pause time).

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

/// How a client retries failed requests.
///
/// The defaults suit a background sync worker: 5 attempts, exponential backoff from 500 ms
/// to 30 s with 50% jitter, at most 2 minutes in total, and a server-requested wait
/// (`Retry-After`) of at most 60 s: a longer one ends the call with
/// [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited) so the run can stop cleanly
/// and resume later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
#[serde(default)]
pub struct RetryPolicy {
    /// Total attempts, the first one included (1 disables retries).
    pub max_attempts: u32,
    /// The first backoff delay; doubled after each attempt.
    #[serde(with = "duration_ms")]
    pub base_delay: Duration,
    /// The largest backoff delay.
    #[serde(with = "duration_ms")]
    pub max_delay: Duration,
    /// Give up once this much time has passed since the first attempt (waits included).
    #[serde(with = "duration_ms")]
    pub max_elapsed: Duration,
    /// The longest server-requested wait (`Retry-After`, reset headers) to honour; a longer
    /// one gives up with a rate-limited error carrying the wait.
    #[serde(with = "duration_ms")]
    pub max_retry_after: Duration,
    /// Share of each backoff delay that is randomised, 0.0 (none) to 1.0 ("full jitter").
    /// Server-requested waits are never shortened.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(120),
            max_retry_after: Duration::from_secs(60),
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets the total number of attempts (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the first and the largest backoff delay.
    #[must_use]
    pub fn with_delays(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max.max(base);
        self
    }

    /// Sets the total time budget.
    #[must_use]
    pub fn with_max_elapsed(mut self, max: Duration) -> Self {
        self.max_elapsed = max;
        self
    }

    /// Sets the longest server-requested wait to honour.
    #[must_use]
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Sets the jitter share (clamped to 0.0..=1.0).
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        self
    }

    /// The backoff delay after `attempt` failed attempts, before jitter:
    /// `base_delay * 2^(attempt-1)`, capped at `max_delay`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        self.base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay)
    }

    /// Applies jitter to a backoff delay. `unit` is a random sample in `0.0..1.0`; the result
    /// lies in `delay * (1 - jitter) ..= delay`.
    pub fn jittered(&self, delay: Duration, unit: f64) -> Duration {
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        delay.mul_f64(1.0 - self.jitter.clamp(0.0, 1.0) * unit)
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// What happened on one attempt, as far as the retry decision cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// The failure.
    pub failure: Failure,
    /// Whether the request may safely be sent twice: GET, HEAD, PUT, DELETE and OPTIONS are;
    /// POST and PATCH only when the caller marked them (batch upsert by key, or a request
    /// carrying an idempotency key).
    pub idempotent: bool,
}

impl Outcome {
    /// An outcome.
    pub fn new(failure: Failure, idempotent: bool) -> Self {
        Self {
            failure,
            idempotent,
        }
    }
}

/// The failure of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// An error response.
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The server-requested wait (`Retry-After`, reset headers, or the API's own hint).
        retry_after: Option<Duration>,
        /// The API error decoder's verdict, overriding the status table (e.g. Salesforce
        /// `UNABLE_TO_LOCK_ROW` is retryable, HubSpot's daily limit is not).
        retryable: Option<bool>,
    },
    /// The connection could not be established: nothing was sent, so even a
    /// non-idempotent request may be retried.
    Connect,
    /// The connection failed after the request may have been sent.
    Network,
    /// The request timed out.
    Timeout,
    /// Anything else (a body that could not be encoded or decoded): never retried.
    Fatal,
}

/// The verdict of the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait `after`, then send again.
    Retry {
        /// How long to wait.
        after: Duration,
        /// True when the server asked for this wait (never jittered or shortened).
        server_directed: bool,
    },
    /// Stop and return the error.
    GiveUp(GiveUpReason),
}

/// Why the retry decision gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// The failure is not worth retrying (e.g. 400, 401, 403, 404, 409).
    NotRetryable,
    /// The request is not idempotent and may already have taken effect.
    NotIdempotent,
    /// `max_attempts` reached.
    AttemptsExhausted,
    /// Waiting would exceed `max_elapsed`.
    ElapsedExhausted,
    /// The server asked for a wait longer than `max_retry_after`.
    RetryAfterTooLong,
}

/// Statuses retried by default.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// Decides whether to retry after `attempt` failed attempts (1 after the first) with
/// `elapsed` time spent since the first attempt began.
///
/// Rules: retry 429, 502, 503, 504, connection errors and timeouts (unless the API's error
/// decoder overrode the verdict); never other 4xx; a request that is not idempotent is
/// retried only after a connection error (nothing was sent); a server-requested wait is
/// honoured as is when it is at most `max_retry_after`, otherwise give up; stop after
/// `max_attempts` or when the wait would pass `max_elapsed`.
pub(crate) fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    elapsed: Duration,
    outcome: &Outcome,
) -> Decision {
    let server_wait = match outcome.failure {
        Failure::Status {
            status,
            retry_after,
            retryable,
        } => {
            if !retryable.unwrap_or_else(|| is_retryable_status(status)) {
                return Decision::GiveUp(GiveUpReason::NotRetryable);
            }
            if !outcome.idempotent {
                return Decision::GiveUp(GiveUpReason::NotIdempotent);
            }
            retry_after
        }
        Failure::Connect => None,
        Failure::Network | Failure::Timeout => {
            if !outcome.idempotent {
                return Decision::GiveUp(GiveUpReason::NotIdempotent);
            }
            None
        }
        Failure::Fatal => return Decision::GiveUp(GiveUpReason::NotRetryable),
    };
    if let Some(wait) = server_wait
        && wait > policy.max_retry_after
    {
        return Decision::GiveUp(GiveUpReason::RetryAfterTooLong);
    }
    if attempt >= policy.max_attempts {
        return Decision::GiveUp(GiveUpReason::AttemptsExhausted);
    }
    let (after, server_directed) = match server_wait {
        Some(wait) => (wait, true),
        None => (policy.backoff(attempt), false),
    };
    if elapsed.saturating_add(after) > policy.max_elapsed {
        return Decision::GiveUp(GiveUpReason::ElapsedExhausted);
    }
    Decision::Retry {
        after,
        server_directed,
    }
}

/// Reads the server-requested wait from response headers, relative to `now`:
/// `Retry-After` (delay seconds or an HTTP date), else `RateLimit-Reset` (delay seconds,
/// IETF draft), else `X-RateLimit-Reset` (delay seconds, or a Unix timestamp when it is
/// larger than 10^9).
pub(crate) fn server_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = get("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    if let Some(secs) = get("ratelimit-reset").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs));
    }
    if let Some(n) = get("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok()) {
        if n > 1_000_000_000 {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(n);
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
        return Some(Duration::from_secs(n));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: Option<u64>) -> Failure {
        Failure::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
            retryable: None,
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
            .with_max_attempts(4)
            .with_delays(Duration::from_secs(1), Duration::from_secs(8))
            .with_max_elapsed(Duration::from_secs(60))
            .with_max_retry_after(Duration::from_secs(30))
    }

    fn retry(secs: u64, server_directed: bool) -> Decision {
        Decision::Retry {
            after: Duration::from_secs(secs),
            server_directed,
        }
    }

    #[test]
    fn decision_table() {
        use GiveUpReason::*;
        let zero = Duration::ZERO;
        #[rustfmt::skip]
        let table: Vec<(&str, u32, Duration, Outcome, Decision)> = vec![
            ("429 no header: backoff", 1, zero, Outcome::new(status(429, None), true), retry(1, false)),
            ("429 honours Retry-After", 1, zero, Outcome::new(status(429, Some(7)), true), retry(7, true)),
            ("503 honours Retry-After", 2, zero, Outcome::new(status(503, Some(3)), true), retry(3, true)),
            ("502 backoff attempt 2", 2, zero, Outcome::new(status(502, None), true), retry(2, false)),
            ("504 backoff attempt 3", 3, zero, Outcome::new(status(504, None), true), retry(4, false)),
            ("many attempts", 9, zero, Outcome::new(status(504, None), true), Decision::GiveUp(AttemptsExhausted)),
            ("500 not retried", 1, zero, Outcome::new(status(500, None), true), Decision::GiveUp(NotRetryable)),
            ("400 not retried", 1, zero, Outcome::new(status(400, None), true), Decision::GiveUp(NotRetryable)),
            ("401 not retried", 1, zero, Outcome::new(status(401, None), true), Decision::GiveUp(NotRetryable)),
            ("403 not retried", 1, zero, Outcome::new(status(403, None), true), Decision::GiveUp(NotRetryable)),
            ("404 not retried", 1, zero, Outcome::new(status(404, None), true), Decision::GiveUp(NotRetryable)),
            ("409 not retried", 1, zero, Outcome::new(status(409, None), true), Decision::GiveUp(NotRetryable)),
            ("Retry-After over cap", 1, zero, Outcome::new(status(429, Some(31)), true), Decision::GiveUp(RetryAfterTooLong)),
            ("Retry-After at cap", 1, zero, Outcome::new(status(429, Some(30)), true), retry(30, true)),
            ("attempts exhausted", 4, zero, Outcome::new(status(503, None), true), Decision::GiveUp(AttemptsExhausted)),
            ("elapsed exhausted", 1, Duration::from_secs(55), Outcome::new(status(429, Some(6)), true), Decision::GiveUp(ElapsedExhausted)),
            ("non-idempotent 503", 1, zero, Outcome::new(status(503, None), false), Decision::GiveUp(NotIdempotent)),
            ("non-idempotent 429", 1, zero, Outcome::new(status(429, Some(1)), false), Decision::GiveUp(NotIdempotent)),
            ("non-idempotent timeout", 1, zero, Outcome::new(Failure::Timeout, false), Decision::GiveUp(NotIdempotent)),
            ("non-idempotent reset", 1, zero, Outcome::new(Failure::Network, false), Decision::GiveUp(NotIdempotent)),
            ("non-idempotent connect refused", 1, zero, Outcome::new(Failure::Connect, false), retry(1, false)),
            ("timeout retried", 2, zero, Outcome::new(Failure::Timeout, true), retry(2, false)),
            ("network retried", 1, zero, Outcome::new(Failure::Network, true), retry(1, false)),
            ("fatal never", 1, zero, Outcome::new(Failure::Fatal, true), Decision::GiveUp(NotRetryable)),
            ("decoder says retry a 400", 1, zero, Outcome::new(Failure::Status { status: StatusCode::BAD_REQUEST, retry_after: None, retryable: Some(true) }, true), retry(1, false)),
            ("decoder says never retry a 429", 1, zero, Outcome::new(Failure::Status { status: StatusCode::TOO_MANY_REQUESTS, retry_after: Some(Duration::from_secs(1)), retryable: Some(false) }, true), Decision::GiveUp(NotRetryable)),
        ];
        for (name, attempt, elapsed, outcome, expected) in table {
            assert_eq!(
                decide(&policy(), attempt, elapsed, &outcome),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn backoff_doubles_and_saturates() {
        let p = policy();
        assert_eq!(p.backoff(1), Duration::from_secs(1));
        assert_eq!(p.backoff(2), Duration::from_secs(2));
        assert_eq!(p.backoff(4), Duration::from_secs(8));
        assert_eq!(p.backoff(40), Duration::from_secs(8));
        assert_eq!(p.backoff(0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = policy().with_jitter(0.5);
        let d = Duration::from_secs(10);
        assert_eq!(p.jittered(d, 0.0), d);
        assert_eq!(p.jittered(d, 1.0), Duration::from_secs(5));
        assert_eq!(policy().with_jitter(0.0).jittered(d, 0.9), d);
        assert_eq!(policy().with_jitter(7.0).jitter, 1.0);
    }

    #[test]
    fn server_wait_from_headers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = |pairs: &[(&'static str, String)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert_eq!(
            server_wait(&h(&[("retry-after", "12".into())]), now),
            Some(Duration::from_secs(12))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            server_wait(&h(&[("retry-after", date)]), now),
            Some(Duration::from_secs(90))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(
            server_wait(&h(&[("retry-after", past)]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            server_wait(&h(&[("ratelimit-reset", "4".into())]), now),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            server_wait(&h(&[("x-ratelimit-reset", "9".into())]), now),
            Some(Duration::from_secs(9))
        );
        assert_eq!(
            server_wait(&h(&[("x-ratelimit-reset", "1700000020".into())]), now),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            server_wait(
                &h(&[
                    ("retry-after", "3".into()),
                    ("ratelimit-reset", "50".into())
                ]),
                now
            ),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            server_wait(&h(&[("retry-after", "soon".into())]), now),
            None
        );
        assert_eq!(server_wait(&HeaderMap::new(), now), None);
    }

    #[test]
    fn policy_round_trips_through_serde() {
        let p = policy();
        let json = serde_json::to_string(&p).unwrap();
        let back: RetryPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(p, back);
        let partial: RetryPolicy = serde_json::from_str(r#"{"max_attempts": 2}"#).unwrap();
        assert_eq!(partial.max_attempts, 2);
        assert_eq!(partial.base_delay, RetryPolicy::default().base_delay);
    }
}
