//! Accounts for [`SalesforceSink`]: each domain of a batch is looked up once by the
//! configured Account key field (`SELECT Id, <key> FROM Account WHERE <key> IN (...)`,
//! oldest first), the missing Accounts created through sObject Collections (200 a call),
//! and each contact's `AccountId` and provenance field written in one update, so the
//! planner moves only contacts the sync placed (see crates/sync-core/src/planner/companies.rs).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use sync_core::ports::{CompanyLink, ItemResult, PropertyUpdate};
use sync_core::{CrmKind, Error, RemoteError, RemoteErrorKind};

use super::{MAX_URI_BYTES, SalesforceSink, URI_RESERVE, encoded_len, foreign_id, lookup_chunks};
use crate::error::{Error as SalesforceError, SYSTEM, record_error};
use crate::models::Record;
use crate::soql::{Condition, Order, Soql};

/// The Account object.
const ACCOUNT: &str = "Account";

/// Domain -> Account id, for the Accounts this sink found or created.
pub(super) type AccountCache = std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>;

impl SalesforceSink {
    /// Account id by domain: the cache, then a query on the key field, then creates.
    async fn resolve_accounts(
        &self,
        key: &str,
        domains: BTreeSet<String>,
    ) -> Result<(HashMap<String, String>, HashMap<String, Error>), SalesforceError> {
        let mut known: HashMap<String, String> = {
            let cache = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
            domains
                .iter()
                .filter_map(|d| cache.get(d).map(|id| (d.clone(), id.clone())))
                .collect()
        };
        let unknown: Vec<&str> = domains
            .iter()
            .map(String::as_str)
            .filter(|d| !known.contains_key(*d))
            .collect();
        let fixed = encoded_len(&format!(
            "SELECT Id, {key} FROM {ACCOUNT} WHERE {key} IN () ORDER BY CreatedDate ASC"
        ));
        let budget = MAX_URI_BYTES.saturating_sub(URI_RESERVE + fixed);
        for chunk in lookup_chunks(&unknown, budget) {
            let soql = Soql::select(["Id", key])
                .from(ACCOUNT)
                .filter(Condition::in_list(key, chunk.iter().copied()))
                .order_by("CreatedDate", Order::Asc)
                .build()?;
            let records: Vec<Record> = self.client.query_to_end(&soql, false).await?;
            for r in records {
                if let (Some(id), Some(d)) = (
                    r.get("Id").and_then(Value::as_str),
                    r.get(key).and_then(Value::as_str),
                ) {
                    known
                        .entry(d.trim().to_ascii_lowercase())
                        .or_insert_with(|| id.to_owned());
                }
            }
        }
        let missing: Vec<&str> = unknown
            .into_iter()
            .filter(|d| !known.contains_key(*d))
            .collect();
        let mut failed = HashMap::new();
        if !missing.is_empty() {
            let records: Vec<Record> = missing
                .iter()
                .map(|d| {
                    let props = BTreeMap::from([
                        ("Name".to_owned(), (*d).to_owned()),
                        (key.to_owned(), (*d).to_owned()),
                    ]);
                    Self::with_properties(Self::base_record(ACCOUNT), &props)
                })
                .collect();
            let results = self.client.create_records(&records, false).await?;
            for (d, r) in missing.iter().zip(results) {
                match (r.success, r.id) {
                    (true, Some(id)) => {
                        known.insert((*d).to_owned(), id);
                    }
                    _ => {
                        failed.insert((*d).to_owned(), record_error(&r.errors));
                    }
                }
            }
        }
        let mut cache = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        cache.extend(known.iter().map(|(d, id)| (d.clone(), id.clone())));
        Ok((known, failed))
    }

    /// Applies company links: find or create each Account, then set `AccountId` and the
    /// provenance field on each contact.
    pub(super) async fn associate(
        &self,
        links: &[CompanyLink],
    ) -> Result<Vec<ItemResult<()>>, SalesforceError> {
        let Some(key) = self.account_key.clone() else {
            return Err(SalesforceError::Config(
                "companies are on but the sink has no Account key field: call SalesforceSink::with_account_key_field".to_owned(),
            ));
        };
        let domains = links.iter().map(|l| l.domain.clone()).collect();
        let (accounts, mut failed) = self.resolve_accounts(&key, domains).await?;
        let mut out: Vec<Option<ItemResult<()>>> = Vec::with_capacity(links.len());
        let mut updates = Vec::new();
        let mut slots = Vec::new();
        for (i, link) in links.iter().enumerate() {
            if link.id.crm != CrmKind::Salesforce {
                out.push(Some(Err(foreign_id(&link.id))));
                continue;
            }
            let Some(account) = accounts.get(&link.domain) else {
                let e = failed.remove(&link.domain).unwrap_or_else(|| {
                    RemoteError::new(
                        SYSTEM,
                        RemoteErrorKind::Invalid,
                        format!("no Account for {}; check the key field", link.domain),
                    )
                    .into()
                });
                out.push(Some(Err(e)));
                continue;
            };
            let properties = BTreeMap::from([
                ("AccountId".to_owned(), account.clone()),
                (link.provenance_property.clone(), link.provenance(account)),
            ]);
            updates.push(PropertyUpdate::new(
                link.id.clone(),
                properties,
                link.key.clone(),
            ));
            out.push(None);
            slots.push(i);
        }
        let written = self.update(&updates).await?;
        for (i, r) in slots.into_iter().zip(written) {
            out[i] = Some(r);
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(super::missing_result())))
            .collect())
    }
}
