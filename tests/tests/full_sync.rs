//! Full sync of 10,000 contacts: the final Cativa badges equal what the rule implies
//! (computed from the sandbox, not by the planner); a second run writes nothing; reading
//! HubSpot took exactly ceil(10,000 / 100) list calls.
//!
//! The 10,000 people have unique emails (mixed case included). Duplicate emails are tested
//! on their own below: across list pages the engine does not yet apply the documented
//! duplicate policy (reported to the engine's owner; the test is ignored until fixed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cativa_crm_sync_tests::{World, assert_same_users, unlimited_sandbox};
use sync_sandbox::datagen::DataGenConfig;

const CONTACTS: usize = 10_000;
const LIST: &str = "GET /crm/v3/objects/contacts";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_of_10000_contacts_matches_the_rules_and_is_idempotent() {
    let data = DataGenConfig::default()
        .with_contacts(CONTACTS)
        .with_seed(10)
        .with_duplicate_email_share(0.0);
    let world = World::start_with(unlimited_sandbox(), data).await.unwrap();
    let users = world.record_users().await.unwrap();
    assert_eq!(
        users.accepted as usize,
        world.sandbox.cativa().users().len()
    );
    let expected = world.expected_premium();
    assert!(
        expected.len() > 1_000,
        "the data should exercise the rule: {} qualify",
        expected.len()
    );

    let engine = world.engine().unwrap();
    world.sandbox.reset_requests();
    let first = engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!(first.read as usize, CONTACTS);
    assert_eq!(first.scan_complete, Some(true));
    assert_eq!((first.failed, first.retrying), (0, 0), "{first}");
    assert_eq!(
        world.sandbox.hubspot().requests().count(LIST),
        CONTACTS.div_ceil(100) as u64,
        "one list call per 100 contacts: {:?}",
        world.sandbox.hubspot().requests()
    );
    assert_same_users("Premium holders", &world.premium_holders(), &expected);
    let assigned = world
        .sandbox
        .cativa()
        .requests()
        .count("POST /social/v1/users/{user_id}/badges/{badge_id}");
    assert_eq!(
        assigned as usize,
        expected.len(),
        "one call per badge granted"
    );

    world.sandbox.reset_requests();
    let second = engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!(second.read as usize, CONTACTS);
    assert_eq!(second.applied_total(), 0, "{second}");
    assert_eq!(world.sandbox.cativa().requests().writes(), 0);
    assert_eq!(world.sandbox.hubspot().requests().writes(), 0);
    assert_same_users("Premium holders", &world.premium_holders(), &expected);
    world.shutdown().await;
}

/// Several contacts share an email, on different list pages: per email the contact updated
/// last wins, ties to the smaller record id (`DuplicatePolicy::MostRecentlyUpdated`), and
/// only the winner's tags count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_emails_across_pages_follow_the_duplicate_policy() {
    let data = DataGenConfig::default()
        .with_contacts(2_000)
        .with_seed(10)
        .with_duplicate_email_share(0.1);
    let world = World::start_with(unlimited_sandbox(), data).await.unwrap();
    world.record_users().await.unwrap();
    let engine = world.engine().unwrap();
    let report = engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!(report.failed, 0, "{report}");
    assert_same_users(
        "Premium holders",
        &world.premium_holders(),
        &world.expected_premium(),
    );
    world.shutdown().await;
}
