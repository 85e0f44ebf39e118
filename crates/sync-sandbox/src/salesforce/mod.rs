//! The Salesforce sandbox: OAuth token endpoint (JWT bearer, client credentials,
//! refresh token; `instance_url` is the sandbox itself), SOQL `query` / `queryAll`
//! with `nextRecordsUrl` paging, `updated/` and `deleted/` change polling, sObject
//! Collections create / update / upsert, single-record upsert by external ID,
//! create / read / update / delete, and Task activities.
//!
//! Every response carries `Sforce-Limit-Info: api-usage=N/M`. A configured daily
//! budget, once spent, answers 403 `REQUEST_LIMIT_EXCEEDED`. Sessions expired with
//! [`SalesforceSandbox::expire_sessions`] answer 401 `INVALID_SESSION_ID`.
//!
//! What real Salesforce refuses, the sandbox refuses:
//! - a request URI over 16,384 encoded bytes: 414;
//! - sObject Collections calls over 200 records: 400;
//! - collections upsert under API version v46.0: 404 `NOT_FOUND`;
//! - an upsert whose external ID value cannot travel in the path (`/`, `.`, `..`,
//!   email-like values ending in `.inc`): 404 `NOT_FOUND`.
//!
//! `Sforce-Call-Options: client=` counts only where Salesforce documents it (query,
//! queryAll, sObject basic information, rows, rows by external ID): there it is
//! recorded ([`SalesforceSandbox::call_clients`]) and stamped on the written records.
//! Elsewhere (collections) it has no effect and the endpoint is listed by
//! [`SalesforceSandbox::misplaced_call_options`]. Every API write is made by
//! [`INTEGRATION_USER_ID`] (`LastModifiedById`), every edit through the sandbox's own
//! methods by [`ADMIN_USER_ID`], as a person in the UI would.
//!
//! Objects: `Contact`, `Lead` and `Task`; contacts and leads have `Email` (an idLookup
//! field, so upserting by it is possible and can answer 300), a multi-select picklist
//! for tags (`Cativa_Tags__c` by default) and a unique External ID
//! `Cativa_Member_Id__c`.

mod auth;
mod errors;
mod inspect_routes;
mod meta;
mod model;
mod oauth;
pub use oauth::SANDBOX_ORG_ID;
mod query;
mod sobjects;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use auth::JWT_BEARER_GRANT;
pub use model::{ADMIN_USER_ID, FieldDef, FieldType, INTEGRATION_USER_ID, ObjectSchema, SfRecord};
pub use sobjects::COLLECTION_MAX;

use crate::SandboxError;
use crate::clock::{Clock, SystemClock};
use crate::datagen::{DataGenConfig, GeneratedContact};
use crate::faults::FaultConfig;
use crate::inspect::RequestCounts;
use crate::lock;
use crate::ratelimit::{LimitKind, RateLimits};
use crate::server::{Core, Flavor, LimitInfo, Listener};
use errors::SfError;
use model::{Origin, SfState};

/// Consumer key (client id) accepted by default.
pub const DEFAULT_CLIENT_ID: &str = "3MVG9sandbox.consumer.key";
/// Client secret accepted by default.
pub const DEFAULT_CLIENT_SECRET: &str = "sandbox-consumer-secret";
/// Refresh token accepted by default.
pub const DEFAULT_REFRESH_TOKEN: &str = "5Aep861sandbox.refresh.token";
/// Username the JWT `sub` must name by default.
pub const DEFAULT_USERNAME: &str = "integration@sandbox.example.com";
/// Static session token accepted by default (skips OAuth in quick tests).
pub const DEFAULT_ACCESS_TOKEN: &str = "00DSB0000000001AAA!AQsandbox.static.session";

