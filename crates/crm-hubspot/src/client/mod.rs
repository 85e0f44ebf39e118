//! [`HubSpotClient`]: the typed HubSpot CRM client, and its builder.

mod account;
mod auth;
mod batch;
mod companies;
mod contacts;
mod limits;
mod lists;
mod notes;
mod properties;
mod token_info;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sync_http::{
    ApiErrorInfo, ErrorKind, HttpClient, HttpTransport, LimitHeaders, RateLimit, RateLimiter,
    RefreshingToken, Response, RetryPolicy, TokenProvider,
};

pub use account::AccountDetails;
pub use auth::OAuthCredentials;
pub use batch::{BatchItemError, BatchOutcome};
pub use companies::{
    AssociationBatchOutcome, AssociationInput, AssociationSpec, CONTACT_TO_PRIMARY_COMPANY,
    ObjectRef,
};
pub use contacts::ListOptions;
pub use limits::{RateLimitTier, search_rate_limit, window_safe};
pub use token_info::TokenInfo;

use crate::api_error::{ApiError, Problem, decode_error};
use crate::error::Error;

/// HubSpot's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";
/// The legacy objects path prefix (`/crm/v3/objects`).
pub const V3_OBJECTS_PREFIX: &str = "/crm/v3/objects";

/// Where each API lives. HubSpot serves the legacy `/crm/v3/...` paths and date-versioned
/// ones (`/crm/objects/2026-03/...`) with the same shapes; choose with
/// [`HubSpotClientBuilder::objects_path_prefix`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiPaths {
    /// Objects (contacts, notes): `/crm/v3/objects`.
    pub objects: String,
    /// Properties: `/crm/v3/properties`.
    pub properties: String,
    /// Lists: `/crm/v3/lists`.
    pub lists: String,
    /// OAuth token endpoint: `/oauth/v1/token`.
    pub oauth_token: String,
}

impl Default for ApiPaths {
    fn default() -> Self {
        Self {
            objects: V3_OBJECTS_PREFIX.into(),
            properties: "/crm/v3/properties".into(),
            lists: "/crm/v3/lists".into(),
            oauth_token: "/oauth/v1/token".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_private_app_tokens;

    #[test]
    fn private_app_tokens_are_redacted() {
        assert_eq!(
            redact_private_app_tokens("token pat-na1-11111111-2222-3333 rejected; pat-x ok"),
            "token pat-[redacted] rejected; pat-x ok"
        );
    }
}

fn segments(prefix: &str) -> Vec<&str> {
    prefix.split('/').filter(|s| !s.is_empty()).collect()
}

/// `base` + `rest` shaped like a [`Req`]'s path (`/a/b/rest`), for logging and call counts:
/// `rest` names the variable parts (`{contactId}`) instead of carrying them.
pub(crate) fn path_template(base: &str, rest: &str) -> String {
    let mut all = segments(base);
    all.extend(segments(rest));
    format!("/{}", all.join("/"))
}

/// How the client authenticates.
enum Credentials {
    None,
    Token(SecretString),
    OAuth(OAuthCredentials),
    Provider(Arc<dyn TokenProvider>),
}

/// Builds a [`HubSpotClient`]. Never panics: [`build`](Self::build) reports bad settings.
pub struct HubSpotClientBuilder {
    base_url: String,
    credentials: Credentials,
    paths: ApiPaths,
    tier: RateLimitTier,
    search_limit: RateLimit,
    retry: RetryPolicy,
    max_rate_limit_retries: u32,
    max_rate_limit_wait: Duration,
    refresh_margin: Duration,
    transport: Option<Arc<dyn HttpTransport>>,
    without_timeouts: bool,
    http: sync_http::HttpOptions,
    limiter: Option<Arc<RateLimiter>>,
    learn_limit: bool,
}

impl fmt::Debug for HubSpotClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.credentials {
            Credentials::None => "none",
            Credentials::Token(_) => "token([redacted])",
            Credentials::OAuth(_) => "oauth([redacted])",
            Credentials::Provider(_) => "provider",
        };
        f.debug_struct("HubSpotClientBuilder")
            .field("base_url", &self.base_url)
            .field("auth", &auth)
            .field("paths", &self.paths)
            .field("tier", &self.tier)
            .finish_non_exhaustive()
    }
}

