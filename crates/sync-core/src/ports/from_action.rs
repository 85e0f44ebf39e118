//! From a planned [`Action`] to the input of the sink that applies it: one conversion per
//! sink input, so the engine and any other driver of the ports build them alike.

use super::{Activity, BadgeChange, BadgeOp, ContactDraft, FieldUpdate, Invite, PropertyUpdate};
use crate::plan::{Action, ActionKind};

/// An action was converted to the input of a sink that does not apply it (a badge change
/// asked of an `invite` action). A bug in the caller: route each action by its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {action} action is not a {input}: route actions to sinks by their kind")]
#[non_exhaustive]
pub struct WrongAction {
    /// The action's kind (`invite`, `assign_badge`, ...).
    pub action: &'static str,
    /// The sink input that was asked for.
    pub input: &'static str,
}

impl WrongAction {
    pub(super) fn new(action: &Action, input: &'static str) -> Self {
        Self {
            action: action.kind.name(),
            input,
        }
    }
}

impl TryFrom<&Action> for BadgeChange {
    type Error = WrongAction;

    /// An `assign_badge` or `remove_badge` action.
    fn try_from(action: &Action) -> Result<Self, WrongAction> {
        let (user, email, badge, op) = match &action.kind {
            ActionKind::AssignBadge {
                user, email, badge, ..
            } => (user, email, badge, BadgeOp::Assign),
            ActionKind::RemoveBadge {
                user, email, badge, ..
            } => (user, email, badge, BadgeOp::Remove),
            _ => return Err(WrongAction::new(action, "badge change")),
        };
        Ok(BadgeChange::new(
            user.clone(),
            email.clone(),
            badge.clone(),
            op,
            action.key.clone(),
        ))
    }
}

impl TryFrom<&Action> for Invite {
    type Error = WrongAction;

    /// An `invite` action.
    fn try_from(action: &Action) -> Result<Self, WrongAction> {
        match &action.kind {
            ActionKind::Invite {
                email,
                crm_id,
                badges,
            } => Ok(Invite::new(
                email.clone(),
                crm_id.clone(),
                badges.clone(),
                action.key.clone(),
            )),
            _ => Err(WrongAction::new(action, "invite")),
        }
    }
}

impl TryFrom<&Action> for FieldUpdate {
    type Error = WrongAction;

    /// An `update_community_fields` action.
    fn try_from(action: &Action) -> Result<Self, WrongAction> {
        match &action.kind {
            ActionKind::UpdateCommunityFields {
                user,
                email,
                fields,
            } => Ok(FieldUpdate::new(
                user.clone(),
                email.clone(),
                fields.clone(),
                action.key.clone(),
            )),
            _ => Err(WrongAction::new(action, "community field update")),
        }
    }
}

impl TryFrom<&Action> for PropertyUpdate {
    type Error = WrongAction;

    /// An `update_crm_properties` action.
    fn try_from(action: &Action) -> Result<Self, WrongAction> {
        match &action.kind {
            ActionKind::UpdateCrmProperties {
                crm_id, properties, ..
            } => Ok(PropertyUpdate::new(
                crm_id.clone(),
                properties.clone(),
                action.key.clone(),
            )),
            _ => Err(WrongAction::new(action, "CRM property update")),
        }
    }
}

impl TryFrom<&Action> for Activity {
    type Error = WrongAction;

    /// A `log_activity` action.
    fn try_from(action: &Action) -> Result<Self, WrongAction> {
        match &action.kind {
            ActionKind::LogActivity {
                crm_id,
                subject,
                body,
                occurred_at,
                ..
            } => Ok(Activity::new(
                crm_id.clone(),
                subject.clone(),
                body.clone(),
                *occurred_at,
                action.key.clone(),
            )),
            _ => Err(WrongAction::new(action, "CRM activity")),
        }
    }
}

impl TryFrom<&Action> for ContactDraft {
    type Error = WrongAction;

    /// A `provision_crm_contact` action.
    fn try_from(action: &Action) -> Result<Self, WrongAction> {
        match &action.kind {
            ActionKind::ProvisionCrmContact {
                user,
                email,
                properties,
            } => Ok(ContactDraft::new(
                email.clone(),
                Some(user.clone()),
                properties.clone(),
                action.key.clone(),
            )),
            _ => Err(WrongAction::new(action, "contact draft")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{IdempotencyKey, Reason};
    use crate::{BadgeId, CrmRecordId, Email};

    fn invite() -> Action {
        let email: Email = "jane@example.com".parse().unwrap();
        Action::new(
            IdempotencyKey::derive(&["t", "invite", "jane"]),
            ActionKind::Invite {
                email,
                crm_id: CrmRecordId::hubspot("101"),
                badges: vec![BadgeId::new("Premium")],
            },
            Reason::CommunityEvent {
                event: "test".to_owned(),
            },
        )
    }

    #[test]
    fn an_action_converts_to_its_own_sink_input_only() {
        let action = invite();
        let converted = Invite::try_from(&action).unwrap();
        assert_eq!(converted.key, action.key);
        assert_eq!(converted.badges, vec![BadgeId::new("Premium")]);
        let wrong = BadgeChange::try_from(&action).unwrap_err();
        assert_eq!((wrong.action, wrong.input), ("invite", "badge change"));
        assert!(ContactDraft::try_from(&action).is_err());
        assert!(Activity::try_from(&action).is_err());
    }
}
