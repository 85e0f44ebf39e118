//! Salesforce errors: decoding the API's error bodies, classifying its error codes, and the
//! crate's [`Error`].
//!
//! Salesforce reports a failed request as a JSON array `[{"message","errorCode","fields"}]`
//! and a failed record inside a 200 collections response as `{"statusCode","message","fields"}`.
//! Both decode into [`ApiError`]; [`ApiError::kind`] says what to do about it.

use std::fmt;

use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use sync_core::{RemoteError, RemoteErrorKind};
use sync_http::{
    ApiErrorInfo, ErrorDecoder, ErrorKind as HttpErrorKind, HttpError, correlation_from_headers,
};

use crate::soql::SoqlError;

/// The system name used in [`sync_core::RemoteError`]s from this crate.
pub const SYSTEM: &str = "salesforce";

/// One error Salesforce reported, for a whole request (`errorCode`) or for one record of a
/// collections call (`statusCode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiError {
    /// The code: `INVALID_SESSION_ID`, `DUPLICATE_VALUE`, `MALFORMED_QUERY`, ...
    #[serde(rename = "errorCode", alias = "statusCode", default)]
    pub code: String,
    /// The message.
    #[serde(default)]
    pub message: String,
    /// The fields involved, when Salesforce names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// What an [`ApiError`] means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// `INVALID_SESSION_ID`: the access token expired or was revoked; renew it and retry once.
    SessionExpired,
    /// `REQUEST_LIMIT_EXCEEDED`: the org's 24-hour API allowance is spent; stop the run and
    /// resume when usage falls (see `Sforce-Limit-Info`).
    RequestLimitExceeded,
    /// `REQUEST_LIMIT_EXCEEDED` for too many concurrent long-running requests
    /// (`ConcurrentPerOrgLongTxn Limit exceeded`), or HTTP 429: slow down and retry in
    /// seconds, the daily allowance is not spent.
    ConcurrencyLimited,
    /// HTTP 420: Salesforce Edge has no route for the host. A configuration error (wrong
    /// instance or My Domain URL), never retried.
    EdgeNoRoute,
    /// `DUPLICATE_VALUE` / `DUPLICATES_DETECTED`: a unique field or a duplicate rule
    /// matched an existing record (see [`ApiError::duplicate_id`]).
    Duplicate,
    /// `UNABLE_TO_LOCK_ROW`: another transaction holds the record; retry with backoff.
    RowLocked,
    /// `ENTITY_IS_DELETED`: the record is in the Recycle Bin; treat it as gone.
    EntityDeleted,
    /// `MALFORMED_QUERY` / `INVALID_FIELD` / `INVALID_TYPE`: the SOQL or a field name is wrong.
    MalformedQuery,
    /// HTTP 300 on an upsert: the external ID matched several records; nothing was written.
    MultipleMatches,
    /// `NOT_FOUND` or HTTP 404: the record, object or external ID field does not exist.
    NotFound,
    /// `INSUFFICIENT_ACCESS...`, `API_DISABLED_FOR_ORG` or HTTP 403: the integration user
    /// lacks a permission.
    Forbidden,
    /// `ALL_OR_NONE_OPERATION_ROLLED_BACK`: this record was fine but another record of an
    /// all-or-none call failed; retry it once the bad record is fixed or removed.
    RolledBack,
    /// `EXCEEDED_ID_LIMIT`: a `updated` window returned too many ids; narrow the window.
    TooManyIds,
    /// Salesforce failed (`UNKNOWN_EXCEPTION`, `SERVER_UNAVAILABLE`, 5xx); retry later.
    Server,
    /// Any other rejection (`REQUIRED_FIELD_MISSING`, `MALFORMED_ID`, validation rules...):
    /// fix the data, retrying will not help.
    Invalid,
}

