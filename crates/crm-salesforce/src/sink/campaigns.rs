//! Groups as campaigns for [`SalesforceSink`]: each campaign of a batch is found by `Name`
//! once (`SELECT Id FROM Campaign WHERE Name = ...`, oldest first) and created when the
//! membership allows; members are added through sObject Collections create of
//! `CampaignMember` (a contact already in the campaign answers `DUPLICATE_VALUE`: success,
//! but not the sync's membership) and removed by querying their `CampaignMember` ids and
//! deleting them through sObject Collections; then each contact's provenance field is read,
//! edited and written back in one update, so the planner removes only memberships the sync
//! added (see crates/sync-core/src/planner/groups.rs).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use sync_core::config::edit_group_provenance;
use sync_core::ports::{ItemResult, ListMembership, PropertyUpdate};
use sync_core::{CrmKind, Error, RemoteError, RemoteErrorKind};

use super::{SalesforceSink, foreign_id};
use crate::error::{Error as SalesforceError, SYSTEM, record_error};
use crate::models::Record;
use crate::soql::{Condition, Order, Soql};

/// Campaign name (lower case) -> Campaign id.
pub(super) type CampaignCache = std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>;

/// Contact ids per SOQL look-up: 100 ids of 18 characters stay far below the URI limit.
const LOOKUP_IDS: usize = 100;

fn item_failed(message: String) -> Error {
    RemoteError::new(SYSTEM, RemoteErrorKind::Invalid, message).into()
}

/// A provenance edit a successful membership change asks for: (item, add).
type Edit = (usize, bool);

