//! Companies (`/crm/v3/objects/companies`) and contact-to-company associations (v4).
//!
//! Companies have no unique key HubSpot enforces, so they are found by searching `domain`
//! (`IN`, up to 100 domains a call) and the missing ones created in batches of 100.

use http::Method;
use serde::{Deserialize, Serialize};

use super::batch::BatchOutcome;
use super::{HubSpotClient, Req, path_template};
use crate::api_error::{ErrorBody, Problem};
use crate::error::Error;
use crate::model::{
    CreateInput, Direction, Filter, FilterGroup, HubSpotObject, Inputs, MAX_BATCH_INPUTS,
    MAX_SEARCH_PAGE, Page, SearchRequest,
};

/// The v4 association type of a contact's primary company (`HUBSPOT_DEFINED` 1; 279 is a
/// non-primary one). The primary company is what the contact's `associatedcompanyid` shows.
pub const CONTACT_TO_PRIMARY_COMPANY: u32 = 1;

/// The v4 associations prefix.
const V4_ASSOCIATIONS: &str = "/crm/v4/associations";
/// The v4 objects prefix (single associations).
const V4_OBJECTS: &str = "/crm/v4/objects";

/// One side of a v4 association input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ObjectRef {
    /// The record id.
    pub id: String,
}

/// An association type of a v4 input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssociationSpec {
    /// `HUBSPOT_DEFINED`, `USER_DEFINED`, `INTEGRATOR_DEFINED` or `WORK`.
    pub association_category: String,
    /// The type id (contact to company: 1 primary, 279 not primary).
    pub association_type_id: u32,
}

/// One input of `POST /crm/v4/associations/{from}/{to}/batch/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AssociationInput {
    /// The record associated from.
    pub from: ObjectRef,
    /// The record associated to.
    pub to: ObjectRef,
    /// The association types.
    pub types: Vec<AssociationSpec>,
}

impl AssociationInput {
    /// A `HUBSPOT_DEFINED` association of type `type_id` from `from` to `to`.
    pub fn new(from: impl Into<String>, to: impl Into<String>, type_id: u32) -> Self {
        Self {
            from: ObjectRef { id: from.into() },
            to: ObjectRef { id: to.into() },
            types: vec![AssociationSpec {
                association_category: "HUBSPOT_DEFINED".to_owned(),
                association_type_id: type_id,
            }],
        }
    }
}

/// The answer of a v4 batch: per-input errors on 207 (results are not needed here).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssociationBatchOutcome {
    /// `COMPLETE` and the like.
    #[serde(default)]
    pub status: Option<String>,
    /// The errors of inputs that failed.
    #[serde(default)]
    pub errors: Vec<ErrorBody>,
}

impl HubSpotClient {
    /// Companies whose `domain` is one of `domains` (`POST …/companies/search`, `IN`, under
    /// the search budget), following the pages. At most 100 domains a call.
    pub async fn search_companies_by_domain(
        &self,
        domains: &[String],
    ) -> Result<Vec<HubSpotObject>, Error> {
        if domains.len() > MAX_BATCH_INPUTS {
            return Err(Error::Config(format!(
                "{} domains in one company search; at most {MAX_BATCH_INPUTS}",
                domains.len()
            )));
        }
        let group = FilterGroup::new(vec![Filter::in_values("domain", domains.to_vec())]);
        let mut request = SearchRequest::new(vec![group], MAX_SEARCH_PAGE)
            .sorted_by("hs_object_id", Direction::Ascending)
            .with_properties(vec!["domain".to_owned(), "name".to_owned()]);
        let mut out = Vec::new();
        loop {
            let req = Req::new(Method::POST, &self.paths.objects, &["companies", "search"])
                .json(&request)?
                .idempotent()
                .search();
            let page: Page<HubSpotObject> = self.send_json(&req).await?;
            let next = page.next_after().map(str::to_owned);
            out.extend(page.results);
            match next {
                Some(after) => request.after = Some(after),
                None => return Ok(out),
            }
        }
    }

    /// Creates up to 100 companies (`POST …/companies/batch/create`).
    pub async fn batch_create_companies(
        &self,
        inputs: Vec<CreateInput>,
    ) -> Result<BatchOutcome, Error> {
        if inputs.len() > MAX_BATCH_INPUTS {
            return Err(Error::Config(format!(
                "{} companies in one batch; HubSpot accepts at most {MAX_BATCH_INPUTS}",
                inputs.len()
            )));
        }
        let req = Req::new(
            Method::POST,
            &self.paths.objects,
            &["companies", "batch", "create"],
        )
        .json(&Inputs { inputs })?;
        self.send_batch(&req).await
    }

    /// Associates contacts with companies, up to 100 pairs a call
    /// (`POST /crm/v4/associations/contacts/companies/batch/create`). Creating an existing
    /// association again changes nothing, so the call may be retried.
    pub async fn batch_associate_contacts_to_companies(
        &self,
        inputs: Vec<AssociationInput>,
    ) -> Result<AssociationBatchOutcome, Error> {
        if inputs.len() > MAX_BATCH_INPUTS {
            return Err(Error::Config(format!(
                "{} associations in one batch; at most {MAX_BATCH_INPUTS}",
                inputs.len()
            )));
        }
        let req = Req::new(
            Method::POST,
            V4_ASSOCIATIONS,
            &["contacts", "companies", "batch", "create"],
        )
        .json(&Inputs { inputs })?
        .idempotent();
        let resp = self.send(&req).await?;
        if resp.bytes().is_empty() {
            return Ok(AssociationBatchOutcome::default());
        }
        serde_json::from_slice(resp.bytes()).map_err(|e| Error::decode("associations batch", e))
    }

    /// Removes every association between a contact and a company
    /// (`DELETE /crm/v4/objects/contacts/{id}/associations/companies/{companyId}`); one
    /// that is already gone is not an error.
    pub async fn remove_contact_company(
        &self,
        contact_id: &str,
        company_id: &str,
    ) -> Result<(), Error> {
        let req = Req::new(
            Method::DELETE,
            V4_OBJECTS,
            &[
                "contacts",
                contact_id,
                "associations",
                "companies",
                company_id,
            ],
        )
        .log_path(path_template(
            V4_OBJECTS,
            "contacts/{contactId}/associations/companies/{companyId}",
        ))
        .idempotent();
        match self.send(&req).await {
            Ok(_) => Ok(()),
            Err(Error::Api(e)) if e.problem == Problem::NotFound || e.status == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}
