//! The builder's `timeout` and `configure_http` hook, shared with the other connectors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cativa_client::CativaClient;
use secrecy::SecretString;
use sync_http::{ErrorKind, RetryPolicy};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn configure_http_reaches_the_reqwest_builder() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/social/v1/auth/me"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let client = CativaClient::builder(SecretString::from("k"))
        .base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .configure_http(|b| {
            let mut h = sync_http::http::HeaderMap::new();
            h.insert("x-egress-proxy", "partner".parse().unwrap());
            b.default_headers(h)
        })
        .build()
        .unwrap();
    client.me().await.unwrap_err();
    let received = server.received_requests().await.unwrap();
    assert_eq!(received[0].headers["x-egress-proxy"], "partner");
}

#[tokio::test]
async fn timeout_bounds_each_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/social/v1/auth/me"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let client = CativaClient::builder(SecretString::from("k"))
        .base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let e = client.me().await.unwrap_err();
    assert_eq!(e.http().unwrap().kind(), ErrorKind::Timeout, "{e}");
}
