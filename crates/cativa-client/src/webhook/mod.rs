//! Cativa webhooks: signature verification, delivery headers and typed events.
//!
//! A receiver calls [`WebhookReceiver::receive`] (or [`WebhookReceiver::receive_now`]) with
//! the request's [`http::request::Parts`] and the **raw** body bytes (re-serialized JSON does not verify). It checks, in order: the body size
//! (before anything is parsed), the `X-Cativa-Signature` (any `v1` against any configured
//! secret, constant-time; timestamp within the tolerance both ways), the
//! `X-Cativa-Execution-Id`, then parses the event. The returned [`Delivery`] carries the
//! execution id: it is stable across Cativa's retries, so record it in the delivery ledger
//! and skip a delivery already seen. [`Delivery::to_community_event`] turns it into the input of
//! `sync_engine::SyncEngine::handle_community_event`,
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
//! let body = br#"{"CustomerId":"8c1f0b7e-1111-2222-3333-444455556666",
//!     "User":{"Id":"0b7e8c1f-aaaa-4bbb-8ccc-000000000001","Email":"Jane@Example.com"}}"#;
//! let now = 1_700_000_000;
//! let (parts, ()) = http::Request::post("/webhooks/cativa/user_created")
//!     .header("x-cativa-signature", sign(&secret, now, body))
//!     .header("x-cativa-execution-id", "exec-1")
//!     .body(())
//!     .unwrap()
//!     .into_parts();
//!
//! let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
//! let delivery = receiver.receive(&parts, body, at)?;
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
//! # How the event type is chosen
//!
//! Cativa bodies do not name their event: a Console listener is subscribed to one event
//! and has its own target URL and its own `X-Cativa-Automation-Id`; the documented
//! `user_created` payload has no type field. So the type comes from configuration:
//!
//! - the route: one receiver per event, [`WebhookReceiver::with_event_type`] (e.g. a
//!   `POST /webhooks/cativa/user_created` route);
//! - or the listener: [`WebhookReceiver::with_automation`] maps an automation id to its
//!   event, for a route taking several listeners. If both are configured, they must agree.
//!
//! A delivery whose type cannot be determined is refused
//! ([`WebhookError::UndeterminedEventType`], HTTP 422), never acknowledged while nothing
//! happens. If a body does carry an `Event`, `EventType` or `Type` field, it must name the
//! configured type ([`WebhookError::EventTypeMismatch`], 422); a body lacking a field its
//! type requires is [`WebhookError::MissingField`] (422).
//!
//! # Hostile input
//!
//! Refused with 400 before anything is recorded: a header given more than once (two
//! `X-Cativa-Signature` headers could otherwise be checked one way and read another), an
//! execution or automation id over [`MAX_ID_LEN`] bytes or with characters outside
//! printable ASCII, a body id that is not a GUID (`CustomerId`, `UserId`, `User.Id`,
//! `User.BadgeId`, `User.Badges`: the seed documents them as GUIDs), an email with an
//! invisible character, and a body with a key repeated in one object.
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
//! # Other events
//!
//! For `user_received_badge` and `user_joined_group` Cativa documents only the nested
//! `User` (same shape as in `user_created`). So a badge event is read as the badges the
//! user holds afterwards (`User.Badges`, `User.BadgeId`), and a group event does not say
//! which group. `CustomerId` is read when present.

mod community;
mod event;
mod signature;

use std::collections::HashMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use sync_core::TenantId;

pub use event::{
    CativaEvent, CustomerId, EventType, EventUser, PayloadWarning, UnknownEventType, UserCreated,
    UserJoinedGroup, UserReceivedBadge, check_unique_keys, normalize_guid, parse_event,
};
pub use signature::{
    DEFAULT_TOLERANCE, MAX_SIGNATURES, SIGNATURE_HEADER, SignatureHeader, SignatureVerifier, sign,
};

