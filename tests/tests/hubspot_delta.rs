//! HubSpot delta and deletions: a delta stopped by a `DAILY` 429 right after its first call
//! must not move the checkpoint past a contact archived in the window, so the next delta
//! still removes that contact's sync-granted badge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cativa_client::sink::ApiBadgeSink;
use cativa_crm_sync_tests::{World, config, fast_options, unlimited_sandbox};
use sync_engine::SyncEngine;
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::ratelimit::RateLimits;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_stopped_before_the_archived_read_loses_no_deletion() {
    let data = DataGenConfig::default()
        .with_contacts(60)
        .with_seed(31)
        .with_duplicate_email_share(0.0);
    let world = World::start_with(unlimited_sandbox(), data).await.unwrap();
    world.record_users().await.unwrap();
    // No overlap: the checkpoint lands exactly on the newest change read, so a few
    // milliseconds between the archiving and a later change are enough to pass it.
    let mut options = fast_options();
    options.overlap = chrono::Duration::zero();
    let engine = SyncEngine::builder(config().unwrap(), world.store.clone())
        .source(world.source())
        .badge_sink(Arc::new(ApiBadgeSink::new(
            world.tenant.clone(),
            world.cativa.clone(),
        )))
        .options(options)
        .build();
    let first = engine.run_delta(&world.tenant).await.unwrap();
    assert_eq!(first.failed, 0, "{first}");

    // A contact whose user got the badge from the sync.
    let holders = world.premium_holders();
    let users = world.users_by_email();
    let hubspot = world.sandbox.hubspot();
    let (victim, user) = hubspot
        .contacts()
        .iter()
        .find_map(|c| {
            let user = users.get(&c.email()?.to_lowercase())?;
            holders.contains(user).then(|| (c.id, user.clone()))
        })
        .expect("a badge holder");
    let other = hubspot
        .contacts()
        .iter()
        .map(|c| c.id)
        .find(|id| *id != victim)
        .unwrap();

    // The contact is archived; then another one changes, so a delta's newest change lies
    // past the archiving.
    tokio::time::sleep(Duration::from_millis(20)).await;
    hubspot.archive_contact(victim).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    hubspot.add_tag(other, "VIP").unwrap();

    // The daily budget runs out after one more call: the delta stops there.
    let used = hubspot.daily_usage();
    hubspot.set_rate_limits(RateLimits::unlimited().with_daily(Some(used + 1)));
    let stopped = engine.run_delta(&world.tenant).await.unwrap();
    assert!(
        stopped.stopped.is_some(),
        "the DAILY 429 stops the run: {stopped}"
    );
    assert!(
        world.premium_holders().contains(&user),
        "nothing removed yet"
    );

    // The budget is back: the next delta still sees the archiving and removes the badge.
    hubspot.set_rate_limits(RateLimits::unlimited());
    let next = engine.run_delta(&world.tenant).await.unwrap();
    assert!(next.stopped.is_none(), "{next}");
    assert_eq!(
        next.api_calls
            .get("GET /crm/v3/objects/contacts?archived=true"),
        Some(&1),
        "the run report shows the archived read: {next}"
    );
    assert!(
        !world.premium_holders().contains(&user),
        "the archived contact's badge is removed: {next}"
    );
    world.shutdown().await;
}
