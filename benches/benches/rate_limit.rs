//! Rate limit: how much of the budget HubSpot announces the client uses, and whether it
//! ever gets a 429. Not a micro-benchmark: each case is one real run against the sandbox on
//! 127.0.0.1, so it prints a table instead of going through criterion.
//!
//! ```text
//! cargo bench -p cativa-crm-sync-benches --bench rate_limit
//! ```
//!
//! - `announced`: a client on its default tier (Free/Starter, 100 per 10 s) makes 200 list
//!   calls, 8 in flight, against a sandbox enforcing 10/s, 100/10 s and 190/10 s. The
//!   client learns the window from `X-HubSpot-RateLimit-*` on the first response. The share
//!   is calls / (budget per window × run time / window).
//! - `tier` and `tight` (50 requests per rolling second, 5,000 contacts refetched 10 per batch
//!   read): `tier` is `RateLimitTier::Custom` with the budget, `tight` a shared token bucket
//!   one request under it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cativa_crm_sync_tests::{Pacing, sustained_hubspot_run};
use crm_hubspot::{HubSpotClient, ListOptions};
use futures::StreamExt;
use secrecy::SecretString;
use sync_sandbox::hubspot::{DEFAULT_ACCESS_TOKEN, HubSpotConfig, HubSpotSandbox};
use sync_sandbox::ratelimit::{RateLimit, RateLimits};

const CALLS: usize = 200;
const LIMIT: u32 = 50;
const CONTACTS: usize = 5_000;

/// (calls HubSpot received, 429s, run time).
async fn announced_run(limit: RateLimit) -> (u64, u64, Duration) {
    let config = HubSpotConfig::default()
        .with_rate_limits(RateLimits::unlimited().with_general(Some(limit)));
    let sandbox = HubSpotSandbox::start(config).await.expect("sandbox");
    let client = HubSpotClient::builder()
        .base_url(sandbox.base_url())
        .access_token(SecretString::from(DEFAULT_ACCESS_TOKEN))
        .build()
        .expect("client");
    let started = Instant::now();
    let ok = futures::stream::iter(0..CALLS)
        .map(|_| {
            let client = client.clone();
            async move { client.list_contacts(&ListOptions::new(1, Vec::new())).await }
        })
        .buffer_unordered(8)
        .filter(|r| futures::future::ready(r.is_ok()))
        .count()
        .await;
    let elapsed = started.elapsed();
    assert_eq!(ok, CALLS, "every call succeeded");
    let counts = sandbox.requests();
    let limited = counts.0.values().map(|s| s.rate_limited).sum();
    (counts.total(), limited, elapsed)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("client on its default tier, {CALLS} calls, 8 in flight");
    println!(
        "{:<12} {:>6} {:>6} {:>9} {:>8}",
        "announced", "calls", "429s", "seconds", "share"
    );
    for limit in [
        RateLimit::per_second(10),
        RateLimit::new(100, Duration::from_secs(10)),
        RateLimit::new(190, Duration::from_secs(10)),
    ] {
        let (calls, limited, elapsed) = runtime.block_on(announced_run(limit));
        let budget = f64::from(limit.max) * elapsed.as_secs_f64() / limit.window.as_secs_f64();
        println!(
            "{:<12} {:>6} {:>6} {:>9.2} {:>7.1}%",
            format!("{}/{}s", limit.max, limit.window.as_secs()),
            calls,
            limited,
            elapsed.as_secs_f64(),
            calls as f64 / budget * 100.0
        );
    }
    println!();
    println!("sandbox limit {LIMIT} requests per rolling second, {CONTACTS} contacts");
    println!(
        "{:<6} {:>9} {:>6} {:>9} {:>8} {:>12}",
        "pacing", "requests", "429s", "seconds", "req/s", "utilization"
    );
    for (name, pacing) in [("tier", Pacing::Tier), ("tight", Pacing::Tight)] {
        let run = runtime
            .block_on(sustained_hubspot_run(LIMIT, CONTACTS, pacing))
            .expect("run");
        let secs = run.elapsed.as_secs_f64();
        println!(
            "{:<6} {:>9} {:>6} {:>9.2} {:>8.1} {:>11.1}%",
            name,
            run.requests,
            run.rate_limited,
            secs,
            run.requests as f64 / secs,
            run.utilization() * 100.0
        );
    }
}
