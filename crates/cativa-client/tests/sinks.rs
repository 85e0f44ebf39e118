//! The sync-core port implementations: API badge sink, community sink, CSV badge sink,
//! sign-up inviter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cativa_client::CativaClient;
use cativa_client::sink::{
    ApiBadgeSink, ApiCommunitySink, CsvBadgeSink, InviteOutput, SignupInviter,
};
use secrecy::SecretString;
use serde_json::json;
use sync_core::ports::{
    BadgeChange, BadgeOp, BadgeSink, CommunitySink, FieldUpdate, Invite, Inviter,
};
use sync_core::{BadgeId, CativaUserId, CrmRecordId, Email, Error, IdempotencyKey, TenantId};
use sync_http::{
    HttpTransport, ReqwestSettings, ReqwestTransport, RetryPolicy, TransportError,
    TransportRequest, TransportResponse,
};
use wiremock::matchers::{body_json, header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> CativaClient {
    CativaClient::builder(SecretString::from("key-1"))
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
        IdempotencyKey::derive(&["t1", user, badge, &format!("{op:?}")]),
    )
}

#[tokio::test]
async fn api_badge_sink_sends_each_change_with_its_key_and_keeps_order() {
    let server = MockServer::start().await;
    let changes = vec![
        change("u1", "premium", BadgeOp::Assign),
        change("u2", "premium", BadgeOp::Remove),
        change("u3", "vip", BadgeOp::Assign),
    ];
    Mock::given(method("POST"))
        .and(path("/social/v1/users/u1/badges/premium"))
        .and(header("idempotency-key", changes[0].key.as_str()))
        .and(header("authorization", "Bearer key-1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/social/v1/users/u2/badges/premium"))
        .and(header("idempotency-key", changes[1].key.as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/social/v1/users/u3/badges/vip"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"message": "unknown badge", "code": "BADGE_NOT_FOUND"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let tenant = TenantId::new("t1");
    let sink = ApiBadgeSink::new(tenant.clone(), client(&server));
    let results = sink.apply_badges(&tenant, &changes).await.unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok());
    assert!(results[1].is_ok());
    let Err(Error::Remote(r)) = &results[2] else {
        panic!("{:?}", results[2])
    };
    assert_eq!(r.code.as_deref(), Some("BADGE_NOT_FOUND"));
    assert_eq!(r.status, Some(400));
}

#[tokio::test]
async fn api_badge_sink_refuses_a_tenant_it_has_no_key_for() {
    let server = MockServer::start().await;
    let sink = ApiBadgeSink::new(TenantId::new("t1"), client(&server));
    let e = sink
        .apply_badges(&TenantId::new("t2"), &[change("u1", "b", BadgeOp::Assign)])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnknownTenant(t) if t.as_str() == "t2"));
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// Counts requests in flight on the client side and records the maximum.
#[derive(Debug)]
struct Gauge {
    inner: ReqwestTransport,
    now: AtomicUsize,
    max: AtomicUsize,
}

