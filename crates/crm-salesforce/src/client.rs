//! [`SalesforceClient`]: OAuth, the REST base URL, `Sforce-Limit-Info` tracking, and the
//! calls the connector needs (queries, change windows, collections and upserts).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;
use sync_http::{
    Auth, HttpClient, HttpError, HttpTransport, RateLimit, RateLimiter, RefreshingToken,
    RequestBuilder, ReqwestSettings, ReqwestTransport, Response, RetryPolicy, TokenProvider,
};
use tokio::sync::OnceCell;
use url::Url;

use crate::auth::{Clock, OAuthFlow, SalesforceTokenSource, default_audience, parse_instance_url};
use crate::echo::EchoLog;
use crate::error::{
    ApiError, ApiErrorKind, Error, SalesforceErrorDecoder, decode_multiple_matches,
};
use crate::limits::{ApiUsage, LIMIT_INFO_HEADER, parse_limit_info};
use crate::models::{
    CollectionBody, DeletedResponse, OrgLimit, QueryPage, RawQueryPage, Record, SaveResult,
    UpdatedResponse, UpsertOutcome,
};
use crate::soql::is_identifier;

/// The API version used unless [`SalesforceClientBuilder::api_version`] says otherwise.
pub const DEFAULT_API_VERSION: &str = "v66.0";
/// The oldest API version the connector works with: sObject Collections upsert (and the
/// `created` flag of upsert results), which the sink uses, start at v46.0.
pub const MIN_API_VERSION: &str = "v46.0";
/// The production login host.
pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";
/// The `client=` value of `Sforce-Call-Options` unless configured.
pub const DEFAULT_CALL_CLIENT: &str = "cativa-crm-sync";
/// The most records one sObject Collections call accepts.
pub const MAX_COLLECTION_RECORDS: usize = 200;
/// How far back `sobjects/{Object}/updated` serves.
pub const UPDATED_WINDOW_DAYS: i64 = 30;
/// The usage share above which the client logs a warning.
const USAGE_WARNING: f64 = 0.9;
/// The most records `query_to_end` reserves room for up front, whatever `totalSize` says.
const MAX_RESERVED_RECORDS: usize = 1_000_000;
/// How far back `sobjects/{Object}/deleted` serves.
pub const DELETED_WINDOW_DAYS: i64 = 15;

/// How records that fail with `UNABLE_TO_LOCK_ROW` are resent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockRetry {
    /// Resends after the first attempt (0 disables).
    pub max_retries: usize,
    /// The first wait; doubles each time, with jitter.
    pub base_delay: Duration,
    /// The longest single wait.
    pub max_delay: Duration,
}

impl Default for LockRetry {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl LockRetry {
    /// A policy with `max_retries` resends starting at `base_delay`.
    pub fn new(max_retries: usize, base_delay: Duration) -> Self {
        Self {
            max_retries,
            base_delay,
            max_delay: base_delay.saturating_mul(16),
        }
    }

    fn delays(&self) -> impl Iterator<Item = Duration> {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
            .build()
    }
}

/// Builds a [`SalesforceClient`]. `build` validates everything and never panics.
pub struct SalesforceClientBuilder {
    login_url: String,
    instance_url: Option<String>,
    api_version: String,
    flow: Option<OAuthFlow>,
    call_client: String,
    retry: RetryPolicy,
    rate_limit: Option<RateLimit>,
    transport: Option<Arc<dyn HttpTransport>>,
    request_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    timeouts: bool,
    http: sync_http::HttpOptions,
    clock: Clock,
    lock_retry: LockRetry,
    query_batch_size: Option<u16>,
    integration_user_id: Option<String>,
}

impl fmt::Debug for SalesforceClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalesforceClientBuilder")
            .field("login_url", &self.login_url)
            .field("instance_url", &self.instance_url)
            .field("api_version", &self.api_version)
            .field("flow", &self.flow)
            .field("call_client", &self.call_client)
            .finish_non_exhaustive()
    }
}

impl Default for SalesforceClientBuilder {
    fn default() -> Self {
        Self {
            login_url: DEFAULT_LOGIN_URL.into(),
            instance_url: None,
            api_version: DEFAULT_API_VERSION.into(),
            flow: None,
            call_client: DEFAULT_CALL_CLIENT.into(),
            retry: RetryPolicy::default(),
            rate_limit: None,
            transport: None,
            request_timeout: Some(Duration::from_secs(60)),
            connect_timeout: Some(Duration::from_secs(10)),
            timeouts: true,
            http: sync_http::HttpOptions::default(),
            clock: Arc::new(Utc::now),
            lock_retry: LockRetry::default(),
            query_batch_size: None,
            integration_user_id: None,
        }
    }
}

impl SalesforceClientBuilder {
    /// The login URL: `https://login.salesforce.com` (default), `https://test.salesforce.com`
    /// for sandboxes, or your My Domain URL (`https://acme.my.salesforce.com`), which the
    /// client-credentials flow requires.
    pub fn login_url(mut self, url: impl Into<String>) -> Self {
        self.login_url = url.into();
        self
    }

    /// How to obtain tokens. Required.
    pub fn flow(mut self, flow: OAuthFlow) -> Self {
        self.flow = Some(flow);
        self
    }

    /// A fixed instance URL. Normally it comes from the token response; set it for a static
    /// [`OAuthFlow::AccessToken`].
    pub fn instance_url(mut self, url: impl Into<String>) -> Self {
        self.instance_url = Some(url.into());
        self
    }

    /// The REST API version, `vNN.N` (default [`DEFAULT_API_VERSION`], at least
    /// [`MIN_API_VERSION`]).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// The `client=` value sent in `Sforce-Call-Options` on the resources Salesforce lists
    /// it for (query, queryAll, sObject basic information, rows, rows by external ID), so
    /// Change Data Capture shows it in `changeOrigin`. Collections calls do not honour it,
    /// so the sink's own writes are recognised by their `LastModifiedById` instead (see
    /// [`SalesforceSource`](crate::SalesforceSource)). Default [`DEFAULT_CALL_CLIENT`].
    pub fn call_client(mut self, client: impl Into<String>) -> Self {
        self.call_client = client.into();
        self
    }

