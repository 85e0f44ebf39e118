//! The Cativa sandbox: `GET /social/v1/auth/me`, the admin lookup
//! `GET /social/v1/admin/users/email/{email}` (403 for partner keys unless allowed),
//! the preview writes `POST`/`DELETE /social/v1/users/{user_id}/badges/{badge_id}` and
//! `POST /social/v1/users` honouring `Idempotency-Key` (same key and request: the
//! stored response is replayed with `Idempotent-Replayed: true` and nothing happens
//! again), and a webhook emitter signing `user_created` / `user_received_badge`.
//!
//! The API key is accepted as `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
//! Badges carry their provenance ([`BadgeSource`]): granted through the API (a sync)
//! or elsewhere ([`CativaSandbox::grant_badge_elsewhere`]), so tests can check that a
//! sync never removes a badge it did not grant ([`Effect::BadgeRemoved`] records the
//! source of every removal).

mod api;
mod groups;
mod inspect_routes;
mod model;
mod webhook;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

pub use model::{BadgeGrant, BadgeSource, CativaUser, Effect};
pub use webhook::{DeliveryOutcome, DeliveryRecord, SignatureMode, WebhookDelivery, sign};

use crate::SandboxError;
use crate::clock::{Clock, SystemClock};
use crate::datagen::GeneratedContact;
use crate::faults::FaultConfig;
use crate::inspect::RequestCounts;
use crate::lock;
use crate::ratelimit::{LimitKind, RateLimits};
use crate::server::{Core, Flavor, Listener};
use model::{CativaState, guid};

/// The partner API key accepted by default.
pub const DEFAULT_API_KEY: &str = "cativa_pk_sandbox_0000000000000000";
/// The webhook signing secret used by default.
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_sandbox_secret";
/// The tenant (`CustomerId`) of the sandbox by default.
pub const DEFAULT_CUSTOMER_ID: &str = "5a4d0b0c-0000-4000-8000-c0ffee000001";

/// Badges the sandbox knows by name: `(id, name)`.
pub const DEFAULT_BADGES: [(&str, &str); 4] = [
    ("b0000000-0000-4000-8000-000000000001", "Premium"),
    ("b0000000-0000-4000-8000-000000000002", "Speaker"),
    ("b0000000-0000-4000-8000-000000000003", "Beta"),
    ("b0000000-0000-4000-8000-000000000004", "VIP"),
];

/// Settings of a Cativa sandbox.
#[derive(Clone)]
#[non_exhaustive]
pub struct CativaConfig {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// API keys accepted.
    pub api_keys: Vec<String>,
    /// The tenant id (`CustomerId`).
    pub customer_id: String,
    /// Id of the user owning the key (`auth/me`).
    pub key_owner_id: String,
    /// Email of the user owning the key.
    pub key_owner_email: String,
    /// Whether partner keys may use the admin lookup (off, as in production today).
    pub admin_lookup_allowed: bool,
    /// Webhook signing secret.
    pub webhook_secret: SecretString,
    /// `X-Cativa-Automation-Id` of `user_created` deliveries (the listener subscribed to
    /// that event).
    pub automation_id: String,
    /// `X-Cativa-Automation-Id` of `user_received_badge` deliveries: each Console listener
    /// is subscribed to one event and has its own automation id.
    pub badge_automation_id: String,
    /// Where the sandbox sends webhooks by itself (`None`: only explicit deliveries):
    /// `user_created` when the API creates a user, `user_received_badge` when a badge
    /// is newly granted (through the API or elsewhere). Sent in the background.
    pub webhook_target: Option<String>,
    /// Known badges `(id, name)`.
    pub badges: Vec<(String, String)>,
    /// Limits (default: none; 429s carry `Retry-After`, which Cativa honours).
    pub rate_limits: RateLimits,
    /// Fault injection.
    pub faults: FaultConfig,
}

