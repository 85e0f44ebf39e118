//! Shared helpers: a wiremock server playing both the login host and the instance.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use crm_salesforce::{LockRetry, OAuthFlow, SalesforceClient};
use secrecy::SecretString;
use serde_json::{Value, json};
use sync_http::RetryPolicy;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const V: &str = "/services/data/v66.0";

pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

pub fn builder(server: &MockServer) -> crm_salesforce::SalesforceClientBuilder {
    SalesforceClient::builder()
        .login_url(server.uri())
        .flow(OAuthFlow::refresh_token(
            "consumer-key",
            None,
            SecretString::from("refresh-secret"),
        ))
        .without_timeouts()
        .retry_policy(
            RetryPolicy::default().with_delays(Duration::from_millis(1), Duration::from_millis(5)),
        )
        .lock_retry(LockRetry::new(3, Duration::from_millis(5)))
        .clock(Arc::new(fixed_now))
}

pub fn client(server: &MockServer) -> SalesforceClient {
    builder(server).build().unwrap()
}

/// Hands out `tok-1`, `tok-2`, ... and names the mock server as the instance.
pub struct Tokens {
    pub instance: String,
    pub n: AtomicUsize,
}

impl Respond for Tokens {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.n.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": format!("tok-{n}"),
            "instance_url": self.instance,
            "id": "https://login.salesforce.com/id/00Dxx0000000001/005xx0000000001",
            "token_type": "Bearer",
            "issued_at": "1708058728442",
            "signature": "c2ln"
        }))
    }
}

pub async fn mount_tokens(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(Tokens {
            instance: server.uri(),
            n: AtomicUsize::new(0),
        })
        .mount(server)
        .await;
}

/// A server with the token endpoint mounted, and a client for it.
pub async fn setup() -> (MockServer, SalesforceClient) {
    let server = MockServer::start().await;
    mount_tokens(&server).await;
    let c = client(&server);
    (server, c)
}

/// Answers a collections call with one success per record, in order, ids `<prefix><n>`.
pub struct EchoCollection {
    pub prefix: &'static str,
    pub created: Option<bool>,
    pub counter: AtomicUsize,
}

impl EchoCollection {
    pub fn new(prefix: &'static str, created: Option<bool>) -> Self {
        Self {
            prefix,
            created,
            counter: AtomicUsize::new(0),
        }
    }
}

impl Respond for EchoCollection {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let n = body["records"].as_array().unwrap().len();
        let results: Vec<Value> = (0..n)
            .map(|_| {
                let i = self.counter.fetch_add(1, Ordering::SeqCst);
                let mut r = json!({"id": format!("{}{:015}", self.prefix, i), "success": true, "errors": []});
                if let Some(c) = self.created {
                    r["created"] = json!(c);
                }
                r
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(results)
    }
}

pub fn query_page(records: Vec<Value>, next: Option<&str>) -> Value {
    let mut v = json!({"totalSize": records.len(), "done": next.is_none(), "records": records});
    if let Some(n) = next {
        v["nextRecordsUrl"] = json!(n);
    }
    v
}

pub fn contact(id: &str, email: &str, stamp: &str) -> Value {
    json!({
        "attributes": {"type": "Contact", "url": format!("{V}/sobjects/Contact/{id}")},
        "Id": id, "SystemModstamp": stamp, "IsDeleted": false, "MasterRecordId": null, "Email": email
    })
}

pub async fn requests_to(server: &MockServer, http_method: &str, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == http_method && r.url.path() == p)
        .collect()
}