impl ApiErrorKind {
    /// Classifies an error code, falling back to the HTTP status when the code is unknown.
    pub fn classify(code: &str, status: Option<u16>) -> Self {
        if status == Some(420) {
            // Edge answers 420 before any org sees the request: no code can mean more.
            return Self::EdgeNoRoute;
        }
        match code {
            "INVALID_SESSION_ID" => Self::SessionExpired,
            "REQUEST_LIMIT_EXCEEDED" | "TOTAL_REQUESTS_LIMIT_EXCEEDED" => {
                Self::RequestLimitExceeded
            }
            "DUPLICATE_VALUE" | "DUPLICATES_DETECTED" | "DUPLICATE_EXTERNAL_ID" => Self::Duplicate,
            "UNABLE_TO_LOCK_ROW" => Self::RowLocked,
            "ENTITY_IS_DELETED" => Self::EntityDeleted,
            "MALFORMED_QUERY"
            | "INVALID_FIELD"
            | "INVALID_TYPE"
            | "INVALID_QUERY_FILTER_OPERATOR" => Self::MalformedQuery,
            "NOT_FOUND" => Self::NotFound,
            "ALL_OR_NONE_OPERATION_ROLLED_BACK" => Self::RolledBack,
            "EXCEEDED_ID_LIMIT" => Self::TooManyIds,
            "UNKNOWN_EXCEPTION" | "SERVER_UNAVAILABLE" => Self::Server,
            c if c.starts_with("INSUFFICIENT_ACCESS")
                || c == "API_DISABLED_FOR_ORG"
                || c == "API_CURRENTLY_DISABLED"
                || c == "INVALID_CROSS_REFERENCE_KEY" && status == Some(403) =>
            {
                Self::Forbidden
            }
            _ => match status {
                Some(300) => Self::MultipleMatches,
                Some(429) => Self::ConcurrencyLimited,
                Some(401) => Self::SessionExpired,
                Some(403) => Self::Forbidden,
                Some(404) => Self::NotFound,
                Some(s) if s >= 500 => Self::Server,
                _ => Self::Invalid,
            },
        }
    }

    /// Whether the same call may succeed later without changing it.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::RowLocked | Self::Server | Self::RolledBack | Self::ConcurrencyLimited
        )
    }

    /// What to do about an error of this kind.
    pub fn advice(self) -> &'static str {
        match self {
            Self::SessionExpired => {
                "the session expired or was revoked and renewing it did not help; check the app's OAuth policies and the user's access"
            }
            Self::RequestLimitExceeded => {
                "the org's 24-hour API allowance is spent; the run stops with its checkpoint saved, resume when usage falls (Sforce-Limit-Info)"
            }
            Self::ConcurrencyLimited => {
                "too many concurrent long-running requests; retry in a few seconds with fewer workers"
            }
            Self::EdgeNoRoute => {
                "Salesforce Edge has no route for this host (HTTP 420); check the login URL, My Domain and the instance URL, retrying will not help"
            }
            Self::Duplicate => {
                "the value already exists on another record (see its id); link to that record or fix the duplicate"
            }
            Self::RowLocked => {
                "another transaction holds the record or its parent; retry later, in smaller batches"
            }
            Self::EntityDeleted => "the record is in the Recycle Bin; treat it as gone",
            Self::MalformedQuery => {
                "a field or object name is wrong or not visible to the integration user; check the schema and field-level security"
            }
            Self::MultipleMatches => {
                "several records share the external ID; deduplicate them or use a unique External ID field"
            }
            Self::NotFound => {
                "the record, object or field does not exist or is not shared with the integration user"
            }
            Self::Forbidden => {
                "the integration user lacks a permission (API Enabled, object or field access); grant it in a permission set"
            }
            Self::RolledBack => {
                "rolled back with another record of an all-or-none call; resend it once the bad record is fixed or removed"
            }
            Self::TooManyIds => "the change window holds too many ids; use a shorter window",
            Self::Server => "Salesforce failed on its side; retry later",
            Self::Invalid => {
                "Salesforce rejected the data (validation rule, required field, bad value); fix the record, retrying will not help"
            }
        }
    }

    /// The system-neutral kind the sync engine acts on.
    pub fn remote_kind(self) -> RemoteErrorKind {
        match self {
            Self::SessionExpired => RemoteErrorKind::Auth,
            Self::RequestLimitExceeded => RemoteErrorKind::QuotaExhausted,
            Self::ConcurrencyLimited => RemoteErrorKind::RateLimited,
            Self::Duplicate | Self::MultipleMatches => RemoteErrorKind::Conflict,
            // Lock contention and rollbacks are transient: the engine retries retryable kinds.
            Self::RowLocked | Self::Server | Self::RolledBack => RemoteErrorKind::Server,
            Self::EntityDeleted | Self::NotFound => RemoteErrorKind::NotFound,
            Self::Forbidden => RemoteErrorKind::Forbidden,
            Self::MalformedQuery | Self::TooManyIds | Self::Invalid | Self::EdgeNoRoute => {
                RemoteErrorKind::Invalid
            }
        }
    }
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// Classifies this error (`status` is the HTTP status of the call, if any).
    pub fn kind(&self, status: Option<u16>) -> ApiErrorKind {
        match ApiErrorKind::classify(&self.code, status) {
            // The same code covers the daily allowance and the concurrent-request cap; only
            // the message tells them apart.
            ApiErrorKind::RequestLimitExceeded if self.message.contains("Concurrent") => {
                ApiErrorKind::ConcurrencyLimited
            }
            kind => kind,
        }
    }

    /// For `DUPLICATE_VALUE`: the id of the record that already holds the value, taken from
    /// the message after `with id: ` (`... duplicates value on record with id: 003A0000...`).
    pub fn duplicate_id(&self) -> Option<&str> {
        let (_, rest) = self.message.split_once("with id: ")?;
        let id: &str = rest
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .filter(|id| id.len() == 15 || id.len() == 18)?;
        Some(id)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if !self.fields.is_empty() {
            write!(f, " (fields: {})", self.fields.join(", "))?;
        }
        Ok(())
    }
}

