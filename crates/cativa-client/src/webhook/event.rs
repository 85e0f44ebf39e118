//! Typed Cativa webhook events (PascalCase JSON), parsed for an event type the receiver
//! is configured with. See the [module documentation](super) for how the type is chosen
//! and how `user_created`'s duplicated fields are reconciled.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sync_core::{BadgeId, CativaUserId, Email};

use super::WebhookError;

/// The Cativa customer (tenant) that emitted an event: a GUID. Route it to a
/// [`TenantId`](sync_core::TenantId) with a [`TenantRouter`](super::TenantRouter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(String);

impl CustomerId {
    /// Wraps an id. Ids read from deliveries are GUIDs in lowercase; give configured ids
    /// in that form too (see [`normalize_guid`]).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The event types this crate parses into typed events: the names a listener is
/// subscribed to in the Cativa Console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventType {
    /// `user_created`: a user appeared in the tenant for the first time.
    UserCreated,
    /// `user_received_badge`: a user earned a badge.
    UserReceivedBadge,
    /// `user_joined_group`: a user joined a group.
    UserJoinedGroup,
}

impl EventType {
    /// Every type, in Console-name order.
    pub const ALL: [EventType; 3] = [
        Self::UserCreated,
        Self::UserReceivedBadge,
        Self::UserJoinedGroup,
    ];

    /// The Console name (`user_created`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user_created",
            Self::UserReceivedBadge => "user_received_badge",
            Self::UserJoinedGroup => "user_joined_group",
        }
    }

    /// Recognises a name, ignoring case and `_`, `-`, `.` and spaces.
    pub fn from_name(name: &str) -> Option<Self> {
        let norm: String = name
            .chars()
            .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match norm.as_str() {
            "usercreated" => Some(Self::UserCreated),
            "userreceivedbadge" => Some(Self::UserReceivedBadge),
            "userjoinedgroup" => Some(Self::UserJoinedGroup),
            _ => None,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`EventType::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown Cativa event {0:?}: expected one of user_created, user_received_badge, user_joined_group"
)]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

/// The user as every event carries it (the nested `User` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct EventUser {
    /// `User.Id` (a GUID, lowercased).
    pub id: CativaUserId,
    /// `User.Email`, normalized (trimmed, lowercased) and validated.
    pub email: Email,
    /// `User.FirstName`.
    pub first_name: Option<String>,
    /// `User.LastName`.
    pub last_name: Option<String>,
    /// `User.DisplayName`.
    pub display_name: Option<String>,
    /// `User.Username`.
    pub username: Option<String>,
    /// `User.PhoneNumber`.
    pub phone_number: Option<String>,
    /// `User.CreatedAt` (ISO 8601; a time without an offset is read as UTC).
    pub created_at: Option<DateTime<Utc>>,
    /// `User.BadgeId`: the primary badge, if any (a GUID, lowercased).
    pub badge_id: Option<BadgeId>,
    /// `User.Badges`: badges the user holds (`null` reads as empty; GUIDs, lowercased).
    pub badges: Vec<BadgeId>,
}

/// A non-fatal oddity in a payload (top-level and nested values disagreeing on a
/// non-identity field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PayloadWarning {
    /// The top-level field (`FirstName`, `CreatedAt`...).
    pub field: String,
    /// What was odd.
    pub message: String,
}

/// `user_created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserCreated {
    /// The tenant that emitted it.
    pub customer_id: CustomerId,
    /// The new user (from the nested `User`, or the top-level fields when it is absent).
    pub user: EventUser,
    /// Top-level fields that disagreed with the nested `User` (the nested value was kept).
    pub warnings: Vec<PayloadWarning>,
}

/// `user_received_badge`. Cativa documents only its nested `User` (the same shape as in
/// `user_created`), so the badges are those the user holds afterwards: `User.Badges` and
/// the primary `User.BadgeId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserReceivedBadge {
    /// The tenant that emitted it, when the body carries `CustomerId`.
    pub customer_id: Option<CustomerId>,
    /// The user, with the badges held.
    pub user: EventUser,
}

impl UserReceivedBadge {
    /// Every badge the user holds: `User.Badges`, then `User.BadgeId` if not among them.
    pub fn badges(&self) -> Vec<BadgeId> {
        let mut all = self.user.badges.clone();
        if let Some(primary) = &self.user.badge_id
            && !all.contains(primary)
        {
            all.push(primary.clone());
        }
        all
    }
}

/// `user_joined_group`. Cativa documents only its nested `User`: which group is not
/// part of the documented payload, so the receiver names it from the listener that sent
/// the delivery ([`WebhookReceiver::with_group_automation`](super::WebhookReceiver::with_group_automation)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserJoinedGroup {
    /// The tenant that emitted it, when the body carries `CustomerId`.
    pub customer_id: Option<CustomerId>,
    /// The user.
    pub user: EventUser,
    /// The group joined, when the delivery's listener is configured as one group's
    /// listener; `None` otherwise (the payload never names it).
    pub group: Option<String>,
}

