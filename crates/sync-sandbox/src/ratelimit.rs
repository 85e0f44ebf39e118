//! Server-side rate limits, enforced the way the real APIs count: a rolling window
//! (HubSpot's `TEN_SECONDLY_ROLLING` is a sliding log, not a token bucket) plus an
//! optional daily budget.
//!
//! The limiter reads time from a [`Clock`](crate::Clock), so tests advance a
//! [`ManualClock`](crate::ManualClock) instead of sleeping.

use std::collections::VecDeque;
use std::time::Duration;

/// A limit of `max` requests in any rolling `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in one window.
    pub max: u32,
    /// Window length.
    pub window: Duration,
}

impl RateLimit {
    /// `max` requests per rolling `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }

    /// `max` requests per second.
    pub const fn per_second(max: u32) -> Self {
        Self::new(max, Duration::from_secs(1))
    }

    /// HubSpot Free/Starter private apps: 100 per 10 s.
    pub const fn hubspot_free() -> Self {
        Self::new(100, Duration::from_secs(10))
    }

    /// HubSpot Professional/Enterprise private apps: 190 per 10 s.
    pub const fn hubspot_professional() -> Self {
        Self::new(190, Duration::from_secs(10))
    }

    /// HubSpot CRM search: 5 requests per second per account.
    pub const fn hubspot_search() -> Self {
        Self::per_second(5)
    }
}

/// Outcome of asking a [`SlidingWindow`] for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Allowed; this many requests remain in the current window.
    Allowed {
        /// Remaining requests in the window after this one.
        remaining: u32,
    },
    /// Refused; a slot frees up after this long.
    Refused {
        /// Time until the oldest request leaves the window.
        retry_in: Duration,
    },
}

/// A sliding-log limiter: a request is admitted when fewer than `max` requests were
/// admitted in the last `window`.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    limit: RateLimit,
    admitted: VecDeque<Duration>,
}

impl SlidingWindow {
    /// An empty window for `limit`.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            admitted: VecDeque::new(),
        }
    }

    /// The limit this window enforces.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Tries to admit one request at monotonic time `now`.
    pub fn try_admit(&mut self, now: Duration) -> Admission {
        while let Some(&oldest) = self.admitted.front() {
            if now.saturating_sub(oldest) >= self.limit.window {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        let max = usize::try_from(self.limit.max).unwrap_or(usize::MAX);
        if self.admitted.len() < max {
            self.admitted.push_back(now);
            let remaining = max - self.admitted.len();
            Admission::Allowed {
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            }
        } else {
            let oldest = self.admitted.front().copied().unwrap_or(now);
            Admission::Refused {
                retry_in: (oldest + self.limit.window).saturating_sub(now),
            }
        }
    }
}

/// Rate limits of one sandbox server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimits {
    /// Rolling-window limit for ordinary API calls (`None`: unlimited).
    pub general: Option<RateLimit>,
    /// Separate limit for search endpoints (HubSpot CRM search: 5/s). Search calls do
    /// not count against `general` when this is set, as on HubSpot.
    pub search: Option<RateLimit>,
    /// Daily request budget (`None`: unlimited). HubSpot answers 429 `DAILY`,
    /// Salesforce 403 `REQUEST_LIMIT_EXCEEDED`.
    pub daily: Option<u64>,
    /// Send `Retry-After` (whole seconds, rounded up) on 429s. Real HubSpot does not;
    /// Cativa does.
    pub send_retry_after: bool,
}

impl RateLimits {
    /// No limits at all.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// HubSpot's defaults for a Free/Starter private app: 100 per 10 s, search 5/s,
    /// no `Retry-After`.
    pub fn hubspot_default() -> Self {
        Self {
            general: Some(RateLimit::hubspot_free()),
            search: Some(RateLimit::hubspot_search()),
            daily: None,
            send_retry_after: false,
        }
    }

    /// Sets the general rolling limit.
    pub fn with_general(mut self, limit: Option<RateLimit>) -> Self {
        self.general = limit;
        self
    }

    /// Sets the search limit.
    pub fn with_search(mut self, limit: Option<RateLimit>) -> Self {
        self.search = limit;
        self
    }

    /// Sets the daily budget.
    pub fn with_daily(mut self, budget: Option<u64>) -> Self {
        self.daily = budget;
        self
    }

