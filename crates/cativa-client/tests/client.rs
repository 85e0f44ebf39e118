//! CativaClient against wiremock: every endpoint's request shape, decoding and errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cativa_client::{CativaClient, Error, NewUser, PreviewPaths, UserFields};
use secrecy::SecretString;
use serde_json::json;
use sync_core::{BadgeId, CativaUserId, Email};
use sync_http::{ErrorKind, RetryPolicy};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "cativa-partner-key-abcdef";

fn client(server: &MockServer) -> CativaClient {
    CativaClient::builder(SecretString::from(KEY))
        .base_url(server.uri())
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(3)
                .with_delays(Duration::from_millis(10), Duration::from_millis(50))
                .with_jitter(0.0),
        )
        .without_timeouts()
        .build()
        .unwrap()
}

fn auth() -> wiremock::matchers::HeaderExactMatcher {
    header("authorization", format!("Bearer {KEY}").as_str())
}

#[tokio::test]
async fn me_sends_the_key_and_decodes_user_and_tenant() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/social/v1/auth/me"))
        .and(auth())
        .and(header(
            "user-agent",
            format!(
                "cativa-client/{v} sync-http/{v}",
                v = env!("CARGO_PKG_VERSION")
            )
            .as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "Id": "01HQ7Z3X4Y", "Email": "Owner@Partner.com", "FirstName": "Olga",
            "CustomerId": "8c1f0b7e-1111-2222-3333-444455556666"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let me = client(&server).me().await.unwrap();
    assert_eq!(me.user.id.as_str(), "01HQ7Z3X4Y");
    assert_eq!(me.user.email.as_str(), "owner@partner.com");
    assert_eq!(me.user.first_name.as_deref(), Some("Olga"));
    assert_eq!(
        me.customer_id.as_str(),
        "8c1f0b7e-1111-2222-3333-444455556666"
    );
}

#[tokio::test]
async fn me_with_a_bad_key_is_auth_and_an_odd_body_is_decode() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/social/v1/auth/me"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"message": "invalid api key"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server).me().await.unwrap_err();
    let h = e.http().unwrap();
    assert_eq!(h.kind(), ErrorKind::Auth);
    assert!(!e.is_retryable());
    assert!(!format!("{e} {e:?}").contains(KEY));

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"Id": "u1", "Email": "a@b.io"})),
        )
        .mount(&server)
        .await;
    let e = client(&server).me().await.unwrap_err();
    assert_eq!(e.http().unwrap().kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("CustomerId"), "{e}");
}

#[tokio::test]
async fn user_by_email_found_missing_and_forbidden() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/social/v1/admin/users/email/jane+vip@example.com"))
        .and(auth())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "Id": "u-1", "Email": "jane+vip@example.com", "Badges": ["premium"]
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/social/v1/admin/users/email/ghost@example.com"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/social/v1/admin/users/email/partner@example.com"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-request-id", "req-42")
                .set_body_json(json!({"message": "Forbidden"})),
        )
        .expect(1) // never retried
        .mount(&server)
        .await;
    let c = client(&server);
    let u = c
        .user_by_email(&Email::parse("Jane+VIP@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.id.as_str(), "u-1");
    assert_eq!(u.badges, vec![BadgeId::new("premium")]);
    assert!(
        c.user_by_email(&Email::parse("ghost@example.com").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let e = c
        .user_by_email(&Email::parse("partner@example.com").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::AdminLookupForbidden { correlation_id: Some(c) } if c == "req-42"));
    let text = e.to_string();
    assert!(text.contains("partner API keys cannot use"), "{text}");
    assert!(text.contains("user_created webhooks"), "{text}");
    let core: sync_core::Error = e.into();
    assert!(
        matches!(core, sync_core::Error::Remote(r) if r.kind == sync_core::RemoteErrorKind::Forbidden)
    );
}

#[tokio::test]
async fn assign_and_remove_badge_use_preview_paths_and_idempotency_keys() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/social/v1/users/u-1/badges/premium"))
        .and(auth())
        .and(header("idempotency-key", "key-assign"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/social/v1/users/u-1/badges/premium"))
        .and(header("idempotency-key", "key-remove"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let (u, b) = (CativaUserId::new("u-1"), BadgeId::new("premium"));
    c.assign_badge(&u, &b, "key-assign").await.unwrap();
    c.remove_badge(&u, &b, "key-remove").await.unwrap();
}

#[tokio::test]
async fn preview_paths_are_configurable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/badges/premium/holders/u%2F1"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let paths =
        PreviewPaths::default().with_assign_badge("/v2/badges/{badge_id}/holders/{user_id}");
    let c = CativaClient::builder(SecretString::from(KEY))
        .base_url(server.uri())
        .preview_paths(paths)
        .build()
        .unwrap();
    c.assign_badge(&CativaUserId::new("u/1"), &BadgeId::new("premium"), "k")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_preview_endpoint_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server)
        .assign_badge(&CativaUserId::new("u"), &BadgeId::new("b"), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::PreviewUnavailable { status: 404, method, path } if method == "POST" && path.contains("{badge_id}"))
    );
    assert!(e.to_string().contains("CsvBadgeSink"));
}

#[tokio::test]
async fn a_404_with_a_body_is_an_unknown_user_not_a_missing_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"title": "Not Found", "detail": "No user u-x.", "traceId": "t-9"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server)
        .assign_badge(&CativaUserId::new("u-x"), &BadgeId::new("b"), "k")
        .await
        .unwrap_err();
    let h = e.http().expect("an HTTP error");
    assert_eq!(h.kind(), ErrorKind::NotFound);
    assert_eq!(h.message(), "No user u-x.");
    assert_eq!(h.correlation_id(), Some("t-9"));
}

