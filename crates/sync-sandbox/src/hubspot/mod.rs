//! The HubSpot sandbox: contacts (list, get, search, batch read/create/update/upsert/
//! archive, create, update, archive), contact properties, notes, lists memberships and
//! the OAuth token endpoint, under both `/crm/v3/objects/...` and the date-versioned
//! `/crm/objects/{version}/...` paths, with HubSpot's payloads and error bodies.
//!
//! Semantics worth knowing (each mirrors the real API):
//! - emails match case-insensitively and are unique among live contacts (409
//!   `Contact already exists. Existing ID: N`); archived contacts free their email;
//! - every write sets `lastmodifieddate` / `updatedAt`; batch writes share one time;
//! - search never returns archived contacts, pages by integer offset, and answers 400
//!   for `after >= 10000`;
//! - list pages are at most 100, search pages 200, batches 100 inputs: larger
//!   requests get a 400 `VALIDATION_ERROR` (the sandbox is strict so client bugs show);
//! - a batch without `objectWriteTraceId` on every input fails as a whole on the first
//!   invalid input; with them, it answers 207 with per-input errors;
//! - upserts by `email` never partially succeed (one bad input fails the batch); by a
//!   unique custom property they can;
//! - multi-checkbox values are `a;b;c`; a value starting with `;` appends;
//! - a merge (`POST .../contacts/merge` or [`HubSpotSandbox::merge_contacts`]) archives
//!   the secondary, points it at the primary (a GET of its id answers with the
//!   primary) and fills `hs_merged_object_ids` / `hs_additional_emails`;
//! - every write is recorded as a webhook event (`contact.creation`,
//!   `.propertyChange`, `.deletion`, `.merge`; `changeSource` `API` or `CRM`) that
//!   [`HubSpotSandbox::deliver_webhooks`] sends in signed batches of 100.

mod associations;
mod auth;
mod batch;
mod companies;
mod contacts;
mod engagements;
pub(crate) mod errors;
mod inspect_routes;
mod model;
mod oauth;
mod properties;
mod search;
mod subscriptions;
mod webhooks;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, put};
use chrono::{DateTime, Utc};

pub use companies::HubSpotCompany;
pub use model::{
    HubSpotContact, HubSpotEvent, HubSpotList, HubSpotNote, LIFECYCLE_STAGES, PropertyDef,
    PropertyOption,
};
pub use subscriptions::DEFAULT_DEVELOPER_API_KEY;
pub use webhooks::{EVENTS_PER_DELIVERY, WebhookResponse, sign_v1, sign_v3};

use crate::SandboxError;
use crate::clock::{Clock, SystemClock};
use crate::datagen::{DataGenConfig, GeneratedContact};
use crate::faults::FaultConfig;
use crate::inspect::RequestCounts;
use crate::lock;
use crate::ratelimit::{LimitKind, RateLimits};
use crate::server::{Core, Flavor, LimitInfo, Listener};
use auth::TokenStore;
use model::{HubSpotState, Uniqueness};

/// The private-app token every HubSpot sandbox accepts unless configured otherwise.
pub const DEFAULT_ACCESS_TOKEN: &str = "pat-na1-00000000-0000-4000-8000-5a4db0c5a4db";
/// The OAuth client id the sandbox's token endpoint accepts by default.
pub const DEFAULT_CLIENT_ID: &str = "sandbox-client-id";
/// The OAuth client secret the sandbox's token endpoint accepts by default.
pub const DEFAULT_CLIENT_SECRET: &str = "sandbox-client-secret";
/// A refresh token the sandbox's token endpoint accepts by default.
pub const DEFAULT_REFRESH_TOKEN: &str = "sandbox-refresh-token";

/// `appId` put in webhook events.
pub const HUBSPOT_APP_ID: u64 = 54_321;

