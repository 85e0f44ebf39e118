//! [`HttpError`]: what went wrong with a request, classified by [`ErrorKind`].

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

use crate::redact::redact_secrets;

/// What kind of failure an [`HttpError`] is. Callers branch on this, not on status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The credential was missing, expired or rejected (HTTP 401).
    Auth,
    /// The credential is valid but may not do this (HTTP 403).
    Forbidden,
    /// The resource does not exist (HTTP 404 / 410).
    NotFound,
    /// The request conflicts with the current state (HTTP 409 / 412, or an API-specific code).
    Conflict,
    /// The server asked us to slow down (HTTP 429, or an API-specific limit). `retry_after`
    /// says when to try again, when the server said so.
    RateLimited {
        /// How long the server asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The server rejected the request as invalid (other 4xx), or answered with a status
    /// this client does not expect (1xx / 3xx).
    Invalid,
    /// The server failed (5xx).
    Server,
    /// The connection failed, was reset, or the response body could not be read.
    Network,
    /// The request did not complete within the configured timeout.
    Timeout,
    /// The response arrived but its body could not be decoded, or the request body could not
    /// be encoded.
    Decode,
    /// The client is misconfigured (base URL, header, rate limit): nothing was sent.
    Config,
}

impl ErrorKind {
    /// The default classification of an HTTP error status.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Auth,
            403 => Self::Forbidden,
            404 | 410 => Self::NotFound,
            409 | 412 => Self::Conflict,
            429 => Self::RateLimited { retry_after: None },
            500..=599 => Self::Server,
            _ => Self::Invalid,
        }
    }

    /// What a caller should do about an error of this kind.
    pub fn advice(&self) -> &'static str {
        match self {
            Self::Auth => "check the API key or token: it was missing, expired or rejected",
            Self::Forbidden => {
                "the credential lacks a permission or scope this call needs; grant it or use another credential"
            }
            Self::NotFound => "the resource does not exist; check the id or path",
            Self::Conflict => {
                "the request conflicts with existing data; re-read the current state before retrying"
            }
            Self::RateLimited { .. } => {
                "the API's rate limit was reached; wait for `retry_after` before trying again"
            }
            Self::Invalid => {
                "the request was rejected as invalid; fix the request, retrying will not help"
            }
            Self::Server => "the API failed on its side; retry later",
            Self::Network => "the connection failed; check the base URL and network, then retry",
            Self::Timeout => "the request timed out; retry, or raise the timeout",
            Self::Decode => {
                "the body did not have the expected shape; check the API version and the base URL"
            }
            Self::Config => "fix the client configuration; nothing was sent",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Auth => "authentication failed",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not found",
            Self::Conflict => "conflict",
            Self::RateLimited { .. } => "rate limited",
            Self::Invalid => "invalid request",
            Self::Server => "server error",
            Self::Network => "network error",
            Self::Timeout => "timed out",
            Self::Decode => "decode error",
            Self::Config => "invalid configuration",
        };
        f.write_str(name)
    }
}

