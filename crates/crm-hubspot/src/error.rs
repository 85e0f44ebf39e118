//! The crate's error type, and its mapping into [`sync_core::Error`] at the port boundary.

use chrono::{DateTime, Utc};
use sync_core::{RemoteError, RemoteErrorKind};

use crate::api_error::{ApiError, Problem};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client, source, sink or verifier was configured wrongly.
    #[error("invalid HubSpot configuration: {0}")]
    Config(String),
    /// HubSpot answered with an error; see [`ApiError::problem`] for what to do.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The daily quota is spent: stop the run (checkpoint saved) and run again after
    /// `resets_at` (midnight in the account's time zone when HubSpot does not say).
    #[error("HubSpot daily API limit reached{}: run again after the reset", resets_at.map(|t| format!(" (resets at {t})")).unwrap_or_default())]
    DailyLimit {
        /// When the quota resets, if HubSpot said.
        resets_at: Option<DateTime<Utc>>,
        /// The error HubSpot sent.
        source: Box<ApiError>,
    },
    /// The request failed below HubSpot's error layer (connection, timeout, undecodable body).
    #[error("HubSpot request failed: {0}")]
    Http(#[from] sync_http::HttpError),
    /// A 2xx response did not have the expected shape.
    #[error(
        "cannot decode HubSpot response of {endpoint}: {message}: check the base URL and API path prefix"
    )]
    Decode {
        /// The endpoint.
        endpoint: String,
        /// The decoder's message.
        message: String,
    },
    /// An OAuth callback's `state` was refused (forged, altered, expired); nothing was
    /// exchanged.
    #[error("{0}")]
    OAuthState(#[from] sync_http::StateError),
    /// A value failed validation against the live property schema; no call was made.
    #[error("invalid value for HubSpot property {property:?}: {reason}")]
    InvalidValue {
        /// The property.
        property: String,
        /// Why (unknown property, not an option, read-only).
        reason: String,
    },
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.is_retryable(),
            Error::Http(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// The decoded API error, if HubSpot sent one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) | Error::DailyLimit { source: e, .. } => Some(e),
            _ => None,
        }
    }

    pub(crate) fn decode(endpoint: &str, e: impl std::fmt::Display) -> Self {
        Error::Decode {
            endpoint: endpoint.to_owned(),
            message: e.to_string(),
        }
    }
}

fn remote_kind(problem: &Problem, status: u16) -> RemoteErrorKind {
    match problem {
        Problem::DuplicateContact { .. } | Problem::ValueAlreadyHeld { .. } | Problem::Conflict => {
            RemoteErrorKind::Conflict
        }
        Problem::UnknownProperty { .. } | Problem::InvalidOption { .. } | Problem::Validation => {
            RemoteErrorKind::Invalid
        }
        Problem::MissingScopes { .. } | Problem::Forbidden => RemoteErrorKind::Forbidden,
        Problem::InvalidAuthentication => RemoteErrorKind::Auth,
        Problem::NotFound => RemoteErrorKind::NotFound,
        Problem::Locked | Problem::RateLimited { .. } => RemoteErrorKind::RateLimited,
        Problem::DailyLimit => RemoteErrorKind::QuotaExhausted,
        Problem::Server => RemoteErrorKind::Server,
        _ if status >= 500 => RemoteErrorKind::Server,
        _ => RemoteErrorKind::Invalid,
    }
}

fn api_to_remote(e: &ApiError) -> RemoteError {
    let message = match &e.problem {
        Problem::MissingScopes { required } => format!(
            "{} (grant the app these scopes: {})",
            e.message(),
            required.join(", ")
        ),
        p => format!("{}: {}", e.message(), p.advice()),
    };
    let mut r = RemoteError::new("hubspot", remote_kind(&e.problem, e.status), message)
        .with_status(e.status);
    if let Some(c) = e.code() {
        r = r.with_code(c);
    }
    if let Some(c) = e.correlation_id() {
        r = r.with_correlation_id(c);
    }
    if let Some(w) = e.retry_after {
        r = r.with_retry_after(w);
    }
    r
}

/// The sync-core error of one failed input of a batch (207 multi-status).
pub(crate) fn item_error(e: &crate::client::BatchItemError) -> sync_core::Error {
    let api = ApiError {
        status: 207,
        problem: e.problem.clone(),
        retry_after: None,
        body: (*e.body).clone(),
    };
    let mut r = api_to_remote(&api);
    r.status = None;
    sync_core::Error::from(r)
}

impl From<Error> for sync_core::Error {
    fn from(e: Error) -> Self {
        let remote = match &e {
            Error::Api(api) => api_to_remote(api),
            Error::DailyLimit { resets_at, source } => {
                let mut r = api_to_remote(source);
                r.kind = RemoteErrorKind::QuotaExhausted;
                if let Some(t) = resets_at {
                    r = r.with_resets_at(*t);
                }
                r
            }
            Error::Http(h) => {
                let kind = match h.kind() {
                    sync_http::ErrorKind::Auth => RemoteErrorKind::Auth,
                    sync_http::ErrorKind::Forbidden => RemoteErrorKind::Forbidden,
                    sync_http::ErrorKind::NotFound => RemoteErrorKind::NotFound,
                    sync_http::ErrorKind::Conflict => RemoteErrorKind::Conflict,
                    sync_http::ErrorKind::RateLimited { .. } => RemoteErrorKind::RateLimited,
                    sync_http::ErrorKind::Server => RemoteErrorKind::Server,
                    sync_http::ErrorKind::Network => RemoteErrorKind::Network,
                    sync_http::ErrorKind::Timeout => RemoteErrorKind::Timeout,
                    sync_http::ErrorKind::Decode => RemoteErrorKind::Decode,
                    _ => RemoteErrorKind::Invalid,
                };
                let mut r = RemoteError::new("hubspot", kind, h.to_string());
                if let Some(s) = h.status() {
                    r = r.with_status(s.as_u16());
                }
                r
            }
            Error::Decode { .. } => {
                RemoteError::new("hubspot", RemoteErrorKind::Decode, e.to_string())
            }
            Error::InvalidValue { property, .. } => {
                RemoteError::new("hubspot", RemoteErrorKind::Invalid, e.to_string())
                    .with_code(format!("INVALID_VALUE:{property}"))
            }
            Error::Config(_) | Error::OAuthState(_) => {
                RemoteError::new("hubspot", RemoteErrorKind::Invalid, e.to_string())
            }
        };
        sync_core::Error::from(remote)
    }
}
