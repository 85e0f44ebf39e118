//! Contacts: list, get, search, single and batch writes, merge.

use std::collections::BTreeMap;

use http::Method;

use super::batch::BatchOutcome;
use super::{HubSpotClient, Req};
use crate::api_error::Problem;
use crate::error::Error;
use crate::model::{
    BatchReadRequest, BatchResponse, CreateInput, HubSpotObject, IdInput, Inputs, MAX_BATCH_INPUTS,
    MAX_SEARCH_PAGE, Page, SearchRequest, UpdateInput,
};

/// Largest page of the list endpoint.
pub const MAX_LIST_PAGE: u32 = 100;

/// Options of `GET /crm/v3/objects/contacts`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListOptions {
    /// Page size (max 100).
    pub limit: u32,
    /// Cursor from the previous page.
    pub after: Option<String>,
    /// Properties to return (HubSpot's default is `firstname, lastname, email`).
    pub properties: Vec<String>,
    /// Return only archived contacts.
    pub archived: bool,
}

impl Default for ListOptions {
    fn default() -> Self {
        Self {
            limit: MAX_LIST_PAGE,
            after: None,
            properties: Vec::new(),
            archived: false,
        }
    }
}

impl ListOptions {
    /// Pages of `limit` (capped at 100) with these properties.
    pub fn new(limit: u32, properties: Vec<String>) -> Self {
        Self {
            limit: limit.clamp(1, MAX_LIST_PAGE),
            after: None,
            properties,
            archived: false,
        }
    }

    /// Continues after this cursor.
    #[must_use]
    pub fn after(mut self, after: Option<String>) -> Self {
        self.after = after;
        self
    }

    /// Lists archived contacts only.
    #[must_use]
    pub fn archived(mut self, archived: bool) -> Self {
        self.archived = archived;
        self
    }
}

fn check_batch(n: usize) -> Result<(), Error> {
    if n > MAX_BATCH_INPUTS {
        return Err(Error::Config(format!(
            "{n} inputs in one batch; HubSpot accepts at most {MAX_BATCH_INPUTS}: split the batch"
        )));
    }
    Ok(())
}

impl HubSpotClient {
    fn contacts(&self, rest: &[&str], method: Method) -> Req {
        let mut all = vec!["contacts"];
        all.extend_from_slice(rest);
        Req::new(method, &self.paths.objects, &all)
    }

    /// `…/contacts/{contactId}`: the path logged and counted for one contact.
    fn contact_template(&self) -> String {
        super::path_template(&self.paths.objects, "contacts/{contactId}")
    }

    /// One page of contacts (`GET …/contacts?limit&after&properties&archived`).
    pub async fn list_contacts(&self, opts: &ListOptions) -> Result<Page<HubSpotObject>, Error> {
        let mut req = self
            .contacts(&[], Method::GET)
            .query("limit", opts.limit.clamp(1, MAX_LIST_PAGE).to_string());
        if let Some(a) = &opts.after {
            req = req.query("after", a.clone());
        }
        if !opts.properties.is_empty() {
            req = req.query("properties", opts.properties.join(","));
        }
        req = req.query("archived", opts.archived.to_string());
        if opts.archived {
            // Counted apart from the live listing: its cost is what
            // `SourceConfig::archived_min_interval_secs` trades away.
            let counted = format!("{}?archived=true", req.log_path);
            req = req.log_path(counted);
        }
        self.send_json(&req).await
    }

