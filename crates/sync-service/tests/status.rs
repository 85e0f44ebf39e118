//! The status routes: mounted only with a token; 401 without it (nothing about tenants
//! leaks); the status JSON; failed work listed, requeued (JSON and form) and dismissed; the
//! page's sign-in with a session cookie that is not the token; cross-site posts refused;
//! webhook deliveries counted; and the health job telling an observer red then green once
//! each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use secrecy::SecretString;
use serde_json::{Value, json};
use sync_core::config::{BadgeRule, Condition, SyncConfig};
use sync_core::ports::{CredentialsCheck, Outbox, StatusStore};
use sync_core::status::{Health, HealthState, StatusObserver, SyncStatus};
use sync_core::testkit::{MemoryCrm, RecordingBadgeSink};
use sync_core::{
    CativaUserId, CommunityEvent, CommunityUser, CrmContact, CrmKind, CrmRecordId, Email,
    MemoryStore, RemoteErrorKind, TenantId,
};
use sync_engine::{EngineOptions, SyncEngine};
use sync_service::{Service, ServiceOptions};
use tower::ServiceExt;

const TOKEN: &str = "status-token-for-tests";

struct World {
    store: Arc<MemoryStore>,
    crm: Arc<MemoryCrm>,
    badges: Arc<RecordingBadgeSink>,
    tenant: TenantId,
}

fn world() -> World {
    World {
        store: Arc::new(MemoryStore::new()),
        crm: Arc::new(MemoryCrm::new(CrmKind::Hubspot, 50)),
        badges: Arc::new(RecordingBadgeSink::new()),
        tenant: TenantId::new("acme"),
    }
}

fn engine(w: &World) -> SyncEngine {
    let mut raw = SyncConfig::default();
    raw.badge_rules = vec![BadgeRule::new(
        "annual",
        "Premium",
        Condition::Tag("Pago Anual".into()),
    )];
    let mut options = EngineOptions::default();
    options.health.failed_red = 1;
    SyncEngine::builder(raw.validate().unwrap(), w.store.clone())
        .source(w.crm.clone())
        .crm_sink(w.crm.clone())
        .badge_sink(w.badges.clone())
        .options(options)
        .build()
}

fn push_only() -> ServiceOptions {
    let mut options = ServiceOptions::default();
    options.schedule.delta_interval = None;
    options
}

fn service(w: &World) -> Service {
    Service::builder(engine(w), w.tenant.clone())
        .options(push_only())
        .status_token(SecretString::from(TOKEN))
        .build()
}

/// A tagged contact whose community user the badge sink refuses (404): one failed item.
async fn fail_one_grant(w: &World, service: &Service) {
    w.crm.put(
        CrmContact::new(
            CrmRecordId::new(CrmKind::Hubspot, "c1"),
            Some(Email::parse("ana@example.com").unwrap()),
            Utc::now(),
        )
        .with_tag("Pago Anual"),
    );
    w.badges
        .fail_user(CativaUserId::from("u1"), RemoteErrorKind::NotFound, 1);
    let user = CommunityUser::new(
        CativaUserId::from("u1"),
        Email::parse("ana@example.com").unwrap(),
    );
    service
        .engine()
        .handle_community_event(&w.tenant, "exec-1", CommunityEvent::UserCreated { user })
        .await
        .unwrap();
    service.engine().drain_outbox(&w.tenant).await.unwrap();
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap()
    }
}

