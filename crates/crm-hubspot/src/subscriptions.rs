//! Webhook subscriptions of a public HubSpot app (webhooks v3): the app's target URL and
//! throttling (`/webhooks/v3/{appId}/settings`) and its event subscriptions
//! (`/webhooks/v3/{appId}/subscriptions`). These endpoints belong to the developer account,
//! so they take the developer API key in the `hapikey` query parameter, not an OAuth token
//! (it never appears in logs: requests are logged by their path template, and `hapikey`
//! values are redacted from error texts).
//!
//! [`WebhookSubscriptions::ensure`] makes the app's settings and subscriptions match what
//! the sync needs, creating only what is missing: run it at deploy time, as often as you like.

use std::fmt;

use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The app's webhook settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookSettings {
    /// Where HubSpot sends the app's webhook deliveries.
    pub target_url: String,
    /// How fast HubSpot sends them.
    #[serde(default)]
    pub throttling: Option<Throttling>,
}

/// Delivery throttling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Throttling {
    /// Requests in flight at once.
    pub max_concurrent_requests: u32,
    /// `SECONDLY` (or `ROLLING_MINUTE`).
    pub period: String,
}

impl Throttling {
    /// At most `max_concurrent_requests` per second.
    pub fn per_second(max_concurrent_requests: u32) -> Self {
        Self {
            max_concurrent_requests,
            period: "SECONDLY".into(),
        }
    }
}

/// A subscription to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NewSubscription {
    /// `contact.creation`, `contact.deletion`, `contact.propertyChange`, ...
    pub event_type: String,
    /// The property of a `*.propertyChange` subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property_name: Option<String>,
    /// Whether it delivers at once (HubSpot's default is paused).
    pub active: bool,
}

impl NewSubscription {
    /// An active subscription to `event_type`.
    pub fn new(event_type: impl Into<String>) -> Self {
        Self {
            event_type: event_type.into(),
            property_name: None,
            active: true,
        }
    }

    /// An active `contact.propertyChange` subscription to `property`.
    pub fn contact_property(property: impl Into<String>) -> Self {
        Self {
            property_name: Some(property.into()),
            ..Self::new("contact.propertyChange")
        }
    }

    fn same_as(&self, s: &Subscription) -> bool {
        self.event_type == s.event_type && self.property_name == s.property_name
    }
}

/// A subscription as HubSpot keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// The event type.
    pub event_type: String,
    /// The property, for a property change.
    #[serde(default)]
    pub property_name: Option<String>,
    /// Whether it delivers.
    pub active: bool,
}

#[derive(Deserialize)]
struct SubscriptionList {
    results: Vec<Subscription>,
}

/// The contact subscriptions the sync reads: creations, deletions, merges, and changes of
/// each of `properties` (the ones the configuration maps, the email among them).
pub fn contact_subscriptions<S: AsRef<str>>(properties: &[S]) -> Vec<NewSubscription> {
    let mut wanted = vec![
        NewSubscription::new("contact.creation"),
        NewSubscription::new("contact.deletion"),
        NewSubscription::new("contact.merge"),
    ];
    wanted.extend(
        properties
            .iter()
            .map(|p| NewSubscription::contact_property(p.as_ref())),
    );
    wanted
}

/// What [`WebhookSubscriptions::ensure`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnsureReport {
    /// Whether the settings (target URL, throttling) were written.
    pub settings_updated: bool,
    /// Subscriptions created.
    pub created: Vec<Subscription>,
    /// Subscriptions that existed paused and were activated.
    pub activated: Vec<Subscription>,
    /// Subscriptions already as wanted.
    pub unchanged: usize,
}

/// The webhook subscription API of one app, with the developer API key. Cheap to clone.
#[derive(Clone)]
pub struct WebhookSubscriptions {
    http: sync_http::HttpClient,
    app_id: String,
    api_key: SecretString,
}

