//! The company association a CRM sink applies: an `associate_company` action as the sink sees it.

use serde::{Deserialize, Serialize};

use super::from_action::WrongAction;
use crate::domain::CrmRecordId;
use crate::plan::{Action, ActionKind, IdempotencyKey};

/// Find or create the company (account) with `domain` and associate contact `id` with it.
///
/// A sink resolves all the domains of a batch at once (read the known ones, create the rest
/// in batches), associates the contacts, and records the company it set in the configured
/// provenance property as [`CompanyProvenance::encode`](crate::planner::CompanyProvenance::encode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompanyLink {
    /// The contact.
    pub id: CrmRecordId,
    /// The company's domain (lower case).
    pub domain: String,
    /// The company the sync had set and moves the contact away from, if any.
    pub replaces: Option<String>,
    /// The contact property where the sink records the company it set.
    pub provenance_property: String,
    /// The action's idempotency key.
    pub key: IdempotencyKey,
}

impl CompanyLink {
    /// Builds a link.
    pub fn new(
        id: CrmRecordId,
        domain: impl Into<String>,
        provenance_property: impl Into<String>,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            id,
            domain: domain.into(),
            replaces: None,
            provenance_property: provenance_property.into(),
            key,
        }
    }

    /// The value the sink writes to [`provenance_property`](Self::provenance_property) once
    /// the contact is associated with `company_id`.
    pub fn provenance(&self, company_id: &str) -> String {
        crate::planner::CompanyProvenance::encode(company_id, &self.domain)
    }

    /// The company the contact moves away from (builder style).
    pub fn replacing(mut self, company_id: impl Into<String>) -> Self {
        self.replaces = Some(company_id.into());
        self
    }
}

impl TryFrom<&Action> for CompanyLink {
    type Error = WrongAction;

    /// An `associate_company` action.
    fn try_from(action: &Action) -> Result<Self, WrongAction> {
        match &action.kind {
            ActionKind::AssociateCompany {
                crm_id,
                domain,
                replaces,
                provenance_property,
                ..
            } => Ok(Self {
                id: crm_id.clone(),
                domain: domain.clone(),
                replaces: replaces.clone(),
                provenance_property: provenance_property.clone(),
                key: action.key.clone(),
            }),
            _ => Err(WrongAction::new(action, "company link")),
        }
    }
}
