//! The builder's `timeout` and `configure_http` hook, shared with the other connectors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crm_salesforce::{OAuthFlow, SalesforceClient};
use secrecy::SecretString;
use sync_http::RetryPolicy;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn builder(server: &MockServer) -> crm_salesforce::SalesforceClientBuilder {
    SalesforceClient::builder()
        .login_url(server.uri())
        .instance_url(server.uri())
        .flow(OAuthFlow::AccessToken(SecretString::from("00D!token")))
        .retry_policy(RetryPolicy::none())
}

#[tokio::test]
async fn configure_http_reaches_the_reqwest_builder() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "totalSize": 0, "done": true, "records": []
        })))
        .mount(&server)
        .await;
    let client = builder(&server)
        .configure_http(|b| {
            let mut h = sync_http::http::HeaderMap::new();
            h.insert("x-egress-proxy", "partner".parse().unwrap());
            b.default_headers(h)
        })
        .build()
        .unwrap();
    client
        .query::<serde_json::Value>("SELECT Id FROM Contact")
        .await
        .unwrap();
    let received = server.received_requests().await.unwrap();
    assert_eq!(received[0].headers["x-egress-proxy"], "partner");
}

#[tokio::test]
async fn timeout_bounds_each_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let client = builder(&server)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let e = client
        .query::<serde_json::Value>("SELECT Id FROM Contact")
        .await
        .unwrap_err();
    let core: sync_core::Error = e.into();
    let sync_core::Error::Remote(r) = core else {
        panic!("{core:?}");
    };
    assert_eq!(r.kind, sync_core::RemoteErrorKind::Timeout, "{r:?}");
}