/// Decodes an error body: the documented array, a single object, or an OAuth error
/// (`{"error","error_description"}`). Returns an empty list for anything else.
pub fn decode_error_body(body: &[u8]) -> Vec<ApiError> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let from_object = |v: &serde_json::Value| -> Option<ApiError> {
        let o = v.as_object()?;
        if let Some(error) = o.get("error").and_then(|e| e.as_str()) {
            // OAuth: {"error": "invalid_grant", "error_description": "..."}
            let description = o
                .get("error_description")
                .and_then(|d| d.as_str())
                .unwrap_or_default();
            return Some(ApiError::new(error, description));
        }
        let e: ApiError = serde_json::from_value(v.clone()).ok()?;
        (!e.code.is_empty() || !e.message.is_empty()).then_some(e)
    };
    match &value {
        serde_json::Value::Array(items) => items.iter().filter_map(from_object).collect(),
        other => from_object(other).into_iter().collect(),
    }
}

/// For an HTTP 300 upsert response: the ids of the matching records. Salesforce lists them
/// as record URLs (`/services/data/v66.0/sobjects/Contact/003...`); objects with an `Id` or
/// `attributes.url` are accepted too.
pub fn decode_multiple_matches(body: &[u8]) -> Vec<String> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return Vec::new();
    };
    let from_url = |u: &str| {
        u.rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    items
        .iter()
        .filter_map(|item| match item {
            serde_json::Value::String(url) => from_url(url),
            serde_json::Value::Object(o) => o
                .get("Id")
                .or_else(|| o.get("id"))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .or_else(|| o.get("attributes")?.get("url")?.as_str().and_then(from_url)),
            _ => None,
        })
        .collect()
}

/// The [`ErrorDecoder`] the Salesforce [`HttpClient`](sync_http::HttpClient)s use: reads the
/// error array, and overrides the retry verdict for `UNABLE_TO_LOCK_ROW` (retryable 400) and
/// `REQUEST_LIMIT_EXCEEDED` (never retried in-process: the allowance resets over hours).
#[derive(Debug, Clone, Copy, Default)]
pub struct SalesforceErrorDecoder;

