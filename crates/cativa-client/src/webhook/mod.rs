//! Cativa webhooks: signature verification, delivery headers and typed events.
//!
//! A receiver calls [`WebhookReceiver::receive`] with the request headers and the **raw**
//! body bytes (re-serialized JSON does not verify). It checks, in order: the body size
//! (before anything is parsed), the `X-Cativa-Signature` (any `v1` against any configured
//! secret, constant-time; timestamp within the tolerance both ways), the
//! `X-Cativa-Execution-Id`, then parses the event. The returned [`Delivery`] carries the
//! execution id: it is stable across Cativa's retries, so record it in the delivery ledger
//! and skip a delivery already seen. [`Delivery::to_community_event`] turns it into the input of
//! [`SyncEngine::handle_community_event`](sync_core::SyncEngine::handle_community_event),
//! which does exactly that with the execution id.
//!
//! ```
//! use secrecy::SecretString;
//! use cativa_client::webhook::{sign, CativaEvent, EventType, SignatureVerifier, WebhookReceiver};
//!
//! let secret = SecretString::from("whsec_example");
//! let receiver = WebhookReceiver::new(SignatureVerifier::new(secret.clone())?)
//!     .with_event_type(EventType::UserCreated); // this route receives user_created
//!
//! let body = br#"{"CustomerId":"c-1","User":{"Id":"u-1","Email":"Jane@Example.com"}}"#;
//! let now = 1_700_000_000;
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-cativa-signature", sign(&secret, now, body).parse().unwrap());
//! headers.insert("x-cativa-execution-id", "exec-1".parse().unwrap());
//!
//! let delivery = receiver.receive(&headers, body, now)?;
//! assert_eq!(delivery.execution_id.as_str(), "exec-1");
//! let CativaEvent::UserCreated(event) = &delivery.event else { unreachable!() };
//! assert_eq!(event.user.email.as_str(), "jane@example.com");
//! # Ok::<(), cativa_client::webhook::WebhookError>(())
//! ```
//!
//! # The signature scheme
//!
//! Stripe's scheme: the signed payload is `"{t}.{raw body}"`; `v1` is the lowercase hex
//! HMAC-SHA256 of it keyed with the whole secret string as UTF-8 (any `whsec_` prefix
//! included, nothing base64-decoded). A header may carry several `v1` values and a
//! [`SignatureVerifier`] may hold several secrets (rotation on either side): any match
//! verifies, compared in constant time. The timestamp must satisfy `|now - t| <= 300 s` by
//! default: unlike Stripe's libraries, a far-future timestamp is refused too. [`sign`]
//! produces headers for tests, sandboxes and load generators.
//!
//! # Several tenants
//!
//! [`TenantRouter`] maps each `CustomerId` to a tenant and that tenant's own secrets: a
//! delivery claiming tenant A but signed with tenant B's secret is refused.
//!
//! # How the event type is found
//!
//! Cativa does not document a field naming the event type in the body: a Console listener
//! (`X-Cativa-Automation-Id`) is subscribed to one event, and the documented `user_created`
//! payload has no type field. So the type comes from, in order:
//!
//! 1. an `Event`, `EventType` or `Type` field in the body, if present (it describes the data
//!    itself, so it wins; a disagreeing hint is logged at `warn`);
//! 2. the hint the receiver was given for the call (one route per event type, e.g.
//!    `POST /webhooks/cativa/user_created`), or configured for the delivery's automation id;
//! 3. otherwise the event is [`CativaEvent::Unknown`], keeping the raw JSON: a new or
//!    unexpected event never breaks a receiver.
//!
//! Names are matched ignoring case and `_`/`-`/`.`/spaces (`user_created`, `UserCreated`).
//!
//! # `user_created`: top-level fields versus the nested `User`
//!
//! The payload carries both (parity with v1 of the platform). The nested `User` is
//! authoritative. When both are present: a disagreement on identity (`UserId` vs `User.Id`,
//! `Email` vs `User.Email`, compared as normalized emails) is a typed error,
//! [`WebhookError::InconsistentPayload`], because the receiver cannot know which user the
//! event is about; a disagreement on any other field (names, phone, `CreatedAt`) keeps the
//! nested value and adds a [`PayloadWarning`] to the event. A payload with only the
//! top-level fields is accepted and the user built from them.
//!
//! The shapes of `user_received_badge` and `user_joined_group` beyond the shared nested
//! `User` are not published; this crate reads `BadgeId`/`BadgeName` (or a nested
//! `Badge { Id, Name }`) and `GroupId`/`GroupName` (or `Group { Id, Name }`).

mod community;
mod event;
mod signature;

use std::collections::HashMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sync_core::TenantId;

pub use event::{
    CativaEvent, CustomerId, EventType, EventUser, PayloadWarning, UserCreated, UserJoinedGroup,
    UserReceivedBadge, parse_event,
};
pub use signature::{
    DEFAULT_TOLERANCE, MAX_SIGNATURES, SIGNATURE_HEADER, SignatureHeader, SignatureVerifier, sign,
};

