//! Many tenants: one service and one engine serve two tenants, each on its own sandbox (its
//! own HubSpot portal and Cativa community). Signed Cativa deliveries of both `CustomerId`s
//! and signed HubSpot webhooks of both portals arrive interleaved; every effect lands in
//! the tenant's own portal or community and nothing in the other. A third portal and a third
//! `CustomerId`, connected to no tenant, are refused with 422 and change nothing. And the
//! service's own background work (no drain call in the test) applies a non-home tenant's
//! deliveries, while `GET /status` lists every tenant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cativa_client::sink::ApiBadgeSink;
use cativa_client::webhook::{SignatureVerifier as CativaVerifier, WebhookReceiver};
use cativa_crm_sync_tests::{
    PREMIUM, TAG, answer_code, cativa_client, config, fast_options, hubspot_client, hubspot_source,
    unlimited_sandbox,
};
use crm_hubspot::webhook::{SignatureVerifier, WebhookReceiver as HubSpotReceiver};
use crm_hubspot::{HubSpotSink, SinkConfig};
use secrecy::SecretString;
use sync_core::ports::{MemoryConnections, Store, TenantParts};
use sync_core::{CrmKind, Email, TenantId};
use sync_engine::SyncEngine;
use sync_sandbox::SandboxServer;
use sync_sandbox::cativa::{CativaUser, SignatureMode};
use sync_sandbox::hubspot::DEFAULT_CLIENT_SECRET;
use sync_service::{Service, ServiceOptions};

const USERS: usize = 4;
/// The status routes' bearer token.
const STATUS_TOKEN: &str = "status-token-for-tests";

/// One tenant's sandbox (its portal and its community) and the users who signed up there.
struct Side {
    tenant: TenantId,
    sandbox: SandboxServer,
    users: Vec<CativaUser>,
}

async fn side(name: &str, portal: u64, customer: &str) -> Side {
    let mut c = unlimited_sandbox();
    c.hubspot.portal_id = portal;
    c.cativa.customer_id = customer.to_owned();
    let sandbox = SandboxServer::start(c).await.unwrap();
    let users = (0..USERS)
        .map(|i| {
            sandbox.cativa().sign_up(
                &format!("{name}{i}@tenants.example.org"),
                name,
                &i.to_string(),
            )
        })
        .collect();
    Side {
        tenant: TenantId::new(name),
        sandbox,
        users,
    }
}

/// The tenant's parts: its portal's source and sink, its community's badge sink.
async fn parts(side: &Side) -> TenantParts {
    let hubspot = hubspot_client(side.sandbox.hubspot().base_url()).unwrap();
    let sink = HubSpotSink::new(hubspot.clone(), SinkConfig::default());
    sink.ensure_sdk_properties("contactinformation", &[])
        .await
        .unwrap();
    let cativa = cativa_client(side.sandbox.cativa().base_url()).unwrap();
    TenantParts::new()
        .with_source(Arc::new(hubspot_source(
            hubspot,
            side.sandbox.hubspot().tags_property(),
        )))
        .with_crm_sink(Arc::new(sink))
        .with_badge_sink(Arc::new(ApiBadgeSink::new(side.tenant.clone(), cativa)))
}

fn emails(side: &Side) -> Vec<String> {
    let mut all: Vec<String> = side
        .sandbox
        .hubspot()
        .contacts()
        .iter()
        .filter_map(|c| c.email().map(str::to_lowercase))
        .collect();
    all.sort();
    all
}

fn premium_holders(side: &Side) -> Vec<String> {
    side.sandbox
        .cativa()
        .badges_by_user()
        .into_iter()
        .filter(|(_, grants)| grants.iter().any(|g| g.badge_id == PREMIUM))
        .map(|(user, _)| user)
        .collect()
}