/// Settings of a HubSpot sandbox.
#[derive(Clone)]
#[non_exhaustive]
pub struct HubSpotConfig {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Portal (hub) id reported in tokens and error messages.
    pub portal_id: u64,
    /// Static bearer tokens accepted (private-app or service-key tokens).
    pub access_tokens: Vec<String>,
    /// OAuth app credentials the token endpoint accepts.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Refresh tokens the token endpoint accepts.
    pub refresh_tokens: Vec<String>,
    /// `expires_in` of issued access tokens (HubSpot: 1800 s).
    pub access_token_ttl: Duration,
    /// The multi-checkbox property holding tags.
    pub tags_property: String,
    /// Its options.
    pub tag_options: Vec<String>,
    /// Rate limits (default: 100 per 10 s, search 5/s, no `Retry-After`).
    pub rate_limits: RateLimits,
    /// Fault injection (default: none).
    pub faults: FaultConfig,
    /// The scopes granted to the static tokens, reported by the private-app token info
    /// endpoint; creating a contact property without `crm.schemas.contacts.write` answers
    /// 403 `MISSING_SCOPES`. Default: [`DEFAULT_SCOPES`].
    pub scopes: Vec<String>,
}

/// The scopes the sandbox grants by default: every CRM scope the SDK uses.
pub const DEFAULT_SCOPES: [&str; 7] = [
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.lists.read",
    "crm.lists.write",
    "oauth",
];

impl Default for HubSpotConfig {
    fn default() -> Self {
        Self {
            port: 0,
            portal_id: 62_515,
            access_tokens: vec![DEFAULT_ACCESS_TOKEN.to_owned()],
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            refresh_tokens: vec![DEFAULT_REFRESH_TOKEN.to_owned()],
            access_token_ttl: Duration::from_secs(1800),
            tags_property: "cativa_tags".to_owned(),
            tag_options: crate::datagen::DEFAULT_TAGS
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            rate_limits: RateLimits::hubspot_default(),
            faults: FaultConfig::default(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl HubSpotConfig {
    /// Sets the rate limits.
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = limits;
        self
    }

    /// Sets fault injection.
    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Sets the lifetime of issued OAuth access tokens.
    pub fn with_access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// Sets the scopes granted to the static tokens.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the tag options of the tags property.
    pub fn with_tag_options<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tag_options = tags.into_iter().map(Into::into).collect();
        self
    }
}

/// Shared state of the HubSpot handlers.
pub(crate) struct Api {
    pub(crate) core: Arc<Core>,
    pub(crate) state: Mutex<HubSpotState>,
    pub(crate) tokens: Mutex<TokenStore>,
    /// The app's webhook settings and subscriptions (see `subscriptions.rs`).
    pub(crate) subscriptions: Mutex<subscriptions::Subscriptions>,
    pub(crate) config: HubSpotConfig,
    pub(crate) base_url: String,
    client: reqwest::Client,
}

impl Api {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.core.clock.now_utc()
    }

    pub(crate) fn error(&self, e: errors::ApiError) -> Response {
        e.into_response_with(&self.core.correlation_id())
    }

    pub(crate) fn bad_json(&self, e: &serde_json::Error) -> Response {
        self.error(errors::ApiError::validation(format!(
            "Invalid input JSON on line {}, column {}: {e}",
            e.line(),
            e.column()
        )))
    }
}

struct HubSpotFlavor;

impl Flavor for HubSpotFlavor {
    fn rate_limited(&self, kind: LimitKind, correlation_id: &str) -> Response {
        errors::rate_limited(kind, correlation_id)
    }

    fn server_error(&self, status: StatusCode, correlation_id: &str) -> Response {
        errors::ApiError::new(status, "INTERNAL_ERROR", "internal error")
            .into_response_with(correlation_id)
    }

    fn exempt_from_limits(&self, template: &str) -> bool {
        template.starts_with("/oauth/")
    }

    fn decorate(&self, template: &str, headers: &mut HeaderMap, info: &LimitInfo) {
        // Search responses carry no rate-limit headers, as HubSpot documents.
        if template.ends_with("/search") || template.starts_with("/oauth/") {
            return;
        }
        if let Some((limit, remaining)) = info.window {
            let mut set = |k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    headers.insert(k, v);
                }
            };
            set("x-hubspot-ratelimit-max", limit.max.to_string());
            set("x-hubspot-ratelimit-remaining", remaining.to_string());
            set(
                "x-hubspot-ratelimit-interval-milliseconds",
                limit.window.as_millis().to_string(),
            );
            if let Some(daily) = info.daily {
                set("x-hubspot-ratelimit-daily", daily.to_string());
                set(
                    "x-hubspot-ratelimit-daily-remaining",
                    daily.saturating_sub(info.used_today).to_string(),
                );
            }
        }
    }
}