impl HubSpotClientBuilder {
    /// The API base URL (default `https://api.hubapi.com`; point it at `127.0.0.1` for tests
    /// and the sandbox).
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Authenticates with a private-app access token (`pat-…`) or a service key.
    #[must_use]
    pub fn access_token(mut self, token: SecretString) -> Self {
        self.credentials = Credentials::Token(token);
        self
    }

    /// Authenticates with OAuth: access tokens come from `POST /oauth/v1/token` with the
    /// refresh-token grant, renewed [`refresh_margin`](Self::refresh_margin) before they
    /// expire, once for any number of concurrent requests.
    #[must_use]
    pub fn oauth(mut self, credentials: OAuthCredentials) -> Self {
        self.credentials = Credentials::OAuth(credentials);
        self
    }

    /// Authenticates with your own token provider.
    #[must_use]
    pub fn token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.credentials = Credentials::Provider(provider);
        self
    }

    /// Renew OAuth tokens this long before they expire (default 5 minutes).
    #[must_use]
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// The objects path prefix: `/crm/v3/objects` (default) or a date-versioned one such as
    /// `/crm/objects/2026-03`.
    #[must_use]
    pub fn objects_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.paths.objects = prefix.into();
        self
    }

    /// Every API path (objects, properties, lists, OAuth token).
    #[must_use]
    pub fn paths(mut self, paths: ApiPaths) -> Self {
        self.paths = paths;
        self
    }

    /// The account's rate-limit tier (default Free/Starter, 100 per 10 s): the budget
    /// used until HubSpot announces its window on a response, see
    /// [`learn_rate_limit`](Self::learn_rate_limit). [`RateLimitTier::Unlimited`] builds no
    /// limiter at all (tests and benches against a local server only; a
    /// [`shared_limiter`](Self::shared_limiter) given explicitly still applies).
    #[must_use]
    pub fn tier(mut self, tier: RateLimitTier) -> Self {
        self.tier = tier;
        self
    }

    /// Whether the client follows the window HubSpot announces on each response
    /// (`X-HubSpot-RateLimit-Max`, `-Remaining`, `-Interval-Milliseconds`; default true).
    /// The announced window replaces the tier, and requests HubSpot counted that this
    /// client did not send (another process on the same app) are left room for. Turn it
    /// off only to hold the client to a smaller [`RateLimitTier::Custom`] share.
    #[must_use]
    pub fn learn_rate_limit(mut self, learn: bool) -> Self {
        self.learn_limit = learn;
        self
    }

    /// Shares a limiter with other clients of the same app (HubSpot counts per app).
    #[must_use]
    pub fn shared_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The search budget (default 5 per second).
    #[must_use]
    pub fn search_limit(mut self, limit: RateLimit) -> Self {
        self.search_limit = limit;
        self
    }

    /// Retries for 5xx, connection errors and timeouts.
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How many times a 429 (burst or secondly policy) or 423 is waited out and retried
    /// (default 5), and the longest single wait accepted (default 60 s). A `DAILY` 429 is
    /// never retried.
    #[must_use]
    pub fn rate_limit_retries(mut self, retries: u32, max_wait: Duration) -> Self {
        self.max_rate_limit_retries = retries;
        self.max_rate_limit_wait = max_wait;
        self
    }

    /// Sends through your own transport (middleware, a custom client).
    #[must_use]
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The whole-request timeout of each attempt (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.timeout(timeout);
        self
    }

    /// Adjusts the default transport's `reqwest` builder (proxy, root certificates,
    /// default headers...) before it is built; ignored with a custom
    /// [`transport`](Self::transport).
    #[must_use]
    pub fn configure_http(
        mut self,
        f: impl Fn(sync_http::reqwest::ClientBuilder) -> sync_http::reqwest::ClientBuilder
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.http = self.http.configure_http(f);
        self
    }

    /// No connect or request timeouts (tests on tokio's paused clock).
    #[must_use]
    pub fn without_timeouts(mut self) -> Self {
        self.without_timeouts = true;
        self
    }

    fn http_builder(&self) -> sync_http::HttpClientBuilder {
        let mut b = HttpClient::builder(self.base_url.clone())
            .user_agent(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .retry_policy(self.retry.clone())
            .error_decoder(Arc::new(hubspot_error_info));
        if let Some(t) = &self.transport {
            b = b.transport(Arc::clone(t));
        }
        if self.without_timeouts {
            b = b.without_timeouts();
        }
        b = self.http.apply(b);
        // An unlimited client has no window to adjust.
        if self.learn_limit && !self.tier.is_unlimited() {
            b = b.learn_rate_limit_from(LimitHeaders::new(
                HeaderName::from_static("x-hubspot-ratelimit-max"),
                HeaderName::from_static("x-hubspot-ratelimit-remaining"),
                HeaderName::from_static("x-hubspot-ratelimit-interval-milliseconds"),
            ));
        }
        b
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad base URL, rate limit or credential.
    pub fn build(self) -> Result<HubSpotClient, Error> {
        let config = |e: sync_http::HttpError| Error::Config(e.to_string());
        let unlimited = self.tier.is_unlimited();
        let limiter = match &self.limiter {
            Some(l) => Some(Arc::clone(l)),
            // Unlimited: tests and benches against an unthrottled local server only.
            None if unlimited => None,
            None => Some(Arc::new(
                RateLimiter::new(self.tier.rate_limit()).ok_or_else(|| {
                    Error::Config(format!("rate-limit tier {:?} has a zero budget", self.tier))
                })?,
            )),
        };
        let search_limiter = if unlimited {
            None
        } else {
            Some(Arc::new(RateLimiter::new(self.search_limit).ok_or_else(
                || {
                    Error::Config(format!(
                        "search limit {:?} is not a usable budget",
                        self.search_limit
                    ))
                },
            )?))
        };
        let mut b = self.http_builder();
        if let Some(l) = &limiter {
            b = b.rate_limiter(Arc::clone(l));
        }
        b = match &self.credentials {
            Credentials::None => b,
            Credentials::Token(t) => b.bearer(t.clone()),
            Credentials::Provider(p) => b.token_provider(Arc::clone(p)),
            Credentials::OAuth(creds) => {
                // The token endpoint shares the app's limiter, without auth of its own.
                let mut token_http = self.http_builder();
                if let Some(l) = &limiter {
                    token_http = token_http.rate_limiter(Arc::clone(l));
                }
                let token_http = token_http.build().map_err(config)?;
                let source = auth::OAuthTokenSource::new(
                    token_http,
                    self.paths.oauth_token.clone(),
                    creds.clone(),
                );
                b.token_provider(Arc::new(RefreshingToken::with_margin(
                    source,
                    self.refresh_margin,
                )))
            }
        };
        let http = b.build().map_err(config)?;
        let static_token = match &self.credentials {
            Credentials::Token(t) => Some(t.clone()),
            _ => None,
        };
        Ok(HubSpotClient {
            http,
            static_token,
            paths: Arc::new(self.paths),
            search_limiter,
            max_rate_limit_retries: self.max_rate_limit_retries,
            max_rate_limit_wait: self.max_rate_limit_wait,
            properties: Arc::default(),
        })
    }
}

/// The sync-http error decoder for HubSpot: 429s and 423s are left to [`HubSpotClient`],
/// which waits per `policyName`; everything else keeps sync-http's status rules.
fn hubspot_error_info(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiErrorInfo {
    let e = decode_error(status.as_u16(), headers, body);
    let mut info = ApiErrorInfo::default();
    info.message = e.body.message.clone();
    info.code = e.code().map(str::to_owned);
    info.category = e.body.category.clone();
    info.correlation_id = e
        .body
        .correlation_id
        .clone()
        .or_else(|| sync_http::correlation_from_headers(headers));
    if matches!(
        e.problem,
        Problem::RateLimited { .. } | Problem::Locked | Problem::DailyLimit
    ) {
        info.kind = Some(ErrorKind::RateLimited {
            retry_after: e.retry_after,
        });
        info.retryable = Some(false);
    }
    info
}

/// A HubSpot CRM client. Cheap to clone; clones share the rate limiters, the token and
/// the API call counts ([`api_calls`](Self::api_calls)).
///
/// ```no_run
/// use crm_hubspot::{HubSpotClient, RateLimitTier};
/// use secrecy::{ExposeSecret, SecretString};
///
/// # async fn demo() -> Result<(), crm_hubspot::Error> {
/// let client = HubSpotClient::builder()
///     .access_token(SecretString::from(std::env::var("HUBSPOT_TOKEN").unwrap_or_default()))
///     .tier(RateLimitTier::ProfessionalEnterprise)
///     .build()?;
/// let page = client.list_contacts(&crm_hubspot::ListOptions::default()).await?;
/// println!("{} contacts on the first page", page.results.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HubSpotClient {
    http: HttpClient,
    /// Kept only to redact it from error messages.
    static_token: Option<SecretString>,
    paths: Arc<ApiPaths>,
    search_limiter: Option<Arc<RateLimiter>>,
    max_rate_limit_retries: u32,
    max_rate_limit_wait: Duration,
    /// The last contact-property listing, kept current with this client's own property
    /// writes, so a start-up that ensures properties and then validates values lists once.
    properties: Arc<std::sync::Mutex<Option<PropertyListing>>>,
}

/// A contact-property listing and when it was made.
pub(crate) type PropertyListing = (tokio::time::Instant, Vec<crate::model::Property>);

impl fmt::Debug for HubSpotClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubSpotClient")
            .field("http", &self.http)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

/// One request, kept as data so a rate-limited attempt can be sent again.
pub(crate) struct Req {
    method: Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    body: Option<Bytes>,
    idempotent: bool,
    search: bool,
    log_path: String,
}

impl Req {
    pub(crate) fn new(method: Method, base: &str, rest: &[&str]) -> Self {
        let mut segs: Vec<String> = segments(base).into_iter().map(str::to_owned).collect();
        segs.extend(rest.iter().map(|s| (*s).to_owned()));
        let log_path = format!("/{}", segs.join("/"));
        Self {
            method,
            segments: segs,
            query: Vec::new(),
            body: None,
            idempotent: false,
            search: false,
            log_path,
        }
    }

    pub(crate) fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_owned(), v.into()));
        self
    }

    pub(crate) fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, Error> {
        self.body = Some(Bytes::from(serde_json::to_vec(body).map_err(|e| {
            Error::Config(format!("cannot encode request body: {e}"))
        })?));
        Ok(self)
    }

    /// Safe to send twice (reads, upserts by key, updates with the same values).
    pub(crate) fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Counts against the search budget.
    pub(crate) fn search(mut self) -> Self {
        self.search = true;
        self
    }

    /// Logs (and counts calls under) this path template instead of the real path, to keep
    /// emails out of logs and ids out of the per-endpoint call counts.
    pub(crate) fn log_path(mut self, p: impl Into<String>) -> Self {
        self.log_path = p.into();
        self
    }
}

