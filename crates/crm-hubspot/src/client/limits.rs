//! HubSpot's rate-limit tiers, turned into client-side budgets that never exceed them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sync_http::RateLimit;

/// The burst limit of the account's plan (privately distributed apps: private apps, static
/// tokens, service keys). Daily limits are not enforced client-side: a `DAILY` 429 stops the
/// run with [`crate::Error::DailyLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "tier")]
#[non_exhaustive]
pub enum RateLimitTier {
    /// Free and Starter: 100 requests per 10 seconds.
    #[default]
    FreeStarter,
    /// Professional and Enterprise: 190 requests per 10 seconds.
    ProfessionalEnterprise,
    /// With the API Limit Increase pack: 250 per 10 seconds.
    LimitIncrease,
    /// Publicly distributed OAuth apps: 110 per 10 seconds per installing account.
    PublicApp,
    /// Your own numbers (e.g. a share of the budget when several apps run).
    Custom {
        /// Requests allowed per window.
        requests: u32,
        /// The window in milliseconds.
        window_ms: u64,
    },
    /// No client-side throttling at all: no rolling window, no search budget, and the
    /// windows HubSpot announces are not followed. Only for tests and benches against a
    /// local server without limits (such as the `sync-sandbox` binary run with
    /// `--rate-limit off`); never for production, where HubSpot answers the excess with
    /// 429s and can suspend the app.
    Unlimited,
}

impl RateLimitTier {
    /// Requests allowed per window, and the window ([`Unlimited`](Self::Unlimited):
    /// `u32::MAX` per 10 s, the client builds no limiter for it).
    pub fn budget(self) -> (u32, Duration) {
        let ten = Duration::from_secs(10);
        match self {
            Self::FreeStarter => (100, ten),
            Self::ProfessionalEnterprise => (190, ten),
            Self::LimitIncrease => (250, ten),
            Self::PublicApp => (110, ten),
            Self::Custom {
                requests,
                window_ms,
            } => (requests, Duration::from_millis(window_ms)),
            Self::Unlimited => (u32::MAX, ten),
        }
    }

    /// The client-side limiter for this tier: a rolling window of the tier's budget, paced
    /// evenly (see [`RateLimit::rolling`]). Once HubSpot answers, the client follows the
    /// window it announces instead (`X-HubSpot-RateLimit-Max` and
    /// `-Interval-Milliseconds`), so the tier only matters until the first response.
    pub fn rate_limit(self) -> RateLimit {
        let (n, w) = self.budget();
        RateLimit::rolling(n, w)
    }

    /// Whether this is [`Unlimited`](Self::Unlimited): no client-side throttling.
    pub fn is_unlimited(self) -> bool {
        self == Self::Unlimited
    }
}

/// The search API's own budget: 5 requests per second per account, as a rolling window
/// (search responses announce no window to learn from).
pub fn search_rate_limit() -> RateLimit {
    RateLimit::rolling(5, Duration::from_secs(1))
}

/// A token bucket that never lets more than `requests` through in any window of length
/// `window`, as HubSpot's rolling window counts them.
///
/// A bucket of burst `b` refilling `r` per window admits up to `b + r` requests in one
/// window, so a naive `requests`/`window` bucket with burst `requests` would allow twice
/// the budget. This splits it: a burst of a tenth (at least one) and the rest sustained.
/// The client no longer uses it (it keeps a rolling window, [`RateLimit::rolling`], which
/// uses the whole budget); it stays for callers who build their own bucket.
pub fn window_safe(requests: u32, window: Duration) -> RateLimit {
    if requests < 2 {
        // Too small to split; a zero budget stays invalid and is reported by the builder.
        return RateLimit::new(requests, window);
    }
    let burst = (requests / 10).max(1);
    RateLimit::new(requests - burst, window).with_burst(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_and_split() {
        assert_eq!(
            RateLimitTier::default().budget(),
            (100, Duration::from_secs(10))
        );
        assert_eq!(RateLimitTier::ProfessionalEnterprise.budget().0, 190);
        let l = RateLimitTier::FreeStarter.rate_limit();
        assert_eq!((l.requests, l.burst, l.rolling), (100, 2, true));
        let s = search_rate_limit();
        assert_eq!((s.requests, s.burst, s.per), (5, 2, Duration::from_secs(1)));
        let w = window_safe(100, Duration::from_secs(10));
        assert_eq!((w.requests, w.burst), (90, 10));
        let c = RateLimitTier::Custom {
            requests: 50,
            window_ms: 1000,
        }
        .rate_limit();
        assert_eq!((c.requests, c.per), (50, Duration::from_secs(1)));
    }
}