/// Settings of a Salesforce sandbox.
#[derive(Clone)]
#[non_exhaustive]
pub struct SalesforceConfig {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Consumer key: the JWT `iss`, the `client_id`.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// JWT `sub` required (empty: any user).
    pub username: String,
    /// Refresh tokens accepted.
    pub refresh_tokens: Vec<String>,
    /// Static session tokens accepted.
    pub access_tokens: Vec<String>,
    /// PEM public key to verify JWT assertion signatures with (`None`: claims are
    /// checked, the signature is not).
    pub jwt_public_key_pem: Option<String>,
    /// Default query batch size (2000); `Sforce-Query-Options: batchSize=` overrides
    /// within 200..=2000.
    pub query_batch_size: usize,
    /// The multi-select picklist holding tags.
    pub tags_field: String,
    /// Custom fields added to the default schemas: `(object, field, type)`, e.g.
    /// `("Contact", "Stage__c", FieldType::Text)`.
    pub extra_fields: Vec<(String, String, FieldType)>,
    /// Limits; `daily` is the org's API budget (default 100,000).
    pub rate_limits: RateLimits,
    /// Fault injection.
    pub faults: FaultConfig,
}

impl Default for SalesforceConfig {
    fn default() -> Self {
        Self {
            port: 0,
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            username: DEFAULT_USERNAME.into(),
            refresh_tokens: vec![DEFAULT_REFRESH_TOKEN.into()],
            access_tokens: vec![DEFAULT_ACCESS_TOKEN.into()],
            jwt_public_key_pem: None,
            query_batch_size: 2000,
            tags_field: "Cativa_Tags__c".into(),
            extra_fields: Vec::new(),
            rate_limits: RateLimits::unlimited().with_daily(Some(100_000)),
            faults: FaultConfig::default(),
        }
    }
}

impl SalesforceConfig {
    /// Adds a custom field to an object's schema (`Contact`, `Lead`, `Task`).
    pub fn with_field(
        mut self,
        object: impl Into<String>,
        field: impl Into<String>,
        kind: FieldType,
    ) -> Self {
        self.extra_fields.push((object.into(), field.into(), kind));
        self
    }

    /// Sets the multi-select picklist that holds tags.
    pub fn with_tags_field(mut self, field: impl Into<String>) -> Self {
        self.tags_field = field.into();
        self
    }

    /// Sets the daily API budget.
    pub fn with_daily_budget(mut self, budget: u64) -> Self {
        self.rate_limits = self.rate_limits.with_daily(Some(budget));
        self
    }

    /// Sets the default query batch size.
    pub fn with_query_batch_size(mut self, n: usize) -> Self {
        self.query_batch_size = n;
        self
    }

    /// Verifies JWT signatures with this PEM public key.
    pub fn with_jwt_public_key_pem(mut self, pem: impl Into<String>) -> Self {
        self.jwt_public_key_pem = Some(pem.into());
        self
    }

    /// Sets fault injection.
    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Sets rate limits.
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = limits;
        self
    }
}

pub(crate) struct Api {
    pub(crate) core: Arc<Core>,
    pub(crate) state: Mutex<SfState>,
    pub(crate) sessions: Mutex<auth::Sessions>,
    pub(crate) config: SalesforceConfig,
    pub(crate) base_url: String,
}

impl Api {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.core.clock.now_utc()
    }
}

struct SalesforceFlavor;

impl Flavor for SalesforceFlavor {
    fn rate_limited(&self, _kind: LimitKind, _correlation_id: &str) -> Response {
        SfError::new("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            .respond(StatusCode::FORBIDDEN)
    }

    fn injected_429(&self, _correlation_id: &str) -> Response {
        SfError::new(
            "REQUEST_LIMIT_EXCEEDED",
            "Too many requests, try again later.",
        )
        .respond(StatusCode::TOO_MANY_REQUESTS)
    }

    fn server_error(&self, status: StatusCode, correlation_id: &str) -> Response {
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return SfError::new("SERVER_UNAVAILABLE", "Server temporarily unavailable")
                .respond(status);
        }
        SfError::new(
            "UNKNOWN_EXCEPTION",
            format!("An unexpected error occurred. Please include this ErrorId if you contact support: {correlation_id}"),
        )
        .respond(status)
    }

    fn exempt_from_limits(&self, template: &str) -> bool {
        !counts_as_api_call(template)
    }

    fn decorate(&self, template: &str, headers: &mut HeaderMap, info: &LimitInfo) {
        if !counts_as_api_call(template) {
            return;
        }
        let limit = info.daily.unwrap_or(100_000);
        if let Ok(v) = HeaderValue::from_str(&format!("api-usage={}/{limit}", info.used_today)) {
            headers.insert("sforce-limit-info", v);
        }
    }
}

