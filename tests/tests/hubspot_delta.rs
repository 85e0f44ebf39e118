//! HubSpot delta and deletions: a delta stopped by a `DAILY` 429 right after its first call
//! must not move the checkpoint past a contact archived in the window, so the next delta
//! still removes that contact's sync-granted badge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cativa_crm_sync_tests::{World, unlimited_sandbox};
use sync_sandbox::{Clock, ManualClock};
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::ratelimit::RateLimits;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_stopped_before_the_archived_read_loses_no_deletion() {
    let clock = ManualClock::shared();
    let mut config = unlimited_sandbox();
    let shared: Arc<dyn Clock> = clock.clone();
    config.clock = Some(shared);
    let data = DataGenConfig::default()
        .with_contacts(60)
        .with_seed(31)
        .with_duplicate_email_share(0.0);
    let world = World::start_with(config, data).await.unwrap();
    world.record_users().await.unwrap();
    let engine = world.engine().unwrap();
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

    // The contact is archived; an hour later another one changes, so a delta's newest
    // change (minus the overlap) lies past the archiving.
    clock.advance(Duration::from_secs(3_600));
    hubspot.archive_contact(victim).unwrap();
    clock.advance(Duration::from_secs(3_600));
    hubspot.add_tag(other, "VIP").unwrap();

    // The daily budget runs out after one more call: the delta stops there.
    let used = hubspot.daily_usage();
    hubspot.set_rate_limits(RateLimits::unlimited().with_daily(Some(used + 1)));
    let stopped = engine.run_delta(&world.tenant).await.unwrap();
    assert!(stopped.stopped.is_some(), "the DAILY 429 stops the run: {stopped}");
    assert!(
        world.premium_holders().contains(&user),
        "nothing removed yet"
    );

    // The budget is back: the next delta still sees the archiving and removes the badge.
    hubspot.set_rate_limits(RateLimits::unlimited());
    let next = engine.run_delta(&world.tenant).await.unwrap();
    assert!(next.stopped.is_none(), "{next}");
    assert!(
        !world.premium_holders().contains(&user),
        "the archived contact's badge is removed: {next}"
    );
    world.shutdown().await;
}
