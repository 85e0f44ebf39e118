//! [`HttpClient`]: base URL, auth, user agent, rate limiting, retries and error decoding
//! around a [`HttpTransport`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use backon::{ConstantBuilder, Retryable};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

use crate::auth::{Auth, TokenProvider};
use crate::decode::{ErrorDecoder, JsonErrorDecoder};
use crate::error::{ErrorKind, HttpError};
use crate::rate_limit::{AnnouncedLimit, RateLimit, RateLimiter};
use crate::retry::{Decision, Failure, Outcome, RetryPolicy, decide, server_wait};
use crate::transport::{
    ConfigureReqwest, HttpTransport, ReqwestSettings, ReqwestTransport, TransportError,
    TransportErrorKind, TransportRequest, TransportResponse,
};

/// The user agent every request carries unless the client names its own product.
pub const DEFAULT_USER_AGENT: &str = concat!("sync-http/", env!("CARGO_PKG_VERSION"));

/// An HTTP client for one API: cheap to clone (clones share the connection pool, the
/// rate limiter and the request counts; see [`request_counts`](Self::request_counts)).
///
/// ```no_run
/// # async fn demo() -> Result<(), sync_http::HttpError> {
/// use std::time::Duration;
/// use secrecy::SecretString;
/// use sync_http::{HttpClient, RateLimit};
///
/// let client = HttpClient::builder("https://api.example.com/")
///     .bearer(SecretString::from("my-api-key"))
///     .user_agent("my-connector", "1.2.3")
///     .rate_limit(RateLimit::new(100, Duration::from_secs(10)))
///     .build()?;
/// let me: serde_json::Value = client.get("/v1/me").send().await?.json()?;
/// # let _ = me; Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
    counts: RequestCounts,
}

/// Requests sent, by `"METHOD <template>"`; shared by the clones that share it.
type RequestCounts = Arc<Mutex<BTreeMap<String, u64>>>;

struct Inner {
    base: Url,
    transport: Arc<dyn HttpTransport>,
    auth: Auth,
    user_agent: HeaderValue,
    default_headers: HeaderMap,
    request_timeout: Option<Duration>,
    retry: RetryPolicy,
    limiter: Option<Arc<RateLimiter>>,
    announced: Option<LimitHeaders>,
    decoder: Arc<dyn ErrorDecoder>,
}

/// The response headers in which an API announces its rate-limit window; see
/// [`HttpClientBuilder::learn_rate_limit_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitHeaders {
    /// Requests allowed in the window (HubSpot: `X-HubSpot-RateLimit-Max`).
    pub max: HeaderName,
    /// Requests left in the window (HubSpot: `X-HubSpot-RateLimit-Remaining`).
    pub remaining: HeaderName,
    /// The window in milliseconds (HubSpot: `X-HubSpot-RateLimit-Interval-Milliseconds`).
    pub interval_ms: HeaderName,
}

impl LimitHeaders {
    /// The three header names.
    pub fn new(max: HeaderName, remaining: HeaderName, interval_ms: HeaderName) -> Self {
        Self {
            max,
            remaining,
            interval_ms,
        }
    }

    /// What `headers` announce, when the budget and the window are both there.
    pub fn read(&self, headers: &HeaderMap) -> Option<AnnouncedLimit> {
        fn num<T: std::str::FromStr>(h: &HeaderMap, n: &HeaderName) -> Option<T> {
            h.get(n)?.to_str().ok()?.trim().parse().ok()
        }
        let max = num::<u32>(headers, &self.max)?;
        let interval = num::<u64>(headers, &self.interval_ms)?;
        Some(AnnouncedLimit::new(
            max,
            num::<u32>(headers, &self.remaining),
            Duration::from_millis(interval),
        ))
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("HttpClient")
            .field("base", &i.base.as_str())
            .field("auth", &i.auth)
            .field("user_agent", &i.user_agent)
            .field("request_timeout", &i.request_timeout)
            .field("retry", &i.retry)
            .field("limiter", &i.limiter)
            .field("transport", &i.transport)
            .finish_non_exhaustive()
    }
}

