//! [`WebhookObserver`]: an alert that posts each change of a tenant's sync health as JSON
//! to a URL (an incident tool, a chat webhook relay, your own endpoint).

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use sync_core::TenantId;
use sync_core::status::{Health, StatusObserver, SyncStatus};

/// The JSON body posted for one health change.
#[derive(Debug, Serialize)]
struct HealthChange<'a> {
    /// The tenant.
    tenant: &'a TenantId,
    /// The health before.
    old: &'a Health,
    /// The health now.
    new: &'a Health,
    /// The status that showed the change.
    status: &'a SyncStatus,
}

/// Posts `{"tenant", "old", "new", "status"}` (the health before and after, each
/// `{"state", "reasons"}`, and the full status JSON) to a URL on every health change.
///
/// A failed post is logged (`tracing` warning) and not retried: the next change posts
/// again, and the status stays readable from the store.
#[derive(Debug, Clone)]
pub struct WebhookObserver {
    client: reqwest::Client,
    url: String,
}

impl WebhookObserver {
    /// Posts to `url`, each post given at most 10 seconds.
    pub fn new(url: impl Into<String>) -> Result<Self, crate::Error> {
        Self::with_timeout(url, Duration::from_secs(10))
    }

    /// Posts to `url`, each post given at most `timeout`.
    pub fn with_timeout(url: impl Into<String>, timeout: Duration) -> Result<Self, crate::Error> {
        let url = url.into();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(crate::Error::Config(format!(
                "status webhook URL {url:?} must start with http:// or https://"
            )));
        }
        let client = sync_http::tls::client_builder()
            .timeout(timeout)
            .build()
            .map_err(|e| {
                crate::Error::Config(format!("cannot build the status webhook client: {e}"))
            })?;
        Ok(Self { client, url })
    }
}

#[async_trait]
impl StatusObserver for WebhookObserver {
    async fn on_health_change(
        &self,
        tenant: &TenantId,
        old: &Health,
        new: &Health,
        status: &SyncStatus,
    ) {
        let body = HealthChange {
            tenant,
            old,
            new,
            status,
        };
        match self.client.post(&self.url).json(&body).send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => tracing::warn!(
                tenant = %tenant,
                status = response.status().as_u16(),
                "the status webhook refused the health change"
            ),
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "could not post the health change")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use sync_core::status::HealthState;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn posts_the_change_as_json() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/alerts"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let observer = WebhookObserver::new(format!("{}/alerts", server.uri())).unwrap();
        let tenant = TenantId::new("acme");
        let mut status = SyncStatus::new(
            tenant.clone(),
            Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 0).unwrap(),
        );
        status.health.state = HealthState::Red;
        status.health.reasons = vec!["credentials rejected: token expired".to_owned()];
        let health = status.health.clone();
        observer
            .on_health_change(&tenant, &Health::green(), &health, &status)
            .await;
        let requests = server.received_requests().await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
        assert_eq!(body["tenant"], "acme");
        assert_eq!(body["old"]["state"], "green");
        assert_eq!(body["new"]["state"], "red");
        assert_eq!(
            body["new"]["reasons"][0],
            "credentials rejected: token expired"
        );
        assert_eq!(body["status"]["health"]["state"], "red");
    }

    #[test]
    fn refuses_a_url_without_a_scheme() {
        assert!(WebhookObserver::new("hooks.example.com/alerts").is_err());
    }
}
