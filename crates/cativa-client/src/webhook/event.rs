//! Typed Cativa webhook events (PascalCase JSON).
//! See the [module documentation](super) for how the type is found and how
//! `user_created`'s duplicated fields are reconciled.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use sync_core::{BadgeId, CativaUserId, Email};

use super::WebhookError;

/// The Cativa customer (tenant) that emitted an event: a GUID. Route it to a
/// [`TenantId`](sync_core::TenantId) with a [`TenantRouter`](super::TenantRouter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(String);

impl CustomerId {
    /// Wraps an id.
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

/// The event types this crate parses into typed events.
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

/// The user as every event carries it (the nested `User` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct EventUser {
    /// `User.Id`.
    pub id: CativaUserId,
    /// `User.Email`, normalized (trimmed, lowercased) and validated.
    pub email: Email,
    /// `User.FirstName`.
    #[serde(default)]
    pub first_name: Option<String>,
    /// `User.LastName`.
    #[serde(default)]
    pub last_name: Option<String>,
    /// `User.DisplayName`.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `User.Username`.
    #[serde(default)]
    pub username: Option<String>,
    /// `User.PhoneNumber`.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// `User.CreatedAt` (ISO 8601; a time without an offset is read as UTC).
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
    /// `User.BadgeId`: the primary badge, if any.
    #[serde(default)]
    pub badge_id: Option<BadgeId>,
    /// `User.Badges`: badges the user holds (`null` reads as empty).
    #[serde(default, deserialize_with = "null_as_empty")]
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

/// `user_received_badge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserReceivedBadge {
    /// The tenant that emitted it.
    pub customer_id: CustomerId,
    /// The user.
    pub user: EventUser,
    /// The badge received (`BadgeId`, or `Badge.Id`).
    pub badge_id: BadgeId,
    /// The badge's name, when sent.
    pub badge_name: Option<String>,
}

/// `user_joined_group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserJoinedGroup {
    /// The tenant that emitted it.
    pub customer_id: CustomerId,
    /// The user.
    pub user: EventUser,
    /// The group joined (`GroupId`, or `Group.Id`).
    pub group_id: String,
    /// The group's name, when sent.
    pub group_name: Option<String>,
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
    /// An event this version does not know, or whose type could not be determined.
    Unknown {
        /// The type name, when the body or the hint gave one.
        event_type: Option<String>,
        /// The whole body.
        raw: serde_json::Value,
    },
}

impl CativaEvent {
    /// The known type, `None` for [`CativaEvent::Unknown`].
    pub fn event_type(&self) -> Option<EventType> {
        match self {
            Self::UserCreated(_) => Some(EventType::UserCreated),
            Self::UserReceivedBadge(_) => Some(EventType::UserReceivedBadge),
            Self::UserJoinedGroup(_) => Some(EventType::UserJoinedGroup),
            Self::Unknown { .. } => None,
        }
    }

    /// The emitting tenant (`CustomerId`), when the event has one.
    pub fn customer_id(&self) -> Option<CustomerId> {
        match self {
            Self::UserCreated(e) => Some(e.customer_id.clone()),
            Self::UserReceivedBadge(e) => Some(e.customer_id.clone()),
            Self::UserJoinedGroup(e) => Some(e.customer_id.clone()),
            Self::Unknown { raw, .. } => raw
                .get("CustomerId")
                .and_then(|v| v.as_str())
                .map(CustomerId::new),
        }
    }