fn object_routes(prefix: &str) -> Router<Arc<Api>> {
    let c = format!("{prefix}/contacts");
    Router::new()
        .route(&c, get(contacts::list).post(contacts::create))
        .route(
            &format!("{c}/{{contactId}}"),
            get(contacts::get_one)
                .patch(contacts::update)
                .delete(contacts::archive),
        )
        .route(&format!("{c}/search"), post(search::search))
        .route(&format!("{c}/merge"), post(contacts::merge))
        .route(&format!("{c}/batch/read"), post(batch::read))
        .route(&format!("{c}/batch/create"), post(batch::create))
        .route(&format!("{c}/batch/update"), post(batch::update))
        .route(&format!("{c}/batch/upsert"), post(batch::upsert))
        .route(&format!("{c}/batch/archive"), post(batch::archive))
        .route(
            &format!("{prefix}/companies/search"),
            post(companies::search),
        )
        .route(
            &format!("{prefix}/companies/batch/create"),
            post(companies::batch_create),
        )
        .route(
            &format!("{prefix}/companies/{{companyId}}"),
            get(companies::get_one),
        )
        .route(&format!("{prefix}/notes"), post(engagements::create_note))
        .route(
            &format!("{prefix}/notes/batch/create"),
            post(engagements::batch_create_notes),
        )
}

fn property_routes(prefix: &str) -> Router<Arc<Api>> {
    let p = format!("{prefix}/contacts");
    Router::new()
        .route(&p, get(properties::list).post(properties::create))
        .route(
            &format!("{p}/{{propertyName}}"),
            get(properties::get_one).patch(properties::update),
        )
}

fn list_routes(prefix: &str) -> Router<Arc<Api>> {
    Router::new()
        .route(prefix, post(engagements::create_list))
        .route(
            &format!("{prefix}/object-type-id/{{objectTypeId}}/name/{{listName}}"),
            get(engagements::list_by_name),
        )
        .route(
            &format!("{prefix}/{{listId}}/memberships"),
            get(engagements::memberships),
        )
        .route(
            &format!("{prefix}/records/{{objectTypeId}}/{{recordId}}/memberships"),
            get(engagements::record_memberships),
        )
        .route(
            &format!("{prefix}/{{listId}}/memberships/add"),
            put(engagements::add_members),
        )
        .route(
            &format!("{prefix}/{{listId}}/memberships/remove"),
            put(engagements::remove_members),
        )
}

fn association_routes() -> Router<Arc<Api>> {
    let o = "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}";
    Router::new()
        .route(
            "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/create",
            post(associations::batch_create),
        )
        .route(o, get(associations::list))
        .route(
            &format!("{o}/{{toObjectId}}"),
            axum::routing::delete(associations::remove),
        )
}

fn router(api: Arc<Api>) -> Router {
    Router::new()
        .merge(object_routes("/crm/v3/objects"))
        .merge(object_routes("/crm/objects/{version}"))
        .merge(property_routes("/crm/v3/properties"))
        .merge(property_routes("/crm/properties/{version}"))
        .merge(association_routes())
        .merge(list_routes("/crm/v3/lists"))
        .merge(list_routes("/crm/lists/{version}"))
        .route("/oauth/v1/token", post(auth::token))
        .merge(oauth::routes())
        .merge(subscriptions::routes())
        .route(
            "/oauth/v2/private-apps/get/access-token-info",
            post(auth::token_info),
        )
        .merge(inspect_routes::routes())
        .with_state(api)
}

/// A running HubSpot sandbox. Dropping it stops the server.
pub struct HubSpotSandbox {
    api: Arc<Api>,
    listener: Listener,
}

impl HubSpotSandbox {
    /// Starts a HubSpot sandbox on 127.0.0.1 with the system clock.
    pub async fn start(config: HubSpotConfig) -> Result<Self, SandboxError> {
        Self::start_with_clock(config, Arc::new(SystemClock::new())).await
    }