impl ErrorDecoder for SalesforceErrorDecoder {
    fn decode(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiErrorInfo {
        let mut info = ApiErrorInfo::default();
        info.correlation_id = correlation_from_headers(headers);
        let errors = decode_error_body(body);
        let status_code = Some(status.as_u16());
        if status.as_u16() == 420 {
            info.retryable = Some(false);
            info.message = Some(ApiErrorKind::EdgeNoRoute.advice().into());
            return info;
        }
        if status.as_u16() == 300 {
            info.kind = Some(HttpErrorKind::Conflict);
            info.retryable = Some(false);
            info.message =
                Some("the external ID matched several records; nothing was written".into());
            info.code = Some("MULTIPLE_CHOICES".into());
            return info;
        }
        if let Some(first) = errors.first() {
            info.code = Some(first.code.clone()).filter(|c| !c.is_empty());
            info.message = Some(first.message.clone());
            let kind = first.kind(status_code);
            match kind {
                ApiErrorKind::RowLocked
                | ApiErrorKind::Server
                | ApiErrorKind::ConcurrencyLimited => {
                    info.retryable = Some(true);
                }
                ApiErrorKind::RequestLimitExceeded => info.retryable = Some(false),
                ApiErrorKind::Duplicate => info.kind = Some(HttpErrorKind::Conflict),
                ApiErrorKind::EntityDeleted => info.kind = Some(HttpErrorKind::NotFound),
                _ => {}
            }
        }
        info
    }
}

/// Everything that can go wrong in this crate. Each variant says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client or connector configuration is invalid.
    #[error("invalid Salesforce configuration: {0}")]
    Config(String),
    /// The client-credentials flow was pointed at `login.salesforce.com` or
    /// `test.salesforce.com`, which refuse it.
    #[error(
        "the client credentials flow needs your My Domain login URL (https://<domain>.my.salesforce.com), not {host}: set login_url to the My Domain URL"
    )]
    MyDomainRequired {
        /// The host that was configured.
        host: String,
    },
    /// The JWT bearer assertion could not be built (bad private key, signing failure).
    #[error(
        "cannot build the JWT bearer assertion: {0}: check that the key is an RSA private key in PEM form (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`)"
    )]
    Jwt(String),
    /// The token endpoint refused the credentials.
    #[error(
        "Salesforce refused the OAuth request ({code}: {message}): check the consumer key, the user's pre-authorization and the login URL"
    )]
    OAuth {
        /// HTTP status.
        status: u16,
        /// OAuth error code (`invalid_grant`, `invalid_client_id`, ...).
        code: String,
        /// The description.
        message: String,
    },
    /// Salesforce rejected the request with an error body.
    #[error("Salesforce {kind:?} error (HTTP {status}): {}{}: {}", first_error(errors), correlation_id.as_ref().map(|c| format!(" [request id {c}]")).unwrap_or_default(), kind.advice())]
    Api {
        /// HTTP status.
        status: u16,
        /// The classification of the first error.
        kind: ApiErrorKind,
        /// Every error Salesforce listed.
        errors: Vec<ApiError>,
        /// The request id, to quote to Salesforce support.
        correlation_id: Option<String>,
    },
    /// An upsert by external ID matched several records (HTTP 300): nothing was written.
    /// Deduplicate the records in Salesforce, or upsert on a unique external ID field.
    #[error("upsert of {object} by {field} matched {} records ({}): nothing was written; deduplicate them or use a unique external ID field", candidates.len(), candidates.join(", "))]
    MultipleMatches {
        /// The object.
        object: String,
        /// The external ID field.
        field: String,
        /// The ids of the matching records.
        candidates: Vec<String>,
    },
    /// A `updated` / `deleted` window is outside what Salesforce serves.
    #[error("invalid change window: {0}")]
    Window(String),
    /// A SOQL query could not be built.
    #[error(transparent)]
    Soql(#[from] SoqlError),
    /// The request failed below the API (connection, timeout, rate limiter, configuration).
    #[error(transparent)]
    Http(HttpError),
    /// An OAuth callback's `state` was refused (forged, altered, expired); nothing was
    /// exchanged.
    #[error(transparent)]
    OAuthState(#[from] sync_http::StateError),
    /// A success response did not have the expected shape.
    #[error("unexpected Salesforce response for {what}: {message}: check the API version")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's message.
        message: String,
    },
}

fn first_error(errors: &[ApiError]) -> String {
    errors
        .first()
        .map(ToString::to_string)
        .unwrap_or_else(|| "no error body".into())
}

