#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Cativa sandbox: API, idempotency keys and the signed webhook emitter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use hmac::Mac;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sync_sandbox::cativa::{
    BadgeSource, CativaConfig, CativaSandbox, DEFAULT_API_KEY, DEFAULT_BADGES, DEFAULT_CUSTOMER_ID,
    Effect, SignatureMode, sign,
};
use sync_sandbox::datagen::{DataGenConfig, generate};
use sync_sandbox::ratelimit::{RateLimit, RateLimits};

const PREMIUM: &str = DEFAULT_BADGES[0].0;

async fn start(config: CativaConfig) -> (CativaSandbox, reqwest::Client) {
    (
        CativaSandbox::start(config).await.unwrap(),
        sync_http::tls::client().unwrap(),
    )
}

#[tokio::test]
async fn auth_me_with_bearer_or_api_key_header() {
    let (cv, c) = start(CativaConfig::default()).await;
    let url = format!("{}/social/v1/auth/me", cv.base_url());
    let me: Value = c
        .get(&url)
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["CustomerId"], DEFAULT_CUSTOMER_ID);
    let r = c
        .get(&url)
        .header("X-Api-Key", DEFAULT_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 401);
    assert!(body["traceId"].is_string());
    assert_eq!(
        c.get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn admin_lookup_is_forbidden_for_partner_keys_unless_allowed() {
    let (cv, c) = start(CativaConfig::default()).await;
    let user = cv.sign_up("Jane@Example.com", "Jane", "Doe");
    let url = format!(
        "{}/social/v1/admin/users/email/jane@example.com",
        cv.base_url()
    );
    let r = c
        .get(&url)
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Partner API keys cannot use the admin user lookup")
    );
    cv.allow_admin_lookup(true);
    let body: Value = c
        .get(&url)
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["Id"], user.id.as_str());
    let r = c
        .get(format!(
            "{}/social/v1/admin/users/email/nobody@example.com",
            cv.base_url()
        ))
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn badges_grant_and_remove_with_provenance() {
    let (cv, c) = start(CativaConfig::default()).await;
    let u = cv.sign_up("b@example.com", "B", "User");
    let url = format!(
        "{}/social/v1/users/{}/badges/{PREMIUM}",
        cv.base_url(),
        u.id
    );
    let r = c
        .post(&url)
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .post(&url)
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "already held");
    assert!(cv.user(&u.id).unwrap().has_badge(PREMIUM));
    assert_eq!(
        c.delete(&url)
            .bearer_auth(DEFAULT_API_KEY)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(!cv.user(&u.id).unwrap().has_badge(PREMIUM));
    let r = c
        .post(format!(
            "{}/social/v1/users/nope/badges/{PREMIUM}",
            cv.base_url()
        ))
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A badge granted elsewhere, then removed through the API: the effect says so.
    cv.grant_badge_elsewhere(&u.id, "speaker").unwrap();
    assert_eq!(cv.badges_by_user()[&u.id][0].source, BadgeSource::Elsewhere);
    c.delete(format!(
        "{}/social/v1/users/{}/badges/speaker",
        cv.base_url(),
        u.id
    ))
    .bearer_auth(DEFAULT_API_KEY)
    .send()
    .await
    .unwrap();
    assert_eq!(
        cv.effects(),
        vec![
            Effect::BadgeGranted {
                user_id: u.id.clone(),
                badge_id: PREMIUM.into()
            },
            Effect::BadgeRemoved {
                user_id: u.id.clone(),
                badge_id: PREMIUM.into(),
                source: BadgeSource::Api
            },
            Effect::BadgeRemoved {
                user_id: u.id.clone(),
                badge_id: "speaker".into(),
                source: BadgeSource::Elsewhere
            },
        ]
    );
}