impl HubSpotClient {
    /// A builder with HubSpot's defaults.
    pub fn builder() -> HubSpotClientBuilder {
        HubSpotClientBuilder {
            base_url: DEFAULT_BASE_URL.into(),
            credentials: Credentials::None,
            paths: ApiPaths::default(),
            tier: RateLimitTier::default(),
            search_limit: search_rate_limit(),
            retry: RetryPolicy::default(),
            max_rate_limit_retries: 5,
            max_rate_limit_wait: Duration::from_secs(60),
            refresh_margin: Duration::from_secs(300),
            transport: None,
            without_timeouts: false,
            http: sync_http::HttpOptions::default(),
            limiter: None,
            learn_limit: true,
        }
    }

    /// The paths in use.
    pub fn paths(&self) -> &ApiPaths {
        &self.paths
    }

    /// The client-wide limiter (share it with other clients of the same app).
    pub fn rate_limiter(&self) -> Option<&Arc<RateLimiter>> {
        self.http.rate_limiter()
    }

    /// API requests made through this handle (and its clones), by endpoint template:
    /// `"POST /crm/v3/objects/contacts/search"`, `"GET /crm/v3/objects/contacts/{contactId}"`,
    /// ... Ids and emails in paths never make new keys. Every attempt sent counts, retries
    /// and rate-limit resends included: each is a request against the app's quota.
    /// OAuth token requests are not counted (they go to the token endpoint, not the CRM).
    pub fn api_calls(&self) -> std::collections::BTreeMap<String, u64> {
        self.http.request_counts()
    }

