//! Lists v3: creating a MANUAL contact list, finding a list by name, and memberships
//! (MANUAL and SNAPSHOT lists only).

use http::Method;

use super::{HubSpotClient, Req, path_template};
use crate::error::Error;
use crate::model::lists::ListEnvelope;
use crate::model::{ListMember, MembershipChange, ObjectList, Page, RecordMembership};

/// The object type id of contacts, in list calls.
pub const CONTACT_OBJECT_TYPE: &str = "0-1";

/// Largest page of list memberships.
pub const MAX_MEMBERSHIP_PAGE: u32 = 250;

impl HubSpotClient {
    /// Creates a MANUAL contact list (`POST /crm/v3/lists` with `objectTypeId` `0-1` and
    /// `processingType` `MANUAL`): its memberships are set only through the API.
    pub async fn create_manual_list(&self, name: &str) -> Result<ObjectList, Error> {
        let body = serde_json::json!({
            "name": name,
            "objectTypeId": CONTACT_OBJECT_TYPE,
            "processingType": "MANUAL",
        });
        let req = Req::new(Method::POST, &self.paths.lists, &[])
            .log_path(self.paths.lists.clone())
            .json(&body)?;
        Ok(self.send_json::<ListEnvelope>(&req).await?.list)
    }

    /// The contact list named `name` (HubSpot compares names case-insensitively), `None`
    /// when there is none (`GET /crm/v3/lists/object-type-id/0-1/name/{listName}`, 404).
    pub async fn contact_list_by_name(&self, name: &str) -> Result<Option<ObjectList>, Error> {
        let req = Req::new(
            Method::GET,
            &self.paths.lists,
            &["object-type-id", CONTACT_OBJECT_TYPE, "name", name],
        )
        .log_path(path_template(
            &self.paths.lists,
            "object-type-id/0-1/name/{listName}",
        ));
        match self.send_json::<ListEnvelope>(&req).await {
            Ok(e) => Ok(Some(e.list)),
            Err(Error::Api(e)) if e.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds records to a list (`PUT /crm/v3/lists/{listId}/memberships/add`).
    pub async fn add_to_list(
        &self,
        list_id: &str,
        record_ids: &[String],
    ) -> Result<MembershipChange, Error> {
        let req = Req::new(
            Method::PUT,
            &self.paths.lists,
            &[list_id, "memberships", "add"],
        )
        .log_path(path_template(&self.paths.lists, "{listId}/memberships/add"))
        .json(record_ids)?;
        self.send_json(&req).await
    }

    /// Removes records from a list (`PUT /crm/v3/lists/{listId}/memberships/remove`).
    pub async fn remove_from_list(
        &self,
        list_id: &str,
        record_ids: &[String],
    ) -> Result<MembershipChange, Error> {
        let req = Req::new(
            Method::PUT,
            &self.paths.lists,
            &[list_id, "memberships", "remove"],
        )
        .log_path(path_template(
            &self.paths.lists,
            "{listId}/memberships/remove",
        ))
        .json(record_ids)?;
        self.send_json(&req).await
    }

    /// One page of a list's members (`GET /crm/v3/lists/{listId}/memberships`, max 250).
    pub async fn list_memberships(
        &self,
        list_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<ListMember>, Error> {
        let mut req = Req::new(Method::GET, &self.paths.lists, &[list_id, "memberships"])
            .log_path(path_template(&self.paths.lists, "{listId}/memberships"))
            .query("limit", limit.clamp(1, MAX_MEMBERSHIP_PAGE).to_string());
        if let Some(a) = after {
            req = req.query("after", a);
        }
        self.send_json(&req).await
    }

    /// Every member id of a list, following the paging to the end.
    pub async fn all_list_members(&self, list_id: &str) -> Result<Vec<String>, Error> {
        let mut after: Option<String> = None;
        let mut ids = Vec::new();
        loop {
            let page = self
                .list_memberships(list_id, after.as_deref(), MAX_MEMBERSHIP_PAGE)
                .await?;
            let next = page.next_after().map(str::to_owned);
            ids.extend(page.results.into_iter().map(|m| m.record_id));
            match next {
                Some(n) => after = Some(n),
                None => return Ok(ids),
            }
        }
    }

    /// The lists a contact belongs to (`GET /crm/v3/lists/records/0-1/{id}/memberships`).
    pub async fn contact_list_memberships(
        &self,
        contact_id: &str,
    ) -> Result<Vec<RecordMembership>, Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Bare(Vec<RecordMembership>),
            Wrapped { results: Vec<RecordMembership> },
        }
        let req = Req::new(
            Method::GET,
            &self.paths.lists,
            &["records", "0-1", contact_id, "memberships"],
        )
        .log_path(path_template(
            &self.paths.lists,
            "records/0-1/{contactId}/memberships",
        ));
        Ok(match self.send_json::<Shape>(&req).await? {
            Shape::Bare(v) | Shape::Wrapped { results: v } => v,
        })
    }
}