/// The header carrying the delivery's unique id (the idempotency key).
pub const EXECUTION_ID_HEADER: &str = "X-Cativa-Execution-Id";
/// The header naming the Console listener that sent the delivery.
pub const AUTOMATION_ID_HEADER: &str = "X-Cativa-Automation-Id";
/// The longest `X-Cativa-Execution-Id` or `X-Cativa-Automation-Id` accepted, in bytes.
/// Cativa's ids are GUIDs (36 bytes); this leaves room for other formats while keeping a
/// hostile 60 KB id out of the ledger.
pub const MAX_ID_LEN: usize = 128;
/// The default body size limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a delivery was refused. [`WebhookError::http_status`] gives the answer: 413 for a
/// body too large, 401 for signature and timestamp errors, 422 for a well-formed delivery
/// that is not a usable event of its configured type, 400 for the rest;
/// [`WebhookError::code`] gives a stable machine-readable code (the crate README lists them).
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
    /// A header that must appear once appears several times.
    #[error(
        "header {0} appears more than once: a delivery carries exactly one; refusing rather than picking one"
    )]
    RepeatedHeader(&'static str),
    /// A header id is too long or holds characters outside printable ASCII.
    #[error("invalid header {header}: {message}")]
    InvalidHeader {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// An object of the body holds one key twice.
    #[error(
        "malformed event body: object {object}: {message}; a signed body must hold each key once"
    )]
    DuplicateKey {
        /// The JSON path of the object (`(body)`, `User`).
        object: String,
        /// Which key.
        message: String,
    },
    /// No event type is configured for this delivery.
    #[error(
        "cannot tell which event this delivery is (listener {}): Cativa bodies do not name their event, so configure it: post each listener to its own event route, or map its X-Cativa-Automation-Id to the event it is subscribed to",
        automation_id.as_deref().unwrap_or("unknown: no X-Cativa-Automation-Id")
    )]
    UndeterminedEventType {
        /// The delivery's `X-Cativa-Automation-Id`, if any.
        automation_id: Option<String>,
    },
    /// The body, or the listener's configured type, names another event type than the
    /// one configured for the route.
    #[error(
        "event type mismatch: this delivery is configured as {configured} but names {declared}; check which event the listener is subscribed to and where it posts"
    )]
    EventTypeMismatch {
        /// The configured type.
        configured: EventType,
        /// What the body (or the listener mapping) says instead.
        declared: String,
    },
    /// A field the event type requires is absent.
    #[error(
        "{event} delivery lacks {field}, which that event requires: check that the listener is subscribed to {event} (or route it to its event)"
    )]
    MissingField {
        /// The configured type.
        event: EventType,
        /// The JSON path of the field (`CustomerId`, `User.Email`).
        field: &'static str,
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
    /// The HTTP status a receiver should answer with: 413, 401, 422 or 400.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::BodyTooLarge { .. } => 413,
            Self::UndeterminedEventType { .. }
            | Self::EventTypeMismatch { .. }
            | Self::MissingField { .. }
            | Self::InconsistentPayload { .. } => 422,
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

    /// A stable, machine-readable code for this refusal (for response bodies, logs and
    /// metrics labels); the crate README lists them. Codes never change meaning.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(h) if *h == SIGNATURE_HEADER => "signature_missing",
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader(_) | Self::NoV1 => "signature_malformed",
            Self::BadSignature => "signature_invalid",
            Self::StaleTimestamp { .. } | Self::FutureTimestamp { .. } => "timestamp_out_of_range",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::MalformedBody { field, .. } if field == "(body)" => "malformed_json",
            Self::MalformedBody { .. } => "invalid_field",
            Self::RepeatedHeader(_) => "header_repeated",
            Self::InvalidHeader { .. } => "header_invalid",
            Self::DuplicateKey { .. } => "duplicate_key",
            Self::UndeterminedEventType { .. } => "unknown_event",
            Self::EventTypeMismatch { .. } => "event_type_mismatch",
            Self::MissingField { .. } => "missing_field",
            Self::InconsistentPayload { .. } => "inconsistent_payload",
            Self::EmptySecret => "receiver_misconfigured",
            Self::UnknownCustomer(_) => "unknown_customer",
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
    /// Automation id -> the group its `user_joined_group` listener is for.
    groups: HashMap<String, String>,
}

