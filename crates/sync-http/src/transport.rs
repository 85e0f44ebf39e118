//! The transport: one request out, one response back. [`HttpTransport`] is object-safe so
//! partners can inject their own client, a proxy, or middleware; [`ReqwestTransport`] is
//! the default (rustls, no redirects).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use url::Url;

/// A fully built request, as the transport sends it.
///
/// Header values marked sensitive (the `Authorization` header always is) print as
/// `Sensitive` in `Debug`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL, query string included.
    pub url: Url,
    /// All headers, authentication and user agent included.
    pub headers: HeaderMap,
    /// The body (empty for none).
    pub body: Bytes,
    /// The whole-request timeout (connect, send, and read the body), if any.
    pub timeout: Option<Duration>,
}

impl TransportRequest {
    /// A request with no headers, body or timeout.
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: None,
        }
    }
}

/// A response with its whole body read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl TransportResponse {
    /// A response.
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            status,
            headers,
            body,
        }
    }
}

/// How a transport failed; drives the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be established (nothing was sent).
    Connect,
    /// The timeout elapsed.
    Timeout,
    /// The connection broke after the request may have been sent, or the body could not
    /// be read.
    Network,
    /// The request could not be built (a bad header, an unsupported URL).
    Request,
}

/// A transport failure.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?} error: {source}")]
pub struct TransportError {
    /// What failed.
    pub kind: TransportErrorKind,
    /// The cause.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl TransportError {
    /// An error of `kind` caused by `source`.
    pub fn new(
        kind: TransportErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: source.into(),
        }
    }
}

/// Sends one request and reads the whole response. No retries, no auth: the
/// [`HttpClient`](crate::HttpClient) does those around it.
#[async_trait]
pub trait HttpTransport: Send + Sync + fmt::Debug {
    /// Sends `request` and returns the response, whatever its status.
    async fn send(&self, request: TransportRequest) -> Result<TransportResponse, TransportError>;
}

/// A hook adjusting the `reqwest` client builder of the default transport (proxy, root
/// certificates, default headers...), shared so that one hook configures every client a
/// connector builds.
pub type ConfigureReqwest =
    Arc<dyn Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync>;

/// What every API client builder (Cativa, HubSpot, Salesforce) offers the same way: a
/// request timeout and a hook on the `reqwest` builder. A connector keeps one and applies
/// it to each [`HttpClientBuilder`](crate::HttpClientBuilder) it starts.
#[derive(Clone, Default)]
pub struct HttpOptions {
    timeout: Option<Duration>,
    configure: Option<ConfigureReqwest>,
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("timeout", &self.timeout)
            .field("configure", &self.configure.as_ref().map(|_| "fn"))
            .finish()
    }
}

impl HttpOptions {
    /// Sets the whole-request timeout of each attempt.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the hook on the default transport's `reqwest` builder.
    #[must_use]
    pub fn configure_http(
        mut self,
        f: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(f));
        self
    }

    /// The timeout set, if any.
    pub fn timeout_value(&self) -> Option<Duration> {
        self.timeout
    }

    /// The hook set, if any.
    pub fn reqwest_hook(&self) -> Option<&ConfigureReqwest> {
        self.configure.as_ref()
    }

    /// Applies the timeout and the hook to `builder` (the hook only matters when `builder`
    /// uses the default transport).
    pub fn apply(&self, mut builder: crate::HttpClientBuilder) -> crate::HttpClientBuilder {
        if let Some(t) = self.timeout {
            builder = builder.request_timeout(Some(t));
        }
        if let Some(f) = &self.configure {
            builder = builder.configure_reqwest_arc(Arc::clone(f));
        }
        builder
    }
}

/// Settings of the default transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReqwestSettings {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Option<Duration>,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Option<Duration>,
    /// The largest response body read; a longer one fails with a network error instead of
    /// exhausting memory (default 64 MiB).
    pub max_response_bytes: usize,
}

impl Default for ReqwestSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Some(Duration::from_secs(10)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

impl ReqwestSettings {
    /// Sets the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the response body limit.
    #[must_use]
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Sets the idle-connection lifetime.
    #[must_use]
    pub fn with_pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }
}

/// The default transport: `reqwest` with rustls. Redirects are not followed (an API
/// redirect is reported, not silently re-sent with credentials).
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    max_response_bytes: usize,
}

impl ReqwestTransport {
    /// Wraps an existing `reqwest` client (its own settings apply).
    pub fn from_client(client: reqwest::Client) -> Self {
        Self {
            client,
            max_response_bytes: ReqwestSettings::default().max_response_bytes,
        }
    }

    /// Builds a client with `settings`.
    pub fn new(settings: ReqwestSettings) -> Result<Self, TransportError> {
        Self::configured(settings, None)
    }

    /// Builds a client with `settings`, then lets `configure` adjust the `reqwest` builder
    /// (proxy, root certificates, default headers...) before it is built.
    pub fn configured(
        settings: ReqwestSettings,
        configure: Option<&ConfigureReqwest>,
    ) -> Result<Self, TransportError> {
        let mut b = crate::tls::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(settings.pool_idle_timeout);
        if let Some(t) = settings.connect_timeout {
            b = b.connect_timeout(t);
        }
        if let Some(f) = configure {
            b = f(b);
        }
        let client = b
            .build()
            .map_err(|e| TransportError::new(TransportErrorKind::Request, e))?;
        Ok(Self {
            client,
            max_response_bytes: settings.max_response_bytes,
        })
    }
}

fn classify(e: &reqwest::Error) -> TransportErrorKind {
    if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_connect() {
        TransportErrorKind::Connect
    } else if e.is_builder() {
        TransportErrorKind::Request
    } else {
        TransportErrorKind::Network
    }
}

#[async_trait]
impl HttpTransport for ReqwestTransport {
    async fn send(&self, request: TransportRequest) -> Result<TransportResponse, TransportError> {
        let mut b = self
            .client
            .request(request.method, request.url)
            .headers(request.headers)
            .body(request.body);
        if let Some(t) = request.timeout {
            b = b.timeout(t);
        }
        let mut resp = b
            .send()
            .await
            .map_err(|e| TransportError::new(classify(&e), e.without_url()))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let limit = self.max_response_bytes;
        let too_big = || {
            TransportError::new(
                TransportErrorKind::Network,
                format!("the response body exceeds the {limit}-byte limit"),
            )
        };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_big());
        }
        let mut body = bytes::BytesMut::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| TransportError::new(classify(&e), e.without_url()))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        let body = body.freeze();
        Ok(TransportResponse {
            status,
            headers,
            body,
        })
    }
}
