//! The service as a partner runs it: the `webhook_receiver` example started as a child
//! process (`--listen 127.0.0.1:0`, the documented environment) against sandbox HubSpot and
//! Cativa servers, talked to over HTTP with the documented payloads, hostile clients,
//! `kill -9` and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod example_process;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cativa_crm_sync_tests::SEED_USER_CREATED;
use example_process::Process;
use futures::StreamExt;
use sync_sandbox::hubspot::{DEFAULT_ACCESS_TOKEN, DEFAULT_CLIENT_SECRET, HubSpotConfig};
use sync_sandbox::ratelimit::RateLimits;
use sync_sandbox::{SandboxConfig, SandboxServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
struct World {
    sandbox: SandboxServer,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let config = SandboxConfig::default()
            .with_hubspot(HubSpotConfig::default().with_rate_limits(RateLimits::unlimited()));
        Self {
            sandbox: SandboxServer::start(config).await.unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn secret(&self) -> secrecy::SecretString {
        self.sandbox.cativa().webhook_secret().clone()
    }

    fn env(&self, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (
                "HUBSPOT_BASE_URL",
                self.sandbox.hubspot().base_url().to_owned(),
            ),
            ("HUBSPOT_TOKEN", DEFAULT_ACCESS_TOKEN.to_owned()),
            ("HUBSPOT_CLIENT_SECRET", DEFAULT_CLIENT_SECRET.to_owned()),
            (
                "CATIVA_BASE_URL",
                self.sandbox.cativa().base_url().to_owned(),
            ),
            (
                "CATIVA_API_KEY",
                sync_sandbox::cativa::DEFAULT_API_KEY.to_owned(),
            ),
            (
                "CATIVA_WEBHOOK_SECRET",
                secrecy::ExposeSecret::expose_secret(&self.secret()).to_owned(),
            ),
            (
                "SYNC_DATABASE_URL",
                self.dir.path().join("sync.db").display().to_string(),
            ),
            ("SYNC_TENANT", "acme".to_owned()),
            // Push only: no scheduled pulls muddle what the deliveries did.
            ("SYNC_PULL_INTERVAL_SECS", "0".to_owned()),
        ];
        for (k, v) in extra {
            let k: &'static str = Box::leak((*k).to_owned().into_boxed_str());
            env.retain(|(name, _)| *name != k);
            env.push((k, (*v).to_owned()));
        }
        env
    }

    /// Starts the receiver; returns it and its base URL once it listens.
    async fn receiver(&self, extra: &[(&str, &str)]) -> (Process, String) {
        let process = Process::start(
            "webhook_receiver",
            &["--listen", "127.0.0.1:0", "--create-properties"],
            &self.env(extra),
        );
        let line = process
            .wait_for_line("Listening on http://", Duration::from_secs(60))
            .await;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .trim_end_matches([':', ',', '.'])
            .to_owned();
        (process, url)
    }

    fn contacts_with(&self, email: &str) -> usize {
        self.sandbox
            .hubspot()
            .contacts_by_email(email)
            .iter()
            .filter(|c| !c.archived)
            .count()
    }
}

fn user_body(i: usize) -> (String, String) {
    let email = format!("member{i}@example.com");
    let id = format!("0b7e8c1f-aaaa-4bbb-8ccc-{i:012}");
    let body = format!(
        r#"{{"CustomerId":"5a4d0b0c-0000-4000-8000-c0ffee000001","UserId":"{id}","Email":"{email}","FirstName":"Member","LastName":"{i}","User":{{"Id":"{id}","Email":"{email}","FirstName":"Member","LastName":"{i}","BadgeId":null,"Badges":[]}}}}"#
    );
    (email, body)
}

/// Posts a signed delivery; `None` when no answer came (connection refused or cut).
async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &secrecy::SecretString,
    body: &str,
    execution_id: &str,
) -> Option<(u16, serde_json::Value)> {
    let t = chrono::Utc::now().timestamp();
    let response = client
        .post(format!("{url}/webhooks/cativa/user_created"))
        .header("content-type", "application/json")
        .header(
            "x-cativa-signature",
            cativa_client::webhook::sign(secret, t, body.as_bytes()),
        )
        .header("x-cativa-execution-id", execution_id)
        .body(body.to_owned())
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let json = response.json().await.ok()?;
    Some((status, json))
}