/// A failed request: the kind, plus everything the API told us about it.
///
/// Messages from the API are kept, with bearer tokens and other credentials redacted.
pub struct HttpError {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    status: Option<StatusCode>,
    code: Option<String>,
    category: Option<String>,
    message: String,
    correlation_id: Option<String>,
    method: Option<Method>,
    path: Option<String>,
    attempts: u32,
    retryable: Option<bool>,
    headers: Option<HeaderMap>,
    body: Option<bytes::Bytes>,
    server_wait: Option<Duration>,
    not_sent: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl HttpError {
    /// A new error of `kind` with `message` (redacted of credentials).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                status: None,
                code: None,
                category: None,
                message: redact_secrets(&message.into()),
                correlation_id: None,
                method: None,
                path: None,
                attempts: 0,
                retryable: None,
                headers: None,
                body: None,
                server_wait: None,
                not_sent: false,
                source: None,
            }),
        }
    }

    /// Sets the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// Sets the API's error code (e.g. `INVALID_SESSION_ID`).
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.inner.code = Some(code.into());
        self
    }

    /// Sets the API's error category (e.g. `VALIDATION_ERROR`).
    #[must_use]
    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.inner.category = Some(category.into());
        self
    }

    /// Sets the correlation / request id the API returned.
    #[must_use]
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.inner.correlation_id = Some(id.into());
        self
    }

    /// Sets the method and path (without query string) of the failed request.
    #[must_use]
    pub fn with_request(mut self, method: Method, path: impl Into<String>) -> Self {
        self.inner.method = Some(method);
        self.inner.path = Some(path.into());
        self
    }

    /// Overrides the retry classification of [`ErrorKind`] (e.g. Salesforce
    /// `UNABLE_TO_LOCK_ROW` is a 400 that is worth retrying).
    #[must_use]
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.inner.retryable = Some(retryable);
        self
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Changes the kind (used by API crates to refine a generic classification).
    #[must_use]
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.inner.kind = kind;
        self
    }

    pub(crate) fn with_response(mut self, headers: HeaderMap, body: bytes::Bytes) -> Self {
        self.inner.headers = Some(headers);
        self.inner.body = Some(body);
        self
    }

    pub(crate) fn set_server_wait(&mut self, wait: Option<Duration>) {
        self.inner.server_wait = wait;
    }

    /// The wait the server asked for (`Retry-After`, reset headers, or the API's body), on
    /// any status.
    pub fn server_wait(&self) -> Option<Duration> {
        self.inner.server_wait
    }

    pub(crate) fn mark_not_sent(&mut self) {
        self.inner.not_sent = true;
    }

    pub(crate) fn not_sent(&self) -> bool {
        self.inner.not_sent
    }

    pub(crate) fn set_attempts(&mut self, attempts: u32) {
        self.inner.attempts = attempts;
    }

    pub(crate) fn redact_exact(&mut self, secret: &str) {
        if secret.len() >= 4 && self.inner.message.contains(secret) {
            self.inner.message = self.inner.message.replace(secret, "[redacted]");
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP status, when a response arrived.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The API's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// The API's error category, when it sent one.
    pub fn category(&self) -> Option<&str> {
        self.inner.category.as_deref()
    }

    /// The message (from the API when it sent one), with credentials redacted.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The correlation / request id to quote to the API's support.
    pub fn correlation_id(&self) -> Option<&str> {
        self.inner.correlation_id.as_deref()
    }

    /// The request method, when known.
    pub fn method(&self) -> Option<&Method> {
        self.inner.method.as_ref()
    }

    /// The request path (no query string), when known.
    pub fn path(&self) -> Option<&str> {
        self.inner.path.as_deref()
    }

    /// How many attempts were made before giving up (0 when the request was never sent).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// How long the server asked us to wait, for [`ErrorKind::RateLimited`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self.inner.kind {
            ErrorKind::RateLimited { retry_after } => retry_after,
            _ => None,
        }
    }

    /// The response headers, when a response arrived (rate-limit headers, `Sforce-Limit-Info`).
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.inner.headers.as_ref()
    }

    /// The raw response body, when a response arrived (API crates parse details from it,
    /// e.g. HubSpot's existing contact id on a 409).
    pub fn body(&self) -> Option<&[u8]> {
        self.inner.body.as_deref()
    }

    /// Whether trying the same request again later may succeed.
    ///
    /// `RateLimited`, `Server`, `Network` and `Timeout` are retryable, unless the API's error
    /// decoder said otherwise (e.g. a daily limit).
    pub fn is_retryable(&self) -> bool {
        if let Some(r) = self.inner.retryable {
            return r;
        }
        matches!(
            self.inner.kind,
            ErrorKind::RateLimited { .. }
                | ErrorKind::Server
                | ErrorKind::Network
                | ErrorKind::Timeout
        )
    }

    /// The decoder's explicit retry verdict, if any.
    pub(crate) fn retryable_override(&self) -> Option<bool> {
        self.inner.retryable
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        if let (Some(m), Some(p)) = (&i.method, &i.path) {
            write!(f, "{m} {p}: ")?;
        }
        write!(f, "{}", i.kind)?;
        if let Some(s) = i.status {
            write!(f, " (HTTP {}", s.as_u16())?;
            if let Some(c) = &i.code {
                write!(f, ", code {c}")?;
            }
            if let Some(c) = &i.category {
                write!(f, ", category {c}")?;
            }
            f.write_str(")")?;
        }
        if !i.message.is_empty() {
            write!(f, ": {}", i.message)?;
        }
        if let Some(d) = self.retry_after() {
            write!(f, "; retry after {}s", d.as_secs_f64())?;
        }
        if let Some(c) = &i.correlation_id {
            write!(f, " [correlation id {c}]")?;
        }
        write!(f, " ({})", i.kind.advice())
    }
}

