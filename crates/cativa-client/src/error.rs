//! [`Error`]: everything the Cativa client and sinks can fail with.

use sync_core::{RemoteError, RemoteErrorKind};
use sync_http::{ErrorKind, HttpError};

/// An error from the Cativa API client or one of its sinks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The admin lookup by email refused this key.
    #[error(
        "Cativa refused the admin user lookup (HTTP 403): partner API keys cannot use \
         GET /social/v1/admin/users/email/{{email}} yet (it is for tenant admins signed in to the Console). \
         Ask dev@cativa.digital to enable it for your scenario, or keep your own email -> Cativa user id \
         mapping table filled from user_created webhooks and a periodic reconcile{}",
        correlation_id.as_ref().map(|c| format!(" [correlation id {c}]")).unwrap_or_default()
    )]
    AdminLookupForbidden {
        /// The correlation id Cativa returned, if any.
        correlation_id: Option<String>,
    },
    /// A preview ("coming soon") endpoint is not available at the configured path.
    #[error(
        "the Cativa preview endpoint {method} {path} is not available (HTTP {status}): it may not be enabled \
         for this key yet, or its path changed; set the path in PreviewPaths, or use the bulk-import \
         CsvBadgeSink meanwhile"
    )]
    PreviewUnavailable {
        /// The method.
        method: String,
        /// The path template.
        path: String,
        /// The status (404 or 405).
        status: u16,
    },
    /// The HTTP call failed.
    #[error("Cativa API: {0}")]
    Http(#[from] HttpError),
    /// The client configuration is invalid.
    #[error("invalid Cativa client configuration: {0}")]
    Config(String),
    /// Writing a bulk-import or invite file failed.
    #[error("could not write {path}: {message}; check the directory exists and is writable")]
    File {
        /// The file.
        path: String,
        /// The I/O or CSV error.
        message: String,
    },
}

impl Error {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http(e) => e.is_retryable(),
            Self::File { .. } => true,
            _ => false,
        }
    }

    /// The HTTP error, when there is one.
    pub fn http(&self) -> Option<&HttpError> {
        match self {
            Self::Http(e) => Some(e),
            _ => None,
        }
    }
}

fn remote_kind(kind: ErrorKind) -> RemoteErrorKind {
    match kind {
        ErrorKind::Auth => RemoteErrorKind::Auth,
        ErrorKind::Forbidden => RemoteErrorKind::Forbidden,
        ErrorKind::NotFound => RemoteErrorKind::NotFound,
        ErrorKind::Conflict => RemoteErrorKind::Conflict,
        ErrorKind::RateLimited { .. } => RemoteErrorKind::RateLimited,
        ErrorKind::Server => RemoteErrorKind::Server,
        ErrorKind::Network => RemoteErrorKind::Network,
        ErrorKind::Timeout => RemoteErrorKind::Timeout,
        ErrorKind::Decode => RemoteErrorKind::Decode,
        _ => RemoteErrorKind::Invalid,
    }
}

impl From<Error> for sync_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Http(h) => {
                let mut r = RemoteError::new("cativa", remote_kind(h.kind()), h.message());
                if let Some(s) = h.status() {
                    r = r.with_status(s.as_u16());
                }
                if let Some(c) = h.code().or(h.category()) {
                    r = r.with_code(c);
                }
                if let Some(c) = h.correlation_id() {
                    r = r.with_correlation_id(c);
                }
                if let Some(w) = h.retry_after() {
                    r = r.with_retry_after(w);
                }
                sync_core::Error::from(r)
            }
            Error::AdminLookupForbidden { ref correlation_id } => {
                let mut r = RemoteError::new("cativa", RemoteErrorKind::Forbidden, e.to_string())
                    .with_status(403);
                if let Some(c) = correlation_id {
                    r = r.with_correlation_id(c.clone());
                }
                sync_core::Error::from(r)
            }
            Error::PreviewUnavailable { status, .. } => sync_core::Error::from(
                RemoteError::new("cativa", RemoteErrorKind::NotFound, e.to_string())
                    .with_status(status),
            ),
            Error::File { path, message } => {
                sync_core::Error::store(format!("write {path}"), message, true)
            }
            Error::Config(m) => {
                sync_core::Error::from(RemoteError::new("cativa", RemoteErrorKind::Invalid, m))
            }
        }
    }
}
