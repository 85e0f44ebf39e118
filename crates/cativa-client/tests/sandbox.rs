//! The client, sinks and webhook receiver against the Cativa sandbox (sync-sandbox), an
//! independent implementation: its own HTTP server and its own HMAC signer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cativa_client::sink::ApiBadgeSink;
use cativa_client::webhook::{
    CativaEvent, EventType, SignatureVerifier, WebhookError, WebhookReceiver,
};
use cativa_client::{CativaClient, Error, NewUser};
use secrecy::{ExposeSecret, SecretString};
use sync_core::ports::{BadgeChange, BadgeOp, BadgeSink};
use sync_core::{BadgeId, CativaUserId, Email, IdempotencyKey, TenantId};
use sync_http::ErrorKind;
use sync_sandbox::cativa::{
    CativaConfig, CativaSandbox, DEFAULT_API_KEY, DEFAULT_BADGES, Effect, SignatureMode,
};

const PREMIUM: &str = DEFAULT_BADGES[0].0;

fn client(sandbox: &CativaSandbox) -> CativaClient {
    CativaClient::builder(SecretString::from(DEFAULT_API_KEY))
        .base_url(sandbox.base_url())
        .build()
        .unwrap()
}

#[tokio::test]
async fn me_and_admin_lookup_against_the_sandbox() {
    let sandbox = CativaSandbox::start(CativaConfig::default()).await.unwrap();
    let c = client(&sandbox);
    let me = c.me().await.unwrap();
    assert_eq!(me.customer_id.as_str(), sandbox.customer_id());

    let jane = sandbox.sign_up("jane@example.com", "Jane", "Doe");
    let email = Email::parse("Jane@Example.com").unwrap();
    assert!(matches!(
        c.user_by_email(&email).await,
        Err(Error::AdminLookupForbidden { .. })
    ));
    sandbox.allow_admin_lookup(true);
    let found = c.user_by_email(&email).await.unwrap().unwrap();
    assert_eq!(found.id.as_str(), jane.id);
    assert!(
        c.user_by_email(&Email::parse("ghost@example.com").unwrap())
            .await
            .unwrap()
            .is_none()
    );

    let bad = CativaClient::builder(SecretString::from("wrong-key"))
        .base_url(sandbox.base_url())
        .build()
        .unwrap();
    assert_eq!(
        bad.me().await.unwrap_err().http().unwrap().kind(),
        ErrorKind::Auth
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn badge_sink_has_one_effect_per_key() {
    let sandbox = CativaSandbox::start(CativaConfig::default()).await.unwrap();
    let jane = sandbox.sign_up("jane@example.com", "Jane", "Doe");
    let tenant = TenantId::new("t1");
    let sink = ApiBadgeSink::new(tenant.clone(), client(&sandbox));
    let change = |op| {
        BadgeChange::new(
            CativaUserId::new(jane.id.clone()),
            Email::parse("jane@example.com").unwrap(),
            BadgeId::new(PREMIUM),
            op,
            IdempotencyKey::derive(&["t1", &format!("{op:?}"), &jane.id, PREMIUM]),
        )
    };
    let assign = change(BadgeOp::Assign);
    // Applied twice (a retried run): one grant.
    for _ in 0..2 {
        let r = sink
            .apply_badges(&tenant, std::slice::from_ref(&assign))
            .await
            .unwrap();
        assert!(r[0].is_ok(), "{r:?}");
    }
    let grants = sandbox
        .effects()
        .into_iter()
        .filter(|e| matches!(e, Effect::BadgeGranted { .. }))
        .count();
    assert_eq!(grants, 1);
    assert!(sandbox.user(&jane.id).unwrap().has_badge(PREMIUM));
    assert!(
        sandbox
            .idempotency_keys_seen()
            .contains(&assign.key.as_str().to_owned())
    );

    let r = sink
        .apply_badges(&tenant, &[change(BadgeOp::Remove)])
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    assert!(!sandbox.user(&jane.id).unwrap().has_badge(PREMIUM));

    // An unknown user is a per-item NotFound, not a missing endpoint.
    let ghost = BadgeChange::new(
        CativaUserId::new("00000000-0000-4000-8000-00000000dead"),
        Email::parse("ghost@example.com").unwrap(),
        BadgeId::new(PREMIUM),
        BadgeOp::Assign,
        IdempotencyKey::derive(&["ghost"]),
    );
    let r = sink.apply_badges(&tenant, &[ghost]).await.unwrap();
    let Err(sync_core::Error::Remote(e)) = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(e.kind, sync_core::RemoteErrorKind::NotFound);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn create_user_then_conflict() {
    let sandbox = CativaSandbox::start(CativaConfig::default()).await.unwrap();
    let c = client(&sandbox);
    let new = NewUser::new(Email::parse("new@example.com").unwrap())
        .with_names(Some("New".into()), Some("User".into()));
    let created = c.create_user(&new, "create-1").await.unwrap();
    assert_eq!(created.email.as_str(), "new@example.com");
    assert!(sandbox.user(created.id.as_str()).is_some());
    // Same key, same request: replayed, no second user.
    let again = c.create_user(&new, "create-1").await.unwrap();
    assert_eq!(again.id, created.id);
    let e = c.create_user(&new, "create-2").await.unwrap_err();
    assert_eq!(e.http().unwrap().kind(), ErrorKind::Conflict);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn sandbox_signed_deliveries_verify_here() {
    let sandbox = CativaSandbox::start(CativaConfig::default()).await.unwrap();
    let jane = sandbox.sign_up("jane@example.com", "Jane", "Doe");
    let secret = sandbox.webhook_secret().expose_secret().to_owned();
    let receiver =
        WebhookReceiver::new(SignatureVerifier::new(SecretString::from(secret.clone())).unwrap())
            .with_event_type(EventType::UserCreated);
    let delivery = sandbox.user_created_delivery(&jane.id).unwrap();
    let now = delivery.timestamp;
    let receive = |mode: SignatureMode| {
        let (header, body) = delivery.signed(&secret, &mode);
        receiver.receive_parts(
            header.as_deref(),
            Some(&delivery.execution_id),
            Some(&delivery.automation_id),
            body.as_bytes(),
            now,
        )
    };
    let d = receive(SignatureMode::Valid).unwrap();
    assert_eq!(d.execution_id.as_str(), delivery.execution_id);
    assert_eq!(d.customer_id().unwrap().as_str(), sandbox.customer_id());
    let CativaEvent::UserCreated(e) = &d.event else {
        panic!("{:?}", d.event)
    };
    assert_eq!(e.user.id.as_str(), jane.id);
    assert_eq!(e.user.email.as_str(), "jane@example.com");
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);

    assert_eq!(
        receive(SignatureMode::WrongSecret).unwrap_err(),
        WebhookError::BadSignature
    );
    assert_eq!(
        receive(SignatureMode::TamperedBody).unwrap_err(),
        WebhookError::BadSignature
    );
    assert!(matches!(
        receive(SignatureMode::Stale(std::time::Duration::from_secs(900))),
        Err(WebhookError::StaleTimestamp { .. })
    ));
    assert!(matches!(
        receive(SignatureMode::Missing),
        Err(WebhookError::MissingHeader(_))
    ));
    assert!(matches!(
        receive(SignatureMode::Garbage),
        Err(WebhookError::MalformedHeader(_))
    ));

    let badge = sandbox
        .user_received_badge_delivery(&jane.id, PREMIUM)
        .unwrap();
    let (header, body) = badge.signed(&secret, &SignatureMode::Valid);
    let d =
        WebhookReceiver::new(SignatureVerifier::new(SecretString::from(secret.clone())).unwrap())
            .with_event_type(EventType::UserReceivedBadge)
            .receive_parts(
                header.as_deref(),
                Some(&badge.execution_id),
                None,
                body.as_bytes(),
                badge.timestamp,
            )
            .unwrap();
    let CativaEvent::UserReceivedBadge(e) = &d.event else {
        panic!("{:?}", d.event)
    };
    assert!(
        e.badges().iter().any(|b| b.as_str() == PREMIUM),
        "{:?}",
        e.badges()
    );
    // Exactly the documented shape: the nested User, no invented fields.
    let v: serde_json::Value = serde_json::from_str(&badge.body).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["CustomerId", "User"]);
    sandbox.shutdown().await;
}