impl fmt::Debug for WebhookSubscriptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSubscriptions")
            .field("app_id", &self.app_id)
            .field("api_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl WebhookSubscriptions {
    /// The API of app `app_id` at `base_url` ([`crate::DEFAULT_BASE_URL`] in production).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad base URL.
    pub fn new(
        base_url: impl Into<String>,
        app_id: u64,
        developer_api_key: SecretString,
    ) -> Result<Self, Error> {
        let http = sync_http::HttpClient::builder(base_url)
            .user_agent(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self {
            http,
            app_id: app_id.to_string(),
            api_key: developer_api_key,
        })
    }

    fn request(
        &self,
        method: Method,
        rest: &[&str],
        template: &str,
    ) -> sync_http::RequestBuilder<'_> {
        let mut segments = vec!["webhooks", "v3", self.app_id.as_str()];
        segments.extend_from_slice(rest);
        self.http
            .request_segments(method, &segments)
            .query(&[("hapikey", self.api_key.expose_secret())])
            .log_path(format!("/webhooks/v3/{{appId}}/{template}"))
    }

    /// The app's settings; `None` when none are set (404).
    ///
    /// # Errors
    /// [`Error::Http`] for a wrong developer API key (401) or an unreachable HubSpot.
    pub async fn settings(&self) -> Result<Option<WebhookSettings>, Error> {
        match self
            .request(Method::GET, &["settings"], "settings")
            .idempotent(true)
            .send_json()
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.status().is_some_and(|s| s.as_u16() == 404) => Ok(None),
            Err(e) => Err(Error::Http(e)),
        }
    }

    /// Sets the target URL and throttling (`PUT .../settings`).
    ///
    /// # Errors
    /// [`Error::Http`] when HubSpot refuses them (e.g. not a URL) or cannot be reached.
    pub async fn put_settings(&self, settings: &WebhookSettings) -> Result<WebhookSettings, Error> {
        self.request(Method::PUT, &["settings"], "settings")
            .json(settings)
            .idempotent(true)
            .send_json()
            .await
            .map_err(Error::Http)
    }

    /// The app's subscriptions.
    ///
    /// # Errors
    /// [`Error::Http`] for a wrong developer API key (401) or an unreachable HubSpot.
    pub async fn list(&self) -> Result<Vec<Subscription>, Error> {
        let list: SubscriptionList = self
            .request(Method::GET, &["subscriptions"], "subscriptions")
            .idempotent(true)
            .send_json()
            .await
            .map_err(Error::Http)?;
        Ok(list.results)
    }

    /// Creates a subscription (`POST .../subscriptions`). Not retried: a retry after a lost
    /// answer would meet the one created; [`ensure`](Self::ensure) is the safe way.
    ///
    /// # Errors
    /// [`Error::Http`] when HubSpot refuses it (unknown event type, a duplicate).
    pub async fn create(&self, new: &NewSubscription) -> Result<Subscription, Error> {
        self.request(Method::POST, &["subscriptions"], "subscriptions")
            .json(new)
            .send_json()
            .await
            .map_err(Error::Http)
    }

    /// Activates or pauses a subscription (`PATCH .../subscriptions/{id}`).
    ///
    /// # Errors
    /// [`Error::Http`] for an unknown id or an unreachable HubSpot.
    pub async fn set_active(&self, id: &str, active: bool) -> Result<Subscription, Error> {
        self.request(
            Method::PATCH,
            &["subscriptions", id],
            "subscriptions/{subscriptionId}",
        )
        .json(&serde_json::json!({ "active": active }))
        .idempotent(true)
        .send_json()
        .await
        .map_err(Error::Http)
    }

    /// Makes the app deliver `wanted` to `settings.target_url`: writes the settings when
    /// they differ, creates the subscriptions missing, activates the paused ones. Others are
    /// left as they are. Running it twice changes nothing the second time.
    ///
    /// # Errors
    /// The first call HubSpot refuses; what was done before it stays done, so run it again.
    pub async fn ensure(
        &self,
        settings: &WebhookSettings,
        wanted: &[NewSubscription],
    ) -> Result<EnsureReport, Error> {
        let mut report = EnsureReport::default();
        let current = self.settings().await?;
        let same = current.as_ref().is_some_and(|c| {
            c.target_url == settings.target_url
                && (settings.throttling.is_none() || c.throttling == settings.throttling)
        });
        if !same {
            self.put_settings(settings).await?;
            report.settings_updated = true;
        }
        let existing = self.list().await?;
        for w in wanted {
            match existing.iter().find(|s| w.same_as(s)) {
                Some(s) if s.active || !w.active => report.unchanged += 1,
                Some(s) => report.activated.push(self.set_active(&s.id, true).await?),
                None => report.created.push(self.create(w).await?),
            }
        }
        Ok(report)
    }
}
