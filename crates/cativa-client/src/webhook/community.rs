//! Typed Cativa events turned into sync-core's CRM-neutral [`CommunityEvent`], the input of
//! [`SyncEngine::handle_community_event`](sync_core::SyncEngine::handle_community_event).

use chrono::{DateTime, TimeZone, Utc};
use sync_core::{CommunityEvent, CommunityProfile, CommunityUser};

use super::Delivery;
use super::event::{CativaEvent, EventUser};

/// The community profile field names the engine's provisioning reads (`firstName`,
/// `lastName`, `phone`), plus `displayName` and `username`.
fn profile(user: &EventUser) -> CommunityProfile {
    let mut p = CommunityProfile::new();
    for (name, value) in [
        ("firstName", &user.first_name),
        ("lastName", &user.last_name),
        ("displayName", &user.display_name),
        ("username", &user.username),
        ("phone", &user.phone_number),
    ] {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            p.fields.insert(name.to_owned(), v.to_owned());
        }
    }
    p.updated_at = user.created_at;
    p
}

impl EventUser {
    /// The user as sync-core models it: profile fields (`firstName`, `lastName`,
    /// `displayName`, `username`, `phone`), the badges the payload lists (`Badges` and the
    /// primary `BadgeId`) and the creation time.
    pub fn to_community_user(&self) -> CommunityUser {
        let mut user = CommunityUser::new(self.id.clone(), self.email.clone());
        user.profile = profile(self);
        user.badges.extend(self.badges.iter().cloned());
        user.badges.extend(self.badge_id.iter().cloned());
        user.created_at = self.created_at;
        user
    }
}

impl CativaEvent {
    /// The event in sync-core's terms, or `None` for [`CativaEvent::Unknown`] (acknowledge
    /// those and move on: a new event type must not break a receiver).
    ///
    /// `user_received_badge` and `user_joined_group` carry no documented time of their
    /// own, so `at` is used: pass the delivery's signature time
    /// ([`Delivery::to_community_event`] does).
    pub fn to_community_event(&self, at: DateTime<Utc>) -> Option<CommunityEvent> {
        match self {
            Self::UserCreated(e) => Some(CommunityEvent::UserCreated {
                user: e.user.to_community_user(),
            }),
            Self::UserReceivedBadge(e) => Some(CommunityEvent::BadgeReceived {
                user: e.user.id.clone(),
                email: Some(e.user.email.clone()),
                badge: e.badge_id.clone(),
                at,
            }),
            Self::UserJoinedGroup(e) => Some(CommunityEvent::JoinedGroup {
                user: e.user.id.clone(),
                email: Some(e.user.email.clone()),
                group: Some(e.group_name.clone().unwrap_or_else(|| e.group_id.clone())),
                at,
            }),
            Self::Unknown { .. } => None,
        }
    }
}

impl Delivery {
    /// The delivery's event in sync-core's terms, timed at the signature timestamp; `None`
    /// for an unknown event. Hand it to the engine with the execution id as the delivery
    /// id:
    ///
    /// ```no_run
    /// # async fn demo(engine: sync_core::SyncEngine, delivery: cativa_client::webhook::Delivery) -> Result<(), sync_core::Error> {
    /// let tenant = sync_core::TenantId::new("acme");
    /// if let Some(event) = delivery.to_community_event() {
    ///     engine
    ///         .handle_community_event(&tenant, delivery.execution_id.as_str(), event)
    ///         .await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn to_community_event(&self) -> Option<CommunityEvent> {
        let at = Utc
            .timestamp_opt(self.signed_at, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        self.event.to_community_event(at)
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::{EventType, parse_event};
    use super::*;
    use serde_json::json;
    use sync_core::{BadgeId, CativaUserId};

    fn at() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn user_created_becomes_a_community_user_with_profile_and_badges() {
        let body = json!({
            "CustomerId": "c-1",
            "User": {
                "Id": "u-1", "Email": "Jane@Example.com", "FirstName": "Jane",
                "LastName": " ", "PhoneNumber": "+55 11 99999-0000",
                "CreatedAt": "2026-01-02T03:04:05Z", "BadgeId": "b-2", "Badges": ["b-1"]
            }
        });
        let event = parse_event(body.to_string().as_bytes(), Some(EventType::UserCreated)).unwrap();
        let Some(CommunityEvent::UserCreated { user }) = event.to_community_event(at()) else {
            panic!("expected UserCreated");
        };
        assert_eq!(user.id, CativaUserId::from("u-1"));
        assert_eq!(user.email.as_str(), "jane@example.com");
        assert_eq!(user.profile.field("firstName"), Some("Jane"));
        assert_eq!(
            user.profile.field("lastName"),
            None,
            "blank names are left out"
        );
        assert_eq!(user.profile.field("phone"), Some("+55 11 99999-0000"));
        let badges: Vec<&str> = user.badges.iter().map(BadgeId::as_str).collect();
        assert_eq!(badges, vec!["b-1", "b-2"]);
        assert_eq!(
            user.created_at.unwrap().to_rfc3339(),
            "2026-01-02T03:04:05+00:00"
        );
    }

    #[test]
    fn badge_and_group_events_are_timed_by_the_caller() {
        let body = json!({
            "CustomerId": "c-1", "BadgeId": "b-1",
            "User": {"Id": "u-1", "Email": "jane@example.com"}
        });
        let event = parse_event(
            body.to_string().as_bytes(),
            Some(EventType::UserReceivedBadge),
        )
        .unwrap();
        assert_eq!(
            event.to_community_event(at()),
            Some(CommunityEvent::BadgeReceived {
                user: CativaUserId::from("u-1"),
                email: Some("jane@example.com".parse().unwrap()),
                badge: BadgeId::from("b-1"),
                at: at(),
            })
        );
        let body = json!({
            "CustomerId": "c-1", "GroupId": "g-9",
            "User": {"Id": "u-1", "Email": "jane@example.com"}
        });
        let event = parse_event(
            body.to_string().as_bytes(),
            Some(EventType::UserJoinedGroup),
        )
        .unwrap();
        let Some(CommunityEvent::JoinedGroup { group, .. }) = event.to_community_event(at()) else {
            panic!("expected JoinedGroup");
        };
        assert_eq!(group.as_deref(), Some("g-9"), "the id stands in when no name is sent");
    }

    #[test]
    fn unknown_events_map_to_nothing() {
        let event = parse_event(br#"{"CustomerId":"c-1","Foo":1}"#, None).unwrap();
        assert!(matches!(event, CativaEvent::Unknown { .. }));
        assert_eq!(event.to_community_event(at()), None);
    }
}
