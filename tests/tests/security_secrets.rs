//! Secrets never leak: not in any `tracing` output of a full sandbox run at TRACE level (OAuth
//! refresh included), not in the `Debug` of any type that holds one, and not in API error
//! messages (whose text is kept, bearer tokens redacted).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rel_support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use cativa_client::CativaClient;
use cativa_client::sink::ApiBadgeSink;
use cativa_client::webhook::{EventType, SignatureVerifier, TenantRouter, WebhookReceiver};
use crm_hubspot::{HubSpotClient, HubSpotSink, OAuthCredentials, RateLimitTier, SinkConfig};
use crm_salesforce::{OAuthFlow, SalesforceClient};
use rel_support::*;
use secrecy::SecretString;
use sync_core::DeliveryOutcome;
use sync_core::ports::Store;
use sync_engine::SyncEngine;
use sync_sandbox::cativa::{DEFAULT_API_KEY, DEFAULT_WEBHOOK_SECRET, SignatureMode};
use sync_sandbox::hubspot::{
    DEFAULT_ACCESS_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN,
};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Every byte any subscriber wrote in this test binary.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The global TRACE subscriber (global, so threads and spawned tasks are captured too).
fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::FULL)
            .with_writer(capture.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        capture
    })
}

/// Secrets that must never be written anywhere, with what they are.
fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![
        (DEFAULT_ACCESS_TOKEN, "HubSpot private-app token"),
        (DEFAULT_CLIENT_SECRET, "HubSpot client secret"),
        (DEFAULT_REFRESH_TOKEN, "HubSpot refresh token"),
        // Every OAuth access token the HubSpot sandbox issues starts with this.
        ("CKS-sandbox-oauth-", "HubSpot OAuth access token"),
        (DEFAULT_API_KEY, "Cativa API key"),
        (DEFAULT_WEBHOOK_SECRET, "Cativa webhook secret"),
        ("sf-consumer-secret-9", "Salesforce consumer secret"),
        ("sf-refresh-token-9", "Salesforce refresh token"),
        ("00Dsf!access-token-9", "Salesforce access token"),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for (secret, name) in secrets() {
        assert!(
            !text.contains(secret),
            "{name} leaked in {what}: ...{}...",
            excerpt(text, secret)
        );
    }
}

fn excerpt<'a>(text: &'a str, secret: &str) -> &'a str {
    let at = text.find(secret).unwrap_or(0);
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(120)
        .map_or(0, |(i, _)| i);
    let end = (at + secret.len() + 40).min(text.len());
    text.get(start..end).unwrap_or(text)
}

