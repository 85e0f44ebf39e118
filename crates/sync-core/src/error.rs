//! The error type of sync-core and of every port (CRM sources and sinks, badge sinks, stores).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ConfigIssue;
use crate::domain::{EmailError, TenantId};

/// What went wrong in a call to a remote system (CRM or Cativa), in system-neutral terms.
/// Connectors map their HTTP errors into it so the engine can decide: retry, skip the record,
/// or stop the run cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RemoteErrorKind {
    /// Credentials missing, invalid or expired (after the one refresh the client attempts).
    Auth,
    /// Credentials valid but not allowed (missing scopes, partner key on an admin endpoint).
    Forbidden,
    /// The record or endpoint does not exist.
    NotFound,
    /// A uniqueness conflict (duplicate email, several external-id matches).
    Conflict,
    /// Rate limited; retry after the given wait.
    RateLimited,
    /// A daily or org-wide quota is exhausted: stop until it resets.
    QuotaExhausted,
    /// The request or a record was rejected as invalid: retrying will not help.
    Invalid,
    /// The server failed (5xx).
    Server,
    /// The connection failed.
    Network,
    /// The request timed out.
    Timeout,
    /// The response could not be decoded.
    Decode,
}

/// A failed call to a remote system, with everything needed to act on it and report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{system} {kind:?} error{}: {message}{}{}",
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
    code.as_ref().map(|c| format!(" [code {c}]")).unwrap_or_default(),
    correlation_id.as_ref().map(|c| format!(" [correlation id {c}]")).unwrap_or_default())]
#[non_exhaustive]
pub struct RemoteError {
    /// Which system answered (`hubspot`, `salesforce`, `cativa`, ...).
    pub system: String,
    /// The classification.
    pub kind: RemoteErrorKind,
    /// The HTTP status, if there was a response.
    pub status: Option<u16>,
    /// The API's own error code or category (`PROPERTY_DOESNT_EXIST`, `INVALID_SESSION_ID`).
    pub code: Option<String>,
    /// The API's correlation or request id, to quote to its support.
    pub correlation_id: Option<String>,
    /// The API's message (bearer tokens redacted).
    pub message: String,
    /// How long to wait before retrying, when known.
    pub retry_after: Option<Duration>,
    /// When a quota resets, when known.
    pub resets_at: Option<DateTime<Utc>>,
}

impl RemoteError {
    /// A remote error of `kind` with a message; other details empty.
    pub fn new(
        system: impl Into<String>,
        kind: RemoteErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            system: system.into(),
            kind,
            status: None,
            code: None,
            correlation_id: None,
            message: message.into(),
            retry_after: None,
            resets_at: None,
        }
    }

    /// Sets the HTTP status (builder style).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the API error code (builder style).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the correlation id (builder style).
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the retry-after wait (builder style).
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Sets the quota reset time (builder style).
    pub fn with_resets_at(mut self, at: DateTime<Utc>) -> Self {
        self.resets_at = Some(at);
        self
    }

    /// Whether trying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            RemoteErrorKind::RateLimited
                | RemoteErrorKind::Server
                | RemoteErrorKind::Network
                | RemoteErrorKind::Timeout
        )
    }
}

