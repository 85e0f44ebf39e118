//! Rate limit: the HubSpot client on its default tier learns the window the sandbox
//! announces (`X-HubSpot-RateLimit-Max` / `-Remaining` / `-Interval-Milliseconds`) and gets no
//! 429 at 10 per second, 100 per 10 s and 190 per 10 s; and a sustained run against a
//! sandbox limited to 50 requests per rolling second gets no 429 and uses most of the budget.
//! The bench `benches/benches/rate_limit.rs` reports the exact budget shares; the tests
//! assert counts (429s, calls made, the learned window), never wall-clock time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cativa_crm_sync_tests::{Pacing, sustained_hubspot_run};
use crm_hubspot::{HubSpotClient, ListOptions};
use futures::StreamExt;
use secrecy::SecretString;
use sync_sandbox::hubspot::{DEFAULT_ACCESS_TOKEN, HubSpotConfig, HubSpotSandbox};
use sync_sandbox::ratelimit::{RateLimit, RateLimits};

/// Calls per run: 20 s at 10 per second.
const CALLS: usize = 200;

/// `CALLS` list calls, 8 in flight, from a client on the default tier against a sandbox
/// enforcing `limit`; returns (calls HubSpot received, of which 429s, the client).
async fn announced_window_run(limit: RateLimit) -> (u64, u64, HubSpotClient) {
    let config = HubSpotConfig::default()
        .with_rate_limits(RateLimits::unlimited().with_general(Some(limit)));
    let sandbox = HubSpotSandbox::start(config).await.unwrap();
    let client = HubSpotClient::builder()
        .base_url(sandbox.base_url())
        .access_token(SecretString::from(DEFAULT_ACCESS_TOKEN))
        .build()
        .unwrap();
    let ok = futures::stream::iter(0..CALLS)
        .map(|_| {
            let client = client.clone();
            async move { client.list_contacts(&ListOptions::new(1, Vec::new())).await }
        })
        .buffer_unordered(8)
        .filter(|r| futures::future::ready(r.is_ok()))
        .count()
        .await;
    assert_eq!(ok, CALLS, "every call succeeded");
    let counts = sandbox.requests();
    let rate_limited = counts.0.values().map(|s| s.rate_limited).sum();
    (counts.total(), rate_limited, client)
}

fn assert_learned(client: &HubSpotClient, max: u32, window: Duration) {
    let learned = client.rate_limiter().map(|l| l.limit()).unwrap();
    assert_eq!(
        (learned.requests, learned.per, learned.rolling),
        (max, window, true),
        "the client follows the announced window: {learned:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_tier_client_learns_10_per_second_and_gets_no_429() {
    let (calls, limited, client) = announced_window_run(RateLimit::per_second(10)).await;
    assert_eq!(limited, 0, "429s under an announced 10/s");
    assert_eq!(calls, CALLS as u64, "no call was sent twice");
    assert_learned(&client, 10, Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_tier_client_learns_100_per_10_seconds_and_gets_no_429() {
    let (calls, limited, client) =
        announced_window_run(RateLimit::new(100, Duration::from_secs(10))).await;
    assert_eq!(limited, 0, "429s under an announced 100/10 s");
    assert_eq!(calls, CALLS as u64, "no call was sent twice");
    assert_learned(&client, 100, Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_tier_client_learns_190_per_10_seconds_and_gets_no_429() {
    let (calls, limited, client) =
        announced_window_run(RateLimit::new(190, Duration::from_secs(10))).await;
    assert_eq!(limited, 0, "429s under an announced 190/10 s");
    assert_eq!(calls, CALLS as u64, "no call was sent twice");
    // Above the default tier's 100: the announced window wins.
    assert_learned(&client, 190, Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sustained_run_stays_under_50_per_second_and_uses_the_budget() {
    let run = sustained_hubspot_run(50, 2_000, Pacing::Tier)
        .await
        .unwrap();
    assert_eq!(run.rate_limited, 0, "{run:?}");
    assert!(run.requests >= 200, "{run:?}");
    assert!(
        run.utilization() >= 0.75,
        "used {:.0}% of the budget: {run:?}",
        run.utilization() * 100.0
    );
    assert!(run.utilization() <= 1.0, "{run:?}");
}

/// Kept so the shared-limiter path stays covered: a limiter given by the caller also
/// learns the announced window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_limiter_learns_the_announced_window() {
    let config = HubSpotConfig::default().with_rate_limits(
        RateLimits::unlimited().with_general(Some(RateLimit::new(40, Duration::from_secs(10)))),
    );
    let sandbox = HubSpotSandbox::start(config).await.unwrap();
    let shared = Arc::new(
        sync_http::RateLimiter::new(sync_http::RateLimit::new(100, Duration::from_secs(10)))
            .unwrap(),
    );
    let client = HubSpotClient::builder()
        .base_url(sandbox.base_url())
        .access_token(SecretString::from(DEFAULT_ACCESS_TOKEN))
        .shared_limiter(Arc::clone(&shared))
        .build()
        .unwrap();
    client
        .list_contacts(&ListOptions::new(1, Vec::new()))
        .await
        .unwrap();
    let learned = shared.limit();
    assert_eq!(
        (learned.requests, learned.per),
        (40, Duration::from_secs(10))
    );
}
