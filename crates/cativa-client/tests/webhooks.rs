//! Receiving Cativa webhooks end to end: headers, signature, size limit, typed events,
//! tenant routing and duplicate recognition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cativa_client::webhook::{
    CativaEvent, CustomerId, EventType, SignatureVerifier, TenantRouter, WebhookError,
    WebhookReceiver, sign,
};
use chrono::Utc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::request::Parts;
use secrecy::SecretString;
use serde_json::json;
use sync_core::ports::DeliveryLedger;
use sync_core::{MemoryStore, TenantId};

const NOW: i64 = 1_763_900_000;
const CUSTOMER: &str = "8c1f0b7e-1111-2222-3333-444455556666";
const USER: &str = "0b7e8c1f-aaaa-4bbb-8ccc-000000000001";

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

fn body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "CustomerId": CUSTOMER,
        "UserId": USER,
        "Email": "jane@example.com",
        "FirstName": "Jane",
        "User": {"Id": USER, "Email": "jane@example.com", "FirstName": "Jane", "BadgeId": null, "Badges": []}
    }))
    .unwrap()
}

/// `secs` Unix seconds as the receiver's clock.
fn at(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

/// A request carrying `headers` (the receiver reads only the headers).
fn req(headers: HeaderMap) -> Parts {
    let (mut parts, ()) = http::Request::post("/webhooks/cativa")
        .body(())
        .unwrap()
        .into_parts();
    parts.headers = headers;
    parts
}

fn headers(signature: Option<&str>, exec: Option<&str>) -> Parts {
    req(header_map(signature, exec))
}

fn header_map(signature: Option<&str>, exec: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(s) = signature {
        h.insert("x-cativa-signature", s.parse().unwrap());
    }
    if let Some(e) = exec {
        h.insert("x-cativa-execution-id", e.parse().unwrap());
    }
    h.insert("x-cativa-automation-id", "auto-7".parse().unwrap());
    h
}

fn receiver() -> WebhookReceiver {
    WebhookReceiver::new(SignatureVerifier::new(secret("whsec_live")).unwrap())
        .with_event_type(EventType::UserCreated)
}

#[test]
fn valid_delivery_is_parsed_with_ids() {
    let b = body();
    let sig = sign(&secret("whsec_live"), NOW, &b);
    let d = receiver()
        .receive(&headers(Some(&sig), Some("exec-1")), &b, at(NOW))
        .unwrap();
    assert_eq!(d.execution_id.as_str(), "exec-1");
    assert_eq!(d.automation_id.as_ref().unwrap().as_str(), "auto-7");
    assert_eq!(d.signed_at, NOW);
    assert_eq!(d.customer_id(), Some(CustomerId::new(CUSTOMER)));
    let CativaEvent::UserCreated(e) = d.event else {
        panic!("wrong variant")
    };
    assert_eq!(e.user.email.as_str(), "jane@example.com");
}

#[test]
fn tampered_body_wrong_secret_stale_and_future_are_refused() {
    let b = body();
    let sig = sign(&secret("whsec_live"), NOW, &b);
    let h = headers(Some(&sig), Some("exec-1"));
    let mut tampered = b.clone();
    tampered[10] ^= 1;
    let r = receiver();
    assert_eq!(
        r.receive(&h, &tampered, at(NOW)).unwrap_err(),
        WebhookError::BadSignature
    );
    let wrong = sign(&secret("whsec_other"), NOW, &b);
    assert_eq!(
        r.receive(&headers(Some(&wrong), Some("e")), &b, at(NOW))
            .unwrap_err(),
        WebhookError::BadSignature
    );
    assert!(matches!(
        r.receive(&h, &b, at(NOW + 301)),
        Err(WebhookError::StaleTimestamp { .. })
    ));
    assert!(matches!(
        r.receive(&h, &b, at(NOW - 301)),
        Err(WebhookError::FutureTimestamp { .. })
    ));
    for e in [
        r.receive(&h, &tampered, at(NOW)).unwrap_err(),
        r.receive(&h, &b, at(NOW + 301)).unwrap_err(),
        r.receive(&h, &b, at(NOW - 301)).unwrap_err(),
    ] {
        assert_eq!(e.http_status(), 401);
    }
}

#[test]
fn missing_and_garbage_headers_are_refused() {
    let b = body();
    let r = receiver();
    assert_eq!(
        r.receive(&headers(None, Some("e")), &b, at(NOW))
            .unwrap_err(),
        WebhookError::MissingHeader("X-Cativa-Signature")
    );
    assert_eq!(
        r.receive(&headers(None, Some("e")), &b, at(NOW))
            .unwrap_err()
            .http_status(),
        401
    );
    assert!(matches!(
        r.receive(&headers(Some("complete garbage"), Some("e")), &b, at(NOW)),
        Err(WebhookError::MalformedHeader(_))
    ));
    let sig = sign(&secret("whsec_live"), NOW, &b);
    let err = r
        .receive(&headers(Some(&sig), None), &b, at(NOW))
        .unwrap_err();
    assert_eq!(err, WebhookError::MissingHeader("X-Cativa-Execution-Id"));
    assert_eq!(err.http_status(), 400);
    assert!(matches!(
        r.receive(&headers(Some(&sig), Some("  ")), &b, at(NOW)),
        Err(WebhookError::MissingHeader(_))
    ));
}

#[test]
fn two_v1_values_and_two_secrets() {
    let b = body();
    let good = sign(&secret("whsec_live"), NOW, &b);
    let good_hex = good.split("v1=").nth(1).unwrap();
    let old = sign(&secret("whsec_retired"), NOW, &b);
    let old_hex = old.split("v1=").nth(1).unwrap();
    let both = format!("t={NOW},v1={old_hex},v1={good_hex}");
    receiver()
        .receive(&headers(Some(&both), Some("e")), &b, at(NOW))
        .unwrap();

    // Our side rotates: the receiver holds the new and the old secret.
    let rotating = WebhookReceiver::new(
        SignatureVerifier::new(secret("whsec_next"))
            .unwrap()
            .with_secret(secret("whsec_live"))
            .unwrap(),
    )
    .with_event_type(EventType::UserCreated);
    rotating
        .receive(&headers(Some(&good), Some("e")), &b, at(NOW))
        .unwrap();
    let next = sign(&secret("whsec_next"), NOW, &b);
    rotating
        .receive(&headers(Some(&next), Some("e")), &b, at(NOW))
        .unwrap();
}

#[test]
fn oversized_bodies_are_refused_before_parsing() {
    let r = receiver().with_max_body_bytes(64);
    let big = vec![b'{'; 65]; // not even JSON: the size check comes first
    let sig = sign(&secret("whsec_live"), NOW, &big);
    let e = r
        .receive(&headers(Some(&sig), Some("e")), &big, at(NOW))
        .unwrap_err();
    assert_eq!(
        e,
        WebhookError::BodyTooLarge {
            size: 65,
            limit: 64
        }
    );
    assert_eq!(e.http_status(), 413);
    // Default limit: 1 MiB.
    let huge = vec![b' '; 1024 * 1024 + 1];
    assert!(matches!(
        receiver().receive(&headers(None, None), &huge, at(NOW)),
        Err(WebhookError::BodyTooLarge { .. })
    ));
}

#[test]
fn malformed_signed_body_names_the_field_and_is_a_400() {
    let b = serde_json::to_vec(
        &json!({"CustomerId": CUSTOMER, "User": {"Id": USER, "Email": "not-an-email"}}),
    )
    .unwrap();
    let sig = sign(&secret("whsec_live"), NOW, &b);
    let e = receiver()
        .receive(&headers(Some(&sig), Some("e")), &b, at(NOW))
        .unwrap_err();
    assert!(
        matches!(&e, WebhookError::MalformedBody { field, .. } if field == "User.Email"),
        "{e:?}"
    );
    assert_eq!(e.http_status(), 400);
}

#[test]
fn the_documented_payload_without_a_configured_type_is_422_never_accepted() {
    let b = body();
    let sig = sign(&secret("whsec_live"), NOW, &b);
    let plain = WebhookReceiver::new(SignatureVerifier::new(secret("whsec_live")).unwrap());
    let err = plain
        .receive(&headers(Some(&sig), Some("e")), &b, at(NOW))
        .unwrap_err();
    assert_eq!(
        err,
        WebhookError::UndeterminedEventType {
            automation_id: Some("auto-7".to_owned())
        }
    );
    assert_eq!(err.http_status(), 422);
    assert!(err.to_string().contains("Automation-Id"), "{err}");

    // The listener's automation id maps it.
    let mapped = plain.with_automation("auto-7", EventType::UserCreated);
    let d = mapped
        .receive(&headers(Some(&sig), Some("e")), &b, at(NOW))
        .unwrap();
    assert_eq!(d.event.event_type(), EventType::UserCreated);
    // The route names it.
    let d = WebhookReceiver::new(SignatureVerifier::new(secret("whsec_live")).unwrap())
        .receive_event(
            EventType::UserCreated,
            &headers(Some(&sig), Some("e")),
            &b,
            at(NOW),
        )
        .unwrap();
    assert_eq!(d.event.event_type(), EventType::UserCreated);
    // A route and a listener mapping that disagree.
    let err = mapped
        .receive_event(
            EventType::UserReceivedBadge,
            &headers(Some(&sig), Some("e")),
            &b,
            at(NOW),
        )
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::EventTypeMismatch { .. }),
        "{err:?}"
    );
    assert_eq!(err.http_status(), 422);

    // Any JSON object is not an event.
    let hello = br#"{"hello":"world"}"#;
    let sig = sign(&secret("whsec_live"), NOW, hello);
    let err = receiver()
        .receive(&headers(Some(&sig), Some("e")), hello, at(NOW))
        .unwrap_err();
    assert_eq!(err.http_status(), 422, "{err:?}");
}