    /// Every contact, following `paging.next.after` to the last page.
    pub async fn list_all_contacts(
        &self,
        mut opts: ListOptions,
    ) -> Result<Vec<HubSpotObject>, Error> {
        let mut all = Vec::new();
        loop {
            let page = self.list_contacts(&opts).await?;
            let next = page.next_after().map(str::to_owned);
            all.extend(page.results);
            match next {
                Some(n) => opts.after = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// A contact by record id; `None` when it does not exist.
    pub async fn get_contact(
        &self,
        id: &str,
        properties: &[String],
    ) -> Result<Option<HubSpotObject>, Error> {
        let mut req = self
            .contacts(&[id], Method::GET)
            .log_path(self.contact_template());
        if !properties.is_empty() {
            req = req.query("properties", properties.join(","));
        }
        not_found_is_none(self.send_json(&req).await)
    }

    /// A contact by email (`GET …/contacts/{email}?idProperty=email`); `None` when absent.
    pub async fn get_contact_by_email(
        &self,
        email: &str,
        properties: &[String],
    ) -> Result<Option<HubSpotObject>, Error> {
        let log = super::path_template(&self.paths.objects, "contacts/{email}");
        let mut req = self
            .contacts(&[email], Method::GET)
            .query("idProperty", "email")
            .log_path(log);
        if !properties.is_empty() {
            req = req.query("properties", properties.join(","));
        }
        not_found_is_none(self.send_json(&req).await)
    }

    /// One search page (`POST …/contacts/search`), under the search budget (5/s). Limits are
    /// checked first (5 groups, 6 filters each, 18 in all, one sort, page of at most 200).
    pub async fn search_contacts(
        &self,
        request: &SearchRequest,
    ) -> Result<Page<HubSpotObject>, Error> {
        request
            .validate()
            .map_err(|m| Error::Config(format!("invalid search: {m}")))?;
        debug_assert!(request.limit <= MAX_SEARCH_PAGE);
        let req = self
            .contacts(&["search"], Method::POST)
            .json(request)?
            .idempotent()
            .search();
        self.send_json(&req).await
    }

    /// Creates one contact (`POST …/contacts`). A duplicate email gives
    /// [`Problem::DuplicateContact`] with the existing id.
    pub async fn create_contact(
        &self,
        properties: &BTreeMap<String, String>,
    ) -> Result<HubSpotObject, Error> {
        let body = serde_json::json!({ "properties": properties });
        let req = self.contacts(&[], Method::POST).json(&body)?;
        self.send_json(&req).await
    }

    /// Updates one contact (`PATCH …/contacts/{id}`); `""` clears a value.
    pub async fn update_contact(
        &self,
        id: &str,
        properties: &BTreeMap<String, String>,
    ) -> Result<HubSpotObject, Error> {
        let body = serde_json::json!({ "properties": properties });
        let req = self
            .contacts(&[id], Method::PATCH)
            .log_path(self.contact_template())
            .json(&body)?
            .idempotent();
        self.send_json(&req).await
    }

    /// Archives one contact (`DELETE …/contacts/{id}`, restorable for 90 days).
    pub async fn archive_contact(&self, id: &str) -> Result<(), Error> {
        let req = self
            .contacts(&[id], Method::DELETE)
            .log_path(self.contact_template());
        self.send(&req).await.map(|_| ())
    }

    /// Merges `to_merge` into `primary` (`POST …/contacts/merge`); returns the survivor.
    pub async fn merge_contacts(
        &self,
        primary: &str,
        to_merge: &str,
    ) -> Result<HubSpotObject, Error> {
        let body = serde_json::json!({ "primaryObjectId": primary, "objectIdToMerge": to_merge });
        let req = self.contacts(&["merge"], Method::POST).json(&body)?;
        self.send_json(&req).await
    }

    /// Reads up to 100 contacts by id, or by a unique property such as `email`
    /// (`POST …/contacts/batch/read`). Missing ones come back as errors (207).
    pub async fn batch_read_contacts(
        &self,
        ids: &[String],
        properties: &[String],
        id_property: Option<&str>,
        archived: bool,
    ) -> Result<BatchOutcome, Error> {
        check_batch(ids.len())?;
        let body = BatchReadRequest {
            properties: properties.to_vec(),
            id_property: id_property.map(str::to_owned),
            inputs: ids.iter().map(IdInput::new).collect(),
        };
        let req = self
            .contacts(&["batch", "read"], Method::POST)
            .query("archived", archived.to_string())
            .json(&body)?
            .idempotent();
        self.send_batch(&req).await
    }

    /// Creates up to 100 contacts (`POST …/contacts/batch/create`). Give each input an
    /// `objectWriteTraceId` to get per-input results (207).
    pub async fn batch_create_contacts(
        &self,
        inputs: Vec<CreateInput>,
    ) -> Result<BatchOutcome, Error> {
        check_batch(inputs.len())?;
        let req = self
            .contacts(&["batch", "create"], Method::POST)
            .json(&Inputs { inputs })?;
        self.send_batch(&req).await
    }

    /// Updates up to 100 contacts by id or `idProperty` (`POST …/contacts/batch/update`).
    pub async fn batch_update_contacts(
        &self,
        inputs: Vec<UpdateInput>,
    ) -> Result<BatchOutcome, Error> {
        check_batch(inputs.len())?;
        let req = self
            .contacts(&["batch", "update"], Method::POST)
            .json(&Inputs { inputs })?
            .idempotent();
        self.send_batch(&req).await
    }

    /// Creates or updates up to 100 contacts by a unique property (`POST
    /// …/contacts/batch/upsert`). Results carry `new`. HubSpot does not support partial
    /// upserts by `email`: prefer a unique custom property such as `cativa_member_id`.
    pub async fn batch_upsert_contacts(
        &self,
        inputs: Vec<UpdateInput>,
    ) -> Result<BatchOutcome, Error> {
        check_batch(inputs.len())?;
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = inputs
            .iter()
            .find(|i| !seen.insert((&i.id, &i.id_property)))
        {
            return Err(Error::Config(format!(
                "duplicate id {:?} in one batch upsert: HubSpot rejects it",
                dup.id
            )));
        }
        let req = self
            .contacts(&["batch", "upsert"], Method::POST)
            .json(&Inputs { inputs })?
            .idempotent();
        self.send_batch(&req).await
    }

    /// Archives up to 100 contacts (`POST …/contacts/batch/archive`, 204).
    pub async fn batch_archive_contacts(&self, ids: &[String]) -> Result<(), Error> {
        check_batch(ids.len())?;
        let body = Inputs {
            inputs: ids.iter().map(IdInput::new).collect::<Vec<_>>(),
        };
        let req = self
            .contacts(&["batch", "archive"], Method::POST)
            .json(&body)?
            .idempotent();
        self.send(&req).await.map(|_| ())
    }

    pub(crate) async fn send_batch(&self, req: &Req) -> Result<BatchOutcome, Error> {
        let resp = self.send(req).await?;
        if resp.bytes().is_empty() {
            return Ok(BatchOutcome::default());
        }
        let r: BatchResponse =
            serde_json::from_slice(resp.bytes()).map_err(|e| Error::decode(&req.log_path, e))?;
        Ok(BatchOutcome::from_response(r))
    }
}

fn not_found_is_none<T>(r: Result<T, Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Api(e)) if e.problem == Problem::NotFound || e.status == 404 => Ok(None),
        Err(e) => Err(e),
    }
}