impl Error {
    /// The Salesforce error code of the first error, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { errors, .. } => errors.first().map(|e| e.code.as_str()),
            Self::OAuth { code, .. } => Some(code),
            Self::Http(e) => e.code(),
            Self::MultipleMatches { .. } => Some("MULTIPLE_CHOICES"),
            _ => None,
        }
    }

    /// The classification, for API errors.
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        match self {
            Self::Api { kind, .. } => Some(*kind),
            Self::MultipleMatches { .. } => Some(ApiErrorKind::MultipleMatches),
            Self::OAuth { .. } => Some(ApiErrorKind::SessionExpired),
            _ => None,
        }
    }

    /// Whether trying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { kind, .. } => kind.is_retryable(),
            Self::Http(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// Whether the whole run should stop (quota spent, credentials refused).
    pub fn stops_run(&self) -> bool {
        matches!(
            self.remote_kind(),
            RemoteErrorKind::QuotaExhausted | RemoteErrorKind::Auth
        )
    }

    /// The system-neutral kind.
    pub fn remote_kind(&self) -> RemoteErrorKind {
        match self {
            Self::Config(_)
            | Self::MyDomainRequired { .. }
            | Self::Window(_)
            | Self::Soql(_)
            | Self::OAuthState(_) => RemoteErrorKind::Invalid,
            Self::Jwt(_) => RemoteErrorKind::Auth,
            // The token endpoint failing or throttling is not a refusal of the credentials:
            // retry it like any other call.
            Self::OAuth { status, .. } if *status >= 500 => RemoteErrorKind::Server,
            Self::OAuth { status: 429, .. } => RemoteErrorKind::RateLimited,
            Self::OAuth { .. } => RemoteErrorKind::Auth,
            Self::Api { kind, .. } => kind.remote_kind(),
            Self::MultipleMatches { .. } => RemoteErrorKind::Conflict,
            Self::Decode { .. } => RemoteErrorKind::Decode,
            Self::Http(e) => match e.kind() {
                HttpErrorKind::Auth => RemoteErrorKind::Auth,
                HttpErrorKind::Forbidden => RemoteErrorKind::Forbidden,
                HttpErrorKind::NotFound => RemoteErrorKind::NotFound,
                HttpErrorKind::Conflict => RemoteErrorKind::Conflict,
                HttpErrorKind::RateLimited { .. } => RemoteErrorKind::RateLimited,
                HttpErrorKind::Server => RemoteErrorKind::Server,
                HttpErrorKind::Network => RemoteErrorKind::Network,
                HttpErrorKind::Timeout => RemoteErrorKind::Timeout,
                HttpErrorKind::Decode => RemoteErrorKind::Decode,
                _ => RemoteErrorKind::Invalid,
            },
        }
    }

    /// Builds the error for a failed HTTP call: decodes the Salesforce body when there is
    /// one (a 300 becomes [`Error::MultipleMatches`] via the caller).
    pub fn from_http(e: HttpError) -> Self {
        let Some(status) = e.status().filter(|s| s.as_u16() != 300) else {
            // A token-endpoint refusal reaches us wrapped by the HTTP client's token provider.
            let oauth = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<Error>());
            if let Some(Error::OAuth {
                status,
                code,
                message,
            }) = oauth
            {
                return Self::OAuth {
                    status: *status,
                    code: code.clone(),
                    message: message.clone(),
                };
            }
            return Self::Http(e);
        };
        let errors = e.body().map(decode_error_body).unwrap_or_default();
        let status = status.as_u16();
        if status == 420 {
            // Whatever the body says, Edge found no route: say so, with the fix.
            return Self::Api {
                status,
                kind: ApiErrorKind::EdgeNoRoute,
                errors,
                correlation_id: e.correlation_id().map(str::to_owned),
            };
        }
        if errors.is_empty() {
            return Self::Http(e);
        }
        let kind = errors[0].kind(Some(status));
        Self::Api {
            status,
            kind,
            errors,
            correlation_id: e.correlation_id().map(str::to_owned),
        }
    }
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        Self::from_http(e)
    }
}

