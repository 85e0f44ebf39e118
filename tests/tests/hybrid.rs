//! Hybrid: HubSpot webhooks carry tag changes to the service's `/webhooks/hubspot` route, but 20% of them are lost on
//! the way; the webhooks alone leave the badges wrong, and a full reconcile afterwards makes
//! the final state exactly what the rule implies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cativa_client::webhook::{SignatureVerifier as CativaVerifier, WebhookReceiver};
use cativa_crm_sync_tests::{TAG, World, answer_code, assert_same_users, unlimited_sandbox};
use crm_hubspot::webhook::{SignatureVerifier, WebhookReceiver as HubSpotReceiver};
use secrecy::SecretString;
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::hubspot::DEFAULT_CLIENT_SECRET;
use sync_service::Service;

/// xorshift64*: a seeded, dependency-free choice of which webhooks get lost.
struct Lossy(u64);

impl Lossy {
    fn drops(&mut self) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % 100) < 20
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_webhooks_are_repaired_by_the_reconcile() {
    let data = DataGenConfig::default()
        .with_contacts(2_000)
        .with_seed(40)
        .with_duplicate_email_share(0.0);
    let world = World::start_with(unlimited_sandbox(), data).await.unwrap();
    world.record_users().await.unwrap();
    let engine = world.engine().unwrap();
    let baseline = engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!(baseline.failed, 0, "{baseline}");
    assert_same_users(
        "baseline",
        &world.premium_holders(),
        &world.expected_premium(),
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/hubspot", listener.local_addr().unwrap());
    let service = Service::builder(engine.clone(), world.tenant.clone())
        .cativa(WebhookReceiver::new(
            CativaVerifier::new(world.sandbox.cativa().webhook_secret().clone()).unwrap(),
        ))
        .hubspot(
            HubSpotReceiver::new(
                SignatureVerifier::new(SecretString::from(DEFAULT_CLIENT_SECRET))
                    .with_public_url(&url),
            ),
            world.source(),
        )
        .build();
    let app = sync_service::router(&service);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    // 300 tag changes on community members' contacts: 150 added, 150 removed.
    let hubspot = world.sandbox.hubspot();
    let _ = hubspot.take_webhook_events();
    let users = world.users_by_email();
    let tags_property = hubspot.tags_property().to_owned();
    let (mut added, mut removed) = (0, 0);
    for c in hubspot.contacts() {
        let member = c
            .email()
            .is_some_and(|e| users.contains_key(&e.to_lowercase()));
        if !member {
            continue;
        }
        let has = c
            .property(&tags_property)
            .is_some_and(|t| t.split(';').any(|x| x == TAG));
        if has && removed < 150 {
            hubspot.remove_tag(c.id, TAG).unwrap();
            removed += 1;
        } else if !has && added < 150 {
            hubspot.add_tag(c.id, TAG).unwrap();
            added += 1;
        }
    }
    assert_eq!((added, removed), (150, 150));

    let events = hubspot.take_webhook_events();
    assert_eq!(events.len(), 300, "one propertyChange per tag change");
    let mut lossy = Lossy(40);
    let kept: Vec<_> = events.into_iter().filter(|_| !lossy.drops()).collect();
    let lost = 300 - kept.len();
    assert!((30..=90).contains(&lost), "about 20% lost: {lost}");
    let answers = hubspot
        .deliver_webhooks(&url, DEFAULT_CLIENT_SECRET, &kept, true)
        .await
        .unwrap();
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(
            answer_code(&a.body).as_deref(),
            Some("accepted"),
            "{}",
            a.body
        );
    }

    let expected = world.expected_premium();
    let holders = world.premium_holders();
    let wrong = holders.symmetric_difference(&expected).count();
    assert_eq!(
        wrong, lost,
        "exactly the users whose webhook was lost are still wrong"
    );

    let reconcile = engine.run_full_reconcile(&world.tenant).await.unwrap();
    assert_eq!(reconcile.failed, 0, "{reconcile}");
    assert_same_users("after the reconcile", &world.premium_holders(), &expected);
    server.abort();
    world.shutdown().await;
}
