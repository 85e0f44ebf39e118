//! Push: 1,000 signed `user_created` deliveries over HTTP to the service's Cativa route, each sent
//! twice (Cativa retries), 10% with a bad signature. Every valid delivery is applied once
//! (the second copy answers `duplicate`), every bad one is refused with 401 both times, and
//! each valid user ends up with exactly one HubSpot contact carrying its Cativa user id.
//! Also: the seed's `user_created` payload posted verbatim provisions the contact, and 50
//! concurrent copies of one delivery have exactly one effect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cativa_client::sink::ApiBadgeSink;
use cativa_client::webhook::{SignatureVerifier, WebhookReceiver};
use cativa_crm_sync_tests::{
    SEED_USER_CREATED, World, answer_code, config, fast_options, leaks_internals, serve,
    unlimited_sandbox,
};
use crm_hubspot::{HubSpotSink, SinkConfig};
use futures::StreamExt;
use sync_engine::SyncEngine;
use sync_sandbox::cativa::SignatureMode;
use sync_sandbox::datagen::DataGenConfig;
use sync_service::Service;

const DELIVERIES: usize = 1_000;

/// A delivery's index, execution id, and the two answers it got.
type Answers = (usize, String, Vec<(u16, String)>);

/// The service's hardened routes for `world`'s tenant, verifying Cativa deliveries with
/// `cativa` and handing them to `engine`.
fn app(engine: SyncEngine, world: &World, cativa: WebhookReceiver) -> axum::Router {
    let service = Service::builder(engine, world.tenant.clone())
        .cativa(cativa)
        .build();
    sync_service::router(&service)
}

