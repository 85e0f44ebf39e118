//! **Preview.** A community group's members, through the configurable
//! [`PreviewPaths::group_members`](super::PreviewPaths::group_members) path: Cativa documents
//! no partner endpoint listing a group's members, so the path and the response shape here
//! are this SDK's assumptions, off unless configured.

use std::collections::BTreeSet;

use async_trait::async_trait;
use http::Method;
use sync_core::{Email, TenantId};
use sync_http::ErrorKind;

use super::{CativaClient, endpoint_missing};
use crate::error::Error;

/// The emails of a members response: a JSON array of emails or of users (`Email` or
/// `email`), bare or under `Members`, `Users`, `members`, `users` or `Items`. Entries
/// without a valid email are skipped (a member without an email has no CRM contact).
fn member_emails(v: &serde_json::Value) -> Option<BTreeSet<Email>> {
    let items = match v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => ["Members", "Users", "members", "users", "Items"]
            .iter()
            .find_map(|k| o.get(*k).and_then(serde_json::Value::as_array))?,
        _ => return None,
    };
    // Every entry must yield an email: a member we cannot read is not a member we may drop,
    // and a partial list would make the reconcile remove that member's list membership.
    items
        .iter()
        .map(|item| {
            let raw = match item {
                serde_json::Value::String(s) => Some(s.as_str()),
                serde_json::Value::Object(o) => o
                    .get("Email")
                    .or_else(|| o.get("email"))
                    .and_then(serde_json::Value::as_str),
                _ => None,
            };
            raw.and_then(|e| Email::parse(e).ok())
        })
        .collect()
}

impl CativaClient {
    /// **Preview.** The emails of `group`'s members (GET
    /// [`PreviewPaths::group_members`](super::PreviewPaths::group_members), `{group}` the
    /// group's name); `Ok(None)` when no path is configured.
    ///
    /// # Errors
    /// [`Error::PreviewUnavailable`] when the endpoint is not there; [`Error::Http`]
    /// (`Decode`) for a body that is not a list of members.
    pub async fn group_members(&self, group: &str) -> Result<Option<BTreeSet<Email>>, Error> {
        let Some(template) = self.paths.group_members.clone() else {
            return Ok(None);
        };
        let segments: Vec<String> = template
            .trim_start_matches('/')
            .split('/')
            .map(|seg| seg.replace("{group}", group))
            .collect();
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let res = self
            .http
            .request_segments(Method::GET, &refs)
            .log_path(template.clone())
            .send_json::<serde_json::Value>()
            .await;
        let v = match res {
            Ok(v) => v,
            Err(e) if endpoint_missing(&e) => {
                return Err(Error::PreviewUnavailable {
                    method: "GET".to_owned(),
                    path: template,
                    status: e.status().map(|s| s.as_u16()).unwrap_or_default(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        member_emails(&v).map(Some).ok_or_else(|| {
            Error::Http(sync_http::HttpError::new(
                ErrorKind::Decode,
                format!(
                    "unexpected {template} response: expected a list of members (emails or users with Email); check the group_members preview path"
                ),
            ))
        })
    }
}

#[async_trait]
impl sync_core::ports::CommunityGroups for CativaClient {
    async fn members(
        &self,
        _tenant: &TenantId,
        group: &str,
    ) -> Result<Option<BTreeSet<Email>>, sync_core::Error> {
        Ok(self.group_members(group).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::member_emails;
    use serde_json::json;

    #[test]
    fn members_are_read_from_the_assumed_shapes() {
        for v in [
            json!(["a@example.com", "B@example.com"]),
            json!({"Members": [{"Email": "a@example.com"}, {"email": "b@example.com"}]}),
        ] {
            let got: Vec<String> = member_emails(&v)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, ["a@example.com", "b@example.com"], "{v}");
        }
        assert!(member_emails(&json!({"Error": "x"})).is_none());
        // One unreadable member makes the whole list unusable, so nobody is removed for it.
        assert!(
            member_emails(&json!({"Members": [{"Email": "a@example.com"}, {"Id": "x"}]})).is_none()
        );
        assert!(member_emails(&json!(["a@example.com", "not an email"])).is_none());
    }
}