/// Builds an [`HttpClient`]. [`build`](Self::build) validates everything and never panics.
pub struct HttpClientBuilder {
    base_url: String,
    auth: Auth,
    user_agent: Option<String>,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    retry: RetryPolicy,
    rate_limit: Option<RateLimit>,
    limiter: Option<Arc<RateLimiter>>,
    announced: Option<LimitHeaders>,
    decoder: Arc<dyn ErrorDecoder>,
    transport: Option<Arc<dyn HttpTransport>>,
    configure_reqwest: Option<ConfigureReqwest>,
    default_headers: Vec<(String, String)>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("base_url", &self.base_url)
            .field("auth", &self.auth)
            .field("user_agent", &self.user_agent)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Starts a builder for an API at `base_url` (`https://api.hubapi.com`, or a local
    /// sandbox such as `http://127.0.0.1:8080`). Paths given to requests are relative to
    /// it, so a base with a path prefix keeps that prefix.
    pub fn builder(base_url: impl Into<String>) -> HttpClientBuilder {
        HttpClientBuilder {
            base_url: base_url.into(),
            auth: Auth::None,
            user_agent: None,
            connect_timeout: Some(Duration::from_secs(10)),
            request_timeout: Some(Duration::from_secs(30)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            retry: RetryPolicy::default(),
            rate_limit: None,
            limiter: None,
            announced: None,
            decoder: Arc::new(JsonErrorDecoder),
            transport: None,
            configure_reqwest: None,
            default_headers: Vec::new(),
        }
    }

    /// The base URL (always ending in `/`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The client-wide limiter, if one is configured.
    pub fn rate_limiter(&self) -> Option<&Arc<RateLimiter>> {
        self.inner.limiter.as_ref()
    }

    /// HTTP requests sent so far through this client and the clones that share its
    /// counts, by endpoint: `"METHOD <template>"`, where the template is the request's
    /// [`log_path`](RequestBuilder::log_path) when set (so ids and emails in paths do not
    /// make new keys), else the URL path without its query string.
    ///
    /// Every attempt that went out on the wire counts: retries, and the resend after a
    /// token refresh, each count once, because each is a call against the API's quota.
    /// An attempt that never left (connection refused, request not buildable) does not
    /// count; one that timed out or lost its connection does (the server may have seen it).
    ///
    /// ```
    /// let client = sync_http::HttpClient::builder("http://127.0.0.1:8080").build()?;
    /// assert!(client.request_counts().is_empty());
    /// # Ok::<(), sync_http::HttpError>(())
    /// ```
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A clone that shares everything (connection pool, auth, rate limiter) but counts its
    /// requests apart, starting from zero. Give one to each component that reports its own
    /// calls (a CRM source and a CRM sink built from one client), so that adding their
    /// counts never counts a request twice. Clones of the result share its new counts.
    pub fn with_own_request_counts(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            counts: RequestCounts::default(),
        }
    }

    fn count_request(&self, method: &Method, template: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry(format!("{method} {template}")).or_insert(0) += 1;
    }

    /// The absolute URL of `path` (relative to the base; may carry a query string).
    pub fn url(&self, path: &str) -> Result<Url, HttpError> {
        self.inner
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| {
                HttpError::new(
                    ErrorKind::Config,
                    format!("invalid request path {path:?}: {e}"),
                )
            })
    }

    /// The absolute URL made of the base plus `segments`, each percent-encoded (use this for
    /// path parts that come from data, such as an email).
    pub fn url_from_segments(&self, segments: &[&str]) -> Result<Url, HttpError> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| {
                HttpError::new(ErrorKind::Config, "the base URL cannot take path segments")
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A request to `path`, relative to the base URL.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder<'_> {
        RequestBuilder::new(self, method, self.url(path))
    }

    /// A request to an absolute URL, which must have the base URL's origin (credentials are
    /// never sent elsewhere). Use it for continuation links the API returns.
    pub fn request_url(&self, method: Method, url: Url) -> RequestBuilder<'_> {
        let checked = if url.origin() == self.inner.base.origin() {
            Ok(url)
        } else {
            Err(HttpError::new(
                ErrorKind::Config,
                format!(
                    "refusing to send credentials to {}: it is not the client's origin",
                    url.origin().ascii_serialization()
                ),
            ))
        };
        RequestBuilder::new(self, method, checked)
    }

    /// A request to the base URL plus percent-encoded `segments`.
    pub fn request_segments(&self, method: Method, segments: &[&str]) -> RequestBuilder<'_> {
        RequestBuilder::new(self, method, self.url_from_segments(segments))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, path)
    }

    /// `PUT path`.
    pub fn put(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PUT, path)
    }

    /// `PATCH path`.
    pub fn patch(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PATCH, path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::DELETE, path)
    }
}