    /// The HTTP retry policy (429/5xx/connection errors).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A client-side rate limit shared by every clone of the client.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// A custom transport (proxy, middleware, test double).
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The whole-request timeout (default 60 s; `None` disables it).
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The connect timeout of the default transport (default 10 s).
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The whole-request timeout of each attempt (default 60 s; the same as
    /// [`request_timeout`](Self::request_timeout)`(Some(timeout))`).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
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

    /// No timeouts at all: for tests on tokio's paused clock.
    pub fn without_timeouts(mut self) -> Self {
        self.timeouts = false;
        self
    }

    /// The clock used for JWT expiry and change windows (tests inject a fixed one).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Records per query page, 200..=2000, sent as `Sforce-Query-Options: batchSize=N`
    /// (a hint: Salesforce may return fewer). Default: Salesforce's own (2,000).
    pub fn query_batch_size(mut self, size: u16) -> Self {
        self.query_batch_size = Some(size);
        self
    }

    /// The id (`005...`) of the user the client acts as. Normally learned from the token
    /// response's identity URL; set it for a static [`OAuthFlow::AccessToken`]. The
    /// source recognises the sink's own writes by it (`LastModifiedById`).
    pub fn integration_user_id(mut self, id: impl Into<String>) -> Self {
        self.integration_user_id = Some(id.into());
        self
    }

    /// How records failing with `UNABLE_TO_LOCK_ROW` are resent.
    pub fn lock_retry(mut self, retry: LockRetry) -> Self {
        self.lock_retry = retry;
        self
    }

    fn http_builder(
        &self,
        base: &str,
        transport: &Arc<dyn HttpTransport>,
        limiter: Option<&Arc<RateLimiter>>,
    ) -> sync_http::HttpClientBuilder {
        let mut b = HttpClient::builder(base)
            .user_agent("crm-salesforce", env!("CARGO_PKG_VERSION"))
            .retry_policy(self.retry.clone())
            .transport(Arc::clone(transport))
            .error_decoder(Arc::new(SalesforceErrorDecoder));
        b = if self.timeouts {
            b.request_timeout(self.request_timeout)
        } else {
            b.without_timeouts()
        };
        if let Some(l) = limiter {
            b = b.rate_limiter(Arc::clone(l));
        }
        b
    }

    /// The default transport (reqwest, with the connect timeout and the `configure_http`
    /// hook), or the one given to [`transport`](Self::transport).
    fn transport_or_default(&self) -> Result<Arc<dyn HttpTransport>, Error> {
        if let Some(t) = &self.transport {
            return Ok(Arc::clone(t));
        }
        let mut settings = ReqwestSettings::default();
        settings.connect_timeout = if self.timeouts {
            self.connect_timeout
        } else {
            None
        };
        let t = ReqwestTransport::configured(settings, self.http.reqwest_hook())
            .map_err(|e| Error::Config(format!("cannot build the HTTP transport: {e}")))?;
        Ok(Arc::new(t))
    }

    /// Validates the configuration and builds the client. No network call is made; the
    /// first request fetches a token.
    pub fn build(self) -> Result<SalesforceClient, Error> {
        let login = self.checked_login_url()?;
        self.check_settings()?;
        let flow = self.checked_flow(&login)?;
        let instance = self
            .instance_url
            .as_deref()
            .map(parse_instance_url)
            .transpose()?;
        let transport = self.transport_or_default()?;
        let limiter = match self.rate_limit {
            Some(l) => Some(Arc::new(RateLimiter::new(l).ok_or_else(|| {
                Error::Config("rate_limit needs at least 1 request per non-zero period".into())
            })?)),
            None => None,
        };
        let (auth, tokens) = self.auth(flow, instance.is_some(), &login, &transport)?;
        let inner = Inner {
            api_version: self.api_version.clone(),
            call_options: format!("client={}", self.call_client),
            query_options: self.query_batch_size.map(|n| format!("batchSize={n}")),
            login,
            fixed_instance: instance,
            api: OnceCell::new(),
            auth,
            tokens,
            builder: BuilderParts {
                transport,
                limiter,
                settings: self,
            },
            usage: Mutex::new(None),
            echo: EchoLog::default(),
        };
        Ok(SalesforceClient {
            calls: Arc::default(),
            inner: Arc::new(inner),
        })
    }

    /// The login URL, parsed: an `https` (or, for a local sandbox, `http`) URL with a host.
    fn checked_login_url(&self) -> Result<Url, Error> {
        let login = Url::parse(&self.login_url).map_err(|e| {
            Error::Config(format!("login_url {:?} is not a URL: {e}", self.login_url))
        })?;
        if !matches!(login.scheme(), "https" | "http") || login.host_str().is_none() {
            return Err(Error::Config(format!(
                "login_url {:?} must be an https URL such as https://login.salesforce.com",
                self.login_url
            )));
        }
        Ok(login)
    }

    /// The API version, call client, query batch size and integration user id.
    fn check_settings(&self) -> Result<(), Error> {
        let Some(version) = parse_version(&self.api_version) else {
            return Err(Error::Config(format!(
                "api_version {:?} must look like \"v66.0\"",
                self.api_version
            )));
        };
        if parse_version(MIN_API_VERSION).is_some_and(|min| version < min) {
            return Err(Error::Config(format!(
                "api_version {} is older than {MIN_API_VERSION}, the first with sObject Collections upsert, which the sink uses: set {MIN_API_VERSION} or later (default {DEFAULT_API_VERSION})",
                self.api_version
            )));
        }
        if self.call_client.is_empty()
            || !self
                .call_client
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            return Err(Error::Config(format!(
                "call_client {:?} must be non-empty ASCII letters, digits, '-', '_', '.' or '/'",
                self.call_client
            )));
        }
        if let Some(n) = self.query_batch_size
            && !(200..=2000).contains(&n)
        {
            return Err(Error::Config(format!(
                "query_batch_size {n} must be within 200..=2000"
            )));
        }
        if let Some(id) = &self.integration_user_id
            && crate::auth::identity_user_id(id).is_none()
        {
            return Err(Error::Config(format!(
                "integration_user_id {id:?} must be a 15- or 18-character user id starting with 005"
            )));
        }
        Ok(())
    }