#[test]
fn repeated_cativa_headers_are_refused() {
    let b = body();
    let good = sign(&secret("whsec_live"), NOW, &b);
    let forged = sign(&secret("whsec_forged"), NOW, &b);
    for name in [
        "x-cativa-signature",
        "x-cativa-execution-id",
        "x-cativa-automation-id",
    ] {
        let mut h = headers(Some(&good), Some("e"));
        let value = h
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap();
        // A second copy; for the signature, one that does not verify.
        let second = if name == "x-cativa-signature" {
            forged.clone()
        } else {
            value
        };
        h.headers.append(name, second.parse().unwrap());
        let err = receiver().receive(&h, &b, at(NOW)).unwrap_err();
        assert!(
            matches!(err, WebhookError::RepeatedHeader(_)),
            "{name}: {err:?}"
        );
        assert_eq!(err.http_status(), 400);
    }
}

#[test]
fn oversized_or_odd_header_ids_are_refused() {
    let b = body();
    let sig = sign(&secret("whsec_live"), NOW, &b);
    let long = "e".repeat(60 * 1024);
    for (exec, automation) in [
        (long.as_str(), "auto-7"),
        ("e", long.as_str()),
        (&"x".repeat(129)[..], "auto-7"),
    ] {
        let mut h = headers(Some(&sig), Some(exec));
        h.headers
            .insert("x-cativa-automation-id", automation.parse().unwrap());
        let err = receiver().receive(&h, &b, at(NOW)).unwrap_err();
        assert!(matches!(err, WebhookError::InvalidHeader { .. }), "{err:?}");
        assert_eq!(err.http_status(), 400);
    }
    let exactly = "x".repeat(cativa_client::webhook::MAX_ID_LEN);
    receiver()
        .receive(&headers(Some(&sig), Some(&exactly)), &b, at(NOW))
        .unwrap();
    let err = receiver()
        .receive_parts(Some(&sig), Some("exec\u{1}id"), None, &b, NOW)
        .unwrap_err();
    assert!(matches!(err, WebhookError::InvalidHeader { .. }), "{err:?}");
}

