//! Delta after 500 tag changes in HubSpot (250 tags added, 250 removed) while 20 users got
//! the badge "elsewhere": exactly those 500 badge changes are applied, in sink batches of at
//! most 100, and the 20 grants from elsewhere survive although their contacts changed too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use cativa_client::sink::ApiBadgeSink;
use cativa_crm_sync_tests::{
    PREMIUM, RecordingBadgeSink, TAG, World, assert_same_users, config, fast_options,
    unlimited_sandbox,
};
use sync_engine::SyncEngine;
use sync_sandbox::datagen::DataGenConfig;

const ASSIGN: &str = "POST /social/v1/users/{user_id}/badges/{badge_id}";
const REMOVE: &str = "DELETE /social/v1/users/{user_id}/badges/{badge_id}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_applies_exactly_the_changes_and_keeps_grants_from_elsewhere() {
    let data = DataGenConfig::default()
        .with_contacts(3_000)
        .with_seed(20)
        .with_duplicate_email_share(0.0);
    let world = World::start_with(unlimited_sandbox(), data).await.unwrap();
    world.record_users().await.unwrap();
    let sink = Arc::new(RecordingBadgeSink::new(ApiBadgeSink::new(
        world.tenant.clone(),
        world.cativa.clone(),
    )));
    let engine = SyncEngine::builder(config().unwrap(), world.store.clone())
        .source(world.source())
        .badge_sink(sink.clone())
        .options(fast_options())
        .build();

    // The first delta reads everything from the beginning and sets the checkpoint.
    let first = engine.run_delta(&world.tenant).await.unwrap();
    assert_eq!(first.failed, 0, "{first}");
    assert_same_users(
        "after the first delta",
        &world.premium_holders(),
        &world.expected_premium(),
    );

    // Community members' contacts, split by whether they carry the tag.
    let users = world.users_by_email();
    let hubspot = world.sandbox.hubspot();
    let tags_property = hubspot.tags_property().to_owned();
    let mut tagged = Vec::new();
    let mut untagged = Vec::new();
    for c in hubspot.contacts() {
        let Some(email) = c.email().map(str::to_lowercase) else {
            continue;
        };
        let Some(user) = users.get(&email) else {
            continue;
        };
        let has = c
            .property(&tags_property)
            .is_some_and(|t| t.split(';').any(|x| x == TAG));
        if has {
            tagged.push((c.id, user.clone()))
        } else {
            untagged.push((c.id, user.clone()))
        }
    }
    assert!(
        tagged.len() >= 250 && untagged.len() >= 270,
        "{} / {}",
        tagged.len(),
        untagged.len()
    );

    for (id, _) in &untagged[..250] {
        hubspot.add_tag(*id, TAG).unwrap();
    }
    for (id, _) in &tagged[..250] {
        hubspot.remove_tag(*id, TAG).unwrap();
    }
    // 20 users get the badge elsewhere (a purchase); their contacts change too, without
    // the tag, so the delta reads them and must still leave the badge alone.
    let elsewhere: BTreeSet<String> = untagged[250..270].iter().map(|(_, u)| u.clone()).collect();
    for (id, user) in &untagged[250..270] {
        world
            .sandbox
            .cativa()
            .grant_badge_elsewhere(user, PREMIUM)
            .unwrap();
        hubspot.add_tag(*id, "VIP").unwrap();
    }

    world.sandbox.reset_requests();
    let batches_before = sink.batches().len();
    let report = engine.run_delta(&world.tenant).await.unwrap();
    assert_eq!((report.failed, report.retrying), (0, 0), "{report}");
    assert_eq!(report.applied.get("assign_badge"), Some(&250), "{report}");
    assert_eq!(report.applied.get("remove_badge"), Some(&250), "{report}");

    let cativa = world.sandbox.cativa().requests();
    assert_eq!(
        cativa.count(ASSIGN),
        250,
        "one call per added tag, nothing else"
    );
    assert_eq!(
        cativa.count(REMOVE),
        250,
        "one call per removed tag, nothing else"
    );
    assert_eq!(world.sandbox.hubspot().requests().writes(), 0);

    let batches = &sink.batches()[batches_before..];
    assert_eq!(batches.iter().sum::<usize>(), 500);
    assert!(
        batches.iter().all(|&n| n <= 100) && batches.len() <= 10,
        "500 changes in at most 10 batches of at most 100: {batches:?}"
    );

    let mut expected = world.expected_premium();
    expected.extend(elsewhere.iter().cloned());
    assert_same_users("after the delta", &world.premium_holders(), &expected);
    assert_same_users("granted elsewhere", &world.premium_elsewhere(), &elsewhere);
    world.shutdown().await;
}