/// The answer's `status` or `error` code; panics unless the body has the service's shape.
fn code(status: u16, body: &str) -> (u16, String) {
    let code = answer_code(body).unwrap_or_else(|| panic!("not the service's JSON: {body}"));
    (status, code)
}

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
    let cativa = WebhookReceiver::new(
        SignatureVerifier::new(world.sandbox.cativa().webhook_secret().clone()).unwrap(),
    );
    let (base, server) = serve(app(engine, &world, cativa)).await.unwrap();
    let url = format!("{base}/webhooks/cativa/user_created");

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
                let (_, error) = code(*status, body);
                assert!(
                    error.starts_with("signature_") || error.starts_with("timestamp_"),
                    "delivery {i}: a signature error code: {body}"
                );
            }
        } else {
            assert_eq!(
                code(answers[0].0, &answers[0].1),
                (200, "accepted".to_owned()),
                "delivery {i}: {}",
                answers[0].1
            );
            assert_eq!(
                code(answers[1].0, &answers[1].1),
                (200, "duplicate".to_owned()),
                "delivery {i}: {}",
                answers[1].1
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

/// A delivery whose processing fails (HubSpot down) is answered 503 `unavailable` (with
/// `Retry-After`, and no internal detail) so Cativa retries it; the retry must be
/// processed, not acknowledged as a duplicate.
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
        .source(Arc::new(cativa_crm_sync_tests::hubspot_source(
            hubspot,
            world.sandbox.hubspot().tags_property(),
        )))
        .crm_sink(Arc::new(sink))
        .options(fast_options())
        .build();
    let cativa = WebhookReceiver::new(
        SignatureVerifier::new(world.sandbox.cativa().webhook_secret().clone()).unwrap(),
    );
    let (base, server) = serve(app(engine, &world, cativa)).await.unwrap();
    let url = format!("{base}/webhooks/cativa/user_created");
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
    assert_eq!(
        code(first.status, &first.body),
        (503, "unavailable".to_owned()),
        "{}",
        first.body
    );
    let v: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    let message = v["message"].as_str().unwrap();
    assert!(!leaks_internals(message), "{message}");
    assert!(!message.contains("503"), "no upstream detail: {message}");

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
        code(retry.status, &retry.body),
        (200, "accepted".to_owned()),
        "{}",
        retry.body
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

/// Builds the receiver of these tests: the service's routes over `world`'s HubSpot sandbox,
/// its Cativa verifier mapping the sandbox's listeners (automation ids) to their events.
async fn receiver_for(world: &World) -> (String, tokio::task::JoinHandle<()>) {
    let sink = HubSpotSink::new(world.hubspot.clone(), SinkConfig::default());
    sink.ensure_sdk_properties("contactinformation", &[])
        .await
        .unwrap();
    let engine = SyncEngine::builder(config().unwrap(), world.store.clone())
        .source(world.source())
        .crm_sink(Arc::new(sink))
        .options(fast_options())
        .build();
    let mut cativa = WebhookReceiver::new(
        SignatureVerifier::new(world.sandbox.cativa().webhook_secret().clone()).unwrap(),
    );
    for (event, automation) in world.sandbox.cativa().automation_events() {
        cativa = cativa.with_automation(automation, event.parse().unwrap());
    }
    serve(app(engine, world, cativa)).await.unwrap()
}
async fn post_signed(
    url: &str,
    secret: &secrecy::SecretString,
    body: &str,
    execution_id: &str,
    automation_id: Option<&str>,
) -> (u16, String) {
    let now = chrono::Utc::now().timestamp();
    let mut req = sync_http::tls::client()
        .unwrap()
        .post(url)
        .header("content-type", "application/json")
        .header(
            "x-cativa-signature",
            cativa_client::webhook::sign(secret, now, body.as_bytes()),
        )
        .header("x-cativa-execution-id", execution_id)
        .body(body.to_owned());
    if let Some(a) = automation_id {
        req = req.header("x-cativa-automation-id", a);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_user_created_payload_provisions_the_crm_contact() {
    let world = World::start_with(
        unlimited_sandbox(),
        DataGenConfig::default().with_contacts(10),
    )
    .await
    .unwrap();
    let (base, server) = receiver_for(&world).await;
    let secret = world.sandbox.cativa().webhook_secret().clone();
    let hubspot = world.sandbox.hubspot();
    assert!(
        hubspot
            .contacts_by_email("maria.silva@example.com.br")
            .is_empty()
    );

    // The listener's own route.
    let (status, body) = post_signed(
        &format!("{base}/webhooks/cativa/user_created"),
        &secret,
        SEED_USER_CREATED,
        "7c0e8f2a-1111-4222-8333-444455556666",
        Some("a1b2c3d4-0000-4000-8000-000000000999"),
    )
    .await;
    assert_eq!(code(status, &body), (200, "accepted".to_owned()), "{body}");
    let contacts = hubspot.contacts_by_email("maria.silva@example.com.br");
    assert_eq!(contacts.len(), 1, "the CRM contact appears");
    assert_eq!(
        contacts[0].property("cativa_user_id"),
        Some("3f9a1c2e-7b4d-4e8f-9a0b-1c2d3e4f5a6b")
    );
    assert_eq!(contacts[0].property("firstname"), Some("Maria"));
    assert_eq!(contacts[0].property("lastname"), Some("Silva"));

    // The shared route: the listener's automation id says which event it is.
    let other = SEED_USER_CREATED
        .replace(
            "3f9a1c2e-7b4d-4e8f-9a0b-1c2d3e4f5a6b",
            "4e0b2d3f-8c5e-4f90-8b1c-2d3e4f5a6b7c",
        )
        .replace("Maria.Silva@", "Joao.Souza@");
    let automation = world.sandbox.cativa().automation_events()[0].1.clone();
    let (status, body) = post_signed(
        &format!("{base}/webhooks/cativa"),
        &secret,
        &other,
        "7c0e8f2a-1111-4222-8333-444455556667",
        Some(&automation),
    )
    .await;
    assert_eq!(code(status, &body), (200, "accepted".to_owned()), "{body}");
    assert_eq!(
        hubspot.contacts_by_email("joao.souza@example.com.br").len(),
        1
    );

    // Without a route or a mapped listener it is refused, not acknowledged.
    let (status, body) = post_signed(
        &format!("{base}/webhooks/cativa"),
        &secret,
        SEED_USER_CREATED,
        "7c0e8f2a-1111-4222-8333-444455556668",
        Some("a1b2c3d4-0000-4000-8000-000000000999"),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        code(status, &body),
        (422, "unknown_event".to_owned()),
        "{body}"
    );
    server.abort();
    world.shutdown().await;
}

/// 50 copies of one delivery at once: one is processed, the others answer `duplicate` (or
/// 409 `in_progress`, retried later) and change nothing: one outbox item, one contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_deliveries_have_exactly_one_effect_over_http() {
    let world = World::start_with(
        unlimited_sandbox(),
        DataGenConfig::default().with_contacts(10),
    )
    .await
    .unwrap();
    let (base, server) = receiver_for(&world).await;
    let url = format!("{base}/webhooks/cativa/user_created");
    let user = world
        .sandbox
        .cativa()
        .sign_up("racer@push.example.net", "Race", "Condition");
    let delivery = world
        .sandbox
        .cativa()
        .user_created_delivery(&user.id)
        .unwrap();
    let answers = futures::future::join_all((0..50).map(|_| {
        world
            .sandbox
            .cativa()
            .deliver(&url, &delivery, SignatureMode::Valid)
    }))
    .await;
    let mut accepted = 0;
    for a in answers {
        let a = a.unwrap();
        let answer = code(a.status, &a.body);
        match (answer.0, answer.1.as_str()) {
            (200, "accepted") => accepted += 1,
            (200, "duplicate") | (409, "in_progress") => {}
            _ => panic!("{answer:?}: {}", a.body),
        }
    }
    assert_eq!(accepted, 1);
    let counts = world.store.outbox_counts(&world.tenant).await.unwrap();
    assert_eq!(
        counts.pending + counts.in_flight + counts.done + counts.failed,
        1,
        "{counts:?}"
    );
    assert_eq!(
        world
            .sandbox
            .hubspot()
            .contacts_by_email("racer@push.example.net")
            .len(),
        1
    );
    server.abort();
    world.shutdown().await;
}