impl HttpClientBuilder {
    /// Sends `Authorization: Bearer <secret>`.
    #[must_use]
    pub fn bearer(mut self, secret: SecretString) -> Self {
        self.auth = Auth::Bearer(secret);
        self
    }

    /// Gets bearer tokens from `provider`; a 401 asks it to refresh once, then resends.
    #[must_use]
    pub fn token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.auth = Auth::Provider(provider);
        self
    }

    /// Sets the authentication.
    #[must_use]
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Names the product in the user agent: `<product>/<version> sync-http/<version>`.
    #[must_use]
    pub fn user_agent(mut self, product: &str, version: &str) -> Self {
        self.user_agent = Some(format!("{product}/{version} {DEFAULT_USER_AGENT}"));
        self
    }

    /// The connect timeout of the default transport (default 10 s; `None` for none).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The whole-request timeout of each attempt (default 30 s; `None` for none).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long the default transport keeps idle connections (default 90 s).
    #[must_use]
    pub fn pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Removes every timer this client arms while a request is in flight (connect and
    /// request timeouts, the pool's idle sweep).
    ///
    /// For tests under tokio's paused clock (`#[tokio::test(start_paused = true)]`): a
    /// paused runtime that waits on a socket jumps straight to its next timer, so an armed
    /// request timeout would fire at once. Without timers, virtual time moves only for
    /// the waits the test is about (retry backoff, `Retry-After`, rate limiting).
    #[must_use]
    pub fn without_timeouts(mut self) -> Self {
        self.connect_timeout = None;
        self.request_timeout = None;
        self.pool_idle_timeout = None;
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Limits the client (and all its clones) to `limit`.
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self.limiter = None;
        self
    }

    /// Uses an existing limiter (to share one budget between several clients).
    #[must_use]
    pub fn rate_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self.rate_limit = None;
        self
    }

    /// Learns the rate-limit window from these response headers: every response that
    /// carries them updates the client-wide limiter ([`RateLimiter::observe`]), so the
    /// client follows the budget the server enforces rather than the configured guess.
    #[must_use]
    pub fn learn_rate_limit_from(mut self, headers: LimitHeaders) -> Self {
        self.announced = Some(headers);
        self
    }

    /// Decodes the API's error bodies (default [`JsonErrorDecoder`]).
    #[must_use]
    pub fn error_decoder(mut self, decoder: Arc<dyn ErrorDecoder>) -> Self {
        self.decoder = decoder;
        self
    }

    /// Sends requests through `transport` instead of the default reqwest one (the
    /// connect and pool settings above then do not apply).
    #[must_use]
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Lets `f` adjust the default transport's `reqwest` builder (proxy, root certificates,
    /// default headers...) before it is built. Ignored with a custom
    /// [`transport`](Self::transport).
    #[must_use]
    pub fn configure_reqwest(
        self,
        f: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure_reqwest_arc(Arc::new(f))
    }

    /// [`configure_reqwest`](Self::configure_reqwest) with a shared hook.
    #[must_use]
    pub fn configure_reqwest_arc(mut self, f: ConfigureReqwest) -> Self {
        self.configure_reqwest = Some(f);
        self
    }

    /// Adds a header sent with every request (e.g. `Sforce-Call-Options`).
    #[must_use]
    pub fn default_header(mut self, name: &str, value: &str) -> Self {
        self.default_headers
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// Validates the configuration and builds the client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the base URL is not an absolute `http`/`https` URL, the
    /// rate limit has a zero in it, a header is invalid, or the transport cannot start.
    pub fn build(self) -> Result<HttpClient, HttpError> {
        let config = |msg: String| HttpError::new(ErrorKind::Config, msg);
        let mut base = Url::parse(self.base_url.trim())
            .map_err(|e| config(format!("invalid base URL {:?}: {e}", self.base_url)))?;
        if !matches!(base.scheme(), "http" | "https")
            || base.cannot_be_a_base()
            || base.host().is_none()
        {
            return Err(config(format!(
                "invalid base URL {:?}: it must be an absolute http or https URL",
                self.base_url
            )));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(config(
                "the base URL must not carry credentials: use bearer() or token_provider()"
                    .to_owned(),
            ));
        }
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let limiter = match (self.limiter, self.rate_limit) {
            (Some(l), _) => Some(l),
            (None, Some(limit)) => Some(Arc::new(RateLimiter::new(limit).ok_or_else(|| {
                config(format!(
                    "invalid rate limit {limit:?}: requests, burst and window must be non-zero"
                ))
            })?)),
            (None, None) => None,
        };
        let ua = self
            .user_agent
            .unwrap_or_else(|| DEFAULT_USER_AGENT.to_owned());
        let user_agent =
            HeaderValue::from_str(&ua).map_err(|_| config(format!("invalid user agent {ua:?}")))?;
        let mut default_headers = HeaderMap::new();
        for (name, value) in &self.default_headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| config(format!("invalid header name {name:?}")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| config(format!("invalid value for header {name}")))?;
            default_headers.append(n, v);
        }
        if let Auth::Bearer(secret) = &self.auth
            && bearer_value(secret).is_none()
        {
            return Err(config(
                "the bearer secret contains characters not allowed in a header".to_owned(),
            ));
        }
        let transport: Arc<dyn HttpTransport> = match self.transport {
            Some(t) => t,
            None => {
                let settings = ReqwestSettings::default()
                    .with_connect_timeout(self.connect_timeout)
                    .with_pool_idle_timeout(self.pool_idle_timeout);
                Arc::new(
                    ReqwestTransport::configured(settings, self.configure_reqwest.as_ref())
                        .map_err(|e| {
                            HttpError::new(ErrorKind::Config, "the HTTP transport could not start")
                                .with_source(e)
                        })?,
                )
            }
        };
        Ok(HttpClient {
            inner: Arc::new(Inner {
                base,
                transport,
                auth: self.auth,
                user_agent,
                default_headers,
                request_timeout: self.request_timeout,
                retry: self.retry,
                limiter,
                announced: self.announced,
                decoder: self.decoder,
            }),
            counts: RequestCounts::default(),
        })
    }
}