fn client() -> reqwest::Client {
    sync_http::tls::client_builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_004_payload_provisions_a_crm_contact() {
    let world = World::start().await;
    let (_service, url) = world.receiver(&[]).await;
    let answer = post_signed(
        &client(),
        &url,
        &world.secret(),
        SEED_USER_CREATED,
        "exec-seed-004",
    )
    .await
    .unwrap();
    assert_eq!(answer.0, 200, "{answer:?}");
    assert_eq!(answer.1["status"], "accepted", "{answer:?}");
    let contacts = world
        .sandbox
        .hubspot()
        .contacts_by_email("maria.silva@example.com.br");
    assert_eq!(contacts.len(), 1, "one contact, found by normalized email");
    assert_eq!(
        contacts[0]
            .properties
            .get("cativa_user_id")
            .map(String::as_str),
        Some("3f9a1c2e-7b4d-4e8f-9a0b-1c2d3e4f5a6b"),
        "the ids are linked on the contact"
    );
    // The retry (same execution id) is a duplicate and creates nothing.
    let again = post_signed(
        &client(),
        &url,
        &world.secret(),
        SEED_USER_CREATED,
        "exec-seed-004",
    )
    .await
    .unwrap();
    assert_eq!(again.1["status"], "duplicate", "{again:?}");
    assert_eq!(world.contacts_with("maria.silva@example.com.br"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_crm_property_refuses_start_naming_it() {
    let world = World::start().await;
    // Without --create-properties, and the account lacks the SDK's properties.
    let mut process = Process::start(
        "webhook_receiver",
        &["--listen", "127.0.0.1:0"],
        &world.env(&[]),
    );
    let code = process.exit_code(Duration::from_secs(60)).await;
    let said = format!("{}\n{}", process.stdout(), process.stderr());
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("cativa_user_id"), "{said}");
    assert!(
        said.contains("--create-properties") || said.contains("crm.schemas.contacts.write"),
        "{said}"
    );
    assert!(
        !said.contains("Listening on"),
        "it never accepted deliveries: {said}"
    );
}

/// Each member's answer: `accepted` / `duplicate`, or `None` when none came.
type Answers = Arc<Mutex<BTreeMap<usize, Option<String>>>>;

/// Sends `count` deliveries, `concurrency` at a time, and records each answer (or its absence).
fn load(
    url: String,
    secret: secrecy::SecretString,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> (Answers, tokio::task::JoinHandle<()>) {
    let answers = Arc::new(Mutex::new(BTreeMap::new()));
    let sink = answers.clone();
    let task = tokio::spawn(async move {
        let client = client();
        futures::stream::iter(range)
            .map(|i| {
                let (client, url, secret, sink) = (&client, &url, &secret, sink.clone());
                async move {
                    let (_, body) = user_body(i);
                    let answer =
                        post_signed(client, url, secret, &body, &format!("exec-{i}")).await;
                    let status = answer
                        .filter(|(s, _)| *s == 200)
                        .and_then(|(_, j)| j["status"].as_str().map(str::to_owned));
                    sink.lock().unwrap().insert(i, status);
                }
            })
            .buffer_unordered(concurrency)
            .collect::<Vec<()>>()
            .await;
    });
    (answers, task)
}

async fn wait_answers(answers: &Mutex<BTreeMap<usize, Option<String>>>, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while answers.lock().unwrap().values().flatten().count() < at_least {
        assert!(Instant::now() < deadline, "the load made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// After a restart, resends what was not accepted and waits (up to 10 s) until every
/// member has exactly one CRM contact.
async fn resend_and_verify(
    world: &World,
    url: &str,
    answers: &BTreeMap<usize, Option<String>>,
    total: usize,
) {
    let restarted = Instant::now();
    let client = client();
    for (i, status) in answers {
        if status.is_none() {
            let (_, body) = user_body(*i);
            let again =
                post_signed(&client, url, &world.secret(), &body, &format!("exec-{i}")).await;
            let (code, json) = again.unwrap();
            assert_eq!(code, 200, "{json}");
        }
    }
    loop {
        let missing: Vec<usize> = (0..total)
            .filter(|i| world.contacts_with(&user_body(*i).0) == 0)
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "{} contacts still missing 10 s after the restart: {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..total {
        assert_eq!(world.contacts_with(&user_body(i).0), 1, "member{i} twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_load_then_restart_loses_and_duplicates_nothing() {
    const TOTAL: usize = 400;
    let world = World::start().await;
    let (service, url) = world.receiver(&[]).await;
    let (answers, task) = load(url, world.secret(), 0..TOTAL, 32);
    wait_answers(&answers, 120).await;
    service.signal("KILL");
    task.await.unwrap();
    let answers = answers.lock().unwrap().clone();
    let unanswered = answers.values().filter(|s| s.is_none()).count();
    assert!(unanswered > 0, "the kill landed mid-load");

    let (_service, url) = world.receiver(&[]).await;
    resend_and_verify(&world, &url, &answers, TOTAL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_loses_no_accepted_delivery() {
    const TOTAL: usize = 300;
    let world = World::start().await;
    let (mut service, url) = world.receiver(&[]).await;
    let (answers, task) = load(url, world.secret(), 0..TOTAL, 16);
    wait_answers(&answers, 100).await;
    service.signal("TERM");
    assert_eq!(service.exit_code(Duration::from_secs(60)).await, Some(0));
    task.await.unwrap();
    let answers = answers.lock().unwrap().clone();
    assert!(service.stdout().contains("Stopped"), "{}", service.stdout());

    // Only what was not accepted is sent again: an accepted delivery must not need it.
    let (_service, url) = world.receiver(&[]).await;
    resend_and_verify(&world, &url, &answers, TOTAL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_header_clients_are_dropped_and_do_not_delay_deliveries() {
    let world = World::start().await;
    let (_service, url) = world
        .receiver(&[("SYNC_HTTP_HEADER_TIMEOUT_SECS", "5")])
        .await;
    let addr = url.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"POST /webhooks/cativa/user_created HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let opened = Instant::now();
    // Each slow client sends one more header line a second, for up to 30 s.
    let trickle = tokio::spawn(async move {
        let mut closed_after = Vec::new();
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut still = Vec::new();
            for mut s in slow.drain(..) {
                if s.write_all(b"x-slow: 1\r\n").await.is_ok() && !is_closed(&mut s).await {
                    still.push(s);
                } else {
                    closed_after.push(opened.elapsed());
                }
            }
            slow = still;
            if slow.is_empty() {
                break;
            }
        }
        (slow.len(), closed_after)
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, body) = user_body(7);
    let started = Instant::now();
    let answer = post_signed(&client(), &url, &world.secret(), &body, "exec-normal")
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(answer.1["status"], "accepted", "{answer:?}");
    assert!(
        took < Duration::from_secs(1),
        "a normal delivery took {took:?}"
    );
    let (left, closed_after) = trickle.await.unwrap();
    assert_eq!(left, 0, "slow-header connections still open after 30 s");
    assert!(
        closed_after.iter().all(|d| *d < Duration::from_secs(12)),
        "dropped at the header timeout (5 s), not later: max {:?}",
        closed_after.iter().max()
    );
}

/// Whether the peer closed the connection (a read returns at once with 0 bytes or an error).
async fn is_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) => true,
        Err(_) => false,
    }
}

async fn raw(addr: &str, request: &[u8]) -> (u16, String, serde_json::Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    (status, head.to_ascii_lowercase(), json)
}

fn signed_raw(path: &str, secret: &secrecy::SecretString, body: &str) -> Vec<u8> {
    let sig = cativa_client::webhook::sign(secret, chrono::Utc::now().timestamp(), body.as_bytes());
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\nx-cativa-signature: {sig}\r\nx-cativa-execution-id: exec-{}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len(),
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status_has_a_json_body_that_leaks_nothing_internal() {
    let world = World::start().await;
    let (_service, url) = world
        .receiver(&[
            ("SYNC_HTTP_BODY_TIMEOUT_SECS", "1"),
            ("SYNC_HTTP_MAX_CONCURRENCY", "1"),
        ])
        .await;
    let addr = url.trim_start_matches("http://").to_owned();
    let secret = world.secret();
    let get = |path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}\r\n").into_bytes()
    };
    let many_headers: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    let confused =
        SEED_USER_CREATED.replace("\"User\": {", "\"User\": \"not an object\", \"Ignored\": {");
    let mut cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unknown route", get("/nowhere", ""), 404),
        ("wrong method", get("/webhooks/cativa/user_created", ""), 405),
        ("unknown event", signed_raw("/webhooks/cativa/user_deleted", &secret, "{}"), 404),
        ("unsigned", b"POST /webhooks/cativa/user_created HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}".to_vec(), 401),
        ("not JSON", signed_raw("/webhooks/cativa/user_created", &secret, "{not json"), 400),
        ("wrong types", signed_raw("/webhooks/cativa/user_created", &secret, &confused), 400),
        ("event undetermined", signed_raw("/webhooks/cativa", &secret, SEED_USER_CREATED), 422),
        ("too many headers", get("/healthz", &many_headers), 431),
        (
            "body too large",
            format!("POST /webhooks/cativa/user_created HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", 2 << 20).into_bytes(),
            413,
        ),
        ("HubSpot unsigned", b"POST /webhooks/hubspot HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n[]".to_vec(), 401),
    ];
    let mut seen = Vec::new();
    for (name, request, want) in cases.drain(..) {
        let (status, head, json) = raw(&addr, &request).await;
        assert_eq!(status, want, "{name}: {json}");
        seen.push((name, head, json));
    }
    // A stalled body holds the only slot: the next request is shed (503), the stalled one
    // times out (408).
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"POST /webhooks/cativa/user_created HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 10\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, head, json) = raw(&addr, &get("/healthz", "")).await;
    assert_eq!(status, 503, "{json}");
    assert!(head.contains("retry-after:"), "{head}");
    seen.push(("shed", head, json));
    let mut out = Vec::new();
    stalled.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    seen.push((
        "stalled body",
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap(),
    ));

    for (name, head, json) in &seen {
        assert!(
            head.contains("content-type: application/json"),
            "{name}: {head}"
        );
        assert!(
            json["error"].as_str().is_some_and(|c| !c.is_empty()),
            "{name}: {json}"
        );
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: {json}"
        );
        let id = json["request_id"].as_str().unwrap_or_default();
        assert!(
            !id.is_empty() && head.contains(&format!("x-request-id: {id}")),
            "{name}: {json}"
        );
        let text = json.to_string().to_ascii_lowercase();
        for leak in [
            "struct ",
            "enum ",
            "::",
            "sqlx",
            "sqlite",
            "database",
            "select ",
            "insert ",
            "/tmp",
            "/work",
            ".rs",
            "expected ",
        ] {
            assert!(!text.contains(leak), "{name} leaks {leak:?}: {json}");
        }
    }
}

/// `STATUS_TOKEN` mounts the status routes: 401 (with `WWW-Authenticate: Bearer`) without
/// the token, the status JSON with it, and the page's sign-in form for a browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_routes_answer_401_without_the_token_and_json_with_it() {
    let world = World::start().await;
    let (service, url) = world
        .receiver(&[("STATUS_TOKEN", "process-status-token")])
        .await;
    service
        .wait_for_line("Status page: http://", Duration::from_secs(10))
        .await;
    let http = client();
    let anonymous = http.get(format!("{url}/status/acme")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous
            .headers()
            .get("www-authenticate")
            .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer"))
    );
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized", "{body}");
    assert!(!body.to_string().contains("acme"), "{body}");
    let status: serde_json::Value = http
        .get(format!("{url}/status/acme"))
        .bearer_auth("process-status-token")
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["tenant"], "acme", "{status}");
    // The start-up check recorded the credentials as accepted.
    assert_eq!(status["connection"]["ok"], true, "{status}");
    let page = http.get(format!("{url}/status/page")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("id=\"sign-in\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_status_token_the_status_routes_are_404() {
    let world = World::start().await;
    let (_service, url) = world.receiver(&[]).await;
    let answer = client()
        .get(format!("{url}/status"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
}