/// A parsed Cativa event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub enum CativaEvent {
    /// `user_created`.
    UserCreated(UserCreated),
    /// `user_received_badge`.
    UserReceivedBadge(UserReceivedBadge),
    /// `user_joined_group`.
    UserJoinedGroup(UserJoinedGroup),
}

impl CativaEvent {
    /// The event type.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::UserCreated(_) => EventType::UserCreated,
            Self::UserReceivedBadge(_) => EventType::UserReceivedBadge,
            Self::UserJoinedGroup(_) => EventType::UserJoinedGroup,
        }
    }

    /// The emitting tenant (`CustomerId`), when the event has one.
    pub fn customer_id(&self) -> Option<CustomerId> {
        match self {
            Self::UserCreated(e) => Some(e.customer_id.clone()),
            Self::UserReceivedBadge(e) => e.customer_id.clone(),
            Self::UserJoinedGroup(e) => e.customer_id.clone(),
        }
    }

    /// The user the event is about.
    pub fn user(&self) -> &EventUser {
        match self {
            Self::UserCreated(e) => &e.user,
            Self::UserReceivedBadge(e) => &e.user,
            Self::UserJoinedGroup(e) => &e.user,
        }
    }
}

/// The canonical form of a GUID as Cativa documents its ids: 36 characters,
/// `8-4-4-4-12` hexadecimal digits, returned lowercased. `None` for anything else (braces,
/// a `urn:uuid:` prefix, missing hyphens, surrounding spaces), so one id has one form.
pub fn normalize_guid(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let ok = bytes.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    ok.then(|| raw.to_ascii_lowercase())
}

fn guid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Some(raw) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    normalize_guid(&raw).map(Some).ok_or_else(|| {
        de::Error::custom(format!(
            "{} is not a GUID (36 characters, 8-4-4-4-12 hexadecimal digits)",
            preview(&raw)
        ))
    })
}

fn guid_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Guid(String);
    impl<'de> Deserialize<'de> for Guid {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match guid(d)? {
                Some(g) => Ok(Guid(g)),
                None => Err(de::Error::custom("null is not a GUID")),
            }
        }
    }
    Ok(Option::<Vec<Guid>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.0)
        .collect())
}

/// A hostile value can be 100 KB long: error messages quote only its start.
fn preview(raw: &str) -> String {
    const MAX: usize = 40;
    if raw.chars().count() <= MAX {
        format!("{raw:?}")
    } else {
        let head: String = raw.chars().take(MAX).collect();
        format!("{head:?}... ({} bytes)", raw.len())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireUser {
    #[serde(default, deserialize_with = "guid")]
    id: Option<String>,
    #[serde(default)]
    email: Option<Email>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    created_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "guid")]
    badge_id: Option<String>,
    #[serde(default, deserialize_with = "guid_list")]
    badges: Vec<String>,
}

