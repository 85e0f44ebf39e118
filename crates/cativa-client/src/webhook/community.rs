//! Typed Cativa events turned into sync-core's CRM-neutral [`CommunityEvent`], the input of
//! `sync_engine::SyncEngine::handle_community_event`.

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
    /// The event in sync-core's terms. Always `Some` for the event types this version
    /// parses (the `Option` leaves room for types added later).
    ///
    /// `user_received_badge` and `user_joined_group` carry no documented time of their
    /// own, so `at` is used: pass the delivery's signature time
    /// ([`Delivery::to_community_event`] does). `user_received_badge` becomes
    /// [`CommunityEvent::BadgesHeld`] (the payload lists the badges held, not which one is
    /// new); `user_joined_group` a [`CommunityEvent::JoinedGroup`] naming the group when the
    /// receiver learned it from the delivery's listener.
    pub fn to_community_event(&self, at: DateTime<Utc>) -> Option<CommunityEvent> {
        Some(match self {
            Self::UserCreated(e) => {
                let mut user = e.user.to_community_user();
                // The tenant travels as a profile field, so a sink configured to write it
                // on the provisioned contact finds it where it finds the names.
                user.profile.fields.insert(
                    sync_core::ports::CUSTOMER_ID_FIELD.to_owned(),
                    e.customer_id.as_str().to_owned(),
                );
                CommunityEvent::UserCreated { user }
            }
            Self::UserReceivedBadge(e) => CommunityEvent::BadgesHeld {
                user: e.user.id.clone(),
                email: Some(e.user.email.clone()),
                badges: e.badges(),
                at,
            },
            Self::UserJoinedGroup(e) => CommunityEvent::JoinedGroup {
                user: e.user.id.clone(),
                email: Some(e.user.email.clone()),
                group: e.group.clone(),
                at,
            },
        })
    }
}

impl Delivery {
    /// The delivery's event in sync-core's terms, timed at the signature timestamp (see
    /// [`CativaEvent::to_community_event`]). Hand it to the engine with the execution id as the delivery
    /// id:
    ///
    /// ```no_run
    /// # async fn demo(engine: sync_engine::SyncEngine, delivery: cativa_client::webhook::Delivery) -> Result<(), Box<dyn std::error::Error>> {
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

    const CUSTOMER: &str = "8c1f0b7e-1111-2222-3333-444455556666";
    const USER: &str = "0b7e8c1f-aaaa-4bbb-8ccc-000000000001";
    const B1: &str = "b0000000-0000-4000-8000-000000000001";
    const B2: &str = "b0000000-0000-4000-8000-000000000002";

    fn at() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn user_created_becomes_a_community_user_with_profile_and_badges() {
        let body = json!({
            "CustomerId": CUSTOMER,
            "User": {
                "Id": USER, "Email": "Jane@Example.com", "FirstName": "Jane",
                "LastName": " ", "PhoneNumber": "+55 11 99999-0000",
                "CreatedAt": "2026-01-02T03:04:05Z", "BadgeId": B2, "Badges": [B1]
            }
        });
        let event = parse_event(body.to_string().as_bytes(), EventType::UserCreated).unwrap();
        let Some(CommunityEvent::UserCreated { user }) = event.to_community_event(at()) else {
            panic!("expected UserCreated");
        };
        assert_eq!(user.id, CativaUserId::from(USER));
        assert_eq!(user.email.as_str(), "jane@example.com");
        assert_eq!(user.profile.field("firstName"), Some("Jane"));
        assert_eq!(
            user.profile.field("lastName"),
            None,
            "blank names are left out"
        );
        assert_eq!(user.profile.field("phone"), Some("+55 11 99999-0000"));
        let badges: Vec<&str> = user.badges.iter().map(BadgeId::as_str).collect();
        assert_eq!(badges, vec![B1, B2]);
        assert_eq!(
            user.created_at.unwrap().to_rfc3339(),
            "2026-01-02T03:04:05+00:00"
        );
    }

    #[test]
    fn badge_and_group_events_are_timed_by_the_caller() {
        let body = json!({"User": {"Id": USER, "Email": "jane@example.com", "Badges": [B1]}});
        let event = parse_event(body.to_string().as_bytes(), EventType::UserReceivedBadge).unwrap();
        assert_eq!(
            event.to_community_event(at()),
            Some(CommunityEvent::BadgesHeld {
                user: CativaUserId::from(USER),
                email: Some("jane@example.com".parse().unwrap()),
                badges: vec![BadgeId::from(B1)],
                at: at(),
            })
        );
        let body = json!({"User": {"Id": USER, "Email": "jane@example.com"}});
        let event = parse_event(body.to_string().as_bytes(), EventType::UserJoinedGroup).unwrap();
        let Some(CommunityEvent::JoinedGroup { group, at: t, .. }) = event.to_community_event(at())
        else {
            panic!("expected JoinedGroup");
        };
        assert_eq!(
            (group, t),
            (None, at()),
            "the payload does not name the group"
        );
    }
}