impl From<Error> for RemoteError {
    fn from(e: Error) -> Self {
        let mut r = RemoteError::new(SYSTEM, e.remote_kind(), e.to_string());
        match &e {
            Error::Api {
                status,
                errors,
                correlation_id,
                ..
            } => {
                r = r.with_status(*status);
                if let Some(first) = errors.first() {
                    r = r.with_code(first.code.clone());
                }
                if let Some(c) = correlation_id {
                    r = r.with_correlation_id(c.clone());
                }
            }
            Error::OAuth { status, code, .. } => r = r.with_status(*status).with_code(code.clone()),
            Error::MultipleMatches { .. } => r = r.with_status(300).with_code("MULTIPLE_CHOICES"),
            Error::Http(h) => {
                if let Some(s) = h.status() {
                    r = r.with_status(s.as_u16());
                }
                if let Some(c) = h.code() {
                    r = r.with_code(c);
                }
                if let Some(c) = h.correlation_id() {
                    r = r.with_correlation_id(c);
                }
                if let Some(w) = h.retry_after() {
                    r = r.with_retry_after(w);
                }
            }
            _ => {}
        }
        r
    }
}

impl From<Error> for sync_core::Error {
    fn from(e: Error) -> Self {
        sync_core::Error::from(RemoteError::from(e))
    }
}