/// Unix seconds of `at` (negative before 1970), saturating.
fn unix_secs(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

impl WebhookReceiver {
    /// A receiver using `verifier`, a 1 MiB body limit, and no event type hint.
    pub fn new(verifier: SignatureVerifier) -> Self {
        Self {
            verifier,
            max_body: DEFAULT_MAX_BODY_BYTES,
            event_type: None,
            automations: HashMap::new(),
            groups: HashMap::new(),
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

    /// Declares a Console listener subscribed to `user_joined_group` for one group: Cativa's
    /// payload does not name the group, so configure one listener per group and map each
    /// listener's automation id to its group here. Its deliveries then parse with
    /// [`UserJoinedGroup::group`](event::UserJoinedGroup::group) set, and
    /// `to_community_event` yields `JoinedGroup { group: Some(group) }`.
    #[must_use]
    pub fn with_group_automation(
        mut self,
        automation_id: impl Into<String>,
        group: impl Into<String>,
    ) -> Self {
        let id = automation_id.into();
        self.automations
            .insert(id.clone(), EventType::UserJoinedGroup);
        self.groups.insert(id, group.into());
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

    /// Verifies and parses a delivery, reading the three Cativa headers from `parts` (the
    /// request without its body; names are case-insensitive, each may appear at most once).
    /// `at` is the time the signature timestamp is checked against (inject it in tests;
    /// [`receive_now`](Self::receive_now) uses the clock).
    ///
    /// # Errors
    /// See [`WebhookError`]; [`WebhookError::http_status`] gives the answer to send and
    /// [`WebhookError::code`] a stable code.
    pub fn receive(
        &self,
        parts: &Parts,
        body: &[u8],
        at: SystemTime,
    ) -> Result<Delivery, WebhookError> {
        self.receive_as(&parts.headers, body, unix_secs(at), None)
    }

    /// [`receive`](Self::receive) at the current time.
    ///
    /// # Errors
    /// See [`WebhookError`].
    pub fn receive_now(&self, parts: &Parts, body: &[u8]) -> Result<Delivery, WebhookError> {
        self.receive(parts, body, SystemTime::now())
    }

    /// [`receive`](Self::receive) for a route that says which event it receives (e.g.
    /// `POST /webhooks/cativa/{event}`), whatever this receiver is configured with.
    ///
    /// # Errors
    /// See [`WebhookError`].
    pub fn receive_event(
        &self,
        event_type: EventType,
        parts: &Parts,
        body: &[u8],
        at: SystemTime,
    ) -> Result<Delivery, WebhookError> {
        self.receive_as(&parts.headers, body, unix_secs(at), Some(event_type))
    }

    fn receive_as(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
        route: Option<EventType>,
    ) -> Result<Delivery, WebhookError> {
        let signature = single_header(headers, SIGNATURE_HEADER)?;
        let execution_id = single_header(headers, EXECUTION_ID_HEADER)?;
        let automation_id = single_header(headers, AUTOMATION_ID_HEADER)?;
        self.receive_inner(signature, execution_id, automation_id, body, now, route)
    }

    /// [`receive`](Self::receive) from header values already extracted (for frameworks
    /// that do not use the `http` crate; refuse repeated headers yourself). `now` is Unix
    /// seconds.
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
        self.receive_inner(signature, execution_id, automation_id, body, now, None)
    }

    /// The event type configured for a delivery: the route's (or this receiver's), checked
    /// against the listener's mapping when both exist.
    fn event_type_for(
        &self,
        route: Option<EventType>,
        automation_id: Option<&str>,
    ) -> Result<EventType, WebhookError> {
        let configured = route.or(self.event_type);
        let mapped = automation_id.and_then(|a| self.automations.get(a).copied());
        match (configured, mapped) {
            (Some(c), Some(m)) if c != m => Err(WebhookError::EventTypeMismatch {
                configured: c,
                declared: format!("{m} (the event its automation id is mapped to)"),
            }),
            (Some(c), _) | (None, Some(c)) => Ok(c),
            (None, None) => Err(WebhookError::UndeterminedEventType {
                automation_id: automation_id.map(str::to_owned),
            }),
        }
    }

    fn receive_inner(
        &self,
        signature: Option<&str>,
        execution_id: Option<&str>,
        automation_id: Option<&str>,
        body: &[u8],
        now: i64,
        route: Option<EventType>,
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
        check_id(EXECUTION_ID_HEADER, execution_id)?;
        let automation_id = automation_id.map(str::trim).filter(|s| !s.is_empty());
        if let Some(a) = automation_id {
            check_id(AUTOMATION_ID_HEADER, a)?;
        }
        let kind = self.event_type_for(route, automation_id)?;
        let mut event = parse_event(body, kind)?;
        if let (CativaEvent::UserJoinedGroup(e), Some(a)) = (&mut event, automation_id) {
            e.group = self.groups.get(a).cloned();
        }
        Ok(Delivery {
            execution_id: ExecutionId::new(execution_id),
            automation_id: automation_id.map(AutomationId::new),
            signed_at: sig.timestamp,
            event,
        })
    }
}

/// The one value of a header, `None` when absent.
fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, WebhookError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(WebhookError::RepeatedHeader(name));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| WebhookError::InvalidHeader {
            header: name,
            message: "not printable ASCII".to_owned(),
        })
}

/// Execution and automation ids: at most [`MAX_ID_LEN`] bytes of printable ASCII (they
/// are stored, logged and used as keys).
fn check_id(header: &'static str, id: &str) -> Result<(), WebhookError> {
    if id.len() > MAX_ID_LEN {
        return Err(WebhookError::InvalidHeader {
            header,
            message: format!(
                "{} bytes long, over the {MAX_ID_LEN}-byte limit for an id",
                id.len()
            ),
        });
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WebhookError::InvalidHeader {
            header,
            message: "an id holds only printable ASCII without spaces".to_owned(),
        });
    }
    Ok(())
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

    /// Verifies and parses a delivery, returning its tenant. `parts` and `at` are as for
    /// [`WebhookReceiver::receive`].
    ///
    /// # Errors
    /// [`WebhookError::UnknownCustomer`] for a customer with no route (or no
    /// `CustomerId`), plus everything [`WebhookReceiver::receive`] returns.
    pub fn receive(
        &self,
        parts: &Parts,
        body: &[u8],
        at: SystemTime,
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
        check_unique_keys(body)?;
        let peek: CustomerPeek =
            serde_json::from_slice(body).map_err(|e| WebhookError::MalformedBody {
                field: "(body)".to_owned(),
                message: e.to_string(),
            })?;
        let customer = peek.customer_id.ok_or_else(|| {
            WebhookError::UnknownCustomer("(none: the body has no CustomerId)".to_owned())
        })?;
        // Routes are keyed by the canonical (lowercase) GUID the parser produces.
        let customer = normalize_guid(customer.as_str()).map_or(customer, CustomerId::new);
        let (tenant, receiver) = self
            .routes
            .get(&customer)
            .ok_or_else(|| WebhookError::UnknownCustomer(customer.to_string()))?;
        let delivery = receiver.receive(parts, body, at)?;
        Ok((tenant.clone(), delivery))
    }

    /// [`receive`](Self::receive) at the current time.
    ///
    /// # Errors
    /// As for [`receive`](Self::receive).
    pub fn receive_now(
        &self,
        parts: &Parts,
        body: &[u8],
    ) -> Result<(TenantId, Delivery), WebhookError> {
        self.receive(parts, body, SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_the_epoch_are_negative_seconds() {
        use std::time::Duration;
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_secs(90)), 90);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }

    #[test]
    fn codes_name_the_refusal() {
        let cases = [
            (
                WebhookError::MissingHeader(SIGNATURE_HEADER),
                "signature_missing",
                401,
            ),
            (
                WebhookError::MissingHeader(EXECUTION_ID_HEADER),
                "missing_header",
                400,
            ),
            (WebhookError::BadSignature, "signature_invalid", 401),
            (
                WebhookError::StaleTimestamp {
                    age_secs: 301,
                    tolerance_secs: 300,
                },
                "timestamp_out_of_range",
                401,
            ),
            (
                WebhookError::BodyTooLarge { size: 2, limit: 1 },
                "body_too_large",
                413,
            ),
            (
                WebhookError::MalformedBody {
                    field: "(body)".into(),
                    message: "eof".into(),
                },
                "malformed_json",
                400,
            ),
            (
                WebhookError::MissingField {
                    event: EventType::UserCreated,
                    field: "User.Email",
                },
                "missing_field",
                422,
            ),
            (
                WebhookError::UndeterminedEventType {
                    automation_id: None,
                },
                "unknown_event",
                422,
            ),
        ];
        for (e, code, status) in cases {
            assert_eq!((e.code(), e.http_status()), (code, status), "{e}");
        }
    }
}