fn bearer_value(secret: &SecretString) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret())).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Per-request options.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RequestOptions {
    /// The request may be sent twice with one effect (batch upsert by key, or it carries an
    /// idempotency key): POST and PATCH are retried only when this is set.
    pub idempotent: bool,
    /// An extra limiter for this request on top of the client's (HubSpot search: 5/s).
    pub limiter: Option<Arc<RateLimiter>>,
    /// Overrides the client's request timeout (`Some(None)` disables it).
    pub timeout: Option<Option<Duration>>,
    /// Overrides the client's retry policy.
    pub retry: Option<RetryPolicy>,
    /// The path to log instead of the real one (e.g. `/users/email/{email}` to keep
    /// personal data out of logs).
    pub log_path: Option<String>,
}

/// A request being built; [`send`](Self::send) runs it with auth, rate limiting and retries.
#[must_use = "a request does nothing until sent"]
pub struct RequestBuilder<'a> {
    client: &'a HttpClient,
    method: Method,
    url: Result<Url, HttpError>,
    headers: HeaderMap,
    body: Result<Bytes, HttpError>,
    options: RequestOptions,
}

impl fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("path", &self.url.as_ref().map(Url::path).ok())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a> RequestBuilder<'a> {
    fn new(client: &'a HttpClient, method: Method, url: Result<Url, HttpError>) -> Self {
        Self {
            client,
            method,
            url,
            headers: HeaderMap::new(),
            body: Ok(Bytes::new()),
            options: RequestOptions::default(),
        }
    }

    /// Adds a header. An invalid name or value fails the request at [`send`](Self::send).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            _ => {
                self.url = Err(HttpError::new(
                    ErrorKind::Config,
                    format!("invalid header {name:?}"),
                ));
            }
        }
        self
    }

    /// Sends `Idempotency-Key: <key>` and marks the request idempotent.
    pub fn idempotency_key(self, key: &str) -> Self {
        let mut s = self.header("Idempotency-Key", key);
        s.options.idempotent = true;
        s
    }

    /// Appends query parameters (form-encoded).
    pub fn query<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        if let Ok(url) = self.url.as_mut() {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k.as_ref(), v.as_ref());
            }
        }
        self
    }

    /// Sends `value` as a JSON body.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.body = serde_json::to_vec(value).map(Bytes::from).map_err(|e| {
            HttpError::new(
                ErrorKind::Decode,
                format!("the request body could not be encoded as JSON: {e}"),
            )
        });
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self
    }

    /// Sends `form` as `application/x-www-form-urlencoded` (OAuth token requests).
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, form: &[(K, V)]) -> Self {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            ser.append_pair(k.as_ref(), v.as_ref());
        }
        self.body = Ok(Bytes::from(ser.finish()));
        self.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self
    }

    /// Sends raw bytes with `content_type`.
    pub fn body(mut self, body: impl Into<Bytes>, content_type: &str) -> Self {
        self.body = Ok(body.into());
        self.header(CONTENT_TYPE.as_str(), content_type)
    }

    /// Marks the request idempotent (safe to retry even if it is a POST or PATCH).
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.options.idempotent = idempotent;
        self
    }

    /// Also waits on `limiter` before each attempt.
    pub fn limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.options.limiter = Some(limiter);
        self
    }

    /// Overrides the request timeout.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Overrides the retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy);
        self
    }

    /// Logs `path` instead of the real path.
    pub fn log_path(mut self, path: impl Into<String>) -> Self {
        self.options.log_path = Some(path.into());
        self
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: RequestOptions) -> Self {
        self.options = options;
        self
    }

    /// Sends and decodes a JSON success body.
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T, HttpError> {
        self.send().await?.json()
    }

    /// Sends the request: waits for the rate limiter(s), adds auth and user agent, retries
    /// per the policy, and turns any non-2xx response into an [`HttpError`].
    ///
    /// # Errors
    /// The last attempt's error, with [`HttpError::attempts`] set.
    pub async fn send(self) -> Result<Response, HttpError> {
        let url = self.url?;
        let body = self.body?;
        let method = self.method;
        let client = self.client;
        let options = self.options;
        let log_path = options
            .log_path
            .clone()
            .unwrap_or_else(|| url.path().to_owned());
        let idempotent = options.idempotent || is_idempotent_method(&method);
        let policy = options
            .retry
            .clone()
            .unwrap_or_else(|| client.inner.retry.clone());
        let span = tracing::info_span!(
            "http.request",
            method = %method,
            path = %log_path,
            status = tracing::field::Empty,
            attempt = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let call = Call {
            client,
            method,
            url,
            headers: self.headers,
            body,
            options,
            log_path,
        };
        async move {
            let start = Instant::now();
            let attempts = AtomicU32::new(0);
            let result = (|| async {
                let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
                call.attempt(n).await
            })
            .retry(ConstantBuilder::new().with_delay(Duration::ZERO).without_max_times())
            .sleep(tokio::time::sleep)
            .adjust(|err: &HttpError, _| {
                let n = attempts.load(Ordering::SeqCst);
                match decide(&policy, n, start.elapsed(), &Outcome::new(err.failure(), idempotent)) {
                    Decision::Retry { after, server_directed } => {
                        let after = if server_directed { after } else { policy.jittered(after, crate::random::unit()) };
                        tracing::warn!(attempt = n, wait_ms = after.as_millis() as u64, error = %err, "retrying");
                        Some(after)
                    }
                    Decision::GiveUp(reason) => {
                        tracing::debug!(attempt = n, ?reason, "giving up");
                        None
                    }
                }
            })
            .await;
            let n = attempts.load(Ordering::SeqCst);
            let span = tracing::Span::current();
            span.record("attempt", n);
            span.record("latency_ms", start.elapsed().as_millis() as u64);
            match result {
                Ok(mut resp) => {
                    span.record("status", resp.status.as_u16());
                    resp.attempts = n;
                    Ok(resp)
                }
                Err(mut e) => {
                    if let Some(s) = e.status() {
                        span.record("status", s.as_u16());
                    }
                    e.set_attempts(n);
                    if let Some(wait) = e.server_wait()
                        && wait > policy.max_retry_after
                    {
                        // Too long to wait in-process: surface it so the run can stop cleanly.
                        e = e.with_kind(ErrorKind::RateLimited { retry_after: Some(wait) });
                    }
                    Err(e)
                }
            }
        }
        .instrument(span)
        .await
    }
}