/// The header carrying the delivery's unique id (the idempotency key).
pub const EXECUTION_ID_HEADER: &str = "X-Cativa-Execution-Id";
/// The header naming the Console listener that sent the delivery.
pub const AUTOMATION_ID_HEADER: &str = "X-Cativa-Automation-Id";
/// The default body size limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a delivery was refused. Map `BodyTooLarge` to HTTP 413, the signature and timestamp
/// errors to 401, and the others to 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A required header is absent.
    #[error(
        "missing header {0}: the request did not come from a Cativa listener, or a proxy dropped it"
    )]
    MissingHeader(&'static str),
    /// The signature header could not be parsed.
    #[error("malformed X-Cativa-Signature header: {0}; expected `t=<unix seconds>,v1=<hex>`")]
    MalformedHeader(&'static str),
    /// The signature header has no `v1` signature.
    #[error("no v1 signature in X-Cativa-Signature: no signatures found with the expected scheme")]
    NoV1,
    /// No `v1` matched any configured secret for this body.
    #[error(
        "signature mismatch: no v1 signature matches the body with any configured secret; check the webhook secret and that the raw body is verified"
    )]
    BadSignature,
    /// The timestamp is older than the tolerance.
    #[error(
        "stale delivery: signed {age_secs}s ago, tolerance {tolerance_secs}s; a replay, or the receiver's clock is wrong"
    )]
    StaleTimestamp {
        /// Seconds since it was signed.
        age_secs: i64,
        /// The tolerance.
        tolerance_secs: i64,
    },
    /// The timestamp is further in the future than the tolerance.
    #[error(
        "delivery from the future: signed {ahead_secs}s ahead, tolerance {tolerance_secs}s; check the receiver's clock"
    )]
    FutureTimestamp {
        /// Seconds ahead of now.
        ahead_secs: i64,
        /// The tolerance.
        tolerance_secs: i64,
    },
    /// The body exceeds the size limit (checked before any parsing).
    #[error("body of {size} bytes exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// The body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not a valid event; `field` names the bad field (`User.Email`), or
    /// `(body)` for the body as a whole.
    #[error("malformed event body: field {field}: {message}")]
    MalformedBody {
        /// The JSON path of the bad field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The top-level and nested user identity of a `user_created` disagree.
    #[error(
        "inconsistent user_created payload: top-level {field} differs from the nested User; refusing to guess which user this is"
    )]
    InconsistentPayload {
        /// The top-level field (`UserId` or `Email`).
        field: &'static str,
    },
    /// A webhook secret is empty.
    #[error("empty webhook secret: configure the secret shown in the Cativa Console")]
    EmptySecret,
    /// The delivery's `CustomerId` is not routed to any tenant.
    #[error("no tenant configured for Cativa customer {0}")]
    UnknownCustomer(String),
}

impl WebhookError {
    /// The HTTP status a receiver should answer with: 413, 401 or 400.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::BodyTooLarge { .. } => 413,
            Self::MissingHeader(h) if *h == SIGNATURE_HEADER => 401,
            Self::MalformedHeader(_)
            | Self::NoV1
            | Self::BadSignature
            | Self::StaleTimestamp { .. }
            | Self::FutureTimestamp { .. }
            | Self::UnknownCustomer(_) => 401,
            _ => 400,
        }
    }
}

impl From<WebhookError> for sync_core::Error {
    fn from(e: WebhookError) -> Self {
        sync_core::Error::Delivery(e.to_string())
    }
}

macro_rules! header_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

header_id!(
    /// `X-Cativa-Execution-Id`: unique per event, stable across retries: the idempotency key.
    ExecutionId
);
header_id!(
    /// `X-Cativa-Automation-Id`: the Console listener (the same for every delivery of one
    /// subscription).
    AutomationId
);

/// A verified, parsed delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Delivery {
    /// The idempotency key: record it and skip deliveries already processed.
    pub execution_id: ExecutionId,
    /// The listener that sent it, when the header was present.
    pub automation_id: Option<AutomationId>,
    /// The signature timestamp (Unix seconds).
    pub signed_at: i64,
    /// The event.
    pub event: CativaEvent,
}

impl Delivery {
    /// The emitting tenant's `CustomerId`, when the event has one.
    pub fn customer_id(&self) -> Option<CustomerId> {
        self.event.customer_id()
    }
}

/// Verifies and parses deliveries for one webhook secret set (one tenant, or one shared
/// secret).
#[derive(Debug, Clone)]
pub struct WebhookReceiver {
    verifier: SignatureVerifier,
    max_body: usize,
    event_type: Option<EventType>,
    automations: HashMap<String, EventType>,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl WebhookReceiver {
    /// A receiver using `verifier`, a 1 MiB body limit, and no event type hint.
    pub fn new(verifier: SignatureVerifier) -> Self {
        Self {
            verifier,
            max_body: DEFAULT_MAX_BODY_BYTES,
            event_type: None,
            automations: HashMap::new(),
        }
    }

    /// Sets the body size limit.
    #[must_use]
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body = limit;
        self
    }