impl WireUser {
    fn into_user(self, kind: EventType) -> Result<EventUser, WebhookError> {
        let id = self.id.ok_or(WebhookError::MissingField {
            event: kind,
            field: "User.Id",
        })?;
        let email = self.email.ok_or(WebhookError::MissingField {
            event: kind,
            field: "User.Email",
        })?;
        Ok(EventUser {
            id: CativaUserId::new(id),
            email,
            first_name: self.first_name,
            last_name: self.last_name,
            display_name: self.display_name,
            username: self.username,
            phone_number: self.phone_number,
            created_at: self.created_at,
            badge_id: self.badge_id.map(BadgeId::new),
            badges: self.badges.into_iter().map(BadgeId::new).collect(),
        })
    }
}

/// The documented fields, plus the names a body might use for its event type (never
/// documented: only read to refuse a body that contradicts the configured type).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Wire {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default, rename = "Type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "guid")]
    customer_id: Option<String>,
    #[serde(default)]
    user: Option<WireUser>,
    #[serde(default, deserialize_with = "guid")]
    user_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    created_at: Option<DateTime<Utc>>,
}

fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let Some(raw) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    parse_time(&raw).map(Some).map_err(de::Error::custom)
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    // .NET writes `DateTime` values of unspecified kind without an offset.
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|n| n.and_utc())
        .map_err(|_| format!("{} is not an ISO 8601 date-time", preview(raw)))
}

fn malformed(field: &str, message: impl Into<String>) -> WebhookError {
    WebhookError::MalformedBody {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Walks a JSON document and fails on the first object holding a key twice. Parsers keep
/// one of the copies (serde_json the last), so a signed body with `"Email"` twice would be
/// read differently by different consumers: such a body is refused instead.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_none<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {}",
                    preview(&key)
                )));
            }
            map.next_value::<UniqueKeys>()?;
            seen.insert(key);
        }
        Ok(UniqueKeys)
    }
}

/// Refuses a body that is not one JSON object whose objects each hold every key once.
///
/// # Errors
/// [`WebhookError::DuplicateKey`] naming the object (`(body)`, `User`) and the key, or
/// [`WebhookError::MalformedBody`] for a body that is not a JSON object.
pub fn check_unique_keys(body: &[u8]) -> Result<(), WebhookError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(malformed("(body)", "expected a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let checked: Result<UniqueKeys, _> = serde_path_to_error::deserialize(&mut *de);
    match checked {
        Ok(_) => de
            .end()
            .map_err(|e| malformed("(body)", format!("not valid JSON: {e}"))),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.to_string();
            let object = if path == "." {
                "(body)".to_owned()
            } else {
                path
            };
            if inner.is_data() && message.starts_with("duplicate key") {
                Err(WebhookError::DuplicateKey { object, message })
            } else {
                Err(malformed("(body)", format!("not valid JSON: {message}")))
            }
        }
    }
}