    /// The OAuth flow, checked against the login URL, a JWT assertion's audience defaulted
    /// from it.
    fn checked_flow(&self, login: &Url) -> Result<OAuthFlow, Error> {
        let flow = self
            .flow
            .clone()
            .ok_or_else(|| Error::Config("no OAuth flow: call .flow(OAuthFlow::...)".into()))?;
        flow.check_login_url(login)?;
        Ok(match flow {
            OAuthFlow::JwtBearer(j) => {
                OAuthFlow::JwtBearer(j.with_default_audience(default_audience(login)))
            }
            other => other,
        })
    }

    /// How API calls authenticate: a static token, or a refreshing token source posting to
    /// the login URL.
    fn auth(
        &self,
        flow: OAuthFlow,
        has_instance: bool,
        login: &Url,
        transport: &Arc<dyn HttpTransport>,
    ) -> Result<(Auth, Option<SharedTokens>), Error> {
        match flow {
            OAuthFlow::AccessToken(token) => {
                if !has_instance {
                    return Err(Error::Config(
                        "a static access token needs .instance_url(...): there is no token response to learn it from".into(),
                    ));
                }
                Ok((Auth::Bearer(token), None))
            }
            flow => {
                let login_http = self.http_builder(login.as_str(), transport, None).build()?;
                let source = Arc::new(RefreshingToken::new(SalesforceTokenSource::new(
                    login_http,
                    flow,
                    Arc::clone(&self.clock),
                )));
                Ok((
                    Auth::Provider(Arc::clone(&source) as Arc<dyn TokenProvider>),
                    Some(source),
                ))
            }
        }
    }
}

/// The refreshing token source a client and its clones share.
type SharedTokens = Arc<RefreshingToken<SalesforceTokenSource>>;

/// `vNN.N` as (major, minor), or `None` when it is not of that form.
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.strip_prefix('v')?.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
fn valid_version(v: &str) -> bool {
    parse_version(v).is_some()
}

/// Whether Salesforce documents `Sforce-Call-Options` for the resource at `segments`
/// (under the version): sObject basic information, rows and rows by external ID. Query
/// and queryAll add it on their own path.
fn takes_call_options(segments: &[&str]) -> bool {
    match segments {
        ["sobjects", _] | ["sobjects", _, _] => true,
        ["sobjects", _, kind, _] => !matches!(*kind, "updated" | "deleted" | "describe"),
        _ => false,
    }
}

/// Whether an external ID value can travel as a URL path segment. Only plain values do: a
/// `.` or `..` segment is resolved away by URL parsing (the PATCH would hit another
/// resource), and the guide warns that email-like values ending in some domains answer
/// 404. Anything else goes in a request body.
pub(crate) fn path_safe_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

struct BuilderParts {
    transport: Arc<dyn HttpTransport>,
    limiter: Option<Arc<RateLimiter>>,
    settings: SalesforceClientBuilder,
}

struct Api {
    http: HttpClient,
    instance: Url,
}

struct Inner {
    api_version: String,
    call_options: String,
    query_options: Option<String>,
    login: Url,
    fixed_instance: Option<Url>,
    api: OnceCell<Api>,
    auth: Auth,
    tokens: Option<Arc<RefreshingToken<SalesforceTokenSource>>>,
    builder: BuilderParts,
    usage: Mutex<Option<ApiUsage>>,
    echo: EchoLog,
}

/// A Salesforce REST client. Cheap to clone; clones share the token, the connection pool,
/// the rate limiter and the usage figure.
///
/// ```no_run
/// use crm_salesforce::{JwtBearer, OAuthFlow, SalesforceClient};
///
/// # async fn demo() -> Result<(), crm_salesforce::Error> {
/// let key = std::fs::read("salesforce-jwt.key").unwrap_or_default();
/// let client = SalesforceClient::builder()
///     .login_url("https://acme.my.salesforce.com")
///     .flow(OAuthFlow::JwtBearer(JwtBearer::from_pem("3MVG9...consumer-key", "integration@acme.com", &key)?))
///     .build()?;
/// let page = client.query::<serde_json::Value>("SELECT Id, Email FROM Contact LIMIT 10").await?;
/// println!("{} contacts; usage {:?}", page.total_size, client.last_api_usage());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SalesforceClient {
    inner: Arc<Inner>,
    calls: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalesforceClient")
            .field("login", &self.inner.login.as_str())
            .field("api_version", &self.inner.api_version)
            .field(
                "instance",
                &self.inner.api.get().map(|a| a.instance.as_str()),
            )
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

impl SalesforceClient {
    /// A builder with the defaults (production login host, [`DEFAULT_API_VERSION`]).
    pub fn builder() -> SalesforceClientBuilder {
        SalesforceClientBuilder::default()
    }

    /// The API version in use.
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    /// The latest `Sforce-Limit-Info` figure seen on any response, for the run report.
    pub fn last_api_usage(&self) -> Option<ApiUsage> {
        self.inner.usage.lock().ok().and_then(|g| g.clone())
    }

    /// The id of the user this client acts as: configured, or learned from the token
    /// response (`None` before the first token, or for a static token without
    /// [`SalesforceClientBuilder::integration_user_id`]).
    pub fn integration_user_id(&self) -> Option<String> {
        self.inner
            .builder
            .settings
            .integration_user_id
            .clone()
            .or_else(|| {
                self.inner
                    .tokens
                    .as_ref()
                    .and_then(|t| t.source().user_id())
            })
    }