    /// Starts a HubSpot sandbox reading time from `clock`.
    pub async fn start_with_clock(
        config: HubSpotConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SandboxError> {
        config.faults.validate()?;
        let (tcp, addr) = Listener::bind(config.port).await?;
        let core = Arc::new(Core::new(
            Box::new(HubSpotFlavor),
            clock,
            config.faults.clone(),
            config.rate_limits.clone(),
        ));
        let client = sync_http::tls::client_builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| SandboxError::InvalidConfig(format!("webhook HTTP client: {e}")))?;
        let api = Arc::new(Api {
            client,
            core: core.clone(),
            state: Mutex::new(HubSpotState::new(
                config.portal_id,
                &config.tags_property,
                &config.tag_options,
            )),
            tokens: Mutex::new(TokenStore::new(&config)),
            subscriptions: Mutex::default(),
            base_url: format!("http://{addr}"),
            config,
        });
        let app = crate::server::finish(router(api.clone()), core);
        Ok(Self {
            api,
            listener: Listener::serve(tcp, app),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:53011` (point a HubSpot client here).
    pub fn base_url(&self) -> &str {
        &self.api.base_url
    }

    /// The portal (account) id the sandbox reports.
    pub fn portal_id(&self) -> u64 {
        self.api.config.portal_id
    }

    /// Stops the server gracefully (in-flight requests finish).
    pub async fn shutdown(mut self) {
        self.listener.shutdown().await;
    }

    /// Request counts per endpoint.
    pub fn requests(&self) -> RequestCounts {
        self.api.core.requests()
    }

    /// Forgets request counts (e.g. after seeding through the API).
    pub fn reset_requests(&self) {
        self.api.core.log.reset();
    }

    /// Replaces fault injection (e.g. enable faults after seeding).
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), SandboxError> {
        faults.validate()?;
        self.api.core.set_faults(faults);
        Ok(())
    }

    /// Requests counted against the daily budget so far (set one with
    /// [`RateLimits::with_daily`] and [`set_rate_limits`](Self::set_rate_limits) to make
    /// the next calls fail with a `DAILY` 429).
    pub fn daily_usage(&self) -> u64 {
        self.api.core.api_usage().0
    }

    /// Replaces the rate limits.
    pub fn set_rate_limits(&self, limits: RateLimits) {
        self.api.core.set_limits(limits);
    }

    /// Name of the tags property (`cativa_tags` by default).
    pub fn tags_property(&self) -> &str {
        &self.api.config.tags_property
    }

    /// Every company, by id.
    pub fn companies(&self) -> Vec<HubSpotCompany> {
        lock(&self.api.state)
            .companies
            .companies
            .values()
            .cloned()
            .collect()
    }

    /// Inserts a company directly (no request counted), as someone would in the UI.
    pub fn insert_company(&self, domain: &str, name: &str) -> u64 {
        let now = self.api.now();
        let props = BTreeMap::from([
            ("domain".to_owned(), domain.to_owned()),
            ("name".to_owned(), name.to_owned()),
        ]);
        lock(&self.api.state).companies.insert(props, now)
    }

    /// Makes `company` the contact's primary company directly, as an owner would in the
    /// UI (sets `associatedcompanyid`).
    pub fn set_primary_company(&self, contact: u64, company: u64) -> Result<(), SandboxError> {
        let now = self.api.now();
        let mut state = lock(&self.api.state);
        if !state.contacts.contains_key(&contact) {
            return Err(SandboxError::NotFound(format!("HubSpot contact {contact}")));
        }
        state.companies.associations.insert((contact, company, 1));
        let props = BTreeMap::from([("associatedcompanyid".to_owned(), company.to_string())]);
        state.with_source(Some("CRM"), |s| s.apply(contact, props, now));
        Ok(())
    }

    /// The companies a contact is associated with: (company id, association type id).
    pub fn contact_companies(&self, contact: u64) -> Vec<(u64, u32)> {
        lock(&self.api.state)
            .companies
            .associations
            .iter()
            .filter(|(c, _, _)| *c == contact)
            .map(|(_, company, t)| (*company, *t))
            .collect()
    }

    /// Every contact, archived ones included, by id.
    pub fn contacts(&self) -> Vec<HubSpotContact> {
        lock(&self.api.state).contacts.values().cloned().collect()
    }

    /// One contact by id.
    pub fn contact(&self, id: u64) -> Option<HubSpotContact> {
        lock(&self.api.state).contacts.get(&id).cloned()
    }

    /// The live contacts whose email matches (case-insensitive). More than one means a
    /// seeded duplicate.
    pub fn contacts_by_email(&self, email: &str) -> Vec<HubSpotContact> {
        lock(&self.api.state)
            .contacts
            .values()
            .filter(|c| {
                !c.archived
                    && c.email()
                        .is_some_and(|e| e.eq_ignore_ascii_case(email.trim()))
            })
            .cloned()
            .collect()
    }

    /// Inserts a contact directly (no request counted; email uniqueness not enforced,
    /// as in legacy imported data). Unknown properties are refused.
    pub fn insert_contact(
        &self,
        properties: BTreeMap<String, String>,
    ) -> Result<u64, SandboxError> {
        let now = self.api.now();
        lock(&self.api.state)
            .with_source(Some("CRM"), |s| {
                s.create(&properties, Uniqueness::Ignore, now)
            })
            .map_err(|e| SandboxError::Rejected(e.message))
    }

    /// Inserts generated contacts (see [`crate::datagen`]); returns their ids in order.
    pub fn seed(&self, contacts: &[GeneratedContact]) -> Result<Vec<u64>, SandboxError> {
        let tags_property = self.api.config.tags_property.clone();
        let now = self.api.now();
        let mut state = lock(&self.api.state);
        // Generated tags become options of the tags property.
        if let Some(def) = state.properties.get_mut(&tags_property) {
            for c in contacts {
                for t in &c.tags {
                    if !def.options.iter().any(|o| &o.value == t) {
                        def.options.push(PropertyOption::new(t.clone()));
                    }
                }
            }
        }
        // Seeded data is there before the story starts: no webhook events.
        state.with_source(None, |state| {
            contacts
                .iter()
                .map(|c| {
                    state
                        .create(
                            &c.hubspot_properties(&tags_property),
                            Uniqueness::Ignore,
                            now,
                        )
                        .map_err(|e| SandboxError::Rejected(e.message))
                })
                .collect()
        })
    }

    /// Generates contacts with `config` and inserts them.
    pub fn seed_generated(
        &self,
        config: &DataGenConfig,
    ) -> Result<Vec<GeneratedContact>, SandboxError> {
        let generated = crate::datagen::generate(config);
        self.seed(&generated)?;
        Ok(generated)
    }

    /// Adds a tag to a contact's tags property, as a CRM user would (bumps
    /// `lastmodifieddate`).
    pub fn add_tag(&self, id: u64, tag: &str) -> Result<(), SandboxError> {
        let now = self.api.now();
        let prop = self.api.config.tags_property.clone();
        lock(&self.api.state)
            .with_source(Some("CRM"), |s| s.add_tag(id, &prop, tag, now))
            .then_some(())
            .ok_or_else(|| SandboxError::NotFound(format!("HubSpot contact {id}")))
    }

    /// Removes a tag from a contact.
    pub fn remove_tag(&self, id: u64, tag: &str) -> Result<(), SandboxError> {
        let now = self.api.now();
        let prop = self.api.config.tags_property.clone();
        lock(&self.api.state)
            .with_source(Some("CRM"), |s| s.remove_tag(id, &prop, tag, now))
            .then_some(())
            .ok_or_else(|| SandboxError::NotFound(format!("HubSpot contact {id}")))
    }

    /// Sets one property directly (validated against the catalogue; empty clears).
    pub fn set_property(&self, id: u64, name: &str, value: &str) -> Result<(), SandboxError> {
        let now = self.api.now();
        let props = BTreeMap::from([(name.to_owned(), value.to_owned())]);
        lock(&self.api.state)
            .with_source(Some("CRM"), |s| s.update(id, &props, now))
            .map_err(|e| SandboxError::Rejected(e.message))
    }

    /// Changes a contact's email.
    pub fn set_email(&self, id: u64, email: &str) -> Result<(), SandboxError> {
        self.set_property(id, "email", email)
    }

    /// Archives a contact (it disappears from search and default listings).
    pub fn archive_contact(&self, id: u64) -> Result<(), SandboxError> {
        let now = self.api.now();
        lock(&self.api.state)
            .with_source(Some("CRM"), |s| s.archive(id, now))
            .then_some(())
            .ok_or_else(|| SandboxError::NotFound(format!("live HubSpot contact {id}")))
    }

    /// Merges `secondary` into `primary` as a CRM user would (see
    /// `POST /crm/v3/objects/contacts/merge`).
    pub fn merge_contacts(&self, primary: u64, secondary: u64) -> Result<(), SandboxError> {
        let now = self.api.now();
        lock(&self.api.state)
            .with_source(Some("CRM"), |s| s.merge(primary, secondary, now))
            .map_err(|e| {
                if e.status == StatusCode::NOT_FOUND {
                    SandboxError::NotFound(e.message)
                } else {
                    SandboxError::Rejected(e.message)
                }
            })
    }

    /// The contact property catalogue.
    pub fn properties(&self) -> Vec<PropertyDef> {
        lock(&self.api.state).properties.values().cloned().collect()
    }

    /// Notes created so far.
    pub fn notes(&self) -> Vec<HubSpotNote> {
        lock(&self.api.state).notes.clone()
    }

    /// Creates a MANUAL contact list; returns its id.
    pub fn create_list(&self, name: &str) -> u64 {
        lock(&self.api.state).create_list(name, "MANUAL")
    }

    /// Lists and their members.
    pub fn lists(&self) -> Vec<HubSpotList> {
        lock(&self.api.state).lists.values().cloned().collect()
    }

    /// Adds a contact to a list directly.
    pub fn add_to_list(&self, list_id: u64, contact_id: u64) -> Result<(), SandboxError> {
        let now = self.api.now();
        let mut state = lock(&self.api.state);
        if !state.contacts.contains_key(&contact_id) {
            return Err(SandboxError::NotFound(format!(
                "HubSpot contact {contact_id}"
            )));
        }
        let list = state
            .lists
            .get_mut(&list_id)
            .ok_or_else(|| SandboxError::NotFound(format!("HubSpot list {list_id}")))?;
        list.members.entry(contact_id).or_insert(now);
        Ok(())
    }

    /// Expires every OAuth access token issued so far (the next call with one gets 401
    /// `EXPIRED_AUTHENTICATION`); static tokens are not affected.
    pub fn expire_tokens(&self) {
        let now = self.api.core.clock.elapsed();
        lock(&self.api.tokens).expire_all(now);
    }

    /// Changes recorded so far, as HubSpot would deliver them to webhook subscriptions
    /// (`changeSource` `API` for API writes, `CRM` for the mutation methods of this
    /// handle; seeding records none).
    pub fn webhook_events(&self) -> Vec<HubSpotEvent> {
        lock(&self.api.state).events.clone()
    }

    /// Returns and forgets the recorded changes.
    pub fn take_webhook_events(&self) -> Vec<HubSpotEvent> {
        std::mem::take(&mut lock(&self.api.state).events)
    }

    /// POSTs `events` to `url` in batches of at most 100, signed with `client_secret`
    /// (v1 and v3 headers; `url` is the URI signed, as HubSpot signs the URL it calls).
    /// `valid_signature: false` signs with another secret.
    pub async fn deliver_webhooks(
        &self,
        url: &str,
        client_secret: &str,
        events: &[HubSpotEvent],
        valid_signature: bool,
    ) -> Result<Vec<WebhookResponse>, SandboxError> {
        let mut out = Vec::new();
        for batch in webhooks::batches(events, self.api.config.portal_id, HUBSPOT_APP_ID) {
            let ts = self.api.now().timestamp_millis();
            let r = webhooks::post(
                &self.api.client,
                url,
                client_secret,
                &batch,
                ts,
                valid_signature,
            )
            .await
            .map_err(|source| SandboxError::WebhookDelivery {
                url: url.to_owned(),
                source,
            })?;
            out.push(r);
        }
        Ok(out)
    }

    /// How many access tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> u64 {
        lock(&self.api.tokens).issued_count()
    }
}

impl std::fmt::Debug for HubSpotSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the URL: state and credentials stay out of logs.
        f.debug_struct("HubSpotSandbox")
            .field("base_url", &self.api.base_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for HubSpotConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpotConfig")
            .field("port", &self.port)
            .field("portal_id", &self.portal_id)
            .field("access_tokens", &"[REDACTED]")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("refresh_tokens", &"[REDACTED]")
            .field("access_token_ttl", &self.access_token_ttl)
            .field("tags_property", &self.tags_property)
            .field("tag_options", &self.tag_options)
            .field("rate_limits", &self.rate_limits)
            .field("faults", &self.faults)
            .finish()
    }
}
