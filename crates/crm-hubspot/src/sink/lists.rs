//! Groups as lists for [`HubSpotSink`]: each list of a batch is found by name once (and
//! created as a MANUAL contact list when the membership allows), one `memberships/add` or
//! `memberships/remove` call is made per list, then each contact's provenance property is
//! read, edited (the group added or removed) and written back in one batch update, so the
//! planner removes only memberships the sync added (see
//! crates/sync-core/src/planner/groups.rs).

use std::collections::{BTreeMap, HashMap};

use sync_core::config::edit_group_provenance;
use sync_core::ports::{ItemResult, ListMembership, PropertyUpdate};
use sync_core::{RemoteError, RemoteErrorKind, TenantId};

use super::{HubSpotSink, clone_error, hubspot_id};
use crate::model::MAX_BATCH_INPUTS;

/// List name (lower case) -> list id, for the lists this sink found or created.
pub(super) type ListCache = std::sync::Mutex<HashMap<String, String>>;

fn item_failed(message: impl Into<String>) -> sync_core::Error {
    sync_core::Error::from(RemoteError::new(
        "hubspot",
        RemoteErrorKind::Invalid,
        message,
    ))
}

/// A provenance edit a successful membership change asks for: (item, group, add).
type Edit = (usize, String, bool);

impl HubSpotSink {
    /// The id of the contact list `name`: the cache, a look-up by name, or a new MANUAL
    /// list when `create`. The inner error fails the items of that list only.
    async fn resolve_list(
        &self,
        name: &str,
        create: bool,
    ) -> Result<Result<String, String>, sync_core::Error> {
        let key = name.to_lowercase();
        if let Some(id) = self
            .lists
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(Ok(id.clone()));
        }
        let list = match self.client.contact_list_by_name(name).await? {
            Some(l) => l,
            None if create => self.client.create_manual_list(name).await?,
            None => {
                return Ok(Err(format!(
                    "HubSpot has no contact list named {name:?}: create a MANUAL contact list with that name, or set create_lists = true in [groups]"
                )));
            }
        };
        if !list.is_manual() {
            return Ok(Err(format!(
                "HubSpot list {name:?} is a {} list, whose members its filters decide: map the group to a MANUAL list",
                list.processing_type
            )));
        }
        self.lists
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, list.list_id.clone());
        Ok(Ok(list.list_id))
    }

    /// Adds or removes memberships (see [`sync_core::ports::CrmSink::add_to_lists`]).
    pub(super) async fn list_memberships_impl(
        &self,
        tenant: &TenantId,
        items: &[ListMembership],
        add: bool,
    ) -> Result<Vec<ItemResult<()>>, sync_core::Error> {
        let mut results: Vec<Option<ItemResult<()>>> = (0..items.len()).map(|_| None).collect();
        let mut by_list: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, m) in items.iter().enumerate() {
            match hubspot_id(&m.id) {
                Err(e) => results[i] = Some(Err(e)),
                Ok(_) => by_list.entry(m.list.to_lowercase()).or_default().push(i),
            }
        }
        let mut edits: Vec<Edit> = Vec::new();
        for idx in by_list.values() {
            let first = &items[idx[0]];
            let create = add && idx.iter().any(|&i| items[i].create_list);
            let list_id = match self.resolve_list(&first.list, create).await? {
                Ok(id) => id,
                Err(message) => {
                    for &i in idx {
                        results[i] = Some(Err(item_failed(message.clone())));
                    }
                    continue;
                }
            };
            let ids: Vec<String> = idx.iter().map(|&i| items[i].id.id.clone()).collect();
            let change = if add {
                self.client.add_to_list(&list_id, &ids).await?
            } else {
                self.client.remove_from_list(&list_id, &ids).await?
            };
            for &i in idx {
                let id = &items[i].id.id;
                if change.record_ids_missing.contains(id) {
                    results[i] = Some(Err(item_failed(format!(
                        "HubSpot contact {id} does not exist: it was not put in list {:?}",
                        items[i].list
                    ))));
                } else if !add || change.record_ids_added.contains(id) {
                    // An addition of a contact already in the list is not the sync's
                    // membership: its provenance stays as it is, so it is never removed.
                    edits.push((i, items[i].group.clone(), add));
                }
            }
        }
        self.record_group_provenance(tenant, items, &edits, &mut results)
            .await?;
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
    }

    /// Reads each edited contact's provenance value, applies its edits and writes it back.
    async fn record_group_provenance(
        &self,
        tenant: &TenantId,
        items: &[ListMembership],
        edits: &[Edit],
        results: &mut [Option<ItemResult<()>>],
    ) -> Result<(), sync_core::Error> {
        // (contact, property) -> the items whose edits it carries.
        let mut targets: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        for (i, _, _) in edits {
            let m = &items[*i];
            targets
                .entry((m.id.id.clone(), m.provenance_property.clone()))
                .or_default()
                .push(*i);
        }
        let mut by_property: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (id, property) in targets.keys() {
            by_property.entry(property).or_default().push(id.clone());
        }
        let mut current: HashMap<(String, String), String> = HashMap::new();
        for (property, ids) in by_property {
            for chunk in ids.chunks(MAX_BATCH_INPUTS) {
                let props = [property.to_owned()];
                let out = self
                    .client
                    .batch_read_contacts(chunk, &props, None, false)
                    .await?;
                for c in out.results {
                    if let Some(v) = c.properties.get(property) {
                        current.insert((c.id.clone(), property.to_owned()), v.clone());
                    }
                }
            }
        }
        let mut updates = Vec::new();
        let mut which = Vec::new();
        for ((id, property), idx) in &targets {
            let before = current
                .get(&(id.clone(), property.clone()))
                .cloned()
                .unwrap_or_default();
            let after = edits
                .iter()
                .filter(|(i, _, _)| idx.contains(i))
                .fold(before.clone(), |v, (_, g, add)| {
                    edit_group_provenance(&v, g, *add)
                });
            if after == before {
                continue;
            }
            let m = &items[idx[0]];
            updates.push(PropertyUpdate::new(
                m.id.clone(),
                BTreeMap::from([(property.clone(), after)]),
                m.key.clone(),
            ));
            which.push(idx.clone());
        }
        for (chunk, idx) in updates
            .chunks(MAX_BATCH_INPUTS)
            .zip(which.chunks(MAX_BATCH_INPUTS))
        {
            let out = sync_core::ports::CrmSink::update_properties(self, tenant, chunk).await?;
            for (items_of, r) in idx.iter().zip(out) {
                if let Err(e) = r {
                    for &i in items_of {
                        results[i] = Some(Err(clone_error(&e)));
                    }
                }
            }
        }
        Ok(())
    }
}