fn oauth_hubspot(w: &World) -> HubSpotClient {
    HubSpotClient::builder()
        .base_url(w.hubspot.base_url())
        .oauth(OAuthCredentials::new(
            DEFAULT_CLIENT_ID,
            SecretString::from(DEFAULT_CLIENT_SECRET),
            SecretString::from(DEFAULT_REFRESH_TOKEN),
        ))
        .tier(RateLimitTier::Custom {
            requests: 100_000,
            window_ms: 1_000,
        })
        .search_limit(sync_http::RateLimit::new(
            10_000,
            std::time::Duration::from_secs(1),
        ))
        .retry_policy(fast_retries())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_output_of_a_full_sandbox_run_holds_no_secret() {
    let capture = capture();
    let w = world(300, 11).await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir.path().join("sync.db")).await;
    seed_mappings(&w, store.as_ref()).await;
    let hubspot = oauth_hubspot(&w);
    let engine = SyncEngine::builder(config(), store.clone() as Arc<dyn Store>)
        .source(Arc::new(source(&w, hubspot.clone())))
        .crm_sink(Arc::new(HubSpotSink::new(
            hubspot.clone(),
            SinkConfig::default(),
        )))
        .badge_sink(Arc::new(ApiBadgeSink::new(
            w.tenant.clone(),
            cativa_client(&w),
        )))
        .options(options())
        .build();
    tracing::trace!(engine = ?engine, "engine built");

    let full = engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert!(full.stopped.is_none(), "{full:?}");
    assert!(full.applied_total() > 0, "{full:?}");
    assert!(expected(&w).values().any(|b| !b.is_empty()));
    assert_eq!(actual(&w), expected(&w));
    let refreshes = w.hubspot.tokens_issued();
    assert!(refreshes >= 1, "the run used OAuth");

    // The token expires mid-run: the client refreshes and goes on.
    w.hubspot.expire_tokens();
    for id in w.ids.iter().take(20) {
        w.hubspot.add_tag(*id, TAG).unwrap();
    }
    let delta = engine.run_delta(&w.tenant).await.unwrap();
    assert!(delta.stopped.is_none(), "{delta:?}");
    assert!(w.hubspot.tokens_issued() > refreshes, "token refreshed");
    assert_eq!(actual(&w), expected(&w));

    // A signed Cativa delivery, verified and handled (the HubSpot sink writes the contact).
    let user = w.cativa.sign_up("new.member@example.com", "New", "Member");
    let delivery = w.cativa.user_created_delivery(&user.id).unwrap();
    let (signature, body) = delivery.signed(DEFAULT_WEBHOOK_SECRET, &SignatureMode::Valid);
    let receiver = WebhookReceiver::new(
        SignatureVerifier::new(SecretString::from(DEFAULT_WEBHOOK_SECRET)).unwrap(),
    )
    .with_event_type(EventType::UserCreated);
    tracing::trace!(receiver = ?receiver, "receiver built");
    let verified = receiver
        .receive_parts(
            signature.as_deref(),
            Some(&delivery.execution_id),
            Some(&delivery.automation_id),
            body.as_bytes(),
            delivery.timestamp,
        )
        .unwrap();
    let event = verified.to_community_event().unwrap();
    let outcome = engine
        .handle_community_event(&w.tenant, verified.execution_id.as_str(), event)
        .await
        .unwrap();
    assert!(
        matches!(outcome, DeliveryOutcome::Accepted { .. }),
        "{outcome:?}"
    );

    // A failing call is logged too: a wrong Cativa key is refused with 401.
    let bad = CativaClient::builder(SecretString::from("cativa_pk_wrong_key_1234567"))
        .base_url(w.cativa.base_url())
        .build()
        .unwrap();
    let err = bad.me().await.unwrap_err();
    tracing::error!(error = %err, debug = ?err, "expected failure");
    assert!(!err.to_string().contains("cativa_pk_wrong_key_1234567"));

    let text = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("TRACE") && text.contains("sync.run"),
        "the subscriber captured the run"
    );
    assert_clean("TRACE output", &text);
}