    /// Sends (or not) `Retry-After` on 429s.
    pub fn with_retry_after(mut self, send: bool) -> Self {
        self.send_retry_after = send;
        self
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The general rolling window.
    Rolling {
        /// The limit that was hit.
        limit: RateLimit,
    },
    /// The search window.
    Search {
        /// The limit that was hit.
        limit: RateLimit,
    },
    /// The daily budget.
    Daily,
}

/// Live limiter state of one server.
#[derive(Debug)]
pub(crate) struct Limiter {
    pub(crate) config: RateLimits,
    general: Option<SlidingWindow>,
    search: Option<SlidingWindow>,
    pub(crate) used_today: u64,
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LimitOutcome {
    Allowed {
        /// The window that admitted it and what remains, for rate-limit headers.
        window: Option<(RateLimit, u32)>,
    },
    Refused {
        kind: LimitKind,
        retry_in: Option<Duration>,
    },
}

impl Limiter {
    pub(crate) fn new(config: RateLimits) -> Self {
        Self {
            general: config.general.map(SlidingWindow::new),
            search: config.search.map(SlidingWindow::new),
            config,
            used_today: 0,
        }
    }

    /// Replaces the configuration, keeping the daily count.
    pub(crate) fn reconfigure(&mut self, config: RateLimits) {
        let used = self.used_today;
        *self = Self::new(config);
        self.used_today = used;
    }

    pub(crate) fn check(&mut self, is_search: bool, now: Duration) -> LimitOutcome {
        if let Some(budget) = self.config.daily
            && self.used_today >= budget
        {
            return LimitOutcome::Refused {
                kind: LimitKind::Daily,
                retry_in: None,
            };
        }
        let window = if is_search && self.search.is_some() {
            self.search.as_mut()
        } else {
            self.general.as_mut()
        };
        let outcome = match window {
            None => LimitOutcome::Allowed { window: None },
            Some(w) => {
                let limit = w.limit();
                match w.try_admit(now) {
                    Admission::Allowed { remaining } => LimitOutcome::Allowed {
                        window: Some((limit, remaining)),
                    },
                    Admission::Refused { retry_in } => LimitOutcome::Refused {
                        kind: if is_search && self.config.search.is_some() {
                            LimitKind::Search { limit }
                        } else {
                            LimitKind::Rolling { limit }
                        },
                        retry_in: Some(retry_in),
                    },
                }
            }
        };
        if matches!(outcome, LimitOutcome::Allowed { .. }) {
            self.used_today += 1;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_admits_max_then_refuses_until_oldest_expires() {
        let mut w = SlidingWindow::new(RateLimit::new(3, Duration::from_secs(10)));
        let t = Duration::from_secs;
        assert_eq!(w.try_admit(t(0)), Admission::Allowed { remaining: 2 });
        assert_eq!(w.try_admit(t(4)), Admission::Allowed { remaining: 1 });
        assert_eq!(w.try_admit(t(5)), Admission::Allowed { remaining: 0 });
        assert_eq!(w.try_admit(t(6)), Admission::Refused { retry_in: t(4) });
        // At t=10 the first request has left the window: one slot frees up.
        assert_eq!(w.try_admit(t(10)), Admission::Allowed { remaining: 0 });
        assert_eq!(w.try_admit(t(11)), Admission::Refused { retry_in: t(3) });
    }

    #[test]
    fn search_has_its_own_window_and_daily_budget_stops_everything() {
        let mut l = Limiter::new(
            RateLimits::unlimited()
                .with_general(Some(RateLimit::new(1, Duration::from_secs(10))))
                .with_search(Some(RateLimit::per_second(1)))
                .with_daily(Some(3)),
        );
        let now = Duration::ZERO;
        assert!(matches!(l.check(false, now), LimitOutcome::Allowed { .. }));
        assert!(matches!(l.check(true, now), LimitOutcome::Allowed { .. }));
        assert!(matches!(
            l.check(true, now),
            LimitOutcome::Refused {
                kind: LimitKind::Search { .. },
                ..
            }
        ));
        assert!(matches!(
            l.check(false, now),
            LimitOutcome::Refused {
                kind: LimitKind::Rolling { .. },
                ..
            }
        ));
        assert!(matches!(
            l.check(true, Duration::from_secs(1)),
            LimitOutcome::Allowed { .. }
        ));
        assert!(matches!(
            l.check(true, Duration::from_secs(5)),
            LimitOutcome::Refused {
                kind: LimitKind::Daily,
                retry_in: None
            }
        ));
    }
}
