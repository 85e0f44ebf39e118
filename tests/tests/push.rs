//! Push: 1,000 signed `user_created` deliveries over HTTP to the example receiver, each sent
//! twice (Cativa retries), 10% with a bad signature. Every valid delivery is applied once
//! (the second copy answers `duplicate`), every bad one is refused with 401 both times, and
//! each valid user ends up with exactly one HubSpot contact carrying its Cativa user id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cativa_client::sink::ApiBadgeSink;
use cativa_client::webhook::{SignatureVerifier, WebhookReceiver};
use cativa_crm_sync_examples::receiver::{ReceiverState, router};
use cativa_crm_sync_tests::{World, config, fast_options, serve, unlimited_sandbox};
use crm_hubspot::{HubSpotSink, SinkConfig};
use futures::StreamExt;
use sync_core::SyncEngine;
use sync_sandbox::cativa::SignatureMode;
use sync_sandbox::datagen::DataGenConfig;

const DELIVERIES: usize = 1_000;

/// A delivery's index, execution id, and the two answers it got.
type Answers = (usize, String, Vec<(u16, String)>);

fn bad_mode(i: usize) -> SignatureMode {
    match i % 5 {
        0 => SignatureMode::WrongSecret,
        1 => SignatureMode::TamperedBody,
        2 => SignatureMode::Stale(Duration::from_secs(600)),
        3 => SignatureMode::Missing,
        _ => SignatureMode::Garbage,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_user_created_deliveries_are_applied_once_and_forgeries_refused() {
    let data = DataGenConfig::default()
        .with_contacts(500)
        .with_seed(30)
        .with_duplicate_email_share(0.0);
    let world = World::start_with(unlimited_sandbox(), data).await.unwrap();
    let sink = HubSpotSink::new(world.hubspot.clone(), SinkConfig::default());
    sink.ensure_sdk_properties("contactinformation", &[])
        .await
        .unwrap();
    let engine = SyncEngine::builder(config().unwrap(), world.store.clone())
        .source(world.source())
        .crm_sink(Arc::new(sink))
        .badge_sink(Arc::new(ApiBadgeSink::new(
            world.tenant.clone(),
            world.cativa.clone(),
        )))
        .options(fast_options())
        .build();
    let state = ReceiverState {
        engine,
        tenant: world.tenant.clone(),
        cativa: WebhookReceiver::new(
            SignatureVerifier::new(world.sandbox.cativa().webhook_secret().clone()).unwrap(),
        ),
        hubspot: None,
    };
    let (base, server) = serve(router(Arc::new(state))).await.unwrap();
    let url = format!("{base}/webhooks/cativa");

    // 900 people new to HubSpot and 100 who already are contacts (not yet community users)
    // sign up in the community.
    let existing: Vec<_> = world
        .people
        .iter()
        .filter(|p| !p.in_community)
        .take(100)
        .collect();
    assert_eq!(existing.len(), 100);
    let mut users = Vec::new();
    for (i, p) in existing.iter().enumerate() {
        users.push((
            i,
            world
                .sandbox
                .cativa()
                .sign_up(&p.normalized_email(), &p.first_name, &p.last_name),
        ));
    }
    for i in 100..DELIVERIES {
        let email = format!("member{i}@push.example.net");
        users.push((
            i,
            world
                .sandbox
                .cativa()
                .sign_up(&email, "Member", &i.to_string()),
        ));
    }
    let contacts_before = world.sandbox.hubspot().contacts().len();
    // Every tenth delivery is forged or broken in one of five ways.
    let bad = |i: usize| i % 10 == 7;

    let results: Vec<Answers> = futures::stream::iter(users.iter())
        .map(|(i, user)| {
            let sandbox = &world.sandbox;
            let url = &url;
            async move {
                let delivery = sandbox.cativa().user_created_delivery(&user.id).unwrap();
                let mode = if bad(*i) {
                    bad_mode(*i / 10)
                } else {
                    SignatureMode::Valid
                };
                let mut answers = Vec::new();
                for _ in 0..2 {
                    let out = sandbox
                        .cativa()
                        .deliver(url, &delivery, mode.clone())
                        .await
                        .unwrap();
                    answers.push((out.status, out.body));
                }
                (*i, delivery.execution_id.clone(), answers)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;

    for (i, execution_id, answers) in &results {
        let recorded = world
            .store
            .has_delivery(&world.tenant, execution_id)
            .await
            .unwrap();
        assert_eq!(recorded, !bad(*i), "delivery {i} in the ledger");
        if bad(*i) {
            for (status, body) in answers {
                assert_eq!(*status, 401, "delivery {i}: {body}");
                assert!(body.contains("\"error\""), "delivery {i}: {body}");
            }
        } else {
            assert_eq!(
                answers[0],
                (200, r#"{"status":"accepted"}"#.to_owned()),
                "delivery {i}"
            );
            assert_eq!(
                answers[1],
                (200, r#"{"status":"duplicate"}"#.to_owned()),
                "delivery {i}"
            );
        }
    }

    let hubspot = world.sandbox.hubspot();
    let mut created = BTreeSet::new();
    for (i, user) in &users {
        let contacts = hubspot.contacts_by_email(&user.email);
        if bad(*i) {
            if *i >= 100 {
                assert!(contacts.is_empty(), "forged delivery {i} created a contact");
            }
            continue;
        }
        assert_eq!(
            contacts.len(),
            1,
            "user {i} ({}) has {} contacts",
            user.email,
            contacts.len()
        );
        let row = world
            .store
            .mapping_by_user(&world.tenant, &user.id.as_str().into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.crm_id.map(|c| c.id),
            Some(contacts[0].id.to_string()),
            "user {i} is linked to its contact"
        );
        if *i >= 100 {
            // Created by the sink, with the Cativa user id on it.
            assert_eq!(
                contacts[0].property("cativa_user_id"),
                Some(user.id.as_str()),
                "user {i}"
            );
            created.insert(contacts[0].id);
        }
    }
    let valid_new = (100..DELIVERIES).filter(|i| !bad(*i)).count();
    assert_eq!(created.len(), valid_new);
    assert_eq!(
        hubspot.contacts().len(),
        contacts_before + valid_new,
        "no duplicate contacts"
    );
    server.abort();
    world.shutdown().await;
}

/// A delivery whose processing fails (HubSpot down) is answered 500 so Cativa retries it;
/// the retry must be processed, not acknowledged as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_failed_is_processed_when_retried() {
    use sync_sandbox::faults::{Fault, FaultConfig, FaultRates};

    let world = World::start_with(
        unlimited_sandbox(),
        DataGenConfig::default().with_contacts(10),
    )
    .await
    .unwrap();
    let sink = HubSpotSink::new(world.hubspot.clone(), SinkConfig::default());
    sink.ensure_sdk_properties("contactinformation", &[])
        .await
        .unwrap();
    let hubspot = crm_hubspot::HubSpotClient::builder()
        .base_url(world.sandbox.hubspot().base_url())
        .access_token(secrecy::SecretString::from(
            sync_sandbox::hubspot::DEFAULT_ACCESS_TOKEN,
        ))
        .retry_policy(sync_http::RetryPolicy::none())
        .build()
        .unwrap();
    let engine = SyncEngine::builder(config().unwrap(), world.store.clone())
        .source(Arc::new(cativa_crm_sync_examples::setup::hubspot_source(
            hubspot,
            world.sandbox.hubspot().tags_property(),
        )))
        .crm_sink(Arc::new(sink))
        .options(fast_options())
        .build();
    let state = ReceiverState {
        engine,
        tenant: world.tenant.clone(),
        cativa: WebhookReceiver::new(
            SignatureVerifier::new(world.sandbox.cativa().webhook_secret().clone()).unwrap(),
        ),
        hubspot: None,
    };
    let (base, server) = serve(router(Arc::new(state))).await.unwrap();
    let url = format!("{base}/webhooks/cativa");
    let user = world
        .sandbox
        .cativa()
        .sign_up("late@push.example.net", "Late", "Comer");
    let delivery = world
        .sandbox
        .cativa()
        .user_created_delivery(&user.id)
        .unwrap();

    world
        .sandbox
        .hubspot()
        .set_faults(FaultConfig::seeded(1).with_rates(FaultRates::only(Fault::Status(503), 1.0)))
        .unwrap();
    let first = world
        .sandbox
        .cativa()
        .deliver(&url, &delivery, SignatureMode::Valid)
        .await
        .unwrap();
    assert_eq!(first.status, 500, "{}", first.body);

    world
        .sandbox
        .hubspot()
        .set_faults(FaultConfig::default())
        .unwrap();
    let retry = world
        .sandbox
        .cativa()
        .deliver(&url, &delivery, SignatureMode::Valid)
        .await
        .unwrap();
    assert_eq!(
        (retry.status, retry.body.as_str()),
        (200, r#"{"status":"accepted"}"#)
    );
    assert_eq!(
        world
            .sandbox
            .hubspot()
            .contacts_by_email("late@push.example.net")
            .len(),
        1
    );
    server.abort();
    world.shutdown().await;
}