impl Default for CativaConfig {
    fn default() -> Self {
        Self {
            port: 0,
            api_keys: vec![DEFAULT_API_KEY.into()],
            customer_id: DEFAULT_CUSTOMER_ID.into(),
            key_owner_id: "5a4d0b0c-0000-4000-8000-000000000abc".into(),
            key_owner_email: "integration@partner.example.com".into(),
            admin_lookup_allowed: false,
            webhook_secret: SecretString::from(DEFAULT_WEBHOOK_SECRET),
            automation_id: "a0000000-0000-4000-8000-00000000a001".into(),
            badge_automation_id: "a0000000-0000-4000-8000-00000000a002".into(),
            webhook_target: None,
            badges: DEFAULT_BADGES
                .iter()
                .map(|(i, n)| ((*i).into(), (*n).into()))
                .collect(),
            rate_limits: RateLimits::unlimited().with_retry_after(true),
            faults: FaultConfig::default(),
        }
    }
}

impl CativaConfig {
    /// Allows (or not) the admin lookup for partner keys.
    pub fn with_admin_lookup(mut self, allowed: bool) -> Self {
        self.admin_lookup_allowed = allowed;
        self
    }

    /// Sets the webhook secret.
    pub fn with_webhook_secret(mut self, secret: impl Into<String>) -> Self {
        self.webhook_secret = SecretString::from(secret.into());
        self
    }

    /// Sends webhooks to `url` by itself (see [`CativaConfig::webhook_target`]).
    pub fn with_webhook_target(mut self, url: impl Into<String>) -> Self {
        self.webhook_target = Some(url.into());
        self
    }

    /// Sets rate limits.
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = limits;
        self
    }

    /// Sets fault injection.
    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }
}

pub(crate) struct Api {
    pub(crate) core: Arc<Core>,
    pub(crate) state: Mutex<CativaState>,
    pub(crate) config: CativaConfig,
    pub(crate) base_url: String,
    pub(crate) admin_lookup_allowed: Mutex<bool>,
    pub(crate) webhook_target: Mutex<Option<String>>,
    client: reqwest::Client,
    deliveries: Mutex<Vec<DeliveryRecord>>,
    executions: AtomicU64,
    /// Community groups and their members.
    pub(crate) groups: Mutex<groups::Groups>,
}

impl Api {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.core.clock.now_utc()
    }

    fn delivery(&self, event: &str, body: serde_json::Value) -> WebhookDelivery {
        let n = self.executions.fetch_add(1, Ordering::Relaxed) + 1;
        let automation_id = if event == "user_received_badge" {
            &self.config.badge_automation_id
        } else {
            &self.config.automation_id
        };
        WebhookDelivery {
            event: event.to_owned(),
            body: body.to_string(),
            execution_id: guid(&format!("execution:{}", self.config.automation_id), n),
            automation_id: automation_id.clone(),
            timestamp: self.now().timestamp(),
        }
    }

    pub(crate) fn user_created_delivery(
        &self,
        user_id: &str,
    ) -> Result<WebhookDelivery, SandboxError> {
        let user = lock(&self.state)
            .users
            .get(user_id)
            .cloned()
            .ok_or_else(|| SandboxError::NotFound(format!("Cativa user {user_id}")))?;
        // Exactly the documented payload: no event-name field (the listener's target URL
        // and automation id say which event it is).
        let body = json!({
            "CustomerId": self.config.customer_id,
            "UserId": user.id,
            "Email": user.email,
            "FirstName": user.first_name,
            "LastName": user.last_name,
            "DisplayName": user.display_name,
            "Username": user.username,
            "PhoneNumber": user.phone_number,
            "CreatedAt": model::iso(user.created_at),
            "User": user.to_json(None),
        });
        Ok(self.delivery("user_created", body))
    }

    pub(crate) fn user_received_badge_delivery(
        &self,
        user_id: &str,
        badge_id: &str,
    ) -> Result<WebhookDelivery, SandboxError> {
        let user = lock(&self.state)
            .users
            .get(user_id)
            .cloned()
            .ok_or_else(|| SandboxError::NotFound(format!("Cativa user {user_id}")))?;
        // Only what is documented for this event: the nested `User` (same shape as in
        // `user_created`), holding the badge; plus the emitting tenant.
        let mut nested = user.to_json(Some(badge_id));
        if let Some(badges) = nested.get_mut("Badges").and_then(|b| b.as_array_mut())
            && !badges.iter().any(|b| b.as_str() == Some(badge_id))
        {
            badges.push(json!(badge_id));
        }
        let body = json!({
            "CustomerId": self.config.customer_id,
            "User": nested,
        });
        Ok(self.delivery("user_received_badge", body))
    }

    pub(crate) async fn send(
        &self,
        url: &str,
        delivery: &WebhookDelivery,
        mode: &SignatureMode,
    ) -> Result<DeliveryOutcome, SandboxError> {
        let result = webhook::post(
            &self.client,
            url,
            delivery,
            self.config.webhook_secret.expose_secret(),
            mode,
        )
        .await;
        lock(&self.deliveries).push(DeliveryRecord {
            url: url.to_owned(),
            event: delivery.event.clone(),
            execution_id: delivery.execution_id.clone(),
            validly_signed: *mode == SignatureMode::Valid,
            status: result.as_ref().ok().map(|o| o.status),
        });
        result.map_err(|source| SandboxError::WebhookDelivery {
            url: url.to_owned(),
            source,
        })
    }
}

