#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Seeding at scale: every index agrees with the data, and (ignored, run by hand)
//! how long 100k people take.

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use sync_sandbox::datagen::{DataGenConfig, generate};
use sync_sandbox::{SandboxConfig, SandboxServer};

#[tokio::test]
async fn seeding_20k_people_keeps_every_index_consistent() {
    let sandbox = SandboxServer::start(SandboxConfig::default())
        .await
        .unwrap();
    let people = sandbox
        .seed_people(&DataGenConfig::default().with_contacts(20_000).with_seed(3))
        .unwrap();
    assert_eq!(sandbox.hubspot().contacts().len(), 20_000);
    assert_eq!(sandbox.salesforce().records("Contact").len(), 20_000);

    // Every seeded person is found by email, in any case, with its duplicates.
    let mut expected_per_email: std::collections::HashMap<String, usize> = Default::default();
    for p in &people {
        *expected_per_email.entry(p.normalized_email()).or_default() += 1;
    }
    for (i, p) in people.iter().enumerate().step_by(97) {
        let n = expected_per_email[&p.normalized_email()];
        let upper = p.email.to_uppercase();
        assert_eq!(sandbox.hubspot().contacts_by_email(&upper).len(), n, "{i}");
        assert_eq!(
            sandbox
                .salesforce()
                .records_by_email("Contact", &upper)
                .len(),
            n,
            "{i}"
        );
    }

    // One Cativa user per community email, found by email; usernames unique.
    let community: BTreeSet<String> = people
        .iter()
        .filter(|p| p.in_community)
        .map(|p| p.normalized_email())
        .collect();
    let users = sandbox.cativa().users();
    assert_eq!(users.len(), community.len());
    for email in &community {
        let user = sandbox
            .cativa()
            .user_by_email(&email.to_uppercase())
            .unwrap();
        assert_eq!(&user.email, email);
    }
    let usernames: HashSet<&str> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(usernames.len(), users.len());
    sandbox.shutdown().await;
}

/// Run by hand: `cargo test -p sync-sandbox --release --test seed_scale -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn seeding_100k_people_timed() {
    let sandbox = SandboxServer::start(SandboxConfig::default())
        .await
        .unwrap();
    let config = DataGenConfig::default().with_contacts(100_000).with_seed(3);
    let start = Instant::now();
    let people = generate(&config);
    let generated = start.elapsed();
    sandbox.hubspot().seed(&people).unwrap();
    let hubspot = start.elapsed();
    sandbox.salesforce().seed("Contact", &people).unwrap();
    let salesforce = start.elapsed();
    sandbox.cativa().seed_users(&people);
    let cativa = start.elapsed();
    println!(
        "100k people: generate {generated:?}, +hubspot {:?}, +salesforce {:?}, +cativa {:?}; total {cativa:?}",
        hubspot - generated,
        salesforce - hubspot,
        cativa - salesforce
    );
    sandbox.shutdown().await;
}