fn is_idempotent_method(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

struct Call<'a> {
    client: &'a HttpClient,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Bytes,
    options: RequestOptions,
    log_path: String,
}

impl Call<'_> {
    async fn attempt(&self, n: u32) -> Result<Response, HttpError> {
        let inner = &self.client.inner;
        let started = Instant::now();
        let (resp, token) = self.send_once().await?;
        let resp = match (&inner.auth, resp.status, token) {
            (Auth::Provider(p), StatusCode::UNAUTHORIZED, Some(rejected)) => {
                tracing::debug!(attempt = n, "token rejected; refreshing once");
                let fresh = p.refresh(&rejected).await?;
                self.send_with(Some(&fresh)).await?
            }
            (_, _, _) => resp,
        };
        tracing::debug!(
            attempt = n,
            status = resp.status.as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "http attempt"
        );
        if resp.status.is_success() {
            Ok(Response {
                status: resp.status,
                headers: resp.headers,
                body: resp.body,
                attempts: n,
            })
        } else {
            Err(self.error_from(resp))
        }
    }

    async fn send_once(&self) -> Result<(TransportResponse, Option<SecretString>), HttpError> {
        match &self.client.inner.auth {
            Auth::Provider(p) => {
                let token = p.token().await?;
                let resp = self.send_with(Some(&token)).await?;
                Ok((resp, Some(token)))
            }
            Auth::Bearer(secret) => Ok((self.send_with(Some(secret)).await?, None)),
            Auth::None => Ok((self.send_with(None).await?, None)),
        }
    }

    async fn send_with(
        &self,
        token: Option<&SecretString>,
    ) -> Result<TransportResponse, HttpError> {
        let inner = &self.client.inner;
        if let Some(l) = &inner.limiter {
            l.acquire().await;
        }
        if let Some(l) = &self.options.limiter {
            l.acquire().await;
        }
        let mut headers = inner.default_headers.clone();
        for (k, v) in &self.headers {
            headers.append(k.clone(), v.clone());
        }
        headers.insert(USER_AGENT, inner.user_agent.clone());
        if let Some(t) = token {
            let v = bearer_value(t).ok_or_else(|| {
                HttpError::new(
                    ErrorKind::Auth,
                    "the token contains characters not allowed in a header",
                )
            })?;
            headers.insert(AUTHORIZATION, v);
        }
        let mut req = TransportRequest::new(self.method.clone(), self.url.clone());
        req.headers = headers;
        req.body = self.body.clone();
        req.timeout = self.options.timeout.unwrap_or(inner.request_timeout);
        let result = inner.transport.send(req).await;
        let sent = match &result {
            Ok(_) => true,
            Err(e) => matches!(
                e.kind,
                TransportErrorKind::Timeout | TransportErrorKind::Network
            ),
        };
        if sent {
            self.client.count_request(&self.method, &self.log_path);
        }
        if let (Ok(resp), Some(names), Some(limiter)) = (&result, &inner.announced, &inner.limiter)
            && let Some(announced) = names.read(&resp.headers)
        {
            limiter.observe(announced);
        }
        result.map_err(|e| self.transport_error(e))
    }

    fn transport_error(&self, e: TransportError) -> HttpError {
        let (kind, not_sent) = match e.kind {
            TransportErrorKind::Connect => (ErrorKind::Network, true),
            TransportErrorKind::Timeout => (ErrorKind::Timeout, false),
            TransportErrorKind::Network => (ErrorKind::Network, false),
            _ => (ErrorKind::Config, true),
        };
        let msg = match e.kind {
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Timeout => "no complete response within the timeout",
            TransportErrorKind::Network => "the connection failed",
            _ => "the request could not be built",
        };
        let mut err = HttpError::new(kind, msg)
            .with_request(self.method.clone(), self.log_path.clone())
            .with_source(e);
        if not_sent {
            err.mark_not_sent();
        }
        err
    }

    fn error_from(&self, resp: TransportResponse) -> HttpError {
        let inner = &self.client.inner;
        let status = resp.status;
        let info = inner.decoder.decode(status, &resp.headers, &resp.body);
        let kind = info.kind.unwrap_or_else(|| ErrorKind::from_status(status));
        let header_wait = if matches!(status.as_u16(), 429 | 503)
            || matches!(kind, ErrorKind::RateLimited { .. })
        {
            server_wait(&resp.headers, SystemTime::now())
        } else {
            None
        };
        let wait = header_wait.or(info.retry_after);
        let kind = match kind {
            ErrorKind::RateLimited { retry_after: None } => {
                ErrorKind::RateLimited { retry_after: wait }
            }
            k => k,
        };
        let message = info.message.unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_owned()
        });
        let mut e = HttpError::new(kind, message)
            .with_status(status)
            .with_request(self.method.clone(), self.log_path.clone());
        if let Some(c) = info.code {
            e = e.with_code(c);
        }
        if let Some(c) = info.category {
            e = e.with_category(c);
        }
        if let Some(c) = info.correlation_id {
            e = e.with_correlation_id(c);
        }
        if let Some(r) = info.retryable {
            e = e.with_retryable(r);
        }
        if let Auth::Bearer(secret) = &inner.auth {
            e.redact_exact(secret.expose_secret());
        }
        e.set_server_wait(wait);
        e.with_response(resp.headers, resp.body)
    }
}