impl fmt::Debug for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        // Headers are omitted: responses may echo cookies or tokens.
        f.debug_struct("HttpError")
            .field("kind", &i.kind)
            .field("status", &i.status)
            .field("code", &i.code)
            .field("category", &i.category)
            .field("message", &i.message)
            .field("correlation_id", &i.correlation_id)
            .field("method", &i.method)
            .field("path", &i.path)
            .field("attempts", &i.attempts)
            .field("source", &i.source)
            .finish()
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_classification_of_statuses() {
        let cases = [
            (400, ErrorKind::Invalid),
            (401, ErrorKind::Auth),
            (403, ErrorKind::Forbidden),
            (404, ErrorKind::NotFound),
            (409, ErrorKind::Conflict),
            (422, ErrorKind::Invalid),
            (429, ErrorKind::RateLimited { retry_after: None }),
            (500, ErrorKind::Server),
            (503, ErrorKind::Server),
            (300, ErrorKind::Invalid),
        ];
        for (code, kind) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(ErrorKind::from_status(status), kind, "status {code}");
        }
    }

    #[test]
    fn retryable_kinds_and_override() {
        assert!(HttpError::new(ErrorKind::Server, "x").is_retryable());
        assert!(HttpError::new(ErrorKind::Timeout, "x").is_retryable());
        assert!(HttpError::new(ErrorKind::Network, "x").is_retryable());
        assert!(HttpError::new(ErrorKind::RateLimited { retry_after: None }, "x").is_retryable());
        assert!(!HttpError::new(ErrorKind::Invalid, "x").is_retryable());
        assert!(!HttpError::new(ErrorKind::Auth, "x").is_retryable());
        assert!(
            HttpError::new(ErrorKind::Invalid, "lock")
                .with_retryable(true)
                .is_retryable()
        );
        assert!(
            !HttpError::new(ErrorKind::RateLimited { retry_after: None }, "daily")
                .with_retryable(false)
                .is_retryable()
        );
    }

    #[test]
    fn display_names_everything_and_redacts() {
        let e = HttpError::new(ErrorKind::Auth, "token Bearer abc.def-123 was rejected")
            .with_status(StatusCode::UNAUTHORIZED)
            .with_code("INVALID_SESSION_ID")
            .with_correlation_id("corr-1")
            .with_request(Method::GET, "/x");
        let s = e.to_string();
        assert!(s.contains("GET /x"), "{s}");
        assert!(s.contains("HTTP 401"), "{s}");
        assert!(s.contains("INVALID_SESSION_ID"), "{s}");
        assert!(s.contains("corr-1"), "{s}");
        assert!(s.contains("Bearer [redacted]"), "{s}");
        assert!(!s.contains("abc.def-123"), "{s}");
        assert!(!format!("{e:?}").contains("abc.def-123"));
    }
}