    /// A clone that shares everything (token, connection pool, limiters) but counts its API
    /// calls apart, from zero. [`HubSpotSource`](crate::HubSpotSource) and
    /// [`HubSpotSink`](crate::HubSpotSink) take one each, so a run report that adds their
    /// counts never counts a call twice.
    #[must_use]
    pub fn with_own_call_counts(&self) -> Self {
        Self {
            http: self.http.with_own_request_counts(),
            ..self.clone()
        }
    }

    /// Sends a request: rate limits, auth and 5xx retries by sync-http; 429/423 waited out
    /// here per HubSpot's `policyName`; error bodies decoded into [`Error::Api`].
    pub(crate) async fn send(&self, req: &Req) -> Result<Response, Error> {
        let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        let mut retries = 0u32;
        loop {
            let mut b = self
                .http
                .request_segments(req.method.clone(), &segs)
                .query(&req.query)
                .idempotent(req.idempotent)
                .log_path(req.log_path.clone());
            if let Some(body) = &req.body {
                b = b.body(body.clone(), "application/json");
            }
            if req.search
                && let Some(l) = &self.search_limiter
            {
                b = b.limiter(Arc::clone(l));
            }
            let err = match b.send().await {
                Ok(resp) => return Ok(resp),
                Err(e) => self.to_error(e),
            };
            let wait = match &err {
                Error::Api(api)
                    if matches!(api.problem, Problem::RateLimited { .. } | Problem::Locked) =>
                {
                    api.retry_after
                }
                _ => None,
            };
            match wait {
                // A 429 means HubSpot did not process the request, so any request may be
                // sent again, idempotent or not.
                Some(w)
                    if retries < self.max_rate_limit_retries && w <= self.max_rate_limit_wait =>
                {
                    retries += 1;
                    tracing::warn!(path = %req.log_path, wait_ms = w.as_millis() as u64, retries, "HubSpot rate limit; waiting out the window");
                    tokio::time::sleep(w).await;
                }
                _ => return Err(self.finish_error(err).await),
            }
        }
    }