impl HttpError {
    /// The retry-relevant view of this error.
    fn failure(&self) -> Failure {
        if let Some(status) = self.status() {
            return Failure::Status {
                status,
                retry_after: self.server_wait(),
                retryable: self.retryable_override(),
            };
        }
        match self.kind() {
            ErrorKind::Network if self.not_sent() => Failure::Connect,
            ErrorKind::Network => Failure::Network,
            ErrorKind::Timeout => Failure::Timeout,
            _ => Failure::Fatal,
        }
    }
}

/// A successful (2xx) response with its whole body.
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    attempts: u32,
}

impl Response {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers (rate-limit headers, `Sforce-Limit-Info`...).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// How many attempts it took.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Decodes the body as JSON.
    ///
    /// # Errors
    /// [`ErrorKind::Decode`] naming the position and what was expected.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            HttpError::new(
                ErrorKind::Decode,
                format!("the response body is not the expected JSON: {e}"),
            )
            .with_status(self.status)
            .with_source(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_rejects_bad_config_without_panicking() {
        for bad in [
            "",
            "not a url",
            "ftp://x.example",
            "mailto:a@b.c",
            "http://user:pw@host/",
        ] {
            let e = HttpClient::builder(bad).build().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        }
        let e = HttpClient::builder("http://127.0.0.1:1")
            .rate_limit(RateLimit::new(0, Duration::from_secs(1)))
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = HttpClient::builder("http://127.0.0.1:1")
            .default_header("bad header", "x")
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = HttpClient::builder("http://127.0.0.1:1")
            .bearer(SecretString::from("line\nbreak"))
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("line\nbreak"));
    }

    #[test]
    fn urls_keep_the_base_path_and_encode_segments() {
        let c = HttpClient::builder("http://127.0.0.1:9/api?x=1")
            .build()
            .unwrap();
        assert_eq!(c.base_url().as_str(), "http://127.0.0.1:9/api/");
        assert_eq!(
            c.url("/v1/me").unwrap().as_str(),
            "http://127.0.0.1:9/api/v1/me"
        );
        assert_eq!(
            c.url("v1/me?a=b").unwrap().as_str(),
            "http://127.0.0.1:9/api/v1/me?a=b"
        );
        assert_eq!(
            c.url_from_segments(&["users", "email", "a+b/c@x.com"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/api/users/email/a+b%2Fc@x.com"
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = HttpClient::builder("http://127.0.0.1:9")
            .bearer(SecretString::from("pat-na1-very-secret"))
            .build()
            .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("very-secret"), "{d}");
        let b = HttpClient::builder("http://127.0.0.1:9")
            .bearer(SecretString::from("pat-na1-very-secret"));
        assert!(!format!("{b:?}").contains("very-secret"));
    }
}
