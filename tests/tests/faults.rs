//! Faults: the same people synced twice, once against well-behaved APIs and once with 20% of
//! HubSpot and Cativa requests failing (429, 500, 502/504 gateway pages, 503, dropped and
//! reset connections, truncated JSON, and responses slower than the Cativa client's 1 s
//! timeout), a third of the failures striking after the write happened. The final badges are
//! the same, and Cativa saw each grant once: retries reuse the idempotency key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cativa_client::CativaClient;
use cativa_client::sink::ApiBadgeSink;
use cativa_crm_sync_tests::{
    World, assert_same_users, config, fast_options, hubspot_source, unlimited_sandbox,
};
use crm_hubspot::{HubSpotClient, RateLimitTier};
use secrecy::SecretString;
use sync_engine::SyncEngine;
use sync_http::RetryPolicy;
use sync_sandbox::cativa::Effect;
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::faults::{FaultConfig, FaultRates};

fn data() -> DataGenConfig {
    DataGenConfig::default()
        .with_contacts(1_500)
        .with_seed(50)
        .with_duplicate_email_share(0.0)
}

fn retries() -> RetryPolicy {
    RetryPolicy::default().with_delays(Duration::from_millis(10), Duration::from_millis(100))
}

/// An engine whose clients retry quickly, and whose Cativa client gives up on a response
/// after 1 s (so the sandbox's 1.5 s "slow" responses are real timeouts).
fn engine(world: &World) -> SyncEngine {
    let hubspot = HubSpotClient::builder()
        .base_url(world.sandbox.hubspot().base_url())
        .access_token(SecretString::from(
            sync_sandbox::hubspot::DEFAULT_ACCESS_TOKEN,
        ))
        .tier(RateLimitTier::Custom {
            requests: 100_000,
            window_ms: 1_000,
        })
        .retry_policy(retries())
        .rate_limit_retries(5, Duration::from_secs(2))
        .build()
        .unwrap();
    let cativa = CativaClient::builder(SecretString::from(sync_sandbox::cativa::DEFAULT_API_KEY))
        .base_url(world.sandbox.cativa().base_url())
        .retry_policy(retries())
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    SyncEngine::builder(config().unwrap(), world.store.clone())
        .source(Arc::new(hubspot_source(
            hubspot,
            world.sandbox.hubspot().tags_property(),
        )))
        .badge_sink(Arc::new(ApiBadgeSink::new(world.tenant.clone(), cativa)))
        .options(fast_options())
        .build()
}

/// Full reconciles until one reads every page and the outbox is empty (a page that fails
/// after the client's retries stops a run cleanly; the next run picks up).
async fn sync_until_settled(world: &World, engine: &SyncEngine) -> usize {
    for run in 1..=6 {
        let report = engine.run_full_reconcile(&world.tenant).await.unwrap();
        let counts = world.settle(engine, 40).await.unwrap();
        if report.scan_complete == Some(true) && counts.pending == 0 && counts.in_flight == 0 {
            assert_eq!(counts.failed, 0, "no action failed for good: {report}");
            return run;
        }
    }
    panic!("the sync did not settle in 6 runs");
}

fn holders_by_email(world: &World) -> BTreeSet<String> {
    let emails: BTreeMap<String, String> = world
        .sandbox
        .cativa()
        .users()
        .into_iter()
        .map(|u| (u.id, u.email.to_lowercase()))
        .collect();
    world
        .premium_holders()
        .into_iter()
        .filter_map(|id| emails.get(&id).cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_change_nothing_in_the_final_state() {
    let calm = World::start_with(unlimited_sandbox(), data())
        .await
        .unwrap();
    calm.record_users().await.unwrap();
    assert_eq!(sync_until_settled(&calm, &engine(&calm)).await, 1);
    assert_same_users(
        "without faults",
        &calm.premium_holders(),
        &calm.expected_premium(),
    );

    let stormy = World::start_with(unlimited_sandbox(), data())
        .await
        .unwrap();
    stormy.record_users().await.unwrap();
    let faults = FaultConfig::seeded(7)
        .with_rates(FaultRates::mixed(0.2))
        .with_slow_delay(Duration::from_millis(1_500))
        .with_after_effect(0.33)
        .with_max_faults_per_request(Some(3));
    stormy.sandbox.hubspot().set_faults(faults.clone()).unwrap();
    stormy.sandbox.cativa().set_faults(faults).unwrap();
    sync_until_settled(&stormy, &engine(&stormy)).await;

    let injected: u64 = [
        stormy.sandbox.hubspot().requests(),
        stormy.sandbox.cativa().requests(),
    ]
    .iter()
    .flat_map(|r| r.0.values())
    .map(|s| s.faults.values().sum::<u64>())
    .sum();
    assert!(
        injected >= 50,
        "the storm happened: {injected} faults injected"
    );

    assert_eq!(holders_by_email(&stormy), holders_by_email(&calm));
    assert_same_users(
        "with faults",
        &stormy.premium_holders(),
        &stormy.expected_premium(),
    );

    // No duplicate effects: each grant happened once, nothing was removed.
    let mut grants = BTreeMap::new();
    for e in stormy.sandbox.cativa().effects() {
        match e {
            Effect::BadgeGranted { user_id, badge_id } => {
                *grants.entry((user_id, badge_id)).or_insert(0) += 1;
            }
            Effect::BadgeRemoved { user_id, .. } => panic!("badge removed from {user_id}"),
            _ => {}
        }
    }
    assert!(grants.values().all(|&n| n == 1), "a grant applied twice");
    assert_eq!(grants.len(), stormy.expected_premium().len());
    calm.shutdown().await;
    stormy.shutdown().await;
}