    /// Declares the event type this receiver gets when the body does not name it (one
    /// route per subscribed event).
    #[must_use]
    pub fn with_event_type(mut self, event_type: EventType) -> Self {
        self.event_type = Some(event_type);
        self
    }

    /// Declares the event type a Console listener (`X-Cativa-Automation-Id`) is subscribed
    /// to, for receivers that take several events on one route.
    #[must_use]
    pub fn with_automation(
        mut self,
        automation_id: impl Into<String>,
        event_type: EventType,
    ) -> Self {
        self.automations.insert(automation_id.into(), event_type);
        self
    }

    /// The signature verifier.
    pub fn verifier(&self) -> &SignatureVerifier {
        &self.verifier
    }

    /// The body size limit.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body
    }

    /// Verifies and parses a delivery, reading the three Cativa headers from `headers`
    /// (names are case-insensitive). `now` is Unix seconds.
    ///
    /// # Errors
    /// See [`WebhookError`]; [`WebhookError::http_status`] gives the answer to send.
    pub fn receive(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Delivery, WebhookError> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        self.receive_parts(
            get(SIGNATURE_HEADER),
            get(EXECUTION_ID_HEADER),
            get(AUTOMATION_ID_HEADER),
            body,
            now,
        )
    }

    /// [`receive`](Self::receive) at the current time.
    ///
    /// # Errors
    /// See [`WebhookError`].
    pub fn receive_now(&self, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, WebhookError> {
        self.receive(headers, body, now_unix())
    }

    /// [`receive`](Self::receive) from header values already extracted (for frameworks
    /// that do not use the `http` crate).
    ///
    /// # Errors
    /// See [`WebhookError`].
    pub fn receive_parts(
        &self,
        signature: Option<&str>,
        execution_id: Option<&str>,
        automation_id: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Delivery, WebhookError> {
        if body.len() > self.max_body {
            return Err(WebhookError::BodyTooLarge {
                size: body.len(),
                limit: self.max_body,
            });
        }
        let sig = self.verifier.verify(signature, body, now)?;
        let execution_id = execution_id
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(WebhookError::MissingHeader(EXECUTION_ID_HEADER))?;
        let automation_id = automation_id.map(str::trim).filter(|s| !s.is_empty());
        let hint = self
            .event_type
            .or_else(|| automation_id.and_then(|a| self.automations.get(a).copied()));
        let event = parse_event(body, hint)?;
        Ok(Delivery {
            execution_id: ExecutionId::new(execution_id),
            automation_id: automation_id.map(AutomationId::new),
            signed_at: sig.timestamp,
            event,
        })
    }
}

/// Routes deliveries from several Cativa customers, each verified with **its own** secrets:
/// a delivery claiming customer A but signed with customer B's secret is refused.
///
/// The `CustomerId` is read from the (not yet trusted) body only to pick the secrets; the
/// delivery is trusted once that customer's signature verifies.
#[derive(Debug, Clone, Default)]
pub struct TenantRouter {
    routes: HashMap<CustomerId, (TenantId, WebhookReceiver)>,
}

#[derive(Deserialize)]
struct CustomerPeek {
    #[serde(rename = "CustomerId", default)]
    customer_id: Option<CustomerId>,
}

impl TenantRouter {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `customer` to `tenant`, verified by `receiver`.
    #[must_use]
    pub fn route(
        mut self,
        customer: CustomerId,
        tenant: TenantId,
        receiver: WebhookReceiver,
    ) -> Self {
        self.routes.insert(customer, (tenant, receiver));
        self
    }

    /// The tenant for a customer, if routed.
    pub fn tenant_for(&self, customer: &CustomerId) -> Option<&TenantId> {
        self.routes.get(customer).map(|(t, _)| t)
    }

    /// Verifies and parses a delivery, returning its tenant.
    ///
    /// # Errors
    /// [`WebhookError::UnknownCustomer`] for a customer with no route (or no
    /// `CustomerId`), plus everything [`WebhookReceiver::receive`] returns.
    pub fn receive(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<(TenantId, Delivery), WebhookError> {
        let limit = self
            .routes
            .values()
            .map(|(_, r)| r.max_body_bytes())
            .max()
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if body.len() > limit {
            return Err(WebhookError::BodyTooLarge {
                size: body.len(),
                limit,
            });
        }
        let peek: CustomerPeek =
            serde_json::from_slice(body).map_err(|e| WebhookError::MalformedBody {
                field: "(body)".to_owned(),
                message: e.to_string(),
            })?;
        let customer = peek.customer_id.ok_or_else(|| {
            WebhookError::UnknownCustomer("(none: the body has no CustomerId)".to_owned())
        })?;
        let (tenant, receiver) = self
            .routes
            .get(&customer)
            .ok_or_else(|| WebhookError::UnknownCustomer(customer.to_string()))?;
        let delivery = receiver.receive(headers, body, now)?;
        Ok((tenant.clone(), delivery))
    }
}
