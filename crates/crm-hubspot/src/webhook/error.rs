//! [`WebhookError`]: why a HubSpot webhook delivery was refused, with the HTTP status to
//! answer and a stable machine-readable code.

use std::time::Duration;

/// Why a HubSpot delivery was refused. [`WebhookError::http_status`] gives the answer to
/// send (413 body too large, 401 signature and timestamp errors, 400 a malformed body,
/// 500 a receiver configured wrongly) and [`WebhookError::code`] a stable code for logs and
/// metrics (see the crate README for the table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A webhook request lacks a signature header.
    #[error(
        "missing {header} header: the request is not from HubSpot, or a proxy dropped the header"
    )]
    MissingSignature {
        /// The missing header.
        header: &'static str,
    },
    /// A signature header is unreadable.
    #[error("malformed HubSpot signature: {0}")]
    MalformedSignature(String),
    /// The v3 timestamp is too old (replay protection).
    #[error(
        "HubSpot request timestamp is {age:?} old, beyond the {tolerance:?} window: refuse it (replay) or check the server clock"
    )]
    StaleTimestamp {
        /// Age of the request.
        age: Duration,
        /// The window.
        tolerance: Duration,
    },
    /// The v3 timestamp is further in the future than the window allows.
    #[error(
        "HubSpot request timestamp is {ahead:?} in the future, beyond the {tolerance:?} window: refuse it or check the server clock"
    )]
    FutureTimestamp {
        /// How far ahead.
        ahead: Duration,
        /// The window.
        tolerance: Duration,
    },
    /// The signature does not match: wrong client secret, wrong public URL, or a forged or
    /// altered request.
    #[error(
        "HubSpot signature does not match: check the client secret and the configured public URL"
    )]
    BadSignature,
    /// The delivery body is larger than the receiver accepts (answer 413).
    #[error("HubSpot webhook body of {size} bytes exceeds the {limit}-byte limit")]
    PayloadTooLarge {
        /// The body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The delivery body is not a JSON array of at most 100 events.
    #[error("malformed HubSpot webhook batch: {0}")]
    MalformedBatch(String),
    /// One event of a delivery is malformed.
    #[error("malformed HubSpot webhook event #{index}: {reason}")]
    MalformedEvent {
        /// Position in the batch.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The receiver cannot verify anything as configured (e.g. no public URL for a v2/v3
    /// signature): fix the configuration; the delivery itself may be fine.
    #[error("HubSpot webhook receiver misconfigured: {0}")]
    NotConfigured(String),
}

impl WebhookError {
    /// The HTTP status a receiver should answer with: 413, 401, 400 or 500.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::PayloadTooLarge { .. } => 413,
            Self::MissingSignature { .. }
            | Self::MalformedSignature(_)
            | Self::StaleTimestamp { .. }
            | Self::FutureTimestamp { .. }
            | Self::BadSignature => 401,
            Self::MalformedBatch(_) | Self::MalformedEvent { .. } => 400,
            Self::NotConfigured(_) => 500,
        }
    }

    /// A stable, machine-readable code for this refusal (for response bodies, logs and
    /// metrics labels); the crate README lists them. Codes never change meaning.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingSignature { .. } => "signature_missing",
            Self::MalformedSignature(_) => "signature_malformed",
            Self::StaleTimestamp { .. } | Self::FutureTimestamp { .. } => "timestamp_out_of_range",
            Self::BadSignature => "signature_invalid",
            Self::PayloadTooLarge { .. } => "body_too_large",
            Self::MalformedBatch(_) => "malformed_json",
            Self::MalformedEvent { .. } => "malformed_event",
            Self::NotConfigured(_) => "receiver_misconfigured",
        }
    }
}

impl From<WebhookError> for sync_core::Error {
    fn from(e: WebhookError) -> Self {
        sync_core::Error::Delivery(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_status_and_a_code() {
        let cases = [
            (
                WebhookError::MissingSignature { header: "h" },
                401,
                "signature_missing",
            ),
            (
                WebhookError::MalformedSignature("x".into()),
                401,
                "signature_malformed",
            ),
            (
                WebhookError::StaleTimestamp {
                    age: Duration::ZERO,
                    tolerance: Duration::ZERO,
                },
                401,
                "timestamp_out_of_range",
            ),
            (
                WebhookError::FutureTimestamp {
                    ahead: Duration::ZERO,
                    tolerance: Duration::ZERO,
                },
                401,
                "timestamp_out_of_range",
            ),
            (WebhookError::BadSignature, 401, "signature_invalid"),
            (
                WebhookError::PayloadTooLarge { size: 2, limit: 1 },
                413,
                "body_too_large",
            ),
            (
                WebhookError::MalformedBatch("x".into()),
                400,
                "malformed_json",
            ),
            (
                WebhookError::MalformedEvent {
                    index: 0,
                    reason: "x".into(),
                },
                400,
                "malformed_event",
            ),
            (
                WebhookError::NotConfigured("x".into()),
                500,
                "receiver_misconfigured",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!((e.http_status(), e.code()), (status, code), "{e}");
        }
    }
}