#[test]
fn signed_bodies_with_a_repeated_key_or_invisible_email_are_400() {
    for b in [
        format!(
            r#"{{"CustomerId":"{CUSTOMER}","Email":"a@example.com","Email":"b@example.com","UserId":"{USER}"}}"#
        ),
        format!(
            r#"{{"CustomerId":"{CUSTOMER}","User":{{"Id":"{USER}","Email":"jane\u200b@example.com"}}}}"#
        ),
        format!(
            r#"{{"CustomerId":"{CUSTOMER}","User":{{"Id":"{USER}","Email":"jane@exa\u202emple.com"}}}}"#
        ),
        format!(
            r#"{{"CustomerId":"{CUSTOMER}","User":{{"Id":"{}","Email":"j@example.com"}}}}"#,
            "u".repeat(100 * 1024)
        ),
    ] {
        let sig = sign(&secret("whsec_live"), NOW, b.as_bytes());
        let err = receiver()
            .receive(&headers(Some(&sig), Some("e")), b.as_bytes(), at(NOW))
            .unwrap_err();
        assert_eq!(err.http_status(), 400, "{err:?}");
    }
}

#[tokio::test]
async fn a_duplicated_delivery_is_recognized_by_execution_id() {
    let store = MemoryStore::new();
    let tenant = TenantId::new("t1");
    let b = body();
    let r = receiver();
    let mut fresh = 0;
    // Cativa retries: same execution id, re-signed later.
    for (t, exec) in [(NOW, "exec-1"), (NOW + 60, "exec-1"), (NOW + 61, "exec-2")] {
        let sig = sign(&secret("whsec_live"), t, &b);
        let d = r
            .receive(&headers(Some(&sig), Some(exec)), &b, at(t))
            .unwrap();
        if store
            .record_delivery(&tenant, d.execution_id.as_str(), Utc::now())
            .await
            .unwrap()
        {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 2);
}

const CUST_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const CUST_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
const CUST_C: &str = "cccccccc-0000-4000-8000-00000000000c";

#[test]
fn tenant_router_uses_each_customers_own_secret() {
    let router = TenantRouter::new()
        .route(
            CustomerId::new(CUST_A),
            TenantId::new("tenant-a"),
            WebhookReceiver::new(SignatureVerifier::new(secret("whsec_a")).unwrap())
                .with_event_type(EventType::UserCreated),
        )
        .route(
            CustomerId::new(CUST_B),
            TenantId::new("tenant-b"),
            WebhookReceiver::new(SignatureVerifier::new(secret("whsec_b")).unwrap())
                .with_event_type(EventType::UserCreated),
        );
    let body_a = serde_json::to_vec(
        &json!({"CustomerId": CUST_A.to_uppercase(), "User": {"Id": USER, "Email": "x@y.io"}}),
    )
    .unwrap();
    let ok = sign(&secret("whsec_a"), NOW, &body_a);
    let (tenant, d) = router
        .receive(&headers(Some(&ok), Some("e")), &body_a, at(NOW))
        .unwrap();
    assert_eq!(tenant, TenantId::new("tenant-a"));
    assert_eq!(d.customer_id(), Some(CustomerId::new(CUST_A)));
    assert_eq!(
        router.tenant_for(&CustomerId::new(CUST_B)),
        Some(&TenantId::new("tenant-b"))
    );

    // Claims tenant A but is signed with tenant B's secret.
    let forged = sign(&secret("whsec_b"), NOW, &body_a);
    assert_eq!(
        router
            .receive(&headers(Some(&forged), Some("e")), &body_a, at(NOW))
            .unwrap_err(),
        WebhookError::BadSignature
    );
    let body_c = serde_json::to_vec(&json!({"CustomerId": CUST_C})).unwrap();
    let sig = sign(&secret("whsec_a"), NOW, &body_c);
    assert!(matches!(
        router.receive(&headers(Some(&sig), Some("e")), &body_c, at(NOW)),
        Err(WebhookError::UnknownCustomer(c)) if c == CUST_C
    ));
}

#[test]
fn debug_of_receivers_shows_no_secret() {
    let r = WebhookReceiver::new(
        SignatureVerifier::new(secret("whsec_top_secret_1"))
            .unwrap()
            .with_secret(secret("whsec_top_secret_2"))
            .unwrap(),
    );
    let router = TenantRouter::new().route(CustomerId::new("c"), TenantId::new("t"), r.clone());
    let shown = format!("{r:?} {router:?}");
    assert!(!shown.contains("top_secret"), "{shown}");
}

#[test]
fn a_groups_listener_names_the_group_its_user_joined() {
    let b = body();
    let sig = sign(&secret("whsec_live"), NOW, &b);
    let receiver = WebhookReceiver::new(SignatureVerifier::new(secret("whsec_live")).unwrap())
        .with_group_automation("auto-7", "VIP");
    let d = receiver
        .receive(&headers(Some(&sig), Some("e")), &b, at(NOW))
        .unwrap();
    let CativaEvent::UserJoinedGroup(e) = &d.event else {
        panic!("expected user_joined_group: {:?}", d.event);
    };
    assert_eq!(e.group.as_deref(), Some("VIP"));
    let Some(sync_core::CommunityEvent::JoinedGroup { group, .. }) = d.to_community_event() else {
        panic!("expected JoinedGroup");
    };
    assert_eq!(group.as_deref(), Some("VIP"));

    // Another listener's user_joined_group names no group.
    let plain = WebhookReceiver::new(SignatureVerifier::new(secret("whsec_live")).unwrap())
        .with_automation("auto-7", EventType::UserJoinedGroup);
    let d = plain
        .receive(&headers(Some(&sig), Some("e")), &b, at(NOW))
        .unwrap();
    let Some(sync_core::CommunityEvent::JoinedGroup { group, .. }) = d.to_community_event() else {
        panic!("expected JoinedGroup");
    };
    assert_eq!(group, None);
}