impl SalesforceSink {
    /// The `CampaignMember` field naming the person: `LeadId` for a Lead sink, else
    /// `ContactId`.
    fn member_field(&self) -> &'static str {
        if self.schema.object.eq_ignore_ascii_case("Lead") {
            "LeadId"
        } else {
            "ContactId"
        }
    }

    /// The id of the campaign `name`: the cache, a query by `Name`, or a new active
    /// campaign when `create`. The inner error fails that campaign's items only.
    async fn resolve_campaign(
        &self,
        name: &str,
        create: bool,
    ) -> Result<Result<String, Error>, SalesforceError> {
        let key = name.to_lowercase();
        if let Some(id) = self
            .campaigns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Ok(id.clone()));
        }
        let soql = Soql::select(["Id"])
            .from("Campaign")
            .filter(Condition::eq("Name", name))
            .order_by("CreatedDate", Order::Asc)
            .build()?;
        let found: Vec<Record> = self.client.query_to_end(&soql, false).await?;
        let mut id = found
            .first()
            .and_then(|r| r.get("Id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if id.is_none() {
            if !create {
                return Ok(Err(item_failed(format!(
                    "Salesforce has no campaign named {name:?}: create it, or set create_lists = true in [groups]"
                ))));
            }
            let mut r = Self::base_record("Campaign");
            r.insert("Name".into(), json!(name));
            r.insert("IsActive".into(), json!(true));
            let created = self.client.create_records(&[r], false).await?;
            match created.into_iter().next() {
                Some(s) if s.success => id = s.id,
                Some(s) => return Ok(Err(record_error(&s.errors))),
                None => return Ok(Err(super::missing_result())),
            }
        }
        let Some(id) = id else {
            return Ok(Err(super::missing_result()));
        };
        self.campaigns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, id.clone());
        Ok(Ok(id))
    }

    /// Adds or removes campaign members (see [`sync_core::ports::CrmSink::add_to_lists`]).
    pub(super) async fn campaign_memberships(
        &self,
        items: &[ListMembership],
        add: bool,
    ) -> Result<Vec<ItemResult<()>>, SalesforceError> {
        let mut results: Vec<Option<ItemResult<()>>> = (0..items.len()).map(|_| None).collect();
        let mut by_campaign: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, m) in items.iter().enumerate() {
            if m.id.crm == CrmKind::Salesforce {
                by_campaign
                    .entry(m.list.to_lowercase())
                    .or_default()
                    .push(i);
            } else {
                results[i] = Some(Err(foreign_id(&m.id)));
            }
        }
        let mut edits: Vec<Edit> = Vec::new();
        for idx in by_campaign.values() {
            let create = add && idx.iter().any(|&i| items[i].create_list);
            let campaign = match self.resolve_campaign(&items[idx[0]].list, create).await? {
                Ok(id) => id,
                Err(e) => {
                    for &i in idx {
                        results[i] = Some(Err(super::clone_port_error(&e)));
                    }
                    continue;
                }
            };
            if add {
                self.add_members(&campaign, items, idx, &mut results, &mut edits)
                    .await?;
            } else {
                self.remove_members(&campaign, items, idx, &mut results, &mut edits)
                    .await?;
            }
        }
        self.record_campaign_provenance(items, &edits, &mut results)
            .await?;
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
    }

    async fn add_members(
        &self,
        campaign: &str,
        items: &[ListMembership],
        idx: &[usize],
        results: &mut [Option<ItemResult<()>>],
        edits: &mut Vec<Edit>,
    ) -> Result<(), SalesforceError> {
        let records: Vec<Record> = idx
            .iter()
            .map(|&i| {
                let mut r = Self::base_record("CampaignMember");
                r.insert("CampaignId".into(), json!(campaign));
                r.insert(self.member_field().into(), json!(items[i].id.id));
                r
            })
            .collect();
        let saved = self.client.create_records(&records, false).await?;
        for (&i, s) in idx.iter().zip(saved) {
            if s.success {
                edits.push((i, true));
            } else if s.errors.iter().any(|e| e.code == "DUPLICATE_VALUE") {
                // Already a member (added by hand or earlier): success, and not recorded
                // as the sync's membership, so it is never removed.
            } else {
                results[i] = Some(Err(record_error(&s.errors)));
            }
        }
        Ok(())
    }

    async fn remove_members(
        &self,
        campaign: &str,
        items: &[ListMembership],
        idx: &[usize],
        results: &mut [Option<ItemResult<()>>],
        edits: &mut Vec<Edit>,
    ) -> Result<(), SalesforceError> {
        let mut member_rows: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in idx.chunks(LOOKUP_IDS) {
            let who = self.member_field();
            let soql = Soql::select(["Id", who])
                .from("CampaignMember")
                .filter(Condition::eq("CampaignId", campaign))
                .filter(Condition::in_list(
                    who,
                    chunk.iter().map(|&i| items[i].id.id.as_str()),
                ))
                .build()?;
            let rows: Vec<Record> = self.client.query_to_end(&soql, false).await?;
            for r in rows {
                if let (Some(id), Some(contact)) = (
                    r.get("Id").and_then(Value::as_str),
                    r.get(who).and_then(Value::as_str),
                ) {
                    member_rows
                        .entry(contact.to_owned())
                        .or_default()
                        .push(id.to_owned());
                }
            }
        }
        let ids: Vec<String> = member_rows.values().flatten().cloned().collect();
        let deleted = self.client.delete_records(&ids, false).await?;
        let failed: HashMap<&str, &crate::models::SaveResult> = ids
            .iter()
            .map(String::as_str)
            .zip(deleted.iter())
            .filter(|(_, r)| !r.success)
            .collect();
        for &i in idx {
            let rows = member_rows.get(&items[i].id.id);
            let error = rows
                .into_iter()
                .flatten()
                .find_map(|row| failed.get(row.as_str()));
            match error {
                Some(r) => results[i] = Some(Err(record_error(&r.errors))),
                // Removed, or no longer a member: either way the sync's membership is gone.
                None => edits.push((i, false)),
            }
        }
        Ok(())
    }

    /// Reads each edited contact's provenance field, applies its edits, writes it back.
    async fn record_campaign_provenance(
        &self,
        items: &[ListMembership],
        edits: &[Edit],
        results: &mut [Option<ItemResult<()>>],
    ) -> Result<(), SalesforceError> {
        let mut targets: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        for (i, _) in edits {
            let m = &items[*i];
            targets
                .entry((m.id.id.clone(), m.provenance_property.clone()))
                .or_default()
                .push(*i);
        }
        let mut by_field: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, field) in targets.keys() {
            by_field.entry(field).or_default().push(id);
        }
        let object = self.schema.object.clone();
        let mut current: HashMap<(String, String), String> = HashMap::new();
        for (field, ids) in by_field {
            for chunk in ids.chunks(LOOKUP_IDS) {
                let soql = Soql::select(["Id", field])
                    .from(object.as_str())
                    .filter(Condition::in_list("Id", chunk.iter().copied()))
                    .build()?;
                let rows: Vec<Record> = self.client.query_to_end(&soql, false).await?;
                for r in rows {
                    if let (Some(id), Some(v)) = (
                        r.get("Id").and_then(Value::as_str),
                        r.get(field).and_then(Value::as_str),
                    ) {
                        current.insert((id.to_owned(), field.to_owned()), v.to_owned());
                    }
                }
            }
        }
        let mut updates = Vec::new();
        let mut which = Vec::new();
        for ((id, field), idx) in &targets {
            let before = current
                .get(&(id.clone(), field.clone()))
                .cloned()
                .unwrap_or_default();
            let after = edits
                .iter()
                .filter(|(i, _)| idx.contains(i))
                .fold(before.clone(), |v, (i, add)| {
                    edit_group_provenance(&v, &items[*i].group, *add)
                });
            if after != before {
                let m = &items[idx[0]];
                updates.push(PropertyUpdate::new(
                    m.id.clone(),
                    BTreeMap::from([(field.clone(), after)]),
                    m.key.clone(),
                ));
                which.push(idx.clone());
            }
        }
        let written = self.update(&updates).await?;
        for (idx, r) in which.iter().zip(written) {
            if let Err(e) = r {
                for &i in idx {
                    results[i] = Some(Err(super::clone_port_error(&e)));
                }
            }
        }
        Ok(())
    }
}