    /// Sends and decodes a JSON body.
    pub(crate) async fn send_json<T: DeserializeOwned>(&self, req: &Req) -> Result<T, Error> {
        let resp = self.send(req).await?;
        serde_json::from_slice(resp.bytes()).map_err(|e| Error::decode(&req.log_path, e))
    }

    fn to_error(&self, e: sync_http::HttpError) -> Error {
        match (e.status(), e.body(), e.headers()) {
            (Some(status), Some(body), Some(headers)) => {
                let mut api = decode_error(status.as_u16(), headers, body);
                // API messages are kept for the operator, credentials never.
                api.body.message = api.body.message.as_deref().map(|m| self.redact(m));
                for e in &mut api.body.errors {
                    e.message = e.message.as_deref().map(|m| self.redact(m));
                }
                Error::Api(Box::new(api))
            }
            _ => Error::Http(e),
        }
    }

    fn redact(&self, text: &str) -> String {
        let mut t = sync_http::redact_secrets(text);
        if let Some(tok) = &self.static_token {
            let tok = tok.expose_secret();
            if !tok.is_empty() {
                t = t.replace(tok, "[redacted]");
            }
        }
        redact_private_app_tokens(&t)
    }

    async fn finish_error(&self, err: Error) -> Error {
        match err {
            Error::Api(api) if api.problem == Problem::DailyLimit => {
                let resets_at = self.daily_reset().await;
                Error::DailyLimit {
                    resets_at,
                    source: api,
                }
            }
            other => other,
        }
    }

    /// When the private-app daily quota resets, from
    /// `GET /account-info/v3/api-usage/daily/private-apps` (best effort: `None` on failure;
    /// OAuth apps have no daily quota there).
    pub async fn daily_reset(&self) -> Option<DateTime<Utc>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Usage {
            resets_at: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Resp {
            #[serde(default)]
            results: Vec<Usage>,
        }
        let req = Req::new(
            Method::GET,
            "/account-info/v3/api-usage/daily/private-apps",
            &[],
        );
        let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
        let resp = self
            .http
            .request_segments(Method::GET, &segs)
            .send()
            .await
            .ok()?;
        let r: Resp = resp.json().ok()?;
        r.results
            .iter()
            .filter_map(|u| u.resets_at.as_deref())
            .find_map(crate::convert::parse_time)
    }
}

/// Replaces private-app tokens (`pat-na1-…`, `pat-eu1-…`) in `text`.
fn redact_private_app_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("pat-") {
        let (before, tail) = rest.split_at(i);
        out.push_str(before);
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(tail.len());
        if len > 12 {
            out.push_str("pat-[redacted]");
        } else {
            out.push_str(&tail[..len]);
        }
        rest = &tail[len.max(4)..];
    }
    out.push_str(rest);
    out
}

impl ApiError {
    /// Whether HubSpot refused because the daily quota is spent.
    pub fn is_daily_limit(&self) -> bool {
        self.problem == Problem::DailyLimit
    }
}