fn assert_answer(status: u16, body: &str, want: (u16, &str), what: &str) {
    assert_eq!(
        (status, answer_code(body).as_deref()),
        (want.0, Some(want.1)),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossed_traffic_of_two_tenants_lands_in_each_tenants_own_accounts() {
    let alpha = side("alpha", 1_001, "5a4d0b0c-0000-4000-8000-00000000a1fa").await;
    let beta = side("beta", 2_002, "5a4d0b0c-0000-4000-8000-00000000b37a").await;
    let stranger = side("stranger", 3_003, "5a4d0b0c-0000-4000-8000-0000000057a9").await;

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = sync_store::connect(&dir.path().join("sync.db").to_string_lossy())
        .await
        .unwrap();
    let registry = Arc::new(MemoryConnections::new());
    for s in [&alpha, &beta] {
        registry.insert(s.tenant.clone(), parts(s).await);
        let portal = s.sandbox.hubspot().portal_id().to_string();
        registry.link_account(s.tenant.clone(), CrmKind::Hubspot, portal);
        registry.link_customer(s.tenant.clone(), s.sandbox.cativa().customer_id());
    }
    let engine = SyncEngine::builder(config().unwrap(), store.clone())
        .connections(registry)
        .options(fast_options())
        .build();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hubspot_url = format!("{base}/webhooks/hubspot");
    // Every sandbox signs with the same app secret and webhook secret: one app, one
    // receiver, many installs.
    let service = Service::multi_tenant_builder(engine, alpha.tenant.clone())
        .cativa(WebhookReceiver::new(
            CativaVerifier::new(alpha.sandbox.cativa().webhook_secret().clone()).unwrap(),
        ))
        .hubspot_receiver(HubSpotReceiver::new(
            SignatureVerifier::new(SecretString::from(DEFAULT_CLIENT_SECRET))
                .with_public_url(&hubspot_url),
        ))
        .build();
    let app = sync_service::router(&service);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let cativa_url = format!("{base}/webhooks/cativa/user_created");

    // Sign-ups in both communities, interleaved: each provisions a contact in its own portal.
    for i in 0..USERS {
        for s in [&alpha, &beta] {
            let delivery = s
                .sandbox
                .cativa()
                .user_created_delivery(&s.users[i].id)
                .unwrap();
            let out = s
                .sandbox
                .cativa()
                .deliver(&cativa_url, &delivery, SignatureMode::Valid)
                .await
                .unwrap();
            assert_answer(out.status, &out.body, (200, "accepted"), "sign-up");
        }
    }
    for s in [&alpha, &beta] {
        let mut want: Vec<String> = s.users.iter().map(|u| u.email.to_lowercase()).collect();
        want.sort();
        assert_eq!(
            emails(s),
            want,
            "{}'s portal holds exactly its own members",
            s.tenant
        );
    }

    // Tags added in both portals, delivered one event at a time, interleaved: each grants
    // Premium in its own community.
    let mut events = Vec::new();
    for s in [&alpha, &beta] {
        let hubspot = s.sandbox.hubspot();
        let _ = hubspot.take_webhook_events();
        for c in hubspot.contacts() {
            hubspot.add_tag(c.id, TAG).unwrap();
        }
        events.push(hubspot.take_webhook_events());
    }
    assert_eq!(events[0].len(), USERS);
    assert_eq!(events[1].len(), USERS);
    for i in 0..USERS {
        for (s, evs) in [(&alpha, &events[0]), (&beta, &events[1])] {
            let answers = s
                .sandbox
                .hubspot()
                .deliver_webhooks(&hubspot_url, DEFAULT_CLIENT_SECRET, &evs[i..=i], true)
                .await
                .unwrap();
            assert_answer(
                answers[0].status,
                &answers[0].body,
                (200, "accepted"),
                "tag",
            );
        }
    }
    for s in [&alpha, &beta] {
        let mut want: Vec<String> = s.users.iter().map(|u| u.id.clone()).collect();
        want.sort();
        let mut got = premium_holders(s);
        got.sort();
        assert_eq!(
            got, want,
            "{}'s members hold Premium in its own community",
            s.tenant
        );
    }
    // Each tenant's mapping table knows only its own members.
    for (s, other) in [(&alpha, &beta), (&beta, &alpha)] {
        for u in &other.users {
            let email = Email::parse(&u.email).unwrap();
            assert!(
                store
                    .mapping_by_email(&s.tenant, &email)
                    .await
                    .unwrap()
                    .is_none(),
                "{} knows {}'s member {}",
                s.tenant,
                other.tenant,
                u.email
            );
        }
    }

    // A portal and a community connected to no tenant: refused, nothing changes.
    let before = (
        emails(&alpha),
        emails(&beta),
        premium_holders(&alpha),
        premium_holders(&beta),
    );
    let delivery = stranger
        .sandbox
        .cativa()
        .user_created_delivery(&stranger.users[0].id)
        .unwrap();
    let out = stranger
        .sandbox
        .cativa()
        .deliver(&cativa_url, &delivery, SignatureMode::Valid)
        .await
        .unwrap();
    assert_answer(
        out.status,
        &out.body,
        (422, "unknown_tenant"),
        "unknown CustomerId",
    );
    assert!(
        out.body.contains(stranger.sandbox.cativa().customer_id()),
        "{}",
        out.body
    );
    let answers = stranger
        .sandbox
        .hubspot()
        .deliver_webhooks(&hubspot_url, DEFAULT_CLIENT_SECRET, &events[0][..1], true)
        .await
        .unwrap();
    assert_answer(
        answers[0].status,
        &answers[0].body,
        (422, "unknown_tenant"),
        "unknown portal",
    );
    assert!(answers[0].body.contains("3003"), "{}", answers[0].body);
    let after = (
        emails(&alpha),
        emails(&beta),
        premium_holders(&alpha),
        premium_holders(&beta),
    );
    assert_eq!(before, after, "a refused delivery changes nothing");
    let outsider = Email::parse(&stranger.users[0].email).unwrap();
    for s in [&alpha, &beta] {
        assert!(
            store
                .mapping_by_email(&s.tenant, &outsider)
                .await
                .unwrap()
                .is_none(),
            "the refused delivery reached {}'s mapping table",
            s.tenant
        );
    }
    server.abort();
}

/// Polls `check` every 25 ms until it holds, for at most 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_drains_and_reports_every_tenant_not_only_its_home() {
    let alpha = side("alpha", 1_001, "5a4d0b0c-0000-4000-8000-00000000a1fa").await;
    let beta = side("beta", 2_002, "5a4d0b0c-0000-4000-8000-00000000b37a").await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = sync_store::connect(&dir.path().join("sync.db").to_string_lossy())
        .await
        .unwrap();
    let registry = Arc::new(MemoryConnections::new());
    for s in [&alpha, &beta] {
        registry.insert(s.tenant.clone(), parts(s).await);
        let portal = s.sandbox.hubspot().portal_id().to_string();
        registry.link_account(s.tenant.clone(), CrmKind::Hubspot, portal);
        registry.link_customer(s.tenant.clone(), s.sandbox.cativa().customer_id());
    }
    // Deliveries only enqueue: whatever reaches a sandbox got there through the service's
    // own drainer.
    let mut engine_options = fast_options();
    engine_options.apply = false;
    let engine = SyncEngine::builder(config().unwrap(), store.clone())
        .connections(registry)
        .options(engine_options)
        .build();
    let mut options = ServiceOptions::default();
    options.schedule.delta_interval = None;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hubspot_url = format!("{base}/webhooks/hubspot");
    let service = Service::multi_tenant_builder(engine, alpha.tenant.clone())
        .cativa(WebhookReceiver::new(
            CativaVerifier::new(alpha.sandbox.cativa().webhook_secret().clone()).unwrap(),
        ))
        .hubspot_receiver(HubSpotReceiver::new(
            SignatureVerifier::new(SecretString::from(DEFAULT_CLIENT_SECRET))
                .with_public_url(&hubspot_url),
        ))
        .status_token(SecretString::from(STATUS_TOKEN))
        .options(options)
        .build();
    assert_eq!(
        service.tenants(),
        vec![alpha.tenant.clone(), beta.tenant.clone()]
    );
    let app = sync_service::router(&service);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let background = service.spawn_background();

    // A sign-up in beta's community (beta is not the home tenant): its contact appears in
    // beta's portal.
    let user = &beta.users[0];
    let delivery = beta
        .sandbox
        .cativa()
        .user_created_delivery(&user.id)
        .unwrap();
    let out = beta
        .sandbox
        .cativa()
        .deliver(
            &format!("{base}/webhooks/cativa/user_created"),
            &delivery,
            SignatureMode::Valid,
        )
        .await
        .unwrap();
    assert_answer(out.status, &out.body, (200, "accepted"), "beta's sign-up");
    let email = user.email.to_lowercase();
    eventually("beta's contact provisioned by the drainer", || {
        emails(&beta) == [email.clone()]
    })
    .await;

    // The tag added in beta's portal: Premium granted in beta's community.
    let hubspot = beta.sandbox.hubspot();
    let _ = hubspot.take_webhook_events();
    let contact = hubspot.contacts()[0].id;
    hubspot.add_tag(contact, TAG).unwrap();
    let events = hubspot.take_webhook_events();
    let answers = hubspot
        .deliver_webhooks(&hubspot_url, DEFAULT_CLIENT_SECRET, &events, true)
        .await
        .unwrap();
    assert_answer(
        answers[0].status,
        &answers[0].body,
        (200, "accepted"),
        "beta's tag",
    );
    eventually("beta's Premium granted by the drainer", || {
        premium_holders(&beta) == [user.id.clone()]
    })
    .await;
    assert!(emails(&alpha).is_empty(), "nothing reached alpha's portal");
    assert!(
        premium_holders(&alpha).is_empty(),
        "nothing reached alpha's community"
    );

    // The status routes list and answer for both tenants, and not for a stranger.
    let http = reqwest::Client::new();
    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .bearer_auth(STATUS_TOKEN)
            .send()
    };
    let all: serde_json::Value = get("/status".into()).await.unwrap().json().await.unwrap();
    let listed: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["alpha", "beta"], "{all}");
    let one = get("/status/beta".into()).await.unwrap();
    assert_eq!(one.status(), 200);
    let one: serde_json::Value = one.json().await.unwrap();
    assert_eq!(one["tenant"], "beta", "{one}");
    assert_eq!(get("/status/stranger".into()).await.unwrap().status(), 404);

    background.shutdown().await;
    server.abort();
}