#[tokio::test]
async fn idempotency_key_gives_one_effect_and_replays_the_response() {
    let (cv, c) = start(CativaConfig::default()).await;
    let u = cv.sign_up("i@example.com", "I", "Dem");
    let url = format!(
        "{}/social/v1/users/{}/badges/{PREMIUM}",
        cv.base_url(),
        u.id
    );
    let send = |key: &'static str| {
        c.post(&url)
            .bearer_auth(DEFAULT_API_KEY)
            .header("Idempotency-Key", key)
            .send()
    };
    let first = send("grant-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_body = first.text().await.unwrap();
    // Someone removes it in between: the replay still must not grant again.
    cv.remove_badge_elsewhere(&u.id, PREMIUM).unwrap();
    let again = send("grant-1").await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    assert!(!cv.user(&u.id).unwrap().has_badge(PREMIUM));
    assert_eq!(cv.effects().len(), 1);
    assert_eq!(cv.idempotency_keys_seen(), vec!["grant-1", "grant-1"]);

    // The same key on another request is refused.
    let r = c
        .delete(&url)
        .bearer_auth(DEFAULT_API_KEY)
        .header("Idempotency-Key", "grant-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // User creation: with a key, one user; without, the second is a 409.
    let users = format!("{}/social/v1/users", cv.base_url());
    let body = json!({"Email": "new@example.com", "FirstName": "New", "LastName": "User"});
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = c
            .post(&users)
            .bearer_auth(DEFAULT_API_KEY)
            .header("Idempotency-Key", "create-new")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        ids.push(v["Id"].as_str().unwrap().to_owned());
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    let r = c
        .post(&users)
        .bearer_auth(DEFAULT_API_KEY)
        .json(&json!({"Email": "NEW@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = c
        .post(&users)
        .bearer_auth(DEFAULT_API_KEY)
        .json(&json!({"Email": "not-an-email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert!(v["errors"]["Email"].is_array());
    let created = cv
        .effects()
        .iter()
        .filter(|e| matches!(e, Effect::UserCreated { .. }))
        .count();
    assert_eq!(created, 1);
    assert!(cv.user_by_email("new@example.com").unwrap().created_via_api);
}

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver on 127.0.0.1 that records what it gets and answers 200.
async fn receiver() -> (String, Received, tokio::task::JoinHandle<()>) {
    let got: Received = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push((headers, body));
                axum::Json(json!({"status": "accepted"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, got, task)
}

fn independent_hmac(secret: &str, t: &str, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn parse_sig(h: &str) -> (String, String) {
    let mut t = String::new();
    let mut v1 = String::new();
    for part in h.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.to_owned(),
            Some(("v1", x)) => v1 = x.to_owned(),
            _ => {}
        }
    }
    (t, v1)
}

#[test]
fn sign_matches_the_published_vectors() {
    let body = br#"{"id":"evt_test_webhook","object":"event"}"#;
    assert_eq!(
        sign("whsec_test_secret", 1_700_000_000, body),
        "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"
    );
    assert_eq!(
        sign("whsec_old_secret", 1_700_000_000, body),
        "e016b64cc4263f90e0336f3975e8d4ac9cc185935edc3ebdd405db64ad0bb1c5"
    );
    assert_eq!(
        sign("whsec_test_secret", 1_700_000_000, b""),
        "316b9ab98c15bfa039d243f3196acee619cf29749a91a634e6a8154e2f7b6727"
    );
    assert_eq!(
        sign(
            "whsec_test_secret",
            1_700_000_000,
            "{\"name\":\"Zoë – café\"}".as_bytes()
        ),
        "32e777160d59f94a5a5cfad8ac030d09b600a35adbe648dcc35634743b65d0c5"
    );
}

#[tokio::test]
async fn webhooks_are_signed_verifiably_and_redeliveries_keep_the_execution_id() {
    let (cv, _) = start(CativaConfig::default()).await;
    let (url, got, _task) = receiver().await;
    let u = cv.sign_up("Hook@Example.com", "Mary Jane", "Watson");
    let delivery = cv.user_created_delivery(&u.id).unwrap();
    let out = cv
        .deliver(&url, &delivery, SignatureMode::Valid)
        .await
        .unwrap();
    assert_eq!(out.status, 200);
    cv.deliver(&url, &delivery, SignatureMode::Valid)
        .await
        .unwrap();

    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let (headers, body) = &got[0];
    let secret = cv.webhook_secret().expose_secret().to_owned();
    let (t, v1) = parse_sig(headers["x-cativa-signature"].to_str().unwrap());
    assert_eq!(v1, independent_hmac(&secret, &t, body));
    assert_eq!(
        headers["x-cativa-execution-id"], got[1].0["x-cativa-execution-id"],
        "a retry keeps its id"
    );
    assert!(headers.contains_key("x-cativa-automation-id"));
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = serde_json::from_str(body).unwrap();
    // The documented payload has no event-name field: the listener says which event.
    assert_eq!(v.get("Event"), None);
    assert_eq!(
        headers["x-cativa-automation-id"].to_str().unwrap(),
        cv.automation_events()[0].1
    );
    assert_eq!(v["CustomerId"], DEFAULT_CUSTOMER_ID);
    assert_eq!(v["UserId"], v["User"]["Id"]);
    assert_eq!(v["Email"], "Hook@Example.com");
    assert_eq!(v["User"]["Email"], v["Email"]);
    assert_eq!(v["FirstName"], "Mary Jane");
    assert_eq!(v["User"]["BadgeId"], Value::Null);
    assert_eq!(v["User"]["Badges"], json!([]));
    assert_eq!(v["CreatedAt"], v["User"]["CreatedAt"]);

    // A new delivery gets a new execution id, and comes from the badge listener;
    // user_received_badge carries the documented nested User, holding the badge.
    cv.grant_badge_elsewhere(&u.id, PREMIUM).unwrap();
    let badge = cv.user_received_badge_delivery(&u.id, PREMIUM).unwrap();
    assert_ne!(badge.execution_id, delivery.execution_id);
    assert_eq!(badge.automation_id, cv.automation_events()[1].1);
    let v: Value = serde_json::from_str(&badge.body).unwrap();
    assert_eq!(v.get("Event"), None);
    assert_eq!(v.get("BadgeName"), None);
    assert_eq!(v["User"]["BadgeId"], PREMIUM);
    assert_eq!(v["User"]["Badges"], json!([PREMIUM]));
    assert_eq!(cv.deliveries().len(), 2);
}

#[test]
fn bad_signature_modes_do_not_verify() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (cv, _) = start(CativaConfig::default().with_webhook_secret("whsec_x")).await;
        let u = cv.sign_up("s@example.com", "S", "S");
        let d = cv.user_created_delivery(&u.id).unwrap();
        let verifies = |mode: SignatureMode| {
            let (header, body) = d.signed("whsec_x", &mode);
            header.is_some_and(|h| {
                let (t, v1) = parse_sig(&h);
                !t.is_empty()
                    && v1 == independent_hmac("whsec_x", &t, &body)
                    && t == d.timestamp.to_string()
            })
        };
        assert!(verifies(SignatureMode::Valid));
        for bad in [
            SignatureMode::WrongSecret,
            SignatureMode::TamperedBody,
            SignatureMode::Missing,
            SignatureMode::Garbage,
            SignatureMode::Stale(Duration::from_secs(600)),
        ] {
            assert!(
                !verifies(bad.clone()),
                "{bad:?} must not verify as fresh and valid"
            );
        }
        // A stale signature is a valid HMAC over an old timestamp.
        let (h, body) = d.signed("whsec_x", &SignatureMode::Stale(Duration::from_secs(600)));
        let (t, v1) = parse_sig(&h.unwrap());
        assert_eq!(t, (d.timestamp - 600).to_string());
        assert_eq!(v1, independent_hmac("whsec_x", &t, &body));
    });
}

#[tokio::test]
async fn api_user_creation_emits_user_created_to_the_target() {
    let (url, got, _task) = receiver().await;
    let (cv, c) = start(CativaConfig::default().with_webhook_target(url)).await;
    let wait_for = |n: usize| {
        let got = got.clone();
        async move {
            for _ in 0..300 {
                if got.lock().unwrap().len() >= n {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            got.lock().unwrap().clone()
        }
    };
    let r = c
        .post(format!("{}/social/v1/users", cv.base_url()))
        .bearer_auth(DEFAULT_API_KEY)
        .json(&json!({"Email": "auto@example.com", "FirstName": "Auto", "LastName": "Emit"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let user: Value = r.json().await.unwrap();
    let id = user["Id"].as_str().unwrap().to_owned();
    let seen = wait_for(1).await;
    let v: Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(v.get("Event"), None);
    assert_eq!(v["Email"], "auto@example.com");

    // A new grant through the API fires user_received_badge; a repeat does not.
    let grant = format!("{}/social/v1/users/{id}/badges/{PREMIUM}", cv.base_url());
    for _ in 0..2 {
        c.post(&grant)
            .bearer_auth(DEFAULT_API_KEY)
            .send()
            .await
            .unwrap();
    }
    // So does a badge granted elsewhere (a purchase).
    cv.grant_badge_elsewhere(&id, "speaker").unwrap();
    let seen = wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(got.lock().unwrap().len(), 3);
    let events: Vec<(String, String)> = seen
        .iter()
        .map(|(h, b)| {
            let v: Value = serde_json::from_str(b).unwrap();
            // Which listener sent it says which event it is.
            let automation = h["x-cativa-automation-id"].to_str().unwrap();
            let (event, _) = cv
                .automation_events()
                .into_iter()
                .find(|(_, a)| a == automation)
                .unwrap();
            (
                event.to_owned(),
                v["User"]["BadgeId"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(events.contains(&("user_received_badge".to_owned(), PREMIUM.to_owned())));
    assert!(events.contains(&("user_received_badge".to_owned(), "speaker".to_owned())));
    assert_eq!(cv.deliveries().len(), 3);
}

#[tokio::test]
async fn seeded_users_rate_limit_and_inspection() {
    let (cv, c) = start(
        CativaConfig::default().with_rate_limits(
            RateLimits::unlimited()
                .with_general(Some(RateLimit::new(2, Duration::from_secs(60))))
                .with_retry_after(true),
        ),
    )
    .await;
    let people = generate(&DataGenConfig::default().with_contacts(200).with_seed(3));
    let users = cv.seed_users(&people);
    let expected: std::collections::BTreeSet<String> = people
        .iter()
        .filter(|p| p.in_community)
        .map(|p| p.normalized_email())
        .collect();
    assert_eq!(users.len(), expected.len());
    let url = format!("{}/social/v1/auth/me", cv.base_url());
    for _ in 0..2 {
        assert_eq!(
            c.get(&url)
                .bearer_auth(DEFAULT_API_KEY)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
    let r = c
        .get(&url)
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "60");
    let state: Value = c
        .get(format!("{}/__sandbox/state", cv.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["users"].as_array().unwrap().len(), users.len());
    let counts: Value = c
        .get(format!("{}/__sandbox/requests", cv.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["GET /social/v1/auth/me"]["requests"], 3);
    assert_eq!(counts["GET /social/v1/auth/me"]["rate_limited"], 1);
}

#[tokio::test]
async fn emit_endpoint_for_manual_runs() {
    let (cv, c) = start(CativaConfig::default()).await;
    let (url, got, _task) = receiver().await;
    let u: Value = c
        .post(format!("{}/__sandbox/users", cv.base_url()))
        .json(&json!({"Email": "m@example.com", "FirstName": "M"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r: Value = c
        .post(format!("{}/__sandbox/webhooks/emit", cv.base_url()))
        .json(&json!({"url": url, "event": "user_created", "userId": u["Id"], "signature": "wrong_secret"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], 200);
    let got = got.lock().unwrap().clone();
    let (t, v1) = parse_sig(got[0].0["x-cativa-signature"].to_str().unwrap());
    assert_ne!(
        v1,
        independent_hmac(cv.webhook_secret().expose_secret(), &t, &got[0].1)
    );
    assert!(!cv.deliveries()[0].validly_signed);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_have_one_effect() {
    let (cv, c) = start(CativaConfig::default()).await;
    let u = cv.sign_up("race@example.com", "R", "Ace");
    let url = format!(
        "{}/social/v1/users/{}/badges/{PREMIUM}",
        cv.base_url(),
        u.id
    );
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            let url = url.clone();
            tokio::spawn(async move {
                c.post(&url)
                    .bearer_auth(DEFAULT_API_KEY)
                    .header("Idempotency-Key", "race-1")
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    assert_eq!(cv.effects().len(), 1);
    assert_eq!(cv.idempotency_keys_seen().len(), 20);
}