/// REST calls under a version count against the daily budget and carry
/// `Sforce-Limit-Info`; the token endpoint and the versions list do not.
fn counts_as_api_call(template: &str) -> bool {
    template.starts_with("/services/data/{version}")
}

fn router(api: Arc<Api>) -> Router {
    let d = "/services/data/{version}";
    Router::new()
        .route("/services/oauth2/token", post(auth::token))
        .merge(oauth::routes())
        .route("/services/data/", get(meta::versions))
        .route("/services/data", get(meta::versions))
        .route(&format!("{d}/limits"), get(meta::limits))
        .route(&format!("{d}/query"), get(query::query))
        .route(&format!("{d}/query/"), get(query::query))
        .route(&format!("{d}/queryAll"), get(query::query_all))
        .route(&format!("{d}/queryAll/"), get(query::query_all))
        .route(&format!("{d}/query/{{locator}}"), get(query::query_more))
        .route(&format!("{d}/queryAll/{{locator}}"), get(query::query_more))
        .route(
            &format!("{d}/sobjects/{{object}}/updated/"),
            get(query::updated),
        )
        .route(
            &format!("{d}/sobjects/{{object}}/updated"),
            get(query::updated),
        )
        .route(
            &format!("{d}/sobjects/{{object}}/deleted/"),
            get(query::deleted),
        )
        .route(
            &format!("{d}/sobjects/{{object}}/deleted"),
            get(query::deleted),
        )
        .route(
            &format!("{d}/composite/sobjects"),
            post(sobjects::collection_create)
                .patch(sobjects::collection_update)
                .delete(sobjects::collection_delete),
        )
        .route(
            &format!("{d}/composite/sobjects/{{object}}/{{field}}"),
            patch(sobjects::collection_upsert),
        )
        .route(&format!("{d}/sobjects/{{object}}"), post(sobjects::create))
        .route(
            &format!("{d}/sobjects/{{object}}/describe"),
            get(meta::describe),
        )
        .route(
            &format!("{d}/sobjects/{{object}}/{{id}}"),
            get(sobjects::get_one)
                .patch(sobjects::update)
                .delete(sobjects::delete),
        )
        .route(
            &format!("{d}/sobjects/{{object}}/{{field}}/{{value}}"),
            patch(sobjects::upsert),
        )
        .merge(inspect_routes::routes())
        .layer(axum::middleware::from_fn(uri_limit))
        .with_state(api)
}

/// The longest request URI Salesforce accepts, in encoded bytes.
pub const MAX_URI_BYTES: usize = 16_384;

/// 414 for a request URI (path and query, as sent: encoded) over [`MAX_URI_BYTES`].
async fn uri_limit(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if len > MAX_URI_BYTES {
        return StatusCode::URI_TOO_LONG.into_response();
    }
    next.run(req).await
}

/// A running Salesforce sandbox. Dropping it stops the server.
pub struct SalesforceSandbox {
    api: Arc<Api>,
    listener: Listener,
}

impl SalesforceSandbox {
    /// Starts a Salesforce sandbox on 127.0.0.1 with the system clock.
    pub async fn start(config: SalesforceConfig) -> Result<Self, SandboxError> {
        Self::start_with_clock(config, Arc::new(SystemClock::new())).await
    }

