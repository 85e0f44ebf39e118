//! Replay and forgery: signatures compared in constant time, stale and far-future timestamps
//! refused, one delivery id accepted once per tenant (through the engine and the SQLite
//! ledger), and a delivery for tenant A signed with tenant B's secret refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cativa_client::webhook::{
    CustomerId, EventType, SignatureVerifier, TenantRouter, WebhookError, WebhookReceiver, sign,
};
use chrono::{Duration, Utc};
use http::HeaderMap;
use http::request::Parts;
use secrecy::SecretString;
use sync_core::ports::Store;
use sync_core::{CativaUserId, CommunityEvent, DeliveryOutcome, Email, MemoryStore, TenantId};
use sync_engine::SyncEngine;
use sync_store::SqliteStore;

const NOW: i64 = 1_700_000_000;

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

fn cativa_headers(signature: &str, execution_id: &str) -> Parts {
    http::Request::post("/webhooks/cativa")
        .header("x-cativa-signature", signature)
        .header("x-cativa-execution-id", execution_id)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

/// The receiver's clock at Unix second `secs`.
fn at(secs: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap())
}

/// A GUID standing for a short name (Cativa's customer and user ids are GUIDs).
fn guid(name: &str) -> String {
    let h = name
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("{h:08x}-0000-4000-8000-000000000000")
}

fn user_created(customer: &str, user: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "CustomerId": guid(customer),
        "User": {"Id": guid(user), "Email": format!("{user}@example.com"), "FirstName": "A", "LastName": "B"}
    }))
    .unwrap()
}

/// Code review as a test: both verifiers compare MACs with `subtle`, never with `==`, and
/// check every secret without stopping at the first match.
#[test]
fn signature_checks_compare_in_constant_time() {
    let cativa = include_str!("../../crates/cativa-client/src/webhook/signature.rs");
    let hubspot = include_str!("../../crates/crm-hubspot/src/webhook/signature.rs");
    for (name, src) in [("cativa", cativa), ("hubspot", hubspot)] {
        assert!(src.contains("use subtle::ConstantTimeEq;"), "{name}");
        assert!(src.contains(".ct_eq("), "{name}");
        // No early-exit search over secrets (`any`/`find` would short-circuit).
        let code: String = src
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !code.contains(".any(|"),
            "{name}: a short-circuiting search"
        );
        for forbidden in ["expected ==", "== expected", "signature ==", "== signature"] {
            assert!(!code.contains(forbidden), "{name}: `{forbidden}`");
        }
    }
    // Behaviour: a signature matching only the *last* of several secrets verifies (every
    // secret is tried), and a one-bit change anywhere is refused.
    let body = br#"{"CustomerId":"c","User":{"Id":"u","Email":"u@example.com"}}"#;
    let v = SignatureVerifier::new(secret("whsec_a"))
        .unwrap()
        .with_secret(secret("whsec_b"))
        .unwrap()
        .with_secret(secret("whsec_c"))
        .unwrap();
    let good = sign(&secret("whsec_c"), NOW, body);
    v.verify(Some(&good), body, NOW).unwrap();
    let hex_at = good.find("v1=").unwrap() + 3;
    for i in hex_at..good.len() {
        let mut bad = good.clone().into_bytes();
        bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(
            v.verify(Some(&bad), body, NOW).unwrap_err(),
            WebhookError::BadSignature
        );
    }
}

#[test]
fn cativa_stale_and_far_future_timestamps_are_refused() {
    let s = secret("whsec_live");
    let r = WebhookReceiver::new(SignatureVerifier::new(s.clone()).unwrap())
        .with_event_type(EventType::UserCreated);
    let body = user_created("c-1", "u-1");
    for (signed_at, ok) in [
        (NOW, true),
        (NOW - 300, true),
        (NOW + 300, true),
        (NOW - 301, false),
        (NOW + 301, false),
        (NOW - 86_400, false),
        (NOW + 86_400 * 365, false),
        (0, false),
        (i64::MAX, false),
    ] {
        let h = cativa_headers(&sign(&s, signed_at, &body), "exec-1");
        let got = r.receive(&h, &body, at(NOW));
        match (ok, got) {
            (true, Ok(d)) => assert_eq!(d.signed_at, signed_at),
            (false, Err(WebhookError::StaleTimestamp { .. })) if signed_at < NOW => {}
            (false, Err(WebhookError::FutureTimestamp { .. })) if signed_at > NOW => {}
            (ok, got) => panic!("t={signed_at} expected ok={ok}, got {got:?}"),
        }
    }
}

