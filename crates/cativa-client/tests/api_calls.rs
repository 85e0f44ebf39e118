#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `ApiBadgeSink::api_calls`: badge calls counted by endpoint template (user and badge ids
//! never make new keys), failed calls included, every tenant's client added up, and calls
//! made with the same client outside the sink left out.

use std::collections::BTreeMap;

use cativa_client::CativaClient;
use cativa_client::sink::ApiBadgeSink;
use secrecy::SecretString;
use serde_json::json;
use sync_core::ports::{BadgeChange, BadgeOp, BadgeSink};
use sync_core::{BadgeId, CativaUserId, Email, IdempotencyKey, TenantId};
use sync_http::RetryPolicy;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BADGE_PATH: &str = r"^/social/v1/users/[^/]+/badges/[^/]+$";

fn client(server: &MockServer, key: &str) -> CativaClient {
    CativaClient::builder(SecretString::from(key))
        .base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

fn change(user: &str, badge: &str, op: BadgeOp) -> BadgeChange {
    BadgeChange::new(
        CativaUserId::new(user),
        Email::parse(&format!("{user}@example.com")).unwrap(),
        BadgeId::new(badge),
        op,
        IdempotencyKey::derive(&[user, badge, &format!("{op:?}")]),
    )
}

#[tokio::test]
async fn badge_sink_counts_by_template_across_tenants_and_apart_from_its_client() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/social/v1/users/u9/badges/missing"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"ErrorCode": "BADGE_NOT_FOUND", "Message": "no such badge"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(BADGE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path_regex(BADGE_PATH))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/social/v1/auth/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;

    let (t1, t2) = (TenantId::new("t1"), TenantId::new("t2"));
    let c1 = client(&server, "key-1");
    let sink =
        ApiBadgeSink::new(t1.clone(), c1.clone()).with_tenant(t2.clone(), client(&server, "key-2"));
    assert!(sink.api_calls().is_empty());

    let r = sink
        .apply_badges(
            &t1,
            &[
                change("u1", "b1", BadgeOp::Assign),
                change("u2", "b2", BadgeOp::Assign),
                change("u9", "missing", BadgeOp::Assign),
                change("u1", "b3", BadgeOp::Remove),
            ],
        )
        .await
        .unwrap();
    assert!(r[2].is_err(), "{:?}", r[2]);
    let r = sink
        .apply_badges(&t2, &[change("u3", "b1", BadgeOp::Assign)])
        .await
        .unwrap();
    assert!(r[0].is_ok());
    // A call made with the client the sink was built from is not the sink's.
    let _ = c1.me().await;

    let want: BTreeMap<String, u64> = [
        ("DELETE /social/v1/users/{user_id}/badges/{badge_id}", 1),
        ("POST /social/v1/users/{user_id}/badges/{badge_id}", 4),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(sink.api_calls(), want);
    assert_eq!(
        c1.api_calls(),
        BTreeMap::from([("GET /social/v1/auth/me".to_owned(), 1)])
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 6);
}