#[async_trait]
impl HttpTransport for Gauge {
    async fn send(&self, request: TransportRequest) -> Result<TransportResponse, TransportError> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        let r = self.inner.send(request).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

#[tokio::test]
async fn api_badge_sink_bounds_parallelism() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/social/v1/users/.*/badges/.*$"))
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_millis(50)))
        .expect(12)
        .mount(&server)
        .await;
    let gauge = Arc::new(Gauge {
        inner: ReqwestTransport::new(ReqwestSettings::default()).unwrap(),
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
    });
    let c = CativaClient::builder(SecretString::from("key-1"))
        .base_url(server.uri())
        .transport(gauge.clone())
        .build()
        .unwrap();
    let tenant = TenantId::new("t1");
    let sink = ApiBadgeSink::new(tenant.clone(), c).with_concurrency(3);
    let changes: Vec<_> = (0..12)
        .map(|i| change(&format!("u{i}"), "b", BadgeOp::Assign))
        .collect();
    let results = sink.apply_badges(&tenant, &changes).await.unwrap();
    assert!(results.iter().all(Result::is_ok));
    // Each call waits 50 ms at the server, so the sink keeps exactly 3 in flight.
    assert_eq!(gauge.max.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn community_sink_patches_fields_with_keys() {
    let server = MockServer::start().await;
    let key = IdempotencyKey::derive(&["t1", "fields", "u1"]);
    Mock::given(method("PATCH"))
        .and(path("/social/v1/users/u1"))
        .and(header("idempotency-key", key.as_str()))
        .and(body_json(json!({"JobTitle": "CTO"})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let tenant = TenantId::new("t1");
    let sink = ApiCommunitySink::new(tenant.clone(), client(&server));
    let update = FieldUpdate::new(
        CativaUserId::new("u1"),
        Email::parse("u1@example.com").unwrap(),
        BTreeMap::from([("JobTitle".to_owned(), "CTO".to_owned())]),
        key,
    );
    let results = sink.update_fields(&tenant, &[update]).await.unwrap();
    assert!(results[0].is_ok());
}

#[tokio::test]
async fn csv_badge_sink_writes_the_import_sheet_once_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new("tenant/one");
    let sink = CsvBadgeSink::new(dir.path());
    let changes = vec![
        change("u1", "Premium", BadgeOp::Assign),
        change("u2", "Premium, Gold", BadgeOp::Remove),
    ];
    let results = sink.apply_badges(&tenant, &changes).await.unwrap();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(Result::is_ok));
    // Re-applying the same keys, even from a new sink (a restart), writes nothing new.
    sink.apply_badges(&tenant, &changes).await.unwrap();
    let again = CsvBadgeSink::new(dir.path());
    again.apply_badges(&tenant, &changes[..1]).await.unwrap();
    again
        .apply_badges(&tenant, &[change("u3", "Premium", BadgeOp::Assign)])
        .await
        .unwrap();

    let path = sink.path_for(&tenant);
    assert!(path.starts_with(dir.path()), "{path:?}");
    let mut rdr = csv::Reader::from_path(&path).unwrap();
    assert_eq!(
        rdr.headers().unwrap().iter().collect::<Vec<_>>(),
        ["email", "user_id", "badge", "action", "idempotency_key"]
    );
    let rows: Vec<Vec<String>> = rdr
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][..4], ["u1@example.com", "u1", "Premium", "assign"]);
    assert_eq!(
        rows[1][..4],
        ["u2@example.com", "u2", "Premium, Gold", "remove"]
    );
    assert_eq!(rows[1][4], changes[1].key.as_str());
    assert_eq!(rows[2][1], "u3");
}

#[tokio::test]
async fn csv_badge_sink_reports_an_unwritable_directory() {
    let sink = CsvBadgeSink::new("/nonexistent/dir/for/sure");
    let e = sink
        .apply_badges(&TenantId::new("t"), &[change("u1", "b", BadgeOp::Assign)])
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    assert!(e.to_string().contains("/nonexistent/dir/for/sure"), "{e}");
}

fn invite(email: &str) -> Invite {
    Invite::new(
        Email::parse(email).unwrap(),
        CrmRecordId::hubspot("512"),
        vec![BadgeId::new("premium"), BadgeId::new("vip")],
        IdempotencyKey::derive(&["t1", "invite", email]),
    )
}

#[tokio::test]
async fn inviter_returns_signup_links_for_the_crm_to_send() {
    let tenant = TenantId::new("t1");
    let inviter = SignupInviter::new(InviteOutput::Memory)
        .with_signup_link(
            tenant.clone(),
            url::Url::parse("https://club.example.com/signup?ref=crm").unwrap(),
        )
        .with_email_param("email");
    let results = inviter
        .invite(
            &tenant,
            &[invite("new@example.com"), invite("new@example.com")],
        )
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    let invites = inviter.take_invites();
    assert_eq!(invites.len(), 1, "same key, one invite");
    assert_eq!(invites[0].email.as_str(), "new@example.com");
    assert_eq!(
        invites[0].signup_link.as_str(),
        "https://club.example.com/signup?ref=crm&email=new%40example.com"
    );
    assert_eq!(invites[0].badges.len(), 2);
    assert!(inviter.take_invites().is_empty());
    let e = inviter
        .invite(&TenantId::new("other"), &[invite("a@b.io")])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnknownTenant(_)));
}

#[tokio::test]
async fn inviter_writes_a_mailing_csv() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new("t1");
    let inviter = SignupInviter::new(InviteOutput::CsvDir(dir.path().to_owned())).with_signup_link(
        tenant.clone(),
        url::Url::parse("https://club.example.com/join").unwrap(),
    );
    inviter
        .invite(&tenant, &[invite("a@example.com")])
        .await
        .unwrap();
    inviter
        .invite(&tenant, &[invite("a@example.com"), invite("b@example.com")])
        .await
        .unwrap();
    let mut rdr = csv::Reader::from_path(dir.path().join("invites-t1.csv")).unwrap();
    let rows: Vec<Vec<String>> = rdr
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0][..5],
        [
            "a@example.com",
            "https://club.example.com/join",
            "hubspot",
            "512",
            "premium;vip"
        ]
    );
    assert_eq!(rows[1][0], "b@example.com");
}
