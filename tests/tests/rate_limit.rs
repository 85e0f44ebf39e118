//! Rate limit: a sustained run against a sandbox limited to 50 requests per rolling second
//! gets no 429 and uses most of the budget. The bench `benches/benches/rate_limit.rs`
//! reports the exact share; here it is asserted loosely (a debug build on a busy machine).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cativa_crm_sync_tests::{Pacing, sustained_hubspot_run};

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