/// An event the sandbox emits by itself to the configured webhook target.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    UserCreated { user_id: String },
    UserReceivedBadge { user_id: String, badge_id: String },
}

impl Api {
    /// Sends `event` to the webhook target, if one is set, in the background (as
    /// Cativa delivers asynchronously). Outside a tokio runtime nothing is sent.
    pub(crate) fn emit(self: &Arc<Self>, event: Event) {
        let Some(target) = lock(&self.webhook_target).clone() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let api = self.clone();
        rt.spawn(async move {
            let delivery = match &event {
                Event::UserCreated { user_id } => api.user_created_delivery(user_id),
                Event::UserReceivedBadge { user_id, badge_id } => {
                    api.user_received_badge_delivery(user_id, badge_id)
                }
            };
            if let Ok(d) = delivery {
                // The outcome is recorded in `deliveries()`.
                let _ = api.send(&target, &d, &SignatureMode::Valid).await;
            }
        });
    }
}

struct CativaFlavor;

impl Flavor for CativaFlavor {
    fn rate_limited(&self, _kind: LimitKind, correlation_id: &str) -> Response {
        api::problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests. Retry after the time in Retry-After.",
            correlation_id,
        )
    }

    fn server_error(&self, status: StatusCode, correlation_id: &str) -> Response {
        api::problem(status, "An unexpected error occurred.", correlation_id)
    }
}

fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/social/v1/auth/me", get(api::me))
        .route(
            "/social/v1/admin/users/email/{email}",
            get(api::admin_lookup),
        )
        .route("/social/v1/users", post(api::create_user))
        .route(
            "/social/v1/users/{user_id}/badges/{badge_id}",
            post(api::grant_badge).delete(api::remove_badge),
        )
        .route("/social/v1/groups/{group}/members", get(groups::members))
        .merge(inspect_routes::routes())
        .with_state(api)
}

/// A running Cativa sandbox. Dropping it stops the server.
pub struct CativaSandbox {
    api: Arc<Api>,
    listener: Listener,
}

impl CativaSandbox {
    /// Starts a Cativa sandbox on 127.0.0.1 with the system clock.
    pub async fn start(config: CativaConfig) -> Result<Self, SandboxError> {
        Self::start_with_clock(config, Arc::new(SystemClock::new())).await
    }