#[test]
fn hubspot_v3_stale_and_far_future_timestamps_are_refused() {
    use crm_hubspot::webhook::{SignatureVerifier, v3_signature};
    let url = "https://hooks.example.com/webhooks/hubspot";
    let v = SignatureVerifier::new(secret("hs-client-secret")).with_public_url(url);
    let body =
        br#"[{"portalId":1,"occurredAt":1,"subscriptionType":"contact.creation","objectId":7}]"#;
    let now_ms = NOW * 1000;
    for (ts, ok) in [
        (now_ms, true),
        (now_ms - 299_000, true),
        (now_ms - 301_000, false),
        (now_ms + 301_000, false),
        (now_ms + 86_400_000, false),
    ] {
        let t = ts.to_string();
        let mut h = HeaderMap::new();
        h.insert(
            "x-hubspot-signature-v3",
            v3_signature("hs-client-secret", "POST", url, body, &t)
                .parse()
                .unwrap(),
        );
        h.insert("x-hubspot-request-timestamp", t.parse().unwrap());
        let got = v.verify("POST", None, &h, body, now_ms);
        match (ok, &got) {
            (true, Ok(_)) => {}
            (false, Err(crm_hubspot::webhook::WebhookError::StaleTimestamp { .. }))
                if ts < now_ms => {}
            (false, Err(crm_hubspot::webhook::WebhookError::FutureTimestamp { .. }))
                if ts > now_ms => {}
            _ => panic!("ts={ts} expected ok={ok}, got {got:?}"),
        }
        // Signed by another app's secret: refused even with a fresh timestamp.
        let mut forged = h.clone();
        forged.insert(
            "x-hubspot-signature-v3",
            v3_signature("other-app-secret", "POST", url, body, &t)
                .parse()
                .unwrap(),
        );
        if ok {
            assert!(matches!(
                v.verify("POST", None, &forged, body, now_ms),
                Err(crm_hubspot::webhook::WebhookError::BadSignature)
            ));
        }
    }
}

#[test]
fn a_delivery_for_tenant_a_signed_with_tenant_b_secret_is_refused() {
    let (a, b) = (secret("whsec_tenant_a"), secret("whsec_tenant_b"));
    let receiver = |s: &SecretString| {
        WebhookReceiver::new(SignatureVerifier::new(s.clone()).unwrap())
            .with_event_type(EventType::UserCreated)
    };
    let router = TenantRouter::new()
        .route(
            CustomerId::new(guid("cust-a")),
            TenantId::new("a"),
            receiver(&a),
        )
        .route(
            CustomerId::new(guid("cust-b")),
            TenantId::new("b"),
            receiver(&b),
        );
    let body_a = user_created("cust-a", "u-1");

    // Genuine: A's body, A's secret.
    let (tenant, _) = router
        .receive(
            &cativa_headers(&sign(&a, NOW, &body_a), "e-1"),
            &body_a,
            at(NOW),
        )
        .unwrap();
    assert_eq!(tenant, TenantId::new("a"));
    // Forged: A's body signed by B (B's secret leaked, or B attacks A).
    let e = router
        .receive(
            &cativa_headers(&sign(&b, NOW, &body_a), "e-2"),
            &body_a,
            at(NOW),
        )
        .unwrap_err();
    assert_eq!(e, WebhookError::BadSignature);
    assert_eq!(e.http_status(), 401);
    // An unknown customer is refused too, whatever the signature.
    let body_c = user_created("cust-c", "u-1");
    assert!(matches!(
        router.receive(
            &cativa_headers(&sign(&a, NOW, &body_c), "e-3"),
            &body_c,
            at(NOW)
        ),
        Err(WebhookError::UnknownCustomer(_))
    ));
}