    /// The user the event is about, for known events.
    pub fn user(&self) -> Option<&EventUser> {
        match self {
            Self::UserCreated(e) => Some(&e.user),
            Self::UserReceivedBadge(e) => Some(&e.user),
            Self::UserJoinedGroup(e) => Some(&e.user),
            Self::Unknown { .. } => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ref {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Wire {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default, rename = "Type")]
    kind: Option<String>,
    #[serde(default)]
    customer_id: Option<CustomerId>,
    #[serde(default)]
    user: Option<EventUser>,
    #[serde(default)]
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
    #[serde(default)]
    badge_id: Option<String>,
    #[serde(default)]
    badge_name: Option<String>,
    #[serde(default)]
    badge: Option<Ref>,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    group: Option<Ref>,
}

impl Wire {
    fn declared_type(&self) -> Option<&str> {
        self.event
            .as_deref()
            .or(self.event_type.as_deref())
            .or(self.kind.as_deref())
    }
}

fn declared_in_value(v: &serde_json::Value) -> Option<String> {
    ["Event", "EventType", "Type"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_owned))
}

fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let Some(raw) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    parse_time(&raw).map(Some).map_err(serde::de::Error::custom)
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    // .NET writes `DateTime` values of unspecified kind without an offset.
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|n| n.and_utc())
        .map_err(|_| format!("{raw:?} is not an ISO 8601 date-time"))
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn malformed(field: &str, message: impl Into<String>) -> WebhookError {
    WebhookError::MalformedBody {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, WebhookError> {
    v.ok_or_else(|| malformed(field, "missing"))
}

fn non_empty(v: Option<String>, field: &str) -> Result<String, WebhookError> {
    match v {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(malformed(field, "empty")),
        None => Err(malformed(field, "missing")),
    }
}

/// Parses an event body. `hint` is the type the caller expects (from its route or
/// configuration), used when the body does not name its type.
///
/// # Errors
/// [`WebhookError::MalformedBody`] naming the bad field (`User.Email`, `CustomerId`...),
/// or [`WebhookError::InconsistentPayload`] for a `user_created` whose top-level identity
/// disagrees with its nested `User`.
pub fn parse_event(body: &[u8], hint: Option<EventType>) -> Result<CativaEvent, WebhookError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let wire: Result<Wire, _> = serde_path_to_error::deserialize(de);
    let wire = match wire {
        Ok(w) => w,
        Err(err) => {
            // Not our shape. If the type is unknown, keep the raw JSON; otherwise say
            // which field is wrong.
            let raw: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| malformed("(body)", format!("not valid JSON: {e}")))?;
            if !raw.is_object() {
                return Err(malformed("(body)", "expected a JSON object"));
            }
            let declared = declared_in_value(&raw);
            let kind = declared
                .as_deref()
                .and_then(EventType::from_name)
                .or(if declared.is_none() { hint } else { None });
            return match kind {
                Some(_) => {
                    let field = err.path().to_string();
                    Err(malformed(
                        if field == "." { "(body)" } else { &field },
                        err.into_inner().to_string(),
                    ))
                }
                None => Ok(CativaEvent::Unknown {
                    event_type: declared.or(hint.map(|h| h.as_str().to_owned())),
                    raw,
                }),
            };
        }
    };
    let declared = wire.declared_type().map(str::to_owned);
    let kind = match declared.as_deref() {
        Some(name) => {
            let k = EventType::from_name(name);
            if let (Some(k), Some(h)) = (k, hint)
                && k != h
            {
                tracing::warn!(declared = %k, hint = %h, "event type in the body differs from the route's; using the body's");
            }
            k
        }
        None => hint,
    };
    let Some(kind) = kind else {
        let raw: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| malformed("(body)", format!("not valid JSON: {e}")))?;
        return Ok(CativaEvent::Unknown {
            event_type: declared,
            raw,
        });
    };
    let customer_id = required(wire.customer_id.clone(), "CustomerId")?;
    if customer_id.as_str().trim().is_empty() {
        return Err(malformed("CustomerId", "empty"));
    }
    match kind {
        EventType::UserCreated => {
            let (user, warnings) = user_created_user(wire)?;
            Ok(CativaEvent::UserCreated(UserCreated {
                customer_id,
                user,
                warnings,
            }))
        }
        EventType::UserReceivedBadge => {
            let (badge_ref_id, badge_ref_name) =
                wire.badge.map(|r| (r.id, r.name)).unwrap_or_default();
            let badge_id = non_empty(wire.badge_id.or(badge_ref_id), "BadgeId")?;
            Ok(CativaEvent::UserReceivedBadge(UserReceivedBadge {
                customer_id,
                user: required(wire.user, "User")?,
                badge_id: BadgeId::new(badge_id),
                badge_name: wire.badge_name.or(badge_ref_name),
            }))
        }
        EventType::UserJoinedGroup => {
            let (group_ref_id, group_ref_name) =
                wire.group.map(|r| (r.id, r.name)).unwrap_or_default();
            let group_id = non_empty(wire.group_id.or(group_ref_id), "GroupId")?;
            Ok(CativaEvent::UserJoinedGroup(UserJoinedGroup {
                customer_id,
                user: required(wire.user, "User")?,
                group_id,
                group_name: wire.group_name.or(group_ref_name),
            }))
        }
    }
}