    /// Starts a Cativa sandbox reading time from `clock`.
    pub async fn start_with_clock(
        config: CativaConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SandboxError> {
        config.faults.validate()?;
        let (tcp, addr) = Listener::bind(config.port).await?;
        let core = Arc::new(Core::new(
            Box::new(CativaFlavor),
            clock,
            config.faults.clone(),
            config.rate_limits.clone(),
        ));
        let client = sync_http::tls::client_builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| SandboxError::InvalidConfig(format!("webhook HTTP client: {e}")))?;
        let api = Arc::new(Api {
            core: core.clone(),
            state: Mutex::new(CativaState::default()),
            admin_lookup_allowed: Mutex::new(config.admin_lookup_allowed),
            webhook_target: Mutex::new(config.webhook_target.clone()),
            base_url: format!("http://{addr}"),
            config,
            client,
            deliveries: Mutex::new(Vec::new()),
            executions: AtomicU64::new(0),
            groups: Mutex::new(groups::Groups::new()),
        });
        let app = crate::server::finish(router(api.clone()), core);
        Ok(Self {
            api,
            listener: Listener::serve(tcp, app),
        })
    }

    /// Base URL (point the Cativa client here).
    pub fn base_url(&self) -> &str {
        &self.api.base_url
    }

    /// Stops the server gracefully.
    pub async fn shutdown(mut self) {
        self.listener.shutdown().await;
    }

    /// Request counts per endpoint.
    pub fn requests(&self) -> RequestCounts {
        self.api.core.requests()
    }

    /// Forgets request counts.
    pub fn reset_requests(&self) {
        self.api.core.log.reset();
    }