async fn send(app: &Router, req: axum::http::request::Builder, body: &str) -> Answer {
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        text: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn bearer(req: axum::http::request::Builder) -> axum::http::request::Builder {
    req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
}

#[tokio::test]
async fn without_a_token_configured_the_status_routes_are_not_mounted() {
    let w = world();
    let service = Service::builder(engine(&w), w.tenant.clone()).build();
    let app = sync_service::router(&service);
    for path in ["/status", "/status/acme", "/status/page"] {
        let a = send(&app, bearer(Request::get(path)), "").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn without_valid_credentials_every_status_route_answers_401_and_leaks_nothing() {
    let w = world();
    let app = sync_service::router(&service(&w));
    let wrong = |r: axum::http::request::Builder| r.header(header::AUTHORIZATION, "Bearer nope");
    let requests = [
        Request::get("/status"),
        Request::get("/status/acme"),
        wrong(Request::get("/status/acme")),
        Request::get("/status/acme/failures"),
        Request::get("/status/other"),
        Request::post("/status/acme/requeue").header(header::CONTENT_TYPE, "application/json"),
        Request::post("/status/acme/dismiss").header(header::COOKIE, "cativa_status=forged"),
    ];
    for req in requests {
        let a = send(&app, req, r#"{"all":true}"#).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
        assert_eq!(
            a.headers.get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer realm=\"status\""
        );
        let v = a.json();
        assert_eq!(v["error"], "unauthorized");
        assert!(v["request_id"].is_string());
        assert!(!a.text.contains("acme"), "{}", a.text);
    }
}

#[tokio::test]
async fn the_status_json_lists_the_tenant_and_an_unknown_tenant_is_404() {
    let w = world();
    let app = sync_service::router(&service(&w));
    let all = send(&app, bearer(Request::get("/status")), "").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let v = all.json();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["tenant"], "acme");
    assert!(v[0]["health"]["state"].is_string());
    let one = send(&app, bearer(Request::get("/status/acme")), "").await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["tenant"], "acme");
    // A push-only service has no pull schedule.
    assert!(one.json()["schedule"]["interval_secs"].is_null());
    for path in ["/status/other", "/status/other/failures"] {
        let a = send(&app, bearer(Request::get(path)), "").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(a.json()["error"], "unknown_tenant");
    }
}

#[tokio::test]
async fn failed_work_is_listed_requeued_and_dismissed_with_an_audit() {
    let w = world();
    let service = service(&w);
    let app = sync_service::router(&service);
    fail_one_grant(&w, &service).await;
    let status = send(&app, bearer(Request::get("/status/acme")), "")
        .await
        .json();
    assert_eq!(status["health"]["state"], "red", "{status}");
    assert_eq!(status["outbox"]["failed"], 1);
    let list = send(
        &app,
        bearer(Request::get(
            "/status/acme/failures?kind=assign_badge&limit=10",
        )),
        "",
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let items = list.json();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    let key = items[0]["item"]["action"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let none = send(
        &app,
        bearer(Request::get("/status/acme/failures?kind=other")),
        "",
    )
    .await;
    assert_eq!(none.json().as_array().unwrap().len(), 0);
    let bad = send(
        &app,
        bearer(Request::get("/status/acme/failures?limit=x")),
        "",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Requeued by id (JSON): the badge is granted by the next drain.
    let json_post =
        |path: &str| bearer(Request::post(path)).header(header::CONTENT_TYPE, "application/json");
    let body = json!({"ids": [key], "by": "ops@acme", "note": "user exists now"}).to_string();
    let a = send(&app, json_post("/status/acme/requeue"), &body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["requeued"], 1);
    service.engine().drain_outbox(&w.tenant).await.unwrap();
    assert_eq!(w.badges.badges_of(&CativaUserId::from("u1")).len(), 1);
    let status = send(&app, bearer(Request::get("/status/acme")), "")
        .await
        .json();
    assert_eq!(status["outbox"]["failed"], 0, "{status}");
    let actions = w.store.operator_actions(&w.tenant, 10).await.unwrap();
    assert_eq!(actions[0].action, "requeue");
    assert_eq!(actions[0].actor, "ops@acme");

    // Nothing failed any more: dismissing answers 404; a body naming nothing is 400.
    let a = send(
        &app,
        json_post("/status/acme/dismiss"),
        &json!({"id": key}).to_string(),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = send(&app, json_post("/status/acme/requeue"), "{}").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_form_dismiss_and_requeue_answer_303_back_to_the_page() {
    let w = world();
    let service = service(&w);
    let app = sync_service::router(&service);
    fail_one_grant(&w, &service).await;
    let items = w
        .store
        .list_failed(&w.tenant, &sync_core::ports::FailedFilter::new(10))
        .await
        .unwrap();
    let key = items[0].item.action.key.to_string();
    let form = |path: &str| {
        bearer(Request::post(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
    };
    let body = format!("id={key}&note=known+test+account");
    let a = send(&app, form("/status/acme/dismiss"), &body).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    assert_eq!(a.headers.get(header::LOCATION).unwrap(), "../page");
    let status = send(&app, bearer(Request::get("/status/acme")), "")
        .await
        .json();
    assert_eq!(status["outbox"]["dismissed"], 1, "{status}");
    let actions = w.store.operator_actions(&w.tenant, 10).await.unwrap();
    assert_eq!(actions[0].action, "dismiss");
    assert_eq!(actions[0].actor, "status api");
    assert_eq!(actions[0].note.as_deref(), Some("known test account"));
    // `all` never requeues a dismissed item; naming it does.
    let a = send(&app, form("/status/acme/requeue"), "all=true").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(w.store.outbox_counts(&w.tenant).await.unwrap().dismissed, 1);
    let a = send(&app, form("/status/acme/requeue"), &format!("id={key}")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let counts = w.store.outbox_counts(&w.tenant).await.unwrap();
    assert_eq!((counts.failed, counts.dismissed), (0, 0));
}

fn session_of(answer: &Answer) -> String {
    let cookie = answer
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/status"), "{cookie}");
    assert!(!cookie.contains(TOKEN), "the cookie never holds the token");
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_page_signs_in_with_a_cookie_and_refuses_cross_site_posts() {
    let w = world();
    let service = service(&w);
    let app = sync_service::router(&service);
    fail_one_grant(&w, &service).await;
    let form = |path: &str| {
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "127.0.0.1:8080")
    };
    // Signed out: the sign-in form, nothing about tenants.
    let a = send(&app, Request::get("/status/page"), "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.text.contains("id=\"sign-in\""));
    assert!(!a.text.contains("acme"));
    // A wrong token: 401, the same form again.
    let a = send(&app, form("/status/login"), "token=wrong").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.text.contains("id=\"sign-in\"") && a.text.contains("role=\"alert\""));
    assert!(a.headers.get(header::SET_COOKIE).is_none());
    // The right one: a session cookie, then 303 to the page.
    let a = send(&app, form("/status/login"), &format!("token={TOKEN}")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers.get(header::LOCATION).unwrap(), "page");
    let cookie = session_of(&a);
    let page = send(
        &app,
        Request::get("/status/page").header(header::COOKIE, &cookie),
        "",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text
            .contains("<section id=\"tenant-acme\" data-health=\"red\"")
    );
    // The cookie also reads the JSON.
    let a = send(
        &app,
        Request::get("/status/acme").header(header::COOKIE, &cookie),
        "",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // A cookie-authenticated post from another site is refused; from the page it works.
    let evil = form("/status/acme/requeue")
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, "https://evil.example");
    let a = send(&app, evil, "all=true").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.json()["error"], "cross_site");
    assert_eq!(w.store.outbox_counts(&w.tenant).await.unwrap().failed, 1);
    let evil_login = form("/status/login").header(header::ORIGIN, "https://evil.example");
    let a = send(&app, evil_login, &format!("token={TOKEN}")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let same = form("/status/acme/requeue")
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, "http://127.0.0.1:8080");
    let a = send(&app, same, "all=true").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(w.store.outbox_counts(&w.tenant).await.unwrap().failed, 0);
}

#[tokio::test]
async fn webhook_deliveries_are_counted_for_the_status() {
    let w = world();
    let secret = SecretString::from("whsec_test");
    let receiver = cativa_client::webhook::WebhookReceiver::new(
        cativa_client::webhook::SignatureVerifier::new(secret).unwrap(),
    );
    let service = Service::builder(engine(&w), w.tenant.clone())
        .options(push_only())
        .cativa(receiver)
        .status_token(SecretString::from(TOKEN))
        .build();
    let app = sync_service::router(&service);
    let unsigned = Request::post("/webhooks/cativa/user_created")
        .header(header::CONTENT_TYPE, "application/json");
    let a = send(&app, unsigned, "{}").await;
    assert!(a.status.is_client_error());
    let status = send(&app, bearer(Request::get("/status/acme")), "")
        .await
        .json();
    let refused = status["webhooks"]["last_hour"]["refused"]
        .as_object()
        .unwrap();
    let total: u64 = refused.values().filter_map(Value::as_u64).sum();
    assert_eq!(total, 1, "{status}");
}

#[derive(Default)]
struct Seen(Mutex<Vec<(HealthState, HealthState)>>);

#[async_trait::async_trait]
impl StatusObserver for Seen {
    async fn on_health_change(
        &self,
        _tenant: &TenantId,
        old: &Health,
        new: &Health,
        _status: &SyncStatus,
    ) {
        self.0.lock().unwrap().push((old.state, new.state));
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test]
async fn the_health_job_tells_an_observer_red_then_green_once_each() {
    let w = world();
    let seen = Arc::new(Seen::default());
    let mut options = push_only();
    options.health_interval = Duration::from_millis(20);
    let service = Service::builder(engine(&w), w.tenant.clone())
        .options(options)
        .observer(seen.clone())
        .build();
    let refused = CredentialsCheck::failed(Utc::now(), "HubSpot refused the token (401)");
    w.store
        .record_credentials_check(&w.tenant, &refused)
        .await
        .unwrap();
    let background = service.spawn_background();
    eventually("red", || !seen.0.lock().unwrap().is_empty()).await;
    let ok = CredentialsCheck::ok(Utc::now(), Some("portal-1".to_owned()));
    w.store
        .record_credentials_check(&w.tenant, &ok)
        .await
        .unwrap();
    eventually("green", || seen.0.lock().unwrap().len() >= 2).await;
    // Several more rounds: no repeated alert.
    tokio::time::sleep(Duration::from_millis(150)).await;
    background.shutdown().await;
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (HealthState::Green, HealthState::Red),
            (HealthState::Red, HealthState::Green)
        ]
    );
}