    /// The error a port returns to the engine. A spent daily allowance
    /// (`REQUEST_LIMIT_EXCEEDED`) carries when to resume (`resets_at`, the run report's
    /// `resume_after`), estimated from the latest `Sforce-Limit-Info` by
    /// [`resume_estimate`](crate::limits::resume_estimate).
    pub(crate) fn port_error(&self, e: Error) -> sync_core::Error {
        let mut r = sync_core::RemoteError::from(e);
        if r.kind == sync_core::RemoteErrorKind::QuotaExhausted && r.resets_at.is_none() {
            let usage = self.last_api_usage();
            r = r.with_resets_at(crate::limits::resume_estimate(usage.as_ref(), self.now()));
        }
        r.into()
    }

    /// What the source delivered and the sink wrote, to recognise echoes.
    pub(crate) fn echo_log(&self) -> &EchoLog {
        &self.inner.echo
    }

    /// The org (`00D...`) this client reaches: from the latest token response's identity
    /// URL, or for a static token its org prefix (a session id reads `<org id>!...`).
    /// `None` before the first token.
    pub fn org_id(&self) -> Option<String> {
        if let Some(tokens) = &self.inner.tokens {
            return tokens.source().org_id();
        }
        match &self.inner.auth {
            sync_http::Auth::Bearer(token) => {
                let prefix = secrecy::ExposeSecret::expose_secret(token)
                    .split('!')
                    .next()
                    .unwrap_or_default();
                (prefix.starts_with("00D")
                    && (prefix.len() == 15 || prefix.len() == 18)
                    && prefix.bytes().all(|b| b.is_ascii_alphanumeric()))
                .then(|| prefix.to_owned())
            }
            _ => None,
        }
    }

    /// How many tokens were fetched from the login host so far.
    pub fn token_fetches(&self) -> u64 {
        self.inner
            .tokens
            .as_ref()
            .map_or(0, |t| t.source().fetches())
    }