#[tokio::test]
async fn create_user_posts_pascal_case_and_decodes_the_user() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/social/v1/users"))
        .and(header("idempotency-key", "key-create"))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"Email": "new@example.com", "FirstName": "New", "LastName": "Person"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "User": {"Id": "u-9", "Email": "new@example.com", "FirstName": "New"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let user = NewUser::new(Email::parse("new@example.com").unwrap())
        .with_names(Some("New".into()), Some("Person".into()));
    let created = client(&server)
        .create_user(&user, "key-create")
        .await
        .unwrap();
    assert_eq!(created.id.as_str(), "u-9");
}

#[tokio::test]
async fn create_user_conflict_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(json!({"message": "email exists", "code": "DUPLICATE_EMAIL"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server)
        .create_user(&NewUser::new(Email::parse("dup@example.com").unwrap()), "k")
        .await
        .unwrap_err();
    assert_eq!(e.http().unwrap().kind(), ErrorKind::Conflict);
    assert_eq!(e.http().unwrap().code(), Some("DUPLICATE_EMAIL"));
}

#[tokio::test]
async fn update_user_patches_fields() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/social/v1/users/u-1"))
        .and(header("idempotency-key", "key-upd"))
        .and(body_json(
            json!({"JobTitle": "CTO", "PhoneNumber": "+5511999999999"}),
        ))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let mut fields = UserFields::new();
    fields.insert("JobTitle".into(), "CTO".into());
    fields.insert("PhoneNumber".into(), "+5511999999999".into());
    client(&server)
        .update_user(&CativaUserId::new("u-1"), &fields, "key-upd")
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_429_on_a_write_is_retried_after_retry_after_because_it_carries_a_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let start = tokio::time::Instant::now();
    client(&server)
        .assign_badge(&CativaUserId::new("u"), &BadgeId::new("b"), "k")
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn each_error_kind_maps_into_sync_core() {
    use sync_core::RemoteErrorKind as R;
    let cases = [
        (400, R::Invalid),
        (401, R::Auth),
        (403, R::Forbidden),
        (409, R::Conflict),
        (500, R::Server),
    ];
    for (status, kind) in cases {
        let server = MockServer::start().await;
        Mock::given(method("DELETE"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_json(json!({"message": "m", "code": "C", "correlationId": "corr"})),
            )
            .mount(&server)
            .await;
        let e = client(&server)
            .remove_badge(&CativaUserId::new("u"), &BadgeId::new("b"), "k")
            .await
            .unwrap_err();
        let core: sync_core::Error = e.into();
        let sync_core::Error::Remote(r) = core else {
            panic!("not remote")
        };
        assert_eq!(r.kind, kind, "status {status}");
        assert_eq!(r.status, Some(status));
        assert_eq!(r.system, "cativa");
        assert_eq!(r.code.as_deref(), Some("C"));
        assert_eq!(r.correlation_id.as_deref(), Some("corr"));
    }
}