/// A per-record error of a collections call as a [`sync_core::Error`].
pub(crate) fn record_error(errors: &[ApiError]) -> sync_core::Error {
    let kind = errors
        .first()
        .map(|e| e.kind(None))
        .unwrap_or(ApiErrorKind::Invalid);
    Error::Api {
        status: 200,
        kind,
        errors: errors.to_vec(),
        correlation_id: None,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(status: u16, code: &str) -> Error {
        Error::OAuth {
            status,
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn a_token_endpoint_outage_is_retryable_and_a_refusal_is_not() {
        assert_eq!(
            oauth(503, "SERVER_UNAVAILABLE").remote_kind(),
            RemoteErrorKind::Server
        );
        assert_eq!(
            oauth(429, "rate_limited").remote_kind(),
            RemoteErrorKind::RateLimited
        );
        assert_eq!(
            oauth(400, "invalid_grant").remote_kind(),
            RemoteErrorKind::Auth
        );
    }

    #[test]
    fn decodes_the_request_error_array() {
        let body =
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#;
        let errs = decode_error_body(body);
        assert_eq!(
            errs,
            vec![ApiError::new(
                "INVALID_SESSION_ID",
                "Session expired or invalid"
            )]
        );
        assert_eq!(errs[0].kind(Some(401)), ApiErrorKind::SessionExpired);
        assert_eq!(
            ApiErrorKind::SessionExpired.remote_kind(),
            RemoteErrorKind::Auth
        );
    }

    #[test]
    fn decodes_per_record_status_code_errors() {
        let body = br#"{"statusCode":"MALFORMED_ID","message":"Contact ID: id value of incorrect type","fields":["Id"]}"#;
        let errs = decode_error_body(body);
        assert_eq!(errs[0].code, "MALFORMED_ID");
        assert_eq!(errs[0].fields, vec!["Id".to_owned()]);
        assert_eq!(errs[0].kind(None), ApiErrorKind::Invalid);
    }

    #[test]
    fn request_limit_exceeded_exhausts_the_quota() {
        let errs = decode_error_body(br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#);
        let kind = errs[0].kind(Some(403));
        assert_eq!(kind, ApiErrorKind::RequestLimitExceeded);
        assert_eq!(kind.remote_kind(), RemoteErrorKind::QuotaExhausted);
        assert!(!kind.is_retryable());
        let e = Error::Api {
            status: 403,
            kind,
            errors: errs,
            correlation_id: None,
        };
        let core: sync_core::Error = e.into();
        assert!(core.stops_run());
    }

    #[test]
    fn concurrent_request_limit_is_a_short_rate_limit_not_the_daily_quota() {
        let e = ApiError::new(
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        );
        let kind = e.kind(Some(403));
        assert_eq!(kind, ApiErrorKind::ConcurrencyLimited);
        assert!(kind.is_retryable());
        assert_eq!(kind.remote_kind(), RemoteErrorKind::RateLimited);
        assert_eq!(
            ApiErrorKind::classify("", Some(429)),
            ApiErrorKind::ConcurrencyLimited
        );
    }

    #[test]
    fn duplicate_value_names_the_existing_record() {
        let e = ApiError::new(
            "DUPLICATE_VALUE",
            "duplicate value found: Cativa_Member_Id__c duplicates value on record with id: 003A000001abcDEFG1",
        );
        assert_eq!(e.kind(Some(400)), ApiErrorKind::Duplicate);
        assert_eq!(e.duplicate_id(), Some("003A000001abcDEFG1"));
        let short = ApiError::new(
            "DUPLICATE_VALUE",
            "duplicate value found: X__c duplicates value on record with id: 003A000001abcDE",
        );
        assert_eq!(short.duplicate_id(), Some("003A000001abcDE"));
        assert_eq!(
            ApiError::new("DUPLICATE_VALUE", "duplicate value found").duplicate_id(),
            None
        );
        assert_eq!(
            ApiErrorKind::Duplicate.remote_kind(),
            RemoteErrorKind::Conflict
        );
    }

    #[test]
    fn lock_contention_is_retryable_and_deleted_is_gone() {
        let lock = ApiErrorKind::classify("UNABLE_TO_LOCK_ROW", Some(400));
        assert!(lock.is_retryable());
        assert!(RemoteError::new(SYSTEM, lock.remote_kind(), "x").is_retryable());
        let deleted = ApiErrorKind::classify("ENTITY_IS_DELETED", None);
        assert_eq!(deleted.remote_kind(), RemoteErrorKind::NotFound);
        assert!(!deleted.is_retryable());
        assert_eq!(
            ApiErrorKind::classify("MALFORMED_QUERY", Some(400)),
            ApiErrorKind::MalformedQuery
        );
        assert_eq!(
            ApiErrorKind::classify("INSUFFICIENT_ACCESS_OR_READONLY", None),
            ApiErrorKind::Forbidden
        );
        assert_eq!(
            ApiErrorKind::classify("WHATEVER", Some(503)),
            ApiErrorKind::Server
        );
        assert_eq!(
            ApiErrorKind::classify("ALL_OR_NONE_OPERATION_ROLLED_BACK", None),
            ApiErrorKind::RolledBack
        );
    }

    #[test]
    fn multiple_matches_are_a_conflict_with_candidates() {
        let body = br#"["/services/data/v66.0/sobjects/Contact/003A00000000001AAA","/services/data/v66.0/sobjects/Contact/003A00000000002AAA"]"#;
        assert_eq!(
            decode_multiple_matches(body),
            vec!["003A00000000001AAA", "003A00000000002AAA"]
        );
        let objects = br#"[{"attributes":{"type":"Contact","url":"/services/data/v66.0/sobjects/Contact/003X"}},{"Id":"003Y"}]"#;
        assert_eq!(decode_multiple_matches(objects), vec!["003X", "003Y"]);
        let info =
            SalesforceErrorDecoder.decode(StatusCode::MULTIPLE_CHOICES, &HeaderMap::new(), body);
        assert_eq!(
            (info.kind, info.retryable),
            (Some(HttpErrorKind::Conflict), Some(false))
        );
        let e = Error::MultipleMatches {
            object: "Contact".into(),
            field: "Email".into(),
            candidates: vec!["003A".into(), "003B".into()],
        };
        assert_eq!(e.remote_kind(), RemoteErrorKind::Conflict);
        assert!(!e.is_retryable());
    }

    #[test]
    fn decoder_sets_retry_verdicts() {
        let lock = SalesforceErrorDecoder.decode(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            br#"[{"message":"unable to obtain exclusive access to this record","errorCode":"UNABLE_TO_LOCK_ROW"}]"#,
        );
        assert_eq!(
            (lock.code.as_deref(), lock.retryable),
            (Some("UNABLE_TO_LOCK_ROW"), Some(true))
        );
        let quota = SalesforceErrorDecoder.decode(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert_eq!(quota.retryable, Some(false));
        let oauth = decode_error_body(br#"{"error":"invalid_grant","error_description":"user hasn't approved this consumer"}"#);
        assert_eq!(oauth[0].code, "invalid_grant");
        assert!(decode_error_body(b"<html>oops</html>").is_empty());
    }
}