fn user_created_user(w: Wire) -> Result<(EventUser, Vec<PayloadWarning>), WebhookError> {
    let top_email = match w.email.as_deref() {
        Some(raw) => Some(Email::parse(raw).map_err(|e| malformed("Email", e.to_string()))?),
        None => None,
    };
    let Some(mut user) = w.user else {
        // Only the top-level (v1) fields.
        let id = non_empty(w.user_id, "UserId")?;
        let email = required(top_email, "Email")?;
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
    if user.id.as_str().trim().is_empty() {
        return Err(malformed("User.Id", "empty"));
    }
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

    fn user_created() -> serde_json::Value {
        json!({
            "CustomerId": "8c1f0b7e-1111-2222-3333-444455556666",
            "UserId": "01HQ7Z3X4Y",
            "Email": "Jane@Example.com",
            "FirstName": "Jane",
            "LastName": "Doe",
            "DisplayName": "Jane D",
            "Username": "janed",
            "PhoneNumber": "+5511999999999",
            "CreatedAt": "2026-11-20T10:00:00Z",
            "User": {
                "Id": "01HQ7Z3X4Y",
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

    fn parse(v: &serde_json::Value, hint: Option<EventType>) -> Result<CativaEvent, WebhookError> {
        parse_event(&serde_json::to_vec(v).unwrap(), hint)
    }

    #[test]
    fn user_created_with_hint() {
        let CativaEvent::UserCreated(e) =
            parse(&user_created(), Some(EventType::UserCreated)).unwrap()
        else {
            panic!("wrong variant")
        };
        assert_eq!(
            e.customer_id.as_str(),
            "8c1f0b7e-1111-2222-3333-444455556666"
        );
        assert_eq!(e.user.id.as_str(), "01HQ7Z3X4Y");
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
    fn type_detected_from_body_fields() {
        for key in ["Event", "EventType", "Type"] {
            for name in ["user_created", "UserCreated", "USER-CREATED"] {
                let mut v = user_created();
                v[key] = json!(name);
                let e = parse(&v, None).unwrap();
                assert_eq!(e.event_type(), Some(EventType::UserCreated), "{key}={name}");
            }
        }
        // The body wins over a disagreeing hint.
        let mut v = user_created();
        v["Event"] = json!("user_created");
        assert_eq!(
            parse(&v, Some(EventType::UserJoinedGroup))
                .unwrap()
                .event_type(),
            Some(EventType::UserCreated)
        );
    }

    #[test]
    fn no_type_and_no_hint_is_unknown_with_raw() {
        let v = user_created();
        let CativaEvent::Unknown { event_type, raw } = parse(&v, None).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(event_type, None);
        assert_eq!(raw, v);
    }

    #[test]
    fn new_event_types_never_break() {
        let v = json!({"Event": "user_completed_lesson", "CustomerId": "c", "User": "not an object", "LessonId": 7});
        let e = parse(&v, None).unwrap();
        assert_eq!(
            e,
            CativaEvent::Unknown {
                event_type: Some("user_completed_lesson".into()),
                raw: v.clone()
            }
        );
        assert_eq!(e.customer_id(), Some(CustomerId::new("c")));
    }

    #[test]
    fn nested_user_is_preferred_and_non_identity_disagreement_warns() {
        let mut v = user_created();
        v["FirstName"] = json!("Janet");
        v["CreatedAt"] = json!("2026-11-20T10:00:01Z");
        let CativaEvent::UserCreated(e) = parse(&v, Some(EventType::UserCreated)).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(e.user.first_name.as_deref(), Some("Jane"));
        let fields: Vec<_> = e.warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(fields, ["FirstName", "CreatedAt"]);
    }

    #[test]
    fn identity_disagreement_is_an_error() {
        let mut v = user_created();
        v["UserId"] = json!("someone-else");
        assert!(matches!(
            parse(&v, Some(EventType::UserCreated)),
            Err(WebhookError::InconsistentPayload { field: "UserId" })
        ));
        let mut v = user_created();
        v["Email"] = json!("other@example.com");
        assert!(matches!(
            parse(&v, Some(EventType::UserCreated)),
            Err(WebhookError::InconsistentPayload { field: "Email" })
        ));
    }

    #[test]
    fn top_level_only_payload_is_accepted() {
        let mut v = user_created();
        v.as_object_mut().unwrap().remove("User");
        let CativaEvent::UserCreated(e) = parse(&v, Some(EventType::UserCreated)).unwrap() else {
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
                    v.as_object_mut().unwrap().remove("CustomerId");
                    v
                },
                "CustomerId",
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
            (
                {
                    let mut v = user_created();
                    v["User"].as_object_mut().unwrap().remove("Email");
                    v
                },
                "User",
            ),
        ];
        for (v, field) in cases {
            match parse(&v, Some(EventType::UserCreated)) {
                Err(WebhookError::MalformedBody { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_event(b"{not json", Some(EventType::UserCreated)),
            Err(WebhookError::MalformedBody { field, .. }) if field == "(body)"
        ));
        assert!(matches!(
            parse_event(b"[1,2]", None),
            Err(WebhookError::MalformedBody { field, .. }) if field == "(body)"
        ));
    }

    #[test]
    fn badge_and_group_events() {
        let mut v = user_created();
        v["BadgeId"] = json!("premium");
        v["BadgeName"] = json!("Premium");
        let CativaEvent::UserReceivedBadge(e) =
            parse(&v, Some(EventType::UserReceivedBadge)).unwrap()
        else {
            panic!("wrong variant")
        };
        assert_eq!(e.badge_id.as_str(), "premium");
        assert_eq!(e.badge_name.as_deref(), Some("Premium"));

        let mut v = user_created();
        v["Badge"] = json!({"Id": "vip", "Name": "VIP"});
        let CativaEvent::UserReceivedBadge(e) =
            parse(&v, Some(EventType::UserReceivedBadge)).unwrap()
        else {
            panic!("wrong variant")
        };
        assert_eq!(e.badge_id.as_str(), "vip");

        let v = user_created();
        assert!(matches!(
            parse(&v, Some(EventType::UserReceivedBadge)),
            Err(WebhookError::MalformedBody { field, .. }) if field == "BadgeId"
        ));

        let mut v = user_created();
        v["Group"] = json!({"Id": "g1", "Name": "VIP room"});
        let CativaEvent::UserJoinedGroup(e) = parse(&v, Some(EventType::UserJoinedGroup)).unwrap()
        else {
            panic!("wrong variant")
        };
        assert_eq!(
            (e.group_id.as_str(), e.group_name.as_deref()),
            ("g1", Some("VIP room"))
        );
        assert!(matches!(
            parse(&user_created(), Some(EventType::UserJoinedGroup)),
            Err(WebhookError::MalformedBody { field, .. }) if field == "GroupId"
        ));
    }

    #[test]
    fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
        let depth = 100_000;
        let mut body = String::from(r#"{"CustomerId":"c","User":"#);
        body.push_str(&"[".repeat(depth));
        body.push_str(&"]".repeat(depth));
        body.push('}');
        for hint in [Some(EventType::UserCreated), None] {
            assert!(matches!(
                parse_event(body.as_bytes(), hint),
                Err(WebhookError::MalformedBody { .. })
            ));
        }
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
