//! Community groups: members per group, a `user_joined_group` delivery from the group's own
//! listener (Cativa's payload names no group, so each group has a listener with its own
//! `X-Cativa-Automation-Id`), and a members endpoint at the SDK's preview path
//! `GET /social/v1/groups/{group}/members` (Cativa has published no such endpoint: this is
//! the assumed path and shape the client is configured with in tests).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::{Keyed, problem};
use super::model::guid;
use super::{Api, CativaSandbox, WebhookDelivery};
use crate::SandboxError;
use crate::lock;

/// Group name -> member user ids.
pub(crate) type Groups = BTreeMap<String, BTreeSet<String>>;

/// The automation id of `group`'s listener: stable per group name.
pub(crate) fn group_automation_id(group: &str) -> String {
    guid(&format!("group-listener:{group}"), 1)
}

/// `GET /social/v1/groups/{group}/members`: `{"Members": [{"Id", "Email"}]}`; 404 for a
/// group the sandbox does not know.
pub(crate) async fn members(
    _: Keyed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let group = path.get("group").cloned().unwrap_or_default();
    let Some(ids) = lock(&api.groups).get(&group).cloned() else {
        return problem(
            StatusCode::NOT_FOUND,
            &format!("No group named {group}."),
            &api.core.correlation_id(),
        );
    };
    let state = lock(&api.state);
    let members: Vec<_> = ids
        .iter()
        .filter_map(|id| state.users.get(id))
        .map(|u| json!({"Id": u.id, "Email": u.email}))
        .collect();
    Json(json!({ "Members": members })).into_response()
}

impl CativaSandbox {
    /// Creates `group` (no members) if it does not exist, so its members can be listed.
    pub fn create_group(&self, group: &str) {
        lock(&self.api.groups).entry(group.to_owned()).or_default();
    }

    /// The `X-Cativa-Automation-Id` of `group`'s `user_joined_group` listener: map it to
    /// the group in the receiver (`WebhookReceiver::with_group_automation`).
    pub fn group_automation_id(&self, group: &str) -> String {
        group_automation_id(group)
    }

    /// `user_id` joins `group` (created if new); returns the `user_joined_group` delivery
    /// the group's listener sends: the documented payload (the nested `User` and the
    /// tenant), which does not name the group, from the group's automation id.
    pub fn join_group(&self, user_id: &str, group: &str) -> Result<WebhookDelivery, SandboxError> {
        let user = lock(&self.api.state)
            .users
            .get(user_id)
            .cloned()
            .ok_or_else(|| SandboxError::NotFound(format!("Cativa user {user_id}")))?;
        lock(&self.api.groups)
            .entry(group.to_owned())
            .or_default()
            .insert(user_id.to_owned());
        let body = json!({
            "CustomerId": self.api.config.customer_id,
            "User": user.to_json(None),
        });
        let mut delivery = self.api.delivery("user_joined_group", body);
        delivery.automation_id = group_automation_id(group);
        Ok(delivery)
    }

    /// `user_id` leaves `group`: Cativa sends no event for it.
    pub fn leave_group(&self, user_id: &str, group: &str) {
        if let Some(members) = lock(&self.api.groups).get_mut(group) {
            members.remove(user_id);
        }
    }

    /// The member user ids of `group`.
    pub fn group_members(&self, group: &str) -> Vec<String> {
        lock(&self.api.groups)
            .get(group)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }
}
