//! The `Sforce-Limit-Info` response header: how much of the org's daily API budget is used.
//!
//! Salesforce returns it on every REST response (`api-usage=10018/100000`, optionally with
//! `; api-bursts=1/750`, or the older `per-app-api-usage=17/250(appName=...)`). The client
//! records the latest figure so a run report can say how much budget a sync consumed.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The name of the header.
pub const LIMIT_INFO_HEADER: &str = "sforce-limit-info";

/// API usage as reported by `Sforce-Limit-Info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiUsage {
    /// Calls made in the last 24 hours, org-wide.
    pub used: u64,
    /// The org's 24-hour allowance.
    pub limit: u64,
    /// The per-app figure, when the header carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_app: Option<AppUsage>,
}

/// The per-connected-app part of `Sforce-Limit-Info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AppUsage {
    /// Calls made by the app.
    pub used: u64,
    /// The app's allowance.
    pub limit: u64,
    /// The app's name.
    pub app: String,
}

impl ApiUsage {
    /// Calls left before `REQUEST_LIMIT_EXCEEDED`.
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// The used share of the allowance, 0.0..=1.0 (1.0 when the limit is unknown or zero).
    pub fn fraction_used(&self) -> f64 {
        if self.limit == 0 {
            1.0
        } else {
            (self.used as f64 / self.limit as f64).min(1.0)
        }
    }
}

/// The longest a spent allowance can stay spent: Salesforce counts requests over a rolling
/// 24 hours, so every request counted now has left the window a day later.
pub const ALLOWANCE_WINDOW_HOURS: i64 = 24;

/// The share of the allowance a resumed run should find unused.
const RESUME_HEADROOM: f64 = 0.10;

/// When to resume after `REQUEST_LIMIT_EXCEEDED` (daily): an estimate from
/// `Sforce-Limit-Info`.
///
/// Salesforce does not say when the counted requests were made. Assuming they were spread
/// evenly over the rolling 24 hours, usage falls by `used / 24` per hour; the estimate is
/// when it is back under 90% of the limit, so the resumed run has a tenth of the allowance
/// to work with: at least 15 minutes after `now`. Requests bunched in the last hours fall
/// out later than that; a run resumed too early stops again, cleanly, with a new estimate.
/// Without a usage figure the answer is the conservative bound, `now` + 24 hours, when
/// every request counted now has left the window.
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use crm_salesforce::limits::{parse_limit_info, resume_estimate};
/// let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let spent = parse_limit_info("api-usage=100000/100000").unwrap();
/// // 10,000 requests (10% of 100,000) leave the window in 2.4 hours at 100,000 per day.
/// assert_eq!(resume_estimate(Some(&spent), now), now + Duration::minutes(144));
/// assert_eq!(resume_estimate(None, now), now + Duration::hours(24));
/// ```
pub fn resume_estimate(usage: Option<&ApiUsage>, now: DateTime<Utc>) -> DateTime<Utc> {
    let window = Duration::hours(ALLOWANCE_WINDOW_HOURS);
    let Some(u) = usage.filter(|u| u.used > 0 && u.limit > 0) else {
        return now + window;
    };
    let target = u.limit as f64 * (1.0 - RESUME_HEADROOM);
    let excess = (u.used as f64 - target).max(0.0);
    let share = (excess / u.used as f64).min(1.0);
    let wait = Duration::seconds((window.num_seconds() as f64 * share).ceil() as i64);
    now + wait.max(Duration::minutes(15)).min(window)
}

fn ratio(text: &str) -> Option<(u64, u64)> {
    let (used, limit) = text.split_once('/')?;
    Some((used.trim().parse().ok()?, limit.trim().parse().ok()?))
}

/// Parses a `Sforce-Limit-Info` value. Returns `None` when it carries no usage figure.
///
/// ```
/// use crm_salesforce::limits::parse_limit_info;
/// let u = parse_limit_info("api-usage=10018/100000; api-bursts=1/750").unwrap();
/// assert_eq!((u.used, u.limit, u.remaining()), (10018, 100000, 89982));
/// ```
pub fn parse_limit_info(value: &str) -> Option<ApiUsage> {
    let mut org: Option<(u64, u64)> = None;
    let mut per_app: Option<AppUsage> = None;
    // Parts are separated by ';' (current) or ',' (some older responses).
    for part in value.split([';', ',']).map(str::trim) {
        if let Some(rest) = part.strip_prefix("api-usage=") {
            org = org.or_else(|| ratio(rest));
        } else if let Some(rest) = part.strip_prefix("per-app-api-usage=") {
            let (counts, app) = match rest.split_once('(') {
                Some((counts, tail)) => {
                    let app = tail.trim_end_matches(')');
                    (counts, app.strip_prefix("appName=").unwrap_or(app))
                }
                None => (rest, ""),
            };
            if let Some((used, limit)) = ratio(counts) {
                per_app = Some(AppUsage {
                    used,
                    limit,
                    app: app.to_owned(),
                });
            }
        }
    }
    match (org, per_app) {
        (Some((used, limit)), per_app) => Some(ApiUsage {
            used,
            limit,
            per_app,
        }),
        // Only the per-app figure: report it as the usage we know about.
        (None, Some(app)) => Some(ApiUsage {
            used: app.used,
            limit: app.limit,
            per_app: Some(app),
        }),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_usage() {
        let u = parse_limit_info("api-usage=10018/100000").unwrap();
        assert_eq!((u.used, u.limit, &u.per_app), (10018, 100000, &None));
        assert!((u.fraction_used() - 0.10018).abs() < 1e-9);
    }

    #[test]
    fn with_bursts() {
        let u = parse_limit_info("api-usage=25/15000; api-bursts=1/750").unwrap();
        assert_eq!((u.used, u.limit), (25, 15000));
    }

    #[test]
    fn per_app_form() {
        let u = parse_limit_info(
            "api-usage=18/5000, per-app-api-usage=17/250(appName=sample-connected-app)",
        )
        .unwrap();
        assert_eq!((u.used, u.limit), (18, 5000));
        assert_eq!(
            u.per_app,
            Some(AppUsage {
                used: 17,
                limit: 250,
                app: "sample-connected-app".into()
            })
        );
        let only_app = parse_limit_info("per-app-api-usage=3/10(appName=x)").unwrap();
        assert_eq!(
            (only_app.used, only_app.limit, only_app.remaining()),
            (3, 10, 7)
        );
    }

    #[test]
    fn garbage_is_none_and_overuse_saturates() {
        assert_eq!(parse_limit_info(""), None);
        assert_eq!(parse_limit_info("api-usage=abc/100"), None);
        assert_eq!(parse_limit_info("api-bursts=1/750"), None);
        let over = parse_limit_info("api-usage=120/100").unwrap();
        assert_eq!((over.remaining(), over.fraction_used()), (0, 1.0));
    }
}
