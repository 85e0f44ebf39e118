//! Companies for [`HubSpotSink`]: each domain of a batch is looked up once (search by
//! `domain`, 100 a call), the missing companies created in batches of 100, the contacts
//! associated in v4 batches of 100 (primary company) and the company recorded in the
//! provenance property, so the planner moves only contacts the sync placed (see
//! crates/sync-core/src/planner/companies.rs).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sync_core::ports::{CompanyLink, ItemResult, PropertyUpdate};
use sync_core::{RemoteError, RemoteErrorKind, TenantId};

use super::{HubSpotSink, clone_error, hubspot_id};
use crate::client::{AssociationInput, CONTACT_TO_PRIMARY_COMPANY};
use crate::model::{CreateInput, MAX_BATCH_INPUTS};

/// Domain -> company id, for the companies this sink found or created: a later batch of
/// the same run does not look them up again.
pub(super) type CompanyCache = std::sync::Mutex<HashMap<String, String>>;

fn item_failed(message: impl Into<String>) -> sync_core::Error {
    sync_core::Error::from(RemoteError::new(
        "hubspot",
        RemoteErrorKind::Invalid,
        message,
    ))
}

impl HubSpotSink {
    /// Company id by domain for every domain of `domains`: the cache, then a search, then
    /// batch creates for the rest. A domain HubSpot refused to create is left out.
    async fn resolve_companies(
        &self,
        domains: BTreeSet<String>,
    ) -> Result<HashMap<String, String>, sync_core::Error> {
        let mut known: HashMap<String, String> = {
            let cache = self.companies.lock().unwrap_or_else(|p| p.into_inner());
            domains
                .iter()
                .filter_map(|d| cache.get(d).map(|id| (d.clone(), id.clone())))
                .collect()
        };
        let unknown: Vec<String> = domains
            .into_iter()
            .filter(|d| !known.contains_key(d))
            .collect();
        for chunk in unknown.chunks(MAX_BATCH_INPUTS) {
            // Ascending ids: with several companies on one domain, the oldest wins.
            for company in self.client.search_companies_by_domain(chunk).await? {
                if let Some(d) = company.properties.get("domain") {
                    known
                        .entry(d.to_ascii_lowercase())
                        .or_insert_with(|| company.id.clone());
                }
            }
        }
        let missing: Vec<&String> = unknown.iter().filter(|d| !known.contains_key(*d)).collect();
        for chunk in missing.chunks(MAX_BATCH_INPUTS) {
            let inputs = chunk
                .iter()
                .map(|d| {
                    let properties = BTreeMap::from([
                        ("domain".to_owned(), (*d).clone()),
                        ("name".to_owned(), (*d).clone()),
                    ]);
                    CreateInput::new(properties).with_trace_id((*d).clone())
                })
                .collect();
            let out = self.client.batch_create_companies(inputs).await?;
            for company in out.results {
                if let Some(d) = company.properties.get("domain") {
                    known.insert(d.to_ascii_lowercase(), company.id);
                }
            }
        }
        let mut cache = self.companies.lock().unwrap_or_else(|p| p.into_inner());
        cache.extend(known.iter().map(|(d, id)| (d.clone(), id.clone())));
        Ok(known)
    }

    /// Applies company links (see [`sync_core::ports::CrmSink::associate_companies`]).
    pub(super) async fn associate_companies_impl(
        &self,
        tenant: &TenantId,
        links: &[CompanyLink],
    ) -> Result<Vec<ItemResult<()>>, sync_core::Error> {
        let domains = links.iter().map(|l| l.domain.clone()).collect();
        let companies = self.resolve_companies(domains).await?;
        let mut results: Vec<Option<ItemResult<()>>> = (0..links.len()).map(|_| None).collect();
        let mut pairs: Vec<(usize, String, String)> = Vec::new();
        for (i, link) in links.iter().enumerate() {
            match (hubspot_id(&link.id), companies.get(&link.domain)) {
                (Err(e), _) => results[i] = Some(Err(e)),
                (Ok(_), None) => {
                    results[i] = Some(Err(item_failed(format!(
                        "HubSpot did not create a company for {}; check the domain",
                        link.domain
                    ))));
                }
                (Ok(contact), Some(company)) => {
                    if let Some(old) = link.replaces.as_deref().filter(|o| *o != company) {
                        // A move, rare: only a company the sync itself set is left.
                        if let Err(e) = self.client.remove_contact_company(contact, old).await {
                            results[i] = Some(Err(e.into()));
                            continue;
                        }
                    }
                    pairs.push((i, contact.to_owned(), company.clone()));
                }
            }
        }
        for chunk in pairs.chunks(MAX_BATCH_INPUTS) {
            let inputs = chunk
                .iter()
                .map(|(_, contact, company)| {
                    AssociationInput::new(contact, company, CONTACT_TO_PRIMARY_COMPANY)
                })
                .collect();
            let out = self
                .client
                .batch_associate_contacts_to_companies(inputs)
                .await?;
            for (i, contact, _) in chunk {
                // v4 errors name the records in their message or context.
                let failed = out.errors.iter().find(|e| {
                    serde_json::to_string(e).is_ok_and(|s| s.contains(&format!("\"{contact}\"")))
                        || e.message
                            .as_deref()
                            .is_some_and(|m| m.contains(contact.as_str()))
                });
                if let Some(e) = failed {
                    let message = e.message.clone().unwrap_or_default();
                    results[*i] = Some(Err(item_failed(format!(
                        "HubSpot refused to associate contact {contact} with its company: {message}"
                    ))));
                }
            }
        }
        self.record_provenance(tenant, links, &companies, &mut results)
            .await?;
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
    }

    /// Writes `<company id>|<domain>` to each associated contact's provenance property.
    async fn record_provenance(
        &self,
        tenant: &TenantId,
        links: &[CompanyLink],
        companies: &HashMap<String, String>,
        results: &mut [Option<ItemResult<()>>],
    ) -> Result<(), sync_core::Error> {
        let mut updates = Vec::new();
        let mut which = Vec::new();
        for (i, link) in links.iter().enumerate() {
            let Some(company) = companies.get(&link.domain) else {
                continue;
            };
            if results[i].is_some() {
                continue;
            }
            let properties =
                BTreeMap::from([(link.provenance_property.clone(), link.provenance(company))]);
            updates.push(PropertyUpdate::new(
                link.id.clone(),
                properties,
                link.key.clone(),
            ));
            which.push(i);
        }
        for (chunk, idx) in updates
            .chunks(MAX_BATCH_INPUTS)
            .zip(which.chunks(MAX_BATCH_INPUTS))
        {
            let out = sync_core::ports::CrmSink::update_properties(self, tenant, chunk).await?;
            for (&i, r) in idx.iter().zip(out) {
                if let Err(e) = r {
                    results[i] = Some(Err(clone_error(&e)));
                }
            }
        }
        Ok(())
    }
}
