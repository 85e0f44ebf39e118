//! Time as the sandbox sees it: wall-clock timestamps for records and a monotonic
//! reading for rate-limit windows and token expiry, behind one injectable trait so
//! tests can move time by hand instead of sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// A source of time for the sandbox servers.
///
/// `now_utc` stamps records (`createdAt`, `lastmodifieddate`, `SystemModstamp`, token
/// issue times); `elapsed` drives rate-limit windows and token lifetimes. Implement it
/// yourself or use [`SystemClock`] (the default) or [`ManualClock`].
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Current wall-clock time in UTC.
    fn now_utc(&self) -> DateTime<Utc>;
    /// Monotonic time since an arbitrary fixed origin.
    fn elapsed(&self) -> Duration;
}

/// The real clock. Its monotonic reading comes from `tokio::time::Instant`, so it also
/// follows a paused tokio clock (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`).
#[derive(Debug)]
pub struct SystemClock {
    origin: tokio::time::Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_utc(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that only moves when told to, for deterministic tests of rate limits,
/// token expiry and delta windows.
///
/// ```
/// use std::time::Duration;
/// use sync_sandbox::{Clock, ManualClock};
///
/// let clock = ManualClock::starting_at_epoch_ms(1_767_225_600_000);
/// let before = clock.now_utc();
/// clock.advance(Duration::from_secs(10));
/// assert_eq!((clock.now_utc() - before).num_seconds(), 10);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    base_ms: i64,
    offset_ms: AtomicU64,
}

impl ManualClock {
    /// A clock showing the given Unix time in milliseconds.
    pub fn starting_at_epoch_ms(epoch_ms: i64) -> Self {
        Self {
            base_ms: epoch_ms,
            offset_ms: AtomicU64::new(0),
        }
    }

    /// A clock starting at 2026-01-01T00:00:00Z, shared behind an `Arc` ready for a config.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::starting_at_epoch_ms(1_767_225_600_000))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        let offset = i64::try_from(self.offset_ms.load(Ordering::SeqCst)).unwrap_or(i64::MAX);
        Utc.timestamp_millis_opt(self.base_ms.saturating_add(offset))
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn elapsed(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}