fn badge_event(user: &str) -> CommunityEvent {
    CommunityEvent::BadgeReceived {
        user: CativaUserId::new(user),
        email: Some(Email::parse(&format!("{user}@example.com")).unwrap()),
        badge: "Premium".into(),
        at: Utc::now(),
    }
}

#[tokio::test]
async fn a_delivery_id_is_accepted_once_per_tenant_through_the_engine_and_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let engine = SyncEngine::builder(
        sync_core::SyncConfig::default().validate().unwrap(),
        store.clone(),
    )
    .build();
    let (a, b) = (TenantId::new("a"), TenantId::new("b"));

    let first = engine
        .handle_community_event(&a, "exec-42", badge_event("u1"))
        .await
        .unwrap();
    assert!(
        matches!(first, DeliveryOutcome::Accepted { .. }),
        "{first:?}"
    );
    // Cativa's retry of the same delivery: acknowledged, nothing done.
    for _ in 0..3 {
        let again = engine
            .handle_community_event(&a, "exec-42", badge_event("u1"))
            .await
            .unwrap();
        assert_eq!(again, DeliveryOutcome::Duplicate);
    }
    // The same id from another tenant is another delivery.
    let other = engine
        .handle_community_event(&b, "exec-42", badge_event("u1"))
        .await
        .unwrap();
    assert!(
        matches!(other, DeliveryOutcome::Accepted { .. }),
        "{other:?}"
    );

    // The ledger survives a restart: a new store on the same file still knows it.
    drop(engine);
    drop(store);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let engine = SyncEngine::builder(
        sync_core::SyncConfig::default().validate().unwrap(),
        store.clone(),
    )
    .build();
    assert_eq!(
        engine
            .handle_community_event(&a, "exec-42", badge_event("u1"))
            .await
            .unwrap(),
        DeliveryOutcome::Duplicate
    );

    // Concurrent retries racing: exactly one is accepted.
    let results = futures::future::join_all((0..16).map(|_| {
        let engine = engine.clone();
        let a = a.clone();
        async move {
            engine
                .handle_community_event(&a, "exec-race", badge_event("u2"))
                .await
                .unwrap()
        }
    }))
    .await;
    let accepted = results
        .iter()
        .filter(|r| matches!(r, DeliveryOutcome::Accepted { .. }))
        .count();
    assert_eq!(accepted, 1, "{results:?}");

    // The window: once purged (older than the retention), an id would be new again, so
    // the retention must exceed the sender's retry horizon. Inside it, still a duplicate.
    let purged = store
        .purge_deliveries(&a, Utc::now() - Duration::days(3), 1000)
        .await
        .unwrap();
    assert_eq!(purged, 0, "recent deliveries stay inside the window");
    assert!(store.has_delivery(&a, "exec-42").await.unwrap());
    let purged = store
        .purge_deliveries(&a, Utc::now() + Duration::seconds(1), 1000)
        .await
        .unwrap();
    assert_eq!(purged, 2);
    assert!(!store.has_delivery(&a, "exec-42").await.unwrap());
    assert!(
        store.has_delivery(&b, "exec-42").await.unwrap(),
        "purging one tenant leaves the others"
    );
}

#[tokio::test]
async fn the_memory_store_ledger_behaves_the_same() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine =
        SyncEngine::builder(sync_core::SyncConfig::default().validate().unwrap(), store).build();
    let a = TenantId::new("a");
    assert!(matches!(
        engine
            .handle_community_event(&a, "x", badge_event("u1"))
            .await
            .unwrap(),
        DeliveryOutcome::Accepted { .. }
    ));
    assert_eq!(
        engine
            .handle_community_event(&a, "x", badge_event("u1"))
            .await
            .unwrap(),
        DeliveryOutcome::Duplicate
    );
}
