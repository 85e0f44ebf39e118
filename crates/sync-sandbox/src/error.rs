//! The sandbox's error type.

use std::net::SocketAddr;

/// What went wrong while starting, driving or inspecting a sandbox server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The listener could not be bound. Another process may hold the address; use port 0.
    #[error("could not bind the sandbox listener on {addr}: {source}")]
    Bind {
        /// Address we tried to bind.
        addr: SocketAddr,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A webhook delivery could not be sent (connection refused, timeout). Check the
    /// receiver is listening on the URL you gave.
    #[error("webhook delivery to {url} failed: {source}")]
    WebhookDelivery {
        /// Target URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A record a test referred to does not exist in the sandbox state. Check the id or
    /// email, and that the record was seeded on this server.
    #[error("not found in the sandbox: {0}")]
    NotFound(String),
    /// A direct change to sandbox state was refused by the same validation the API
    /// applies (unknown property, bad option, missing required field); the message
    /// is the API's.
    #[error("the sandbox refused the change: {0}")]
    Rejected(String),
    /// A configuration value is out of range; the message names it.
    #[error("invalid sandbox configuration: {0}")]
    InvalidConfig(String),
}

impl SandboxError {
    /// Whether retrying the same call may succeed (only transport failures may).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::WebhookDelivery { .. })
    }
}