    /// Replaces fault injection.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), SandboxError> {
        faults.validate()?;
        self.api.core.set_faults(faults);
        Ok(())
    }

    /// Replaces the rate limits.
    pub fn set_rate_limits(&self, limits: RateLimits) {
        self.api.core.set_limits(limits);
    }

    /// The tenant id (`CustomerId`).
    pub fn customer_id(&self) -> &str {
        &self.api.config.customer_id
    }

    /// The Console listeners of this sandbox: `(event, X-Cativa-Automation-Id)`, for a
    /// receiver that maps automation ids to events.
    pub fn automation_events(&self) -> Vec<(&'static str, String)> {
        vec![
            ("user_created", self.api.config.automation_id.clone()),
            (
                "user_received_badge",
                self.api.config.badge_automation_id.clone(),
            ),
        ]
    }

    /// The webhook signing secret (configure your receiver with it).
    pub fn webhook_secret(&self) -> &SecretString {
        &self.api.config.webhook_secret
    }

    /// Allows or forbids the admin lookup for partner keys.
    pub fn allow_admin_lookup(&self, allowed: bool) {
        *lock(&self.api.admin_lookup_allowed) = allowed;
    }

    /// Sets (or clears) where the sandbox sends webhooks by itself.
    pub fn set_webhook_target(&self, url: Option<String>) {
        *lock(&self.api.webhook_target) = url;
    }

    /// All users.
    pub fn users(&self) -> Vec<CativaUser> {
        lock(&self.api.state).users.values().cloned().collect()
    }

    /// One user by id.
    pub fn user(&self, id: &str) -> Option<CativaUser> {
        lock(&self.api.state).users.get(id).cloned()
    }

    /// The user with this email (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Option<CativaUser> {
        lock(&self.api.state).find_by_email(email).cloned()
    }

    /// Adds a user who signed up on their own (not an API effect).
    pub fn sign_up(&self, email: &str, first_name: &str, last_name: &str) -> CativaUser {
        let now = self.api.now();
        lock(&self.api.state).add_user(email, first_name, last_name, None, false, now)
    }

    /// Signs up the generated people marked `in_community` (once per email, lowercase
    /// as people type it in sign-up forms); returns the users created.
    pub fn seed_users(&self, people: &[GeneratedContact]) -> Vec<CativaUser> {
        let now = self.api.now();
        let mut state = lock(&self.api.state);
        let mut out = Vec::new();
        for p in people.iter().filter(|p| p.in_community) {
            let email = p.normalized_email();
            if state.find_by_email(&email).is_none() {
                out.push(state.add_user(
                    &email,
                    &p.first_name,
                    &p.last_name,
                    p.phone.clone(),
                    false,
                    now,
                ));
            }
        }
        out
    }

    /// Grants a badge "elsewhere" (paywall, course, admin): not an API effect, and a
    /// sync must never remove it.
    pub fn grant_badge_elsewhere(&self, user_id: &str, badge_id: &str) -> Result<(), SandboxError> {
        let now = self.api.now();
        let granted = lock(&self.api.state)
            .grant(user_id, badge_id, BadgeSource::Elsewhere, now)
            .ok_or_else(|| SandboxError::NotFound(format!("Cativa user {user_id}")))?;
        if granted {
            self.api.emit(Event::UserReceivedBadge {
                user_id: user_id.to_owned(),
                badge_id: badge_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Removes a badge outside the API (an admin in the Console).
    pub fn remove_badge_elsewhere(
        &self,
        user_id: &str,
        badge_id: &str,
    ) -> Result<(), SandboxError> {
        lock(&self.api.state)
            .revoke(user_id, badge_id, false)
            .map(|_| ())
            .ok_or_else(|| SandboxError::NotFound(format!("Cativa user {user_id}")))
    }

    /// Badges held per user id.
    pub fn badges_by_user(&self) -> BTreeMap<String, Vec<BadgeGrant>> {
        lock(&self.api.state)
            .users
            .values()
            .map(|u| (u.id.clone(), u.badges.clone()))
            .collect()
    }

    /// Effects applied through the API, in order.
    pub fn effects(&self) -> Vec<Effect> {
        lock(&self.api.state).effects.clone()
    }

    /// Every `Idempotency-Key` received, in order, repeats included.
    pub fn idempotency_keys_seen(&self) -> Vec<String> {
        lock(&self.api.state).keys_seen.clone()
    }

    /// Builds a `user_created` delivery for an existing user.
    pub fn user_created_delivery(&self, user_id: &str) -> Result<WebhookDelivery, SandboxError> {
        self.api.user_created_delivery(user_id)
    }

    /// Builds a `user_received_badge` delivery.
    pub fn user_received_badge_delivery(
        &self,
        user_id: &str,
        badge_id: &str,
    ) -> Result<WebhookDelivery, SandboxError> {
        self.api.user_received_badge_delivery(user_id, badge_id)
    }

    /// Signs (per `mode`) and POSTs a delivery to `url`; send the same delivery again
    /// to simulate a retry (same execution id).
    pub async fn deliver(
        &self,
        url: &str,
        delivery: &WebhookDelivery,
        mode: SignatureMode,
    ) -> Result<DeliveryOutcome, SandboxError> {
        self.api.send(url, delivery, &mode).await
    }

    /// Deliveries attempted so far.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.api.deliveries).clone()
    }
}

impl std::fmt::Debug for CativaSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the URL: state and credentials stay out of logs.
        f.debug_struct("CativaSandbox")
            .field("base_url", &self.api.base_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CativaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CativaConfig")
            .field("port", &self.port)
            .field("api_keys", &"[REDACTED]")
            .field("customer_id", &self.customer_id)
            .field("key_owner_id", &self.key_owner_id)
            .field("key_owner_email", &self.key_owner_email)
            .field("admin_lookup_allowed", &self.admin_lookup_allowed)
            .field("webhook_secret", &self.webhook_secret)
            .field("automation_id", &self.automation_id)
            .field("badge_automation_id", &self.badge_automation_id)
            .field("webhook_target", &self.webhook_target)
            .field("badges", &self.badges)
            .field("rate_limits", &self.rate_limits)
            .field("faults", &self.faults)
            .finish()
    }
}