/// The error type of sync-core and its ports.
///
/// Not `Clone`: it keeps the driver's error as its source. Share one with `Arc` when several
/// items fail for one reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An email failed validation.
    #[error("invalid email: {0}")]
    InvalidEmail(#[from] EmailError),
    /// A configuration file could not be parsed.
    #[error("cannot parse {format} configuration: {message}")]
    ConfigParse {
        /// `TOML`, `JSON` or `file`.
        format: &'static str,
        /// The parser's message, naming the key or line.
        message: String,
    },
    /// A configuration parsed but failed validation; every issue names its key.
    #[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidConfig(Vec<ConfigIssue>),
    /// A remote system (CRM, Cativa) failed. Boxed: it carries several strings, and a small
    /// error keeps every `Result` of the ports small.
    #[error(transparent)]
    Remote(Box<RemoteError>),
    /// A store write would break a uniqueness rule (one mapping per email, per Cativa user
    /// and per CRM record in a tenant). Resolve the conflicting rows, then retry.
    #[error("store uniqueness violated for tenant {tenant}: {detail}")]
    UniqueViolation {
        /// The tenant.
        tenant: TenantId,
        /// Which keys collided.
        detail: String,
    },
    /// A stored row could not be decoded (hand-edited or written by an incompatible version).
    #[error("corrupted row in {table}: {detail}: repair or delete the row")]
    CorruptRow {
        /// The table or collection.
        table: String,
        /// What failed to decode.
        detail: String,
    },
    /// Stored CRM credentials cannot be opened: sealed under a key that is not configured,
    /// or the key given is not the one they were sealed with.
    #[error("cannot open the stored CRM credentials of tenant {tenant}: {detail}")]
    Credentials {
        /// The tenant.
        tenant: TenantId,
        /// What is wrong and what to configure.
        detail: String,
    },
    /// The tenant is not known to the store.
    #[error("unknown tenant {0}: register it before syncing")]
    UnknownTenant(TenantId),
    /// The store failed (connection, I/O, busy). When `retryable`, try again later; otherwise
    /// check the store's connection settings and the database itself.
    #[error("store error during {operation}: {message}")]
    Store {
        /// What the store was doing.
        operation: String,
        /// The driver's message.
        message: String,
        /// Whether retrying may help.
        retryable: bool,
        /// The driver's error, when there is one.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// An outbox item was not held by the caller (its lease expired and another worker took it).
    #[error("outbox item {key} is not leased by {worker}: another worker owns it now")]
    LeaseLost {
        /// The action's idempotency key.
        key: String,
        /// The worker that lost it.
        worker: String,
    },
    /// A newer process registered with the same instance id: this one must stop claiming
    /// work (two live workers must not share an instance id).
    #[error(
        "worker {worker} incarnation {incarnation} was superseded by a newer start with the same instance id: stop this process or give each live worker its own instance id"
    )]
    Superseded {
        /// The instance id.
        worker: String,
        /// The incarnation that was superseded.
        incarnation: u64,
    },
    /// A webhook delivery or event was rejected (bad signature, malformed body).
    #[error("delivery rejected: {0}")]
    Delivery(String),
    /// A connector was asked for something it does not implement (companies of a custom
    /// CRM sink): implement the port method, or turn the feature off in the configuration.
    #[error(
        "this connector does not support {0}: implement it or turn it off in the configuration"
    )]
    NotSupported(String),
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Remote(e) => e.is_retryable(),
            Error::Store { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Whether the error should end the whole run cleanly (checkpoint saved, report says when
    /// to run again) rather than fail one record: exhausted quotas and rejected credentials.
    pub fn stops_run(&self) -> bool {
        matches!(
            self,
            Error::Remote(r) if matches!(r.kind, RemoteErrorKind::QuotaExhausted | RemoteErrorKind::Auth)
        )
    }

    /// A store error (helper for store implementations) with a message and no source.
    pub fn store(operation: impl Into<String>, message: impl ToString, retryable: bool) -> Self {
        Error::Store {
            operation: operation.into(),
            message: message.to_string(),
            retryable,
            source: None,
        }
    }

    /// A store error that keeps the driver's error as its [`source`](std::error::Error::source)
    /// (its message is the driver's message).
    pub fn store_source<E>(operation: impl Into<String>, source: E, retryable: bool) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Store {
            operation: operation.into(),
            message: source.to_string(),
            retryable,
            source: Some(Arc::new(source)),
        }
    }

    /// The remote error, when a remote system failed.
    pub fn as_remote(&self) -> Option<&RemoteError> {
        match self {
            Error::Remote(r) => Some(r),
            _ => None,
        }
    }
}

impl From<RemoteError> for Error {
    fn from(e: RemoteError) -> Self {
        Error::Remote(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_error_display_carries_status_code_and_correlation() {
        let e = RemoteError::new(
            "hubspot",
            RemoteErrorKind::Invalid,
            "Property values were not valid",
        )
        .with_status(400)
        .with_code("PROPERTY_DOESNT_EXIST")
        .with_correlation_id("abc-123");
        let s = e.to_string();
        assert!(
            s.contains("HTTP 400") && s.contains("PROPERTY_DOESNT_EXIST") && s.contains("abc-123"),
            "{s}"
        );
        assert!(!e.is_retryable());
    }

    #[test]
    fn classification() {
        let rl = Error::from(RemoteError::new(
            "hubspot",
            RemoteErrorKind::RateLimited,
            "slow down",
        ));
        assert!(rl.is_retryable() && !rl.stops_run());
        let quota = Error::from(RemoteError::new(
            "salesforce",
            RemoteErrorKind::QuotaExhausted,
            "TotalRequests",
        ));
        assert!(!quota.is_retryable() && quota.stops_run());
        assert!(Error::store("claim", "database is locked", true).is_retryable());
        assert!(!Error::UnknownTenant(TenantId::new("t")).is_retryable());
    }

    #[test]
    fn a_store_error_keeps_its_source() {
        use std::error::Error as _;
        let io = std::io::Error::other("disk full");
        let e = Error::store_source("enqueue", io, true);
        assert!(e.is_retryable());
        assert!(e.to_string().contains("disk full"), "{e}");
        let source = e.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk full"));
        assert!(Error::store("claim", "busy", false).source().is_none());
    }

    #[test]
    fn errors_stay_small() {
        // Every port returns `Result<_, Error>`: a large error would make all of them large.
        assert!(
            std::mem::size_of::<Error>() <= 128,
            "{}",
            std::mem::size_of::<Error>()
        );
    }
}