/// Parses an event body as `kind`: the event type the receiver is configured with (its
/// route, or the listener's automation id). Cativa bodies do not name their type; one
/// that does (`Event`, `EventType` or `Type`) must name `kind`.
///
/// # Errors
/// - [`WebhookError::DuplicateKey`] or [`WebhookError::MalformedBody`] (HTTP 400): not one
///   JSON object with unique keys, or a field of the wrong shape (an id that is not a
///   GUID, an invalid email...), naming the field (`User.Email`, `CustomerId`...);
/// - [`WebhookError::EventTypeMismatch`] (422): the body names another event type;
/// - [`WebhookError::MissingField`] (422): a field `kind` requires is absent;
/// - [`WebhookError::InconsistentPayload`] (422): a `user_created` whose top-level
///   identity disagrees with its nested `User`.
pub fn parse_event(body: &[u8], kind: EventType) -> Result<CativaEvent, WebhookError> {
    check_unique_keys(body)?;
    let de = &mut serde_json::Deserializer::from_slice(body);
    let wire: Wire = serde_path_to_error::deserialize(de).map_err(|err| {
        let field = err.path().to_string();
        malformed(
            if field == "." { "(body)" } else { &field },
            err.into_inner().to_string(),
        )
    })?;
    for declared in [&wire.event, &wire.event_type, &wire.kind]
        .into_iter()
        .flatten()
    {
        if EventType::from_name(declared) != Some(kind) {
            return Err(WebhookError::EventTypeMismatch {
                configured: kind,
                declared: preview(declared),
            });
        }
    }
    let customer_id = wire.customer_id.clone().map(CustomerId::new);
    match kind {
        EventType::UserCreated => {
            let customer_id = customer_id.ok_or(WebhookError::MissingField {
                event: kind,
                field: "CustomerId",
            })?;
            let (user, warnings) = user_created_user(wire)?;
            Ok(CativaEvent::UserCreated(UserCreated {
                customer_id,
                user,
                warnings,
            }))
        }
        EventType::UserReceivedBadge => {
            let user = wire
                .user
                .ok_or(WebhookError::MissingField {
                    event: kind,
                    field: "User",
                })?
                .into_user(kind)?;
            if user.badges.is_empty() && user.badge_id.is_none() {
                return Err(WebhookError::MissingField {
                    event: kind,
                    field: "User.Badges",
                });
            }
            Ok(CativaEvent::UserReceivedBadge(UserReceivedBadge {
                customer_id,
                user,
            }))
        }
        EventType::UserJoinedGroup => {
            let user = wire
                .user
                .ok_or(WebhookError::MissingField {
                    event: kind,
                    field: "User",
                })?
                .into_user(kind)?;
            Ok(CativaEvent::UserJoinedGroup(UserJoinedGroup {
                customer_id,
                user,
                group: None,
            }))
        }
    }
}