#[test]
fn debug_of_every_secret_holder_hides_the_secret() {
    let mut seen = Vec::new();
    let hubspot_builder = HubSpotClient::builder()
        .base_url("http://127.0.0.1:9")
        .access_token(SecretString::from(DEFAULT_ACCESS_TOKEN));
    seen.push(format!("{hubspot_builder:?}"));
    let hubspot = hubspot_builder.build().unwrap();
    seen.push(format!("{hubspot:?} {hubspot:#?}"));
    let creds = OAuthCredentials::new(
        DEFAULT_CLIENT_ID,
        SecretString::from(DEFAULT_CLIENT_SECRET),
        SecretString::from(DEFAULT_REFRESH_TOKEN),
    );
    seen.push(format!("{creds:?}"));
    let oauth_builder = HubSpotClient::builder()
        .base_url("http://127.0.0.1:9")
        .oauth(creds);
    seen.push(format!("{oauth_builder:?}"));
    let oauth = oauth_builder.build().unwrap();
    seen.push(format!("{oauth:?}"));
    let sink = HubSpotSink::new(oauth.clone(), SinkConfig::default());
    seen.push(format!("{sink:?}"));
    let hs_verifier =
        crm_hubspot::webhook::SignatureVerifier::new(SecretString::from(DEFAULT_CLIENT_SECRET));
    seen.push(format!("{hs_verifier:?}"));
    let hs_receiver = crm_hubspot::webhook::WebhookReceiver::new(hs_verifier);
    seen.push(format!("{hs_receiver:?}"));

    let cativa_builder = CativaClient::builder(SecretString::from(DEFAULT_API_KEY));
    seen.push(format!("{cativa_builder:?}"));
    let cativa = cativa_builder.build().unwrap();
    seen.push(format!("{cativa:?} {:?}", cativa.http()));
    let badge_sink = ApiBadgeSink::new(sync_core::TenantId::new("t"), cativa.clone());
    seen.push(format!("{badge_sink:?}"));
    let verifier = SignatureVerifier::new(SecretString::from(DEFAULT_WEBHOOK_SECRET)).unwrap();
    seen.push(format!("{verifier:?}"));
    let receiver = WebhookReceiver::new(verifier);
    seen.push(format!("{receiver:?}"));
    let router = TenantRouter::new().route(
        cativa_client::webhook::CustomerId::new("c-1"),
        sync_core::TenantId::new("t"),
        receiver,
    );
    seen.push(format!("{router:?}"));

    for flow in [
        OAuthFlow::client_credentials("cid", SecretString::from("sf-consumer-secret-9")),
        OAuthFlow::refresh_token(
            "cid",
            Some(SecretString::from("sf-consumer-secret-9")),
            SecretString::from("sf-refresh-token-9"),
        ),
        OAuthFlow::AccessToken(SecretString::from("00Dsf!access-token-9")),
    ] {
        seen.push(format!("{flow:?}"));
        let builder = SalesforceClient::builder()
            .login_url("https://acme.my.salesforce.com")
            .instance_url("https://acme.my.salesforce.com")
            .flow(flow);
        seen.push(format!("{builder:?}"));
        let client = builder.build().unwrap();
        seen.push(format!("{client:?}"));
    }

    let engine = SyncEngine::builder(config(), Arc::new(sync_core::MemoryStore::new()))
        .badge_sink(Arc::new(badge_sink))
        .crm_sink(Arc::new(sink))
        .build();
    seen.push(format!("{engine:?}"));

    for text in &seen {
        assert_clean("a Debug impl", text);
        assert!(!text.is_empty());
    }
}

/// A fake HubSpot that echoes the caller's bearer token in its error message (as some
/// gateways do).
async fn echoing_server() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let token = request
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .starts_with("authorization:")
                            .then(|| l["authorization:".len()..].trim().to_owned())
                    })
                    .unwrap_or_default();
                let body = serde_json::json!({
                    "status": "error",
                    "message": format!("Authentication credentials not found: the header '{token}' is not a valid OAuth token; access_token={} rejected", token.trim_start_matches("Bearer ")),
                    "correlationId": "c0ffee00-0000-4000-8000-000000000001",
                    "category": "INVALID_AUTHENTICATION"
                })
                .to_string();
                let response = format!(
                    "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), task)
}

#[tokio::test]
async fn api_error_messages_keep_their_text_but_not_bearer_tokens() {
    let capture = capture();
    let (url, server) = echoing_server().await;
    let hubspot = HubSpotClient::builder()
        .base_url(url.clone())
        .access_token(SecretString::from(DEFAULT_ACCESS_TOKEN))
        .retry_policy(sync_http::RetryPolicy::none())
        .build()
        .unwrap();
    let err = hubspot
        .list_contacts(&crm_hubspot::ListOptions::default())
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    tracing::error!(error = %err, "expected failure");
    assert!(
        shown.contains("Authentication credentials not found"),
        "the API's message is kept: {shown}"
    );
    assert!(
        shown.contains("c0ffee00-0000-4000-8000-000000000001"),
        "{shown}"
    );
    assert!(shown.contains("[redacted]"), "{shown}");
    assert_clean("a HubSpot error", &shown);

    let cativa = CativaClient::builder(SecretString::from(DEFAULT_API_KEY))
        .base_url(url)
        .retry_policy(sync_http::RetryPolicy::none())
        .build()
        .unwrap();
    let err = cativa.me().await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("Authentication credentials not found"),
        "the API's message is kept: {shown}"
    );
    assert_clean("a Cativa error", &shown);
    server.abort();
    let text = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert_clean("TRACE output", &text);
}