    /// Starts a Salesforce sandbox reading time from `clock`.
    pub async fn start_with_clock(
        config: SalesforceConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SandboxError> {
        config.faults.validate()?;
        if !(200..=2000).contains(&config.query_batch_size) {
            return Err(SandboxError::InvalidConfig(
                "query_batch_size must be within 200..=2000".into(),
            ));
        }
        let (tcp, addr) = Listener::bind(config.port).await?;
        let now = clock.now_utc();
        let core = Arc::new(Core::new(
            Box::new(SalesforceFlavor),
            clock,
            config.faults.clone(),
            config.rate_limits.clone(),
        ));
        let api = Arc::new(Api {
            core: core.clone(),
            state: Mutex::new(SfState::new(&config.tags_field, &config.extra_fields, now)),
            sessions: Mutex::new(auth::Sessions::new(&config)),
            base_url: format!("http://{addr}"),
            config,
        });
        let app = crate::server::finish(router(api.clone()), core);
        Ok(Self {
            api,
            listener: Listener::serve(tcp, app),
        })
    }

    /// Base URL: both the login host (`/services/oauth2/token`) and the `instance_url`.
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

    /// Replaces the limits (the day's usage count is kept).
    pub fn set_rate_limits(&self, limits: RateLimits) {
        self.api.core.set_limits(limits);
    }

    /// API calls counted today and the daily budget, as in `Sforce-Limit-Info`.
    pub fn api_usage(&self) -> (u64, Option<u64>) {
        self.api.core.api_usage()
    }

    /// Name of the tags field.
    pub fn tags_field(&self) -> &str {
        &self.api.config.tags_field
    }

    /// Every record of `object` (deleted ones included).
    pub fn records(&self, object: &str) -> Vec<SfRecord> {
        lock(&self.api.state)
            .records
            .values()
            .filter(|r| r.object.eq_ignore_ascii_case(object))
            .cloned()
            .collect()
    }

    /// One record by id.
    pub fn record(&self, id: &str) -> Option<SfRecord> {
        lock(&self.api.state).records.get(id).cloned()
    }

    /// Live records of `object` whose Email matches (case-insensitive).
    pub fn records_by_email(&self, object: &str, email: &str) -> Vec<SfRecord> {
        let state = lock(&self.api.state);
        state
            .matching(object, "Email", email)
            .iter()
            .filter_map(|id| state.records.get(id).cloned())
            .collect()
    }

    /// Inserts a record directly (validated; no request counted).
    pub fn insert_record(
        &self,
        object: &str,
        fields: Map<String, Value>,
    ) -> Result<String, SandboxError> {
        let now = self.api.now();
        lock(&self.api.state)
            .create(object, &fields, Origin::ADMIN, now)
            .map_err(|e| SandboxError::Rejected(format!("{}: {}", e.code, e.message)))
    }

    /// Inserts generated people as `object` records (`Contact` or `Lead`), duplicates
    /// of email included; returns their ids in order.
    pub fn seed(
        &self,
        object: &str,
        people: &[GeneratedContact],
    ) -> Result<Vec<String>, SandboxError> {
        let now = self.api.now();
        let tags_field = self.api.config.tags_field.clone();
        let mut state = lock(&self.api.state);
        people
            .iter()
            .map(|p| {
                let mut f = BTreeMap::new();
                f.insert("FirstName".to_owned(), Value::String(p.first_name.clone()));
                f.insert("LastName".to_owned(), Value::String(p.last_name.clone()));
                f.insert("Email".to_owned(), Value::String(p.email.clone()));
                if let Some(ph) = &p.phone {
                    f.insert("Phone".to_owned(), Value::String(ph.clone()));
                }
                if let Some(t) = &p.job_title {
                    f.insert("Title".to_owned(), Value::String(t.clone()));
                }
                if !p.tags.is_empty() {
                    f.insert(tags_field.clone(), Value::String(p.tags.join(";")));
                }
                if object.eq_ignore_ascii_case("Lead") {
                    f.insert(
                        "Company".to_owned(),
                        Value::String(p.company.clone().unwrap_or_else(|| "[not provided]".into())),
                    );
                }
                state
                    .insert_raw(object, f, now)
                    .ok_or_else(|| SandboxError::Rejected(format!("unknown sObject {object}")))
            })
            .collect()
    }

    /// Generates people and inserts them as `object` records.
    pub fn seed_generated(
        &self,
        object: &str,
        config: &DataGenConfig,
    ) -> Result<Vec<GeneratedContact>, SandboxError> {
        let people = crate::datagen::generate(config);
        self.seed(object, &people)?;
        Ok(people)
    }

    /// Sets one field directly (bumps `SystemModstamp`).
    pub fn set_field(&self, id: &str, field: &str, value: Value) -> Result<(), SandboxError> {
        let now = self.api.now();
        let mut m = Map::new();
        m.insert(field.to_owned(), value);
        lock(&self.api.state)
            .update(id, &m, Origin::ADMIN, now)
            .map(|_| ())
            .map_err(|e| SandboxError::Rejected(format!("{}: {}", e.code, e.message)))
    }

    /// Adds a tag to the tags picklist of a record.
    pub fn add_tag(&self, id: &str, tag: &str) -> Result<(), SandboxError> {
        let mut tags = self.tags_of(id)?;
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
        self.set_field(
            id,
            &self.api.config.tags_field.clone(),
            Value::String(tags.join(";")),
        )
    }

    /// Removes a tag.
    pub fn remove_tag(&self, id: &str, tag: &str) -> Result<(), SandboxError> {
        let tags: Vec<String> = self.tags_of(id)?.into_iter().filter(|t| t != tag).collect();
        self.set_field(
            id,
            &self.api.config.tags_field.clone(),
            Value::String(tags.join(";")),
        )
    }

    fn tags_of(&self, id: &str) -> Result<Vec<String>, SandboxError> {
        let r = self
            .record(id)
            .ok_or_else(|| SandboxError::NotFound(format!("Salesforce record {id}")))?;
        Ok(r.text(&self.api.config.tags_field)
            .map(|s| {
                s.split(';')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Deletes a record (it moves to the recycle bin: `deleted/`, `queryAll`).
    pub fn delete_record(&self, id: &str) -> Result<(), SandboxError> {
        let now = self.api.now();
        lock(&self.api.state)
            .delete(id, now)
            .then_some(())
            .ok_or_else(|| SandboxError::NotFound(format!("live Salesforce record {id}")))
    }

    /// Merges `loser` into `winner`: the loser is deleted with `MasterRecordId = winner`.
    pub fn merge(&self, winner: &str, loser: &str) -> Result<(), SandboxError> {
        let now = self.api.now();
        let mut state = lock(&self.api.state);
        if state.records.get(winner).is_none_or(|r| r.is_deleted()) {
            return Err(SandboxError::NotFound(format!(
                "live Salesforce record {winner}"
            )));
        }
        if !state.delete(loser, now) {
            return Err(SandboxError::NotFound(format!(
                "live Salesforce record {loser}"
            )));
        }
        if let Some(r) = state.records.get_mut(loser) {
            r.master_record_id = Some(winner.to_owned());
        }
        if let Some(w) = state.records.get_mut(winner) {
            w.modified = now;
            w.last_modified_by = model::ADMIN_USER_ID.to_owned();
        }
        Ok(())
    }

    /// Task records (activities) created so far.
    pub fn tasks(&self) -> Vec<SfRecord> {
        self.records("Task")
    }

    /// Every `client=` value seen in `Sforce-Call-Options` on writes, in order.
    pub fn call_clients(&self) -> Vec<String> {
        lock(&self.api.state).call_options.clone()
    }

    /// Endpoints that received `Sforce-Call-Options` where Salesforce does not document
    /// it (sObject Collections, change windows), in order. The header had no effect there.
    pub fn misplaced_call_options(&self) -> Vec<String> {
        lock(&self.api.state).misplaced_call_options.clone()
    }

    /// Invalidates every session issued by the token endpoint (static tokens stay
    /// valid): the next call with one gets 401 `INVALID_SESSION_ID`.
    pub fn expire_sessions(&self) {
        lock(&self.api.sessions).expire_all();
    }

    /// Sessions issued by the token endpoint.
    pub fn tokens_issued(&self) -> u64 {
        lock(&self.api.sessions).issued_count()
    }

    /// Moves `earliestDateAvailable` of `deleted/` (simulates a purged recycle bin).
    pub fn set_earliest_deleted_available(&self, at: DateTime<Utc>) {
        lock(&self.api.state).earliest_deleted = at;
    }
}

impl std::fmt::Debug for SalesforceSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the URL: state and credentials stay out of logs.
        f.debug_struct("SalesforceSandbox")
            .field("base_url", &self.api.base_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SalesforceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceConfig")
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("username", &self.username)
            .field("refresh_tokens", &"[REDACTED]")
            .field("access_tokens", &"[REDACTED]")
            .field("jwt_public_key_pem", &self.jwt_public_key_pem)
            .field("query_batch_size", &self.query_batch_size)
            .field("tags_field", &self.tags_field)
            .field("extra_fields", &self.extra_fields)
            .field("rate_limits", &self.rate_limits)
            .field("faults", &self.faults)
            .finish()
    }
}