fn user_created_user(w: Wire) -> Result<(EventUser, Vec<PayloadWarning>), WebhookError> {
    let kind = EventType::UserCreated;
    let top_email = match w.email.as_deref() {
        Some(raw) => Some(Email::parse(raw).map_err(|e| malformed("Email", e.to_string()))?),
        None => None,
    };
    let Some(nested) = w.user else {
        // Only the top-level (v1) fields.
        let id = w.user_id.ok_or(WebhookError::MissingField {
            event: kind,
            field: "UserId",
        })?;
        let email = top_email.ok_or(WebhookError::MissingField {
            event: kind,
            field: "Email",
        })?;
        return Ok((
            EventUser {
                id: CativaUserId::new(id),
                email,
                first_name: w.first_name,
                last_name: w.last_name,
                display_name: w.display_name,
                username: w.username,
                phone_number: w.phone_number,
                created_at: w.created_at,
                badge_id: None,
                badges: Vec::new(),
            },
            Vec::new(),
        ));
    };
    let mut user = nested.into_user(kind)?;
    if let Some(top) = &w.user_id
        && top != user.id.as_str()
    {
        return Err(WebhookError::InconsistentPayload { field: "UserId" });
    }
    if let Some(top) = &top_email
        && top != &user.email
    {
        return Err(WebhookError::InconsistentPayload { field: "Email" });
    }
    let mut warnings = Vec::new();
    let mut check = |field: &str, top: Option<String>, nested: &mut Option<String>| match (
        top,
        nested.as_ref(),
    ) {
        (Some(t), Some(n)) if &t != n => warnings.push(PayloadWarning {
            field: field.to_owned(),
            message: format!("differs from User.{field}; the nested value is used"),
        }),
        (Some(t), None) => *nested = Some(t),
        _ => {}
    };
    check("FirstName", w.first_name, &mut user.first_name);
    check("LastName", w.last_name, &mut user.last_name);
    check("DisplayName", w.display_name, &mut user.display_name);
    check("Username", w.username, &mut user.username);
    check("PhoneNumber", w.phone_number, &mut user.phone_number);
    match (w.created_at, user.created_at) {
        (Some(t), Some(n)) if t != n => warnings.push(PayloadWarning {
            field: "CreatedAt".to_owned(),
            message: "differs from User.CreatedAt; the nested value is used".to_owned(),
        }),
        (Some(t), None) => user.created_at = Some(t),
        _ => {}
    }
    Ok((user, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CUSTOMER: &str = "8c1f0b7e-1111-2222-3333-444455556666";
    const USER: &str = "0b7e8c1f-aaaa-4bbb-8ccc-000000000001";
    const BADGE: &str = "b0000000-0000-4000-8000-000000000001";

    /// The seed's `user_created` payload: top-level fields and the nested `User`, no
    /// event-name field.
    fn user_created() -> serde_json::Value {
        json!({
            "CustomerId": CUSTOMER,
            "UserId": USER,
            "Email": "Jane@Example.com",
            "FirstName": "Jane",
            "LastName": "Doe",
            "DisplayName": "Jane D",
            "Username": "janed",
            "PhoneNumber": "+5511999999999",
            "CreatedAt": "2026-11-20T10:00:00Z",
            "User": {
                "Id": USER,
                "Email": "jane@example.com",
                "FirstName": "Jane",
                "LastName": "Doe",
                "DisplayName": "Jane D",
                "Username": "janed",
                "PhoneNumber": "+5511999999999",
                "CreatedAt": "2026-11-20T10:00:00Z",
                "BadgeId": null,
                "Badges": []
            }
        })
    }

    fn parse(v: &serde_json::Value, kind: EventType) -> Result<CativaEvent, WebhookError> {
        parse_event(&serde_json::to_vec(v).unwrap(), kind)
    }

    #[test]
    fn documented_user_created_parses_for_the_configured_type() {
        let CativaEvent::UserCreated(e) = parse(&user_created(), EventType::UserCreated).unwrap()
        else {
            panic!("wrong variant")
        };
        assert_eq!(e.customer_id.as_str(), CUSTOMER);
        assert_eq!(e.user.id.as_str(), USER);
        assert_eq!(e.user.email.as_str(), "jane@example.com");
        assert_eq!(e.user.first_name.as_deref(), Some("Jane"));
        assert_eq!(
            e.user.created_at.unwrap().to_rfc3339(),
            "2026-11-20T10:00:00+00:00"
        );
        assert!(e.user.badges.is_empty());
        assert!(e.warnings.is_empty());
    }

    #[test]
    fn a_body_naming_another_event_type_is_refused() {
        for key in ["Event", "EventType", "Type"] {
            let mut v = user_created();
            v[key] = json!("user_created");
            assert!(parse(&v, EventType::UserCreated).is_ok(), "{key}");
            v[key] = json!("user_joined_group");
            let err = parse(&v, EventType::UserCreated).unwrap_err();
            assert!(
                matches!(
                    err,
                    WebhookError::EventTypeMismatch {
                        configured: EventType::UserCreated,
                        ..
                    }
                ),
                "{key}: {err:?}"
            );
            assert_eq!(err.http_status(), 422);
        }
    }

    #[test]
    fn a_body_lacking_what_its_type_requires_is_422_naming_the_field() {
        let err = parse_event(br#"{"hello":"world"}"#, EventType::UserCreated).unwrap_err();
        assert_eq!(
            err,
            WebhookError::MissingField {
                event: EventType::UserCreated,
                field: "CustomerId"
            }
        );
        assert_eq!(err.http_status(), 422);
        let mut v = user_created();
        v.as_object_mut().unwrap().remove("User");
        v.as_object_mut().unwrap().remove("UserId");
        assert!(matches!(
            parse(&v, EventType::UserCreated),
            Err(WebhookError::MissingField {
                field: "UserId",
                ..
            })
        ));
        let mut v = user_created();
        v["User"].as_object_mut().unwrap().remove("Email");
        assert!(matches!(
            parse(&v, EventType::UserCreated),
            Err(WebhookError::MissingField {
                field: "User.Email",
                ..
            })
        ));
        for kind in [EventType::UserReceivedBadge, EventType::UserJoinedGroup] {
            assert!(matches!(
                parse_event(br#"{"hello":"world"}"#, kind),
                Err(WebhookError::MissingField { field: "User", .. })
            ));
        }
        // user_received_badge with a user holding no badge says nothing.
        assert!(matches!(
            parse(&user_created(), EventType::UserReceivedBadge),
            Err(WebhookError::MissingField {
                field: "User.Badges",
                ..
            })
        ));
    }

    #[test]
    fn nested_user_is_preferred_and_non_identity_disagreement_warns() {
        let mut v = user_created();
        v["FirstName"] = json!("Janet");
        v["CreatedAt"] = json!("2026-11-20T10:00:01Z");
        let CativaEvent::UserCreated(e) = parse(&v, EventType::UserCreated).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(e.user.first_name.as_deref(), Some("Jane"));
        let fields: Vec<_> = e.warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(fields, ["FirstName", "CreatedAt"]);
    }

    #[test]
    fn identity_disagreement_is_an_error() {
        let mut v = user_created();
        v["UserId"] = json!("0b7e8c1f-aaaa-4bbb-8ccc-000000000002");
        assert!(matches!(
            parse(&v, EventType::UserCreated),
            Err(WebhookError::InconsistentPayload { field: "UserId" })
        ));
        let mut v = user_created();
        v["Email"] = json!("other@example.com");
        assert!(matches!(
            parse(&v, EventType::UserCreated),
            Err(WebhookError::InconsistentPayload { field: "Email" })
        ));
        // The same GUID in another case is the same id.
        let mut v = user_created();
        v["UserId"] = json!(USER.to_uppercase());
        assert!(parse(&v, EventType::UserCreated).is_ok());
    }

    #[test]
    fn top_level_only_payload_is_accepted() {
        let mut v = user_created();
        v.as_object_mut().unwrap().remove("User");
        let CativaEvent::UserCreated(e) = parse(&v, EventType::UserCreated).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(e.user.email.as_str(), "jane@example.com");
        assert_eq!(e.user.phone_number.as_deref(), Some("+5511999999999"));
    }

    #[test]
    fn malformed_bodies_name_the_field() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (
                {
                    let mut v = user_created();
                    v["User"]["Email"] = json!("not-an-email");
                    v
                },
                "User.Email",
            ),
            (
                {
                    let mut v = user_created();
                    v["User"]["Id"] = json!(5);
                    v
                },
                "User.Id",
            ),
            (
                {
                    let mut v = user_created();
                    v["User"]["CreatedAt"] = json!("yesterday");
                    v
                },
                "User.CreatedAt",
            ),
            (
                {
                    let mut v = user_created();
                    v["User"]["Badges"] = json!("x");
                    v
                },
                "User.Badges",
            ),
            (
                {
                    let mut v = user_created();
                    v["Email"] = json!("nope");
                    v
                },
                "Email",
            ),
        ];
        for (v, field) in cases {
            match parse(&v, EventType::UserCreated) {
                Err(WebhookError::MalformedBody { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        for junk in [&b"{not json"[..], b"[1,2]", b"\"x\"", b"", b"{} {}"] {
            let err = parse_event(junk, EventType::UserCreated).unwrap_err();
            assert!(
                matches!(&err, WebhookError::MalformedBody { field, .. } if field == "(body)"),
                "{junk:?}: {err:?}"
            );
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn identifiers_must_be_guids_and_are_bounded() {
        let huge = "a".repeat(100 * 1024);
        for (path, value) in [
            ("CustomerId", json!("c-1")),
            ("CustomerId", json!(format!("{{{CUSTOMER}}}"))),
            ("UserId", json!(huge.clone())),
            ("User.Id", json!(huge.clone())),
            ("User.Id", json!(format!(" {USER}"))),
            ("User.BadgeId", json!("premium")),
            ("User.Badges", json!([BADGE, "vip"])),
        ] {
            let mut v = user_created();
            match path.split_once('.') {
                Some((a, b)) => v[a][b] = value,
                None => v[path] = value,
            }
            let err = parse(&v, EventType::UserCreated).unwrap_err();
            let WebhookError::MalformedBody { field, message } = &err else {
                panic!("{path}: {err:?}")
            };
            assert!(field.starts_with(path), "{path}: {field}");
            assert!(message.contains("GUID"), "{message}");
            assert!(message.len() < 300, "the message quotes a bounded preview");
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        let body = format!(
            r#"{{"CustomerId":"{CUSTOMER}","User":{{"Id":"{USER}","Email":"a@example.com","Email":"b@example.com"}}}}"#
        );
        let err = parse_event(body.as_bytes(), EventType::UserCreated).unwrap_err();
        assert!(
            matches!(&err, WebhookError::DuplicateKey { object, message } if object == "User" && message.contains("Email")),
            "{err:?}"
        );
        assert_eq!(err.http_status(), 400);
        let body = format!(
            r#"{{"Event":"user_created","CustomerId":"{CUSTOMER}","Event":"user_joined_group","UserId":"{USER}","Email":"a@example.com"}}"#
        );
        assert!(matches!(
            parse_event(body.as_bytes(), EventType::UserCreated),
            Err(WebhookError::DuplicateKey { .. })
        ));
        // Keys the parser would otherwise skip, and keys inside arrays, count too.
        for body in [
            format!(
                r#"{{"CustomerId":"{CUSTOMER}","Note":"a","Note":"b","UserId":"{USER}","Email":"a@example.com"}}"#
            ),
            format!(
                r#"{{"CustomerId":"{CUSTOMER}","UserId":"{USER}","Email":"a@example.com","X":[{{"K":1,"K":2}}]}}"#
            ),
        ] {
            assert!(
                matches!(
                    parse_event(body.as_bytes(), EventType::UserCreated),
                    Err(WebhookError::DuplicateKey { .. })
                ),
                "{body}"
            );
        }
        // The same key in different objects is fine.
        assert!(check_unique_keys(br#"{"Id":1,"User":{"Id":2},"L":[{"Id":3},{"Id":4}]}"#).is_ok());
    }

    #[test]
    fn badge_event_reads_the_badges_of_the_nested_user() {
        let mut v = json!({"User": user_created()["User"].clone()});
        v["User"]["Badges"] = json!([BADGE]);
        v["User"]["BadgeId"] = json!("b0000000-0000-4000-8000-000000000002");
        let CativaEvent::UserReceivedBadge(e) = parse(&v, EventType::UserReceivedBadge).unwrap()
        else {
            panic!("wrong variant")
        };
        assert_eq!(e.customer_id, None);
        let badges: Vec<String> = e.badges().iter().map(ToString::to_string).collect();
        assert_eq!(badges, [BADGE, "b0000000-0000-4000-8000-000000000002"]);
        let v = json!({"CustomerId": CUSTOMER, "User": user_created()["User"].clone()});
        let CativaEvent::UserJoinedGroup(e) = parse(&v, EventType::UserJoinedGroup).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(
            e.customer_id.as_ref().map(CustomerId::as_str),
            Some(CUSTOMER)
        );
    }

    #[test]
    fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
        let depth = 100_000;
        let mut body = format!(r#"{{"CustomerId":"{CUSTOMER}","User":"#);
        body.push_str(&"[".repeat(depth));
        body.push_str(&"]".repeat(depth));
        body.push('}');
        assert!(matches!(
            parse_event(body.as_bytes(), EventType::UserCreated),
            Err(WebhookError::MalformedBody { .. })
        ));
    }

    #[test]
    fn event_names_parse_from_routes() {
        for kind in EventType::ALL {
            assert_eq!(kind.as_str().parse::<EventType>().unwrap(), kind);
        }
        assert!("user_deleted".parse::<EventType>().is_err());
    }

    #[test]
    fn dotnet_times_without_offset_read_as_utc() {
        assert_eq!(
            parse_time("2026-11-20T10:00:00.123").unwrap().to_rfc3339(),
            "2026-11-20T10:00:00.123+00:00"
        );
        assert_eq!(
            parse_time("2026-11-20T07:00:00-03:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-20T10:00:00+00:00"
        );
        assert!(parse_time("20/11/2026").is_err());
    }
}