    /// The clock the client uses.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.inner.builder.settings.clock)()
    }

    /// The org's instance URL (fetching a token first if it is not known yet).
    pub async fn instance_url(&self) -> Result<Url, Error> {
        Ok(self.api().await?.instance.clone())
    }

    async fn api(&self) -> Result<&Api, Error> {
        self.inner
            .api
            .get_or_try_init(|| async {
                let instance = match (&self.inner.fixed_instance, &self.inner.tokens) {
                    (Some(url), _) => url.clone(),
                    (None, Some(tokens)) => {
                        // The first token names the instance.
                        tokens.token().await.map_err(Error::from_http)?;
                        tokens
                            .source()
                            .instance_url()
                            .ok_or_else(|| Error::Decode {
                                what: "token response",
                                message: "no instance_url".into(),
                            })?
                    }
                    (None, None) => return Err(Error::Config("no instance URL".into())),
                };
                let b = &self.inner.builder;
                let http = b
                    .settings
                    .http_builder(instance.as_str(), &b.transport, b.limiter.as_ref())
                    .auth(self.inner.auth.clone())
                    .build()?;
                Ok(Api { http, instance })
            })
            .await
    }

    fn record_usage(&self, headers: Option<&HeaderMap>) {
        let Some(value) = headers
            .and_then(|h| h.get(LIMIT_INFO_HEADER))
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        if let (Some(usage), Ok(mut slot)) = (parse_limit_info(value), self.inner.usage.lock()) {
            let was_high = slot
                .as_ref()
                .is_some_and(|u| u.fraction_used() >= USAGE_WARNING);
            if usage.fraction_used() >= USAGE_WARNING && !was_high {
                tracing::warn!(
                    used = usage.used,
                    limit = usage.limit,
                    "Salesforce daily API usage passed 90%: REQUEST_LIMIT_EXCEEDED will stop syncs until it falls"
                );
            }
            *slot = Some(usage);
        }
    }

    /// API requests made through this handle (and its clones), by endpoint:
    /// `"GET /services/data/{version}/query"`, `"PATCH /services/data/{version}/composite/sobjects/{object}/{field}"`,
    /// ... Retries count: each is a request against the org's allowance.
    pub fn api_calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// A clone that shares everything (token, connection pool, limiter, usage figure) but
    /// counts its API calls apart. [`SalesforceSource`](crate::SalesforceSource) and
    /// [`SalesforceSink`](crate::SalesforceSink) take one each, so a run report that adds
    /// their counts never counts a call twice.
    pub fn with_own_call_counts(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            calls: Arc::default(),
        }
    }

    async fn send(&self, rb: RequestBuilder<'_>, endpoint: &str) -> Result<Response, HttpError> {
        let result = rb.send().await;
        let attempts = match &result {
            Ok(r) => {
                self.record_usage(Some(r.headers()));
                r.attempts()
            }
            Err(e) => {
                self.record_usage(e.headers());
                e.attempts()
            }
        };
        if attempts > 0
            && let Ok(mut calls) = self.calls.lock()
        {
            *calls.entry(endpoint.to_owned()).or_insert(0) += u64::from(attempts);
        }
        result
    }

    fn data_path(&self, rest: &str) -> String {
        format!("services/data/{}/{}", self.inner.api_version, rest)
    }

    fn data_url(api: &Api, segments: &[&str], version: &str) -> Result<Url, Error> {
        let mut url = api.instance.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config("the instance URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(["services", "data", version])
            .extend(segments);
        Ok(url)
    }

    /// Sends a request to `services/data/vXX.X/<segments>` (each segment percent-encoded)
    /// and returns the raw response. Requests to sObject basic information, rows and rows by
    /// external ID carry `Sforce-Call-Options`, where Salesforce documents it.
    pub async fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<Response, Error> {
        let api = self.api().await?;
        let url = Self::data_url(api, segments, &self.inner.api_version)?;
        let is_write = method != Method::GET && method != Method::HEAD;
        let is_post = method == Method::POST;
        let endpoint = format!("{method} {VERSIONED}/{}", segments_template(segments));
        let call_options = takes_call_options(segments);
        let mut rb = api.http.request_url(method, url);
        if !query.is_empty() {
            rb = rb.query(query);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        if call_options {
            rb = rb.header("Sforce-Call-Options", &self.inner.call_options);
        }
        if is_write {
            // PATCH (update, upsert by key) and DELETE have one effect however often they
            // are sent; a POST (create) might create twice, so it is not resent.
            rb = rb.idempotent(!is_post);
        }
        Ok(self.send(rb, &endpoint).await?)
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        what: &'static str,
        endpoint: &str,
    ) -> Result<T, Error> {
        let api = self.api().await?;
        let resp = self
            .send(api.http.request_url(Method::GET, url), endpoint)
            .await?;
        decode(&resp, what)
    }

    /// The first page of a SOQL query (live records only).
    pub async fn query<T: DeserializeOwned>(&self, soql: &str) -> Result<QueryPage<T>, Error> {
        self.query_raw(soql).await?.decode()
    }

    /// The first page of a SOQL query over live **and** deleted or merged records
    /// (`queryAll`: rows with `IsDeleted = true` included while in the Recycle Bin).
    pub async fn query_all<T: DeserializeOwned>(&self, soql: &str) -> Result<QueryPage<T>, Error> {
        self.query_all_raw(soql).await?.decode()
    }

    /// [`query`](Self::query) without decoding: read the records in place with
    /// [`RawQueryPage::records`] (no copy per field), or decode them into your own type.
    pub async fn query_raw(&self, soql: &str) -> Result<RawQueryPage, Error> {
        self.query_resource("query", soql).await
    }

    /// [`query_all`](Self::query_all) without decoding (see [`query_raw`](Self::query_raw)).
    pub async fn query_all_raw(&self, soql: &str) -> Result<RawQueryPage, Error> {
        self.query_resource("queryAll", soql).await
    }

    async fn query_resource(&self, resource: &str, soql: &str) -> Result<RawQueryPage, Error> {
        let api = self.api().await?;
        let mut url = Self::data_url(api, &[resource], &self.inner.api_version)?;
        url.query_pairs_mut().append_pair("q", soql);
        self.get_query_page(url, &format!("GET {VERSIONED}/{resource}"))
            .await
    }

    async fn get_query_page(&self, url: Url, endpoint: &str) -> Result<RawQueryPage, Error> {
        let api = self.api().await?;
        // Query and queryAll are among the resources documented for Sforce-Call-Options.
        let mut rb = api
            .http
            .request_url(Method::GET, url)
            .header("Sforce-Call-Options", &self.inner.call_options);
        if let Some(options) = &self.inner.query_options {
            rb = rb.header("Sforce-Query-Options", options);
        }
        let resp = self.send(rb, endpoint).await?;
        Ok(RawQueryPage::new(resp.bytes().clone()))
    }

    /// The page at a `nextRecordsUrl` (a path on the instance).
    pub async fn query_more<T: DeserializeOwned>(
        &self,
        next_records_url: &str,
    ) -> Result<QueryPage<T>, Error> {
        self.query_more_raw(next_records_url).await?.decode()
    }

    /// [`query_more`](Self::query_more) without decoding (see [`query_raw`](Self::query_raw)).
    pub async fn query_more_raw(&self, next_records_url: &str) -> Result<RawQueryPage, Error> {
        let api = self.api().await?;
        if !next_records_url.starts_with("/services/data/") {
            return Err(Error::Config(format!(
                "{next_records_url:?} is not a Salesforce nextRecordsUrl"
            )));
        }
        let url = api
            .instance
            .join(next_records_url)
            .map_err(|e| Error::Config(format!("bad nextRecordsUrl {next_records_url:?}: {e}")))?;
        let resource = if next_records_url.contains("/queryAll/") {
            "queryAll"
        } else {
            "query"
        };
        self.get_query_page(url, &format!("GET {VERSIONED}/{resource}/{{locator}}"))
            .await
    }

    /// Runs a query and follows `nextRecordsUrl` until `done`, collecting every record.
    /// One page body is held at a time, and the vector is sized once from `totalSize`;
    /// choose a `T` holding only the fields you keep (a `Record` map costs several times
    /// more). Prefer page-by-page reading ([`query_raw`](Self::query_raw) and
    /// [`query_more_raw`](Self::query_more_raw), as the `CrmSource` does) for large results.
    pub async fn query_to_end<T: DeserializeOwned>(
        &self,
        soql: &str,
        all_rows: bool,
    ) -> Result<Vec<T>, Error> {
        let mut raw = if all_rows {
            self.query_all_raw(soql).await?
        } else {
            self.query_raw(soql).await?
        };
        let mut records: Vec<T> = Vec::new();
        loop {
            let page: QueryPage<T> = raw.decode()?;
            if records.is_empty() {
                // totalSize is the whole result: one allocation instead of doubling (a
                // bound keeps a wrong count from reserving absurd memory).
                let total = usize::try_from(page.total_size).unwrap_or(usize::MAX);
                records.reserve_exact(total.min(MAX_RESERVED_RECORDS));
            }
            records.extend(page.records);
            if page.done {
                return Ok(records);
            }
            let Some(next) = page.next_records_url else {
                return Err(Error::Decode {
                    what: "query page",
                    message: "done is false but nextRecordsUrl is missing".into(),
                });
            };
            // The previous body is dropped before the next one is read.
            drop(raw);
            raw = self.query_more_raw(&next).await?;
        }
    }

    fn check_window(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        days: i64,
        what: &str,
    ) -> Result<(), Error> {
        let now = self.now();
        if end <= start {
            return Err(Error::Window(format!(
                "{what}: end {end} is not after start {start}"
            )));
        }
        if start < now - chrono::Duration::days(days) {
            return Err(Error::Window(format!(
                "{what}: start {start} is more than {days} days ago; Salesforce serves only the last {days} days: run a full reconcile instead"
            )));
        }
        Ok(())
    }

    async fn window<T: DeserializeOwned>(
        &self,
        object: &str,
        kind: &'static str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<T, Error> {
        if !is_identifier(object) {
            return Err(Error::Config(format!("{object:?} is not an sObject name")));
        }
        let api = self.api().await?;
        let mut url = Self::data_url(
            api,
            &["sobjects", object, kind, ""],
            &self.inner.api_version,
        )?;
        // Salesforce wants seconds truncated, UTC, with an explicit offset.
        let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
        url.query_pairs_mut()
            .append_pair("start", &fmt(start))
            .append_pair("end", &fmt(end));
        self.get_json(
            url,
            kind,
            &format!("GET {VERSIONED}/sobjects/{{object}}/{kind}/"),
        )
        .await
    }

    /// `GET limits`: the org's allowances (`DailyApiRequests`, `DailyBulkApiBatches`, ...)
    /// with their maximum and remaining values; a preflight before a large run.
    pub async fn limits(&self) -> Result<BTreeMap<String, OrgLimit>, Error> {
        let api = self.api().await?;
        let url = Self::data_url(api, &["limits"], &self.inner.api_version)?;
        self.get_json(url, "limits", &format!("GET {VERSIONED}/limits"))
            .await
    }

    /// `sobjects/{object}/describe`: the object's live schema (fields, types, picklist
    /// values, createable and updateable), for mapping suggestions and validation.
    pub async fn describe(&self, object: &str) -> Result<crate::describe::SObjectDescribe, Error> {
        let api = self.api().await?;
        let url = Self::data_url(
            api,
            &["sobjects", object, "describe"],
            &self.inner.api_version,
        )?;
        self.get_json(
            url,
            "describe",
            &format!("GET {VERSIONED}/sobjects/{{object}}/describe"),
        )
        .await
    }

    /// `sobjects/{object}/updated`: ids created or updated in `[start, end]`, at most 30
    /// days back.
    pub async fn get_updated(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<UpdatedResponse, Error> {
        self.check_window(start, end, UPDATED_WINDOW_DAYS, "get updated")?;
        self.window(object, "updated", start, end).await
    }

    /// `sobjects/{object}/deleted`: records deleted in `[start, end]`, at most 15 days back.
    /// Compare `earliest_date_available` with your last sync point.
    pub async fn get_deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeletedResponse, Error> {
        self.check_window(start, end, DELETED_WINDOW_DAYS, "get deleted")?;
        self.window(object, "deleted", start, end).await
    }

    /// sObject Collections create: `POST composite/sobjects`, 200 records per call. Each
    /// record needs `attributes.type`. Returns one result per record, in input order.
    pub async fn create_records(
        &self,
        records: &[Record],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, Error> {
        self.collections(
            Method::POST,
            &["composite", "sobjects"],
            records,
            all_or_none,
            false,
        )
        .await
    }

    /// sObject Collections delete: `DELETE composite/sobjects?ids=...`, 200 ids per call.
    /// Returns one result per id, in input order.
    pub async fn delete_records(
        &self,
        ids: &[String],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, Error> {
        let mut out = Vec::with_capacity(ids.len());
        let aon = all_or_none.to_string();
        for chunk in ids.chunks(MAX_COLLECTION_RECORDS) {
            let joined = chunk.join(",");
            let resp = self
                .request(
                    Method::DELETE,
                    &["composite", "sobjects"],
                    &[("ids", joined.as_str()), ("allOrNone", aon.as_str())],
                    None,
                )
                .await?;
            out.extend(decode::<Vec<SaveResult>>(
                &resp,
                "sObject Collections delete results",
            )?);
        }
        Ok(out)
    }

    /// sObject Collections update: `PATCH composite/sobjects`. Each record carries `id`
    /// and `attributes.type`.
    pub async fn update_records(
        &self,
        records: &[Record],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, Error> {
        self.collections(
            Method::PATCH,
            &["composite", "sobjects"],
            records,
            all_or_none,
            true,
        )
        .await
    }

    /// sObject Collections upsert by external ID: `PATCH composite/sobjects/{object}/{field}`.
    /// Each record carries `attributes.type` and the external ID field; results add `created`.
    pub async fn upsert_records(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[Record],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, Error> {
        for name in [object, external_id_field] {
            if !is_identifier(name) {
                return Err(Error::Config(format!("{name:?} is not an API name")));
            }
        }
        self.collections(
            Method::PATCH,
            &["composite", "sobjects", object, external_id_field],
            records,
            all_or_none,
            true,
        )
        .await
    }

    async fn collections(
        &self,
        method: Method,
        segments: &[&str],
        records: &[Record],
        all_or_none: bool,
        idempotent: bool,
    ) -> Result<Vec<SaveResult>, Error> {
        let mut out = Vec::with_capacity(records.len());
        for chunk in records.chunks(MAX_COLLECTION_RECORDS) {
            out.extend(
                self.isolating(&method, segments, chunk, all_or_none, idempotent)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Sends a chunk; when Salesforce rejects the call as a whole as invalid (one record
    /// names a field that does not exist, say), splits it in halves until the bad record
    /// stands alone, reports it as that record's failure, and writes the rest. Nothing of a
    /// rejected call was written, so resending its halves is safe.
    fn isolating<'a>(
        &'a self,
        method: &'a Method,
        segments: &'a [&'a str],
        chunk: &'a [Record],
        all_or_none: bool,
        idempotent: bool,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<SaveResult>, Error>> + Send + 'a>,
    > {
        Box::pin(async move {
            match self
                .collection_chunk(method, segments, chunk, all_or_none, idempotent)
                .await
            {
                Err(Error::Api {
                    status: 400,
                    kind: ApiErrorKind::Invalid | ApiErrorKind::MalformedQuery,
                    errors,
                    ..
                }) if !all_or_none => {
                    if chunk.len() == 1 {
                        return Ok(vec![SaveResult::failed(errors)]);
                    }
                    tracing::debug!(
                        records = chunk.len(),
                        "collection rejected as a whole; splitting to isolate the bad record"
                    );
                    let (left, right) = chunk.split_at(chunk.len() / 2);
                    let mut out = self
                        .isolating(method, segments, left, all_or_none, idempotent)
                        .await?;
                    out.extend(
                        self.isolating(method, segments, right, all_or_none, idempotent)
                            .await?,
                    );
                    Ok(out)
                }
                other => other,
            }
        })
    }

    /// One call of at most 200 records, resending records that failed only on a row lock
    /// (or were rolled back with them) with exponential backoff.
    async fn collection_chunk(
        &self,
        method: &Method,
        segments: &[&str],
        chunk: &[Record],
        all_or_none: bool,
        idempotent: bool,
    ) -> Result<Vec<SaveResult>, Error> {
        let mut results: Vec<Option<SaveResult>> = vec![None; chunk.len()];
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let mut delays = self.inner.builder.settings.lock_retry.delays();
        loop {
            let batch: Vec<Record> = pending.iter().map(|&i| chunk[i].clone()).collect();
            let outcome = self
                .collection_call(method, segments, &batch, all_or_none, idempotent)
                .await;
            let retry_all = match outcome {
                Ok(got) => {
                    if got.len() != batch.len() {
                        return Err(Error::Decode {
                            what: "collections response",
                            message: format!("{} results for {} records", got.len(), batch.len()),
                        });
                    }
                    let mut again = Vec::new();
                    let any_lock = got
                        .iter()
                        .any(|r| r.errors.iter().any(|e| e.code == "UNABLE_TO_LOCK_ROW"));
                    for (&i, r) in pending.iter().zip(got) {
                        if any_lock && r.is_transient_failure() {
                            again.push(i);
                        }
                        results[i] = Some(r);
                    }
                    pending = again;
                    false
                }
                Err(e) if e.api_kind() == Some(ApiErrorKind::RowLocked) => true,
                Err(e) => return Err(e),
            };
            if pending.is_empty() {
                break;
            }
            match delays.next() {
                Some(wait) => {
                    tracing::warn!(
                        records = pending.len(),
                        wait_ms = wait.as_millis() as u64,
                        "UNABLE_TO_LOCK_ROW: resending"
                    );
                    tokio::time::sleep(wait).await;
                }
                None if retry_all => {
                    return Err(Error::Api {
                        status: 400,
                        kind: ApiErrorKind::RowLocked,
                        errors: vec![ApiError::new(
                            "UNABLE_TO_LOCK_ROW",
                            "records stayed locked after every retry",
                        )],
                        correlation_id: None,
                    });
                }
                None => break,
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    SaveResult::failed(vec![ApiError::new("UNABLE_TO_LOCK_ROW", "no result")])
                })
            })
            .collect())
    }

    async fn collection_call(
        &self,
        method: &Method,
        segments: &[&str],
        records: &[Record],
        all_or_none: bool,
        idempotent: bool,
    ) -> Result<Vec<SaveResult>, Error> {
        let api = self.api().await?;
        let url = Self::data_url(api, segments, &self.inner.api_version)?;
        let body = CollectionBody {
            all_or_none,
            records,
        };
        let rb = api
            .http
            .request_url(method.clone(), url)
            .json(&body)
            // No Sforce-Call-Options: Salesforce does not document it for collections.
            .idempotent(idempotent);
        let endpoint = format!("{method} {VERSIONED}/{}", segments_template(segments));
        let resp = self.send(rb, &endpoint).await?;
        decode(&resp, "collections response")
    }

    /// Upserts one record by external ID: `PATCH sobjects/{object}/{field}/{value}`.
    /// 201 = created, 200 or 204 = updated, 300 = several records match (an error: nothing
    /// was written). `record` must not contain `Id` or the external ID field.
    ///
    /// Only plain values (ASCII letters, digits, `-`, `_`) travel in the path. Any other
    /// value (`.`, `..`, `a/b`, emails, non-ASCII) is sent in the body of a one-record
    /// sObject Collections upsert instead, which has the same outcome without putting the
    /// value in the URL.
    pub async fn upsert_by_external_id(
        &self,
        object: &str,
        external_id_field: &str,
        value: &str,
        record: &Record,
    ) -> Result<UpsertOutcome, Error> {
        for name in [object, external_id_field] {
            if !is_identifier(name) {
                return Err(Error::Config(format!("{name:?} is not an API name")));
            }
        }
        if record.contains_key(external_id_field)
            || record.keys().any(|k| k.eq_ignore_ascii_case("Id"))
        {
            return Err(Error::Config(format!(
                "an upsert body must not contain Id or {external_id_field}: Salesforce rejects it"
            )));
        }
        if !path_safe_value(value) {
            return self
                .upsert_in_body(object, external_id_field, value, record)
                .await;
        }
        let body = serde_json::Value::Object(record.clone());
        let resp = match self
            .request(
                Method::PATCH,
                &["sobjects", object, external_id_field, value],
                &[],
                Some(&body),
            )
            .await
        {
            Ok(r) => r,
            Err(Error::Http(e)) if e.status() == Some(StatusCode::MULTIPLE_CHOICES) => {
                return Err(Error::MultipleMatches {
                    object: object.to_owned(),
                    field: external_id_field.to_owned(),
                    candidates: e.body().map(decode_multiple_matches).unwrap_or_default(),
                });
            }
            Err(Error::Api { status: 300, .. }) => {
                return Err(Error::MultipleMatches {
                    object: object.to_owned(),
                    field: external_id_field.to_owned(),
                    candidates: Vec::new(),
                });
            }
            Err(e) => return Err(e),
        };
        match resp.status().as_u16() {
            204 => Ok(UpsertOutcome {
                id: None,
                created: false,
            }),
            status => {
                let r: SaveResult = decode(&resp, "upsert response")?;
                if !r.success {
                    return Err(Error::Api {
                        status,
                        kind: r
                            .errors
                            .first()
                            .map_or(ApiErrorKind::Invalid, |e| e.kind(Some(status))),
                        errors: r.errors,
                        correlation_id: None,
                    });
                }
                Ok(UpsertOutcome {
                    id: r.id,
                    created: r.created.unwrap_or(status == 201),
                })
            }
        }
    }

    /// A one-record collections upsert: the external ID value travels in the body.
    async fn upsert_in_body(
        &self,
        object: &str,
        external_id_field: &str,
        value: &str,
        record: &Record,
    ) -> Result<UpsertOutcome, Error> {
        let mut r = record.clone();
        r.insert("attributes".into(), serde_json::json!({ "type": object }));
        r.insert(
            external_id_field.to_owned(),
            serde_json::Value::String(value.to_owned()),
        );
        let result = self
            .upsert_records(object, external_id_field, &[r], false)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Decode {
                what: "upsert response",
                message: "no result for the record".into(),
            })?;
        if result.success {
            return Ok(UpsertOutcome {
                id: result.id,
                created: result.created.unwrap_or(false),
            });
        }
        if result
            .errors
            .iter()
            .any(|e| e.code == "DUPLICATE_EXTERNAL_ID")
        {
            return Err(Error::MultipleMatches {
                object: object.to_owned(),
                field: external_id_field.to_owned(),
                candidates: Vec::new(),
            });
        }
        Err(Error::Api {
            status: 200,
            kind: result
                .errors
                .first()
                .map_or(ApiErrorKind::Invalid, |e| e.kind(None)),
            errors: result.errors,
            correlation_id: None,
        })
    }

    /// The path of a REST resource under this client's version (for logs and tests).
    pub fn resource_path(&self, rest: &str) -> String {
        format!("/{}", self.data_path(rest))
    }
}

/// The versioned REST prefix as it appears in endpoint names.
const VERSIONED: &str = "/services/data/{version}";

/// An endpoint template for a path under the version: data (ids, emails, external ID
/// values) replaced by placeholders, so counts group by endpoint and hold no personal data.
fn segments_template(segments: &[&str]) -> String {
    match segments {
        ["composite", "sobjects"] => "composite/sobjects".into(),
        ["composite", "sobjects", _, _] => "composite/sobjects/{object}/{field}".into(),
        ["sobjects", _] => "sobjects/{object}".into(),
        ["sobjects", _, _] => "sobjects/{object}/{id}".into(),
        ["sobjects", _, _, _] => "sobjects/{object}/{field}/{value}".into(),
        [first] => (*first).to_owned(),
        [first, ..] => format!("{first}/..."),
        [] => String::new(),
    }
}

fn decode<T: DeserializeOwned>(resp: &Response, what: &'static str) -> Result<T, Error> {
    serde_json::from_slice(resp.bytes()).map_err(|e| Error::Decode {
        what,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn endpoint_templates_hold_no_data() {
        assert_eq!(
            segments_template(&["sobjects", "Contact", "Email", "jane@x.com"]),
            "sobjects/{object}/{field}/{value}"
        );
        assert_eq!(
            segments_template(&["sobjects", "Contact", "003A"]),
            "sobjects/{object}/{id}"
        );
        assert_eq!(
            segments_template(&["composite", "sobjects", "Contact", "Ext__c"]),
            "composite/sobjects/{object}/{field}"
        );
        assert_eq!(
            segments_template(&["composite", "sobjects"]),
            "composite/sobjects"
        );
        assert_eq!(segments_template(&["limits"]), "limits");
        assert_eq!(segments_template(&["tooling", "query"]), "tooling/...");
    }

    #[test]
    fn versions() {
        assert!(valid_version("v66.0") && valid_version("v59.0"));
        assert!(
            !valid_version("66.0")
                && !valid_version("v66")
                && !valid_version("v6x.0")
                && !valid_version("v.0")
        );
    }

    #[test]
    fn builder_validates() {
        let flow = OAuthFlow::refresh_token("ck", None, SecretString::from("rt"));
        let err = SalesforceClient::builder()
            .flow(flow.clone())
            .api_version("66")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("api_version"));
        let err = SalesforceClient::builder()
            .flow(flow.clone())
            .login_url("ftp://x")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("https"));
        let err = SalesforceClient::builder().build().unwrap_err();
        assert!(err.to_string().contains("flow"));
        let err = SalesforceClient::builder()
            .flow(OAuthFlow::client_credentials(
                "ck",
                SecretString::from("cs"),
            ))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::MyDomainRequired { .. }));
        let err = SalesforceClient::builder()
            .flow(OAuthFlow::AccessToken(SecretString::from("t")))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("instance_url"));
        let err = SalesforceClient::builder()
            .flow(flow.clone())
            .call_client("a b")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("call_client"));
        let ok = SalesforceClient::builder().flow(flow).build().unwrap();
        assert_eq!(ok.api_version(), DEFAULT_API_VERSION);
        assert_eq!(ok.resource_path("query"), "/services/data/v66.0/query");
    }

    #[test]
    fn lock_retry_delays_are_bounded() {
        let d: Vec<_> = LockRetry::new(3, Duration::from_millis(100))
            .delays()
            .collect();
        assert_eq!(d.len(), 3);
        assert!(d.iter().all(|w| *w <= Duration::from_millis(1600) * 2));
        assert_eq!(
            LockRetry::new(0, Duration::from_millis(100))
                .delays()
                .count(),
            0
        );
    }
}
