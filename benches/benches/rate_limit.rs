//! Rate limit: how much of a 50 requests/s HubSpot budget a sustained run uses, and whether
//! it ever gets a 429. Not a micro-benchmark: each case is one real run against the sandbox
//! on 127.0.0.1 (5,000 contacts refetched 10 per batch read, 8 reads in flight through one
//! client), so it prints a table instead of going through criterion.
//!
//! ```text
//! cargo bench -p cativa-crm-sync-benches --bench rate_limit
//! ```
//!
//! `tier` is what a partner configures (`RateLimitTier::Custom` with the account's budget:
//! the client keeps a tenth of each window as burst, so it sustains about 90%); `tight` is a
//! shared limiter one request under the budget, to show the headroom.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cativa_crm_sync_tests::{Pacing, sustained_hubspot_run};

const LIMIT: u32 = 50;
const CONTACTS: usize = 5_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
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
