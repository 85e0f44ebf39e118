//! [`HubSpotSource`]: HubSpot contacts as a [`CrmSource`].
//!
//! - Delta: search on `lastmodifieddate >= cursor`, ascending, 200 a page. HubSpot stops a
//!   query at 10,000 results, so before paging past it the window restarts from the newest
//!   modification time seen, skipping the ids already returned at that instant. When a
//!   full page shares one instant, that instant is read at once by `hs_object_id` in its
//!   own windows (no re-read of the window first), then the search goes on strictly after
//!   it.
//! - Search never returns archived contacts, so the archived list
//!   (`GET …/contacts?archived=true`) is read *first*, and the contacts archived since the
//!   cursor are handed out with the search pages, each with the first page whose newest
//!   modification is at or after its archiving (the rest with the last page). The engine
//!   checkpoints after each page at the newest time it returned, so the checkpoint never
//!   passes a deletion that has not been returned, whichever page a run stops at.
//!   [`SourceConfig::archived_min_interval_secs`] trades that read (its cost grows with
//!   every contact ever archived: one call per 100) for `contact.deletion` webhooks.
//! - Records modified exactly at the cursor are always re-read, whatever the cursor's
//!   `last_id`: HubSpot orders equal timestamps arbitrarily, so skipping by id could miss a
//!   record, while re-reading one costs nothing (planning it again is a no-op).
//! - Full scan: the list endpoint, 100 a page, following `paging.next.after`.
//! - Tags from a multiple-checkboxes property, list memberships or property predicates
//!   ([`ContactMapping`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sync_core::ports::{ContactPage, ContactRef, CrmSource, PageToken, freshest};
use sync_core::{CrmContact, CrmKind, CrmRecordId, Cursor, Email, TenantId};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::client::{HubSpotClient, ListOptions};
use crate::convert::{ContactMapping, ListTags};
use crate::error::Error;
use crate::model::{
    Direction, Filter, FilterGroup, HubSpotObject, MAX_BATCH_INPUTS, MAX_SEARCH_PAGE, Operator,
    SEARCH_RESULT_CAP, SearchRequest,
};

/// Settings of a [`HubSpotSource`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SourceConfig {
    /// How properties become contacts (email, tags, lifecycle, extra properties).
    pub mapping: ContactMapping,
    /// Search page size for deltas (max 200).
    pub search_page_size: u32,
    /// List page size for full scans (max 100).
    pub list_page_size: u32,
    /// Read archived contacts in deltas (default true): how removals by archiving reach
    /// the planner when webhooks are not used.
    pub include_archived: bool,
    /// Read the archived list in a delta at most once in this many seconds (default `None`:
    /// every delta). The list cannot be filtered by date, so each read costs one call per
    /// 100 contacts ever archived (shown as `GET …/contacts?archived=true` in the run
    /// report's API calls). With a value, a delta that skips the read returns no
    /// deletions, and the next read returns every contact archived since the cursor of the
    /// last delta that read them, so nothing archived in between is lost, only late. Use
    /// it with `contact.deletion` webhooks to cover the gap; a full reconcile removes
    /// archived contacts by absence in any case. The interval is kept by this source
    /// instance: a restarted process reads at its first delta, looking back twice the
    /// interval from the checkpoint.
    pub archived_min_interval_secs: Option<u64>,
    /// Emit archived tombstones (`merged_into` the survivor) for ids in
    /// `hs_merged_object_ids` (default true).
    pub merge_tombstones: bool,
    /// How long list memberships (for list tags) are cached, in seconds; they are always
    /// reloaded at the start of a scan or delta.
    pub list_cache_secs: u64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            mapping: ContactMapping::default(),
            search_page_size: MAX_SEARCH_PAGE,
            list_page_size: 100,
            include_archived: true,
            archived_min_interval_secs: None,
            merge_tombstones: true,
            list_cache_secs: 600,
        }
    }
}

impl SourceConfig {
    /// Settings with this mapping and the defaults.
    pub fn new(mapping: ContactMapping) -> Self {
        Self {
            mapping,
            ..Self::default()
        }
    }
}

/// The delta position, carried in the opaque page token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "p")]
enum DeltaState {
    /// Searching `lastmodifieddate >= start` (or `> start` when `strict`).
    #[serde(rename = "s")]
    Search {
        start: i64,
        #[serde(default)]
        strict: bool,
        after: u32,
        /// Ids already returned whose modification time is `newest` (skipped when the
        /// window restarts at `newest`).
        newest: i64,
        seen: Vec<String>,
    },
    /// Reading the records modified exactly at `at`, by `hs_object_id` above `above`.
    #[serde(rename = "t")]
    Tie {
        at: i64,
        above: String,
        after: u32,
        seen: Vec<String>,
    },
}

/// The page token: where the search is, and the archived contacts read at the start of the
/// delta that are not returned yet (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Token {
    #[serde(rename = "s")]
    state: DeltaState,
    #[serde(rename = "a", default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<HubSpotObject>,
    /// The newest modification time returned so far (epoch ms).
    #[serde(rename = "h", default)]
    horizon: Option<i64>,
    /// When this delta read the archived list: the cursor it read from (epoch ms).
    #[serde(rename = "f", default)]
    archived_from: Option<i64>,
}

fn encode(token: &Token) -> PageToken {
    let json = serde_json::to_vec(token).unwrap_or_default();
    PageToken(format!(
        "hsd2.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    ))
}

fn decode(token: &PageToken) -> Result<Token, Error> {
    let bad = || {
        Error::Config(format!(
            "page token {:?} is not a HubSpot delta token from this source",
            token.0
        ))
    };
    let raw = token.0.strip_prefix("hsd2.").ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// Reads HubSpot contacts for the sync engine. One source serves one HubSpot account: the
/// tenant argument of the port is not sent to HubSpot.
#[derive(Debug)]
pub struct HubSpotSource {
    client: HubSpotClient,
    config: SourceConfig,
    properties: Vec<String>,
    lists: Mutex<Option<(Instant, Arc<ListTags>)>>,
    /// The last delta that read the archived list and returned all of it: when, and the
    /// cursor (epoch ms) it read from.
    archived_read: std::sync::Mutex<Option<(Instant, i64)>>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Numeric comparison of HubSpot ids (numeric strings), falling back to text.
fn id_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

impl HubSpotSource {
    /// A source over `client`, counting its API calls apart from other users of the client
    /// (see [`HubSpotClient::with_own_call_counts`]).
    pub fn new(client: HubSpotClient, config: SourceConfig) -> Self {
        let properties = config.mapping.properties_to_request();
        Self {
            client: client.with_own_call_counts(),
            config,
            properties,
            lists: Mutex::new(None),
            archived_read: std::sync::Mutex::new(None),
        }
    }

    /// The client.
    pub fn client(&self) -> &HubSpotClient {
        &self.client
    }

    /// The list-membership tags, loading them when `reload`, absent or stale.
    async fn list_tags(&self, reload: bool) -> Result<Option<Arc<ListTags>>, Error> {
        if !self.config.mapping.uses_lists() {
            return Ok(None);
        }
        let mut slot = self.lists.lock().await;
        let ttl = Duration::from_secs(self.config.list_cache_secs);
        if !reload
            && let Some((at, tags)) = slot.as_ref()
            && at.elapsed() < ttl
        {
            return Ok(Some(Arc::clone(tags)));
        }
        let mut tags = ListTags::new();
        let lists: BTreeMap<String, String> = self
            .config
            .mapping
            .list_tags()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (list_id, tag) in &lists {
            for id in self.client.all_list_members(list_id).await? {
                tags.entry(id).or_default().insert(tag.clone());
            }
        }
        let tags = Arc::new(tags);
        *slot = Some((Instant::now(), Arc::clone(&tags)));
        Ok(Some(tags))
    }

    fn convert(&self, objects: Vec<HubSpotObject>, lists: Option<&ListTags>) -> Vec<CrmContact> {
        let mut out = Vec::with_capacity(objects.len());
        for o in objects {
            if self.config.merge_tombstones {
                out.extend(self.config.mapping.merge_tombstones(&o));
            }
            out.push(self.config.mapping.to_contact(o, lists));
        }
        out
    }

    fn search_request(&self, filters: Vec<Filter>, sort_by: &str, after: u32) -> SearchRequest {
        let mut r = SearchRequest::new(
            vec![FilterGroup::new(filters)],
            self.config.search_page_size,
        )
        .sorted_by(sort_by, Direction::Ascending)
        .with_properties(self.properties.clone());
        if after > 0 {
            r.after = Some(after.to_string());
        }
        r
    }

    /// Whether the page after `next_offset` still ends within the 10,000-result cap.
    fn within_cap(&self, next_offset: u32) -> bool {
        u64::from(next_offset) + u64::from(self.config.search_page_size.min(MAX_SEARCH_PAGE))
            <= SEARCH_RESULT_CAP
    }

    /// When `o` was archived (its modification time when HubSpot does not say).
    fn archived_ms(&self, o: &HubSpotObject) -> i64 {
        ms(o.archived_at
            .as_deref()
            .and_then(crate::convert::parse_time)
            .unwrap_or_else(|| self.config.mapping.modified_at(o)))
    }

    /// Whether this delta reads the archived list (see
    /// [`SourceConfig::archived_min_interval_secs`]).
    fn archived_read_due(&self) -> bool {
        if !self.config.include_archived {
            return false;
        }
        let Some(secs) = self.config.archived_min_interval_secs else {
            return true;
        };
        let last = *self
            .archived_read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.is_none_or(|(t, _)| t.elapsed() >= Duration::from_secs(secs))
    }

    /// The oldest archiving time a read from `since` must return.
    fn archived_floor(&self, since: &Cursor) -> i64 {
        let since = ms(since.modified_at);
        let Some(secs) = self.config.archived_min_interval_secs else {
            return since;
        };
        let last = *self
            .archived_read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last {
            // Deltas since then skipped the read: go back to where that one read from.
            Some((_, from)) => from.min(since),
            None => {
                since.saturating_sub(i64::try_from(secs.saturating_mul(2_000)).unwrap_or(i64::MAX))
            }
        }
    }

    /// Every contact archived at or after `floor`, oldest first, marked archived.
    async fn read_archived(&self, floor: i64) -> Result<Vec<HubSpotObject>, Error> {
        let mut opts =
            ListOptions::new(self.config.list_page_size, self.properties.clone()).archived(true);
        let mut pending = Vec::new();
        loop {
            let page = self.client.list_contacts(&opts).await?;
            let next = page.next_after().map(str::to_owned);
            pending.extend(
                page.results
                    .into_iter()
                    .filter(|o| self.archived_ms(o) >= floor)
                    .map(|mut o| {
                        o.archived = true;
                        o
                    }),
            );
            match next {
                Some(a) => opts = opts.after(Some(a)),
                None => break,
            }
        }
        pending.sort_by_key(|o| self.archived_ms(o));
        Ok(pending)
    }

    /// One delta page: a search page, with the pending archived contacts it has reached.
    async fn delta(&self, token: Token, lists: Option<&ListTags>) -> Result<ContactPage, Error> {
        let Token {
            state,
            mut pending,
            horizon,
            archived_from,
        } = token;
        let (objects, next) = self.delta_page(state).await?;
        let horizon = objects
            .iter()
            .map(|o| ms(self.config.mapping.modified_at(o)))
            .max()
            .max(horizon);
        // An archived contact goes out with the first page whose newest change is at or
        // after its archiving: the engine's checkpoint (at most that newest change) then
        // never passes a deletion not yet returned. The last page takes the rest.
        let due = match (&next, horizon) {
            (None, _) => pending.len(),
            (Some(_), Some(h)) => pending.partition_point(|o| self.archived_ms(o) <= h),
            (Some(_), None) => 0,
        };
        let archived: Vec<HubSpotObject> = pending.drain(..due).collect();
        let mut contacts = self.convert(objects, lists);
        for o in archived {
            let at = DateTime::<Utc>::from_timestamp_millis(self.archived_ms(&o));
            for mut c in self.convert(vec![o], lists) {
                // Never newer than the archiving, so the checkpoint stays behind the search.
                if let Some(at) = at {
                    c.updated_at = c.updated_at.min(at);
                }
                contacts.push(c);
            }
        }
        if next.is_none()
            && let Some(from) = archived_from
        {
            // Every deletion read has been returned: later reads may start here.
            *self
                .archived_read
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), from));
        }
        let next = next.map(|state| Token {
            state,
            pending,
            horizon,
            archived_from,
        });
        Ok(ContactPage::new(contacts, next.as_ref().map(encode)))
    }

    async fn delta_page(
        &self,
        state: DeltaState,
    ) -> Result<(Vec<HubSpotObject>, Option<DeltaState>), Error> {
        match state {
            DeltaState::Search {
                start,
                strict,
                after,
                newest,
                seen,
            } => self.search_step(start, strict, after, newest, seen).await,
            DeltaState::Tie {
                at,
                above,
                after,
                seen,
            } => self.tie_step(at, above, after, seen).await,
        }
    }

    /// One page of the modified-since search: the contacts modified at or after `start`
    /// (strictly after when `strict`), less those already returned at `start` (`seen`).
    async fn search_step(
        &self,
        start: i64,
        strict: bool,
        after: u32,
        mut newest: i64,
        mut seen: Vec<String>,
    ) -> Result<(Vec<HubSpotObject>, Option<DeltaState>), Error> {
        let modified = self.config.mapping.modified_property.clone();
        let op = if strict { Operator::Gt } else { Operator::Gte };
        let req = self.search_request(
            vec![Filter::new(&modified, op, start.to_string())],
            &modified,
            after,
        );
        let page = self.client.search_contacts(&req).await?;
        let next_offset = page.next_after().and_then(|a| a.parse::<u32>().ok());
        let time = |o: Option<&HubSpotObject>| o.map(|o| ms(self.config.mapping.modified_at(o)));
        let full = page.results.len() >= self.config.search_page_size.min(MAX_SEARCH_PAGE) as usize;
        let one_instant = full && time(page.results.first()) == time(page.results.last());
        let skip: BTreeSet<String> = if newest == start {
            seen.iter().cloned().collect()
        } else {
            BTreeSet::new()
        };
        let mut kept = Vec::with_capacity(page.results.len());
        for o in page.results {
            let t = ms(self.config.mapping.modified_at(&o));
            if t == start && skip.contains(&o.id) {
                continue;
            }
            if t > newest {
                newest = t;
                seen.clear();
            }
            if t == newest {
                seen.push(o.id.clone());
            }
            kept.push(o);
        }
        let next = next_offset
            .map(|n| self.after_search_page(n, one_instant, start, strict, newest, seen));
        Ok((kept, next))
    }

    /// Where the search goes after a page that has more (`offset` is the next page's).
    fn after_search_page(
        &self,
        offset: u32,
        one_instant: bool,
        start: i64,
        strict: bool,
        newest: i64,
        seen: Vec<String>,
    ) -> DeltaState {
        if one_instant {
            // A full page of one instant: read that instant by id now, instead of paging
            // (and restarting) through all of it first.
            DeltaState::Tie {
                at: newest,
                above: "0".into(),
                after: 0,
                seen,
            }
        } else if self.within_cap(offset) {
            DeltaState::Search {
                start,
                strict,
                after: offset,
                newest,
                seen,
            }
        } else if newest > start {
            // Paging on would pass 10,000 results: restart the window.
            DeltaState::Search {
                start: newest,
                strict: false,
                after: 0,
                newest,
                seen,
            }
        } else {
            DeltaState::Tie {
                at: start,
                above: "0".into(),
                after: 0,
                seen,
            }
        }
    }

    /// One page of the contacts modified exactly at `at`, by id above `above`, less those
    /// already returned (`seen`).
    async fn tie_step(
        &self,
        at: i64,
        above: String,
        after: u32,
        mut seen: Vec<String>,
    ) -> Result<(Vec<HubSpotObject>, Option<DeltaState>), Error> {
        let modified = self.config.mapping.modified_property.clone();
        let filters = vec![
            Filter::new(&modified, Operator::Eq, at.to_string()),
            Filter::new("hs_object_id", Operator::Gt, above.clone()),
        ];
        let req = self.search_request(filters, "hs_object_id", after);
        let page = self.client.search_contacts(&req).await?;
        let next_offset = page.next_after().and_then(|a| a.parse::<u32>().ok());
        let skip: BTreeSet<String> = seen.iter().cloned().collect();
        let mut last = above.clone();
        let mut kept = Vec::new();
        for o in page.results {
            if id_cmp(&o.id, &last).is_gt() {
                last.clone_from(&o.id);
            }
            if skip.contains(&o.id) {
                continue;
            }
            seen.push(o.id.clone());
            kept.push(o);
        }
        let next = match next_offset {
            Some(n) if self.within_cap(n) => DeltaState::Tie {
                at,
                above,
                after: n,
                seen,
            },
            Some(_) => DeltaState::Tie {
                at,
                above: last,
                after: 0,
                seen,
            },
            // This instant is done: continue strictly after it.
            None => DeltaState::Search {
                start: at,
                strict: true,
                after: 0,
                newest: at,
                seen: Vec::new(),
            },
        };
        Ok((kept, Some(next)))
    }
}

#[async_trait]
impl CrmSource for HubSpotSource {
    fn crm(&self) -> CrmKind {
        CrmKind::Hubspot
    }

    fn api_calls(&self) -> BTreeMap<String, u64> {
        self.client.api_calls()
    }

    async fn account_id(&self, _tenant: &TenantId) -> Result<Option<String>, sync_core::Error> {
        let details = self.client.account_details().await?;
        Ok(Some(details.portal_id.to_string()))
    }

    async fn connection_facts(
        &self,
        _tenant: &TenantId,
    ) -> Result<sync_core::ports::ConnectionFacts, sync_core::Error> {
        Ok(crate::connection::facts(&self.client, &self.properties).await?)
    }

    async fn changed_since(
        &self,
        _tenant: &TenantId,
        since: &Cursor,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, sync_core::Error> {
        let token = match page {
            Some(t) => decode(t)?,
            None => {
                let start = ms(since.modified_at);
                // Archived contacts first: a run that stops early must not have moved the
                // checkpoint past a deletion it never read.
                let (pending, archived_from) = if self.archived_read_due() {
                    let floor = self.archived_floor(since);
                    let from = ms(since.modified_at);
                    (self.read_archived(floor).await?, Some(from))
                } else {
                    (Vec::new(), None)
                };
                Token {
                    state: DeltaState::Search {
                        start,
                        strict: false,
                        after: 0,
                        newest: start,
                        seen: Vec::new(),
                    },
                    pending,
                    horizon: None,
                    archived_from,
                }
            }
        };
        let lists = self.list_tags(page.is_none()).await?;
        Ok(self.delta(token, lists.as_deref()).await?)
    }

    async fn scan(
        &self,
        _tenant: &TenantId,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, sync_core::Error> {
        let lists = self.list_tags(page.is_none()).await?;
        let opts = ListOptions::new(self.config.list_page_size, self.properties.clone())
            .after(page.map(|p| p.0.clone()));
        let result = self.client.list_contacts(&opts).await?;
        let next = result.next_after().map(|a| PageToken(a.to_owned()));
        Ok(ContactPage::new(
            self.convert(result.results, lists.as_deref()),
            next,
        ))
    }

    async fn get_by_ids(
        &self,
        _tenant: &TenantId,
        ids: &[CrmRecordId],
    ) -> Result<Vec<CrmContact>, sync_core::Error> {
        let lists = self.list_tags(false).await?;
        let ids: Vec<String> = ids
            .iter()
            .filter(|i| i.crm == CrmKind::Hubspot)
            .map(|i| i.id.clone())
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH_INPUTS) {
            let outcome = self
                .client
                .batch_read_contacts(chunk, &self.properties, None, false)
                .await?;
            out.extend(self.convert(outcome.results, lists.as_deref()));
        }
        Ok(out)
    }

    /// One read: `GET …/contacts/{id}`, or `GET …/contacts/{email}?idProperty=email`.
    async fn get_contact(
        &self,
        _tenant: &TenantId,
        contact: &ContactRef,
    ) -> Result<Option<CrmContact>, sync_core::Error> {
        let found = match contact {
            ContactRef::CrmId(id) if id.crm == CrmKind::Hubspot => {
                self.client.get_contact(&id.id, &self.properties).await?
            }
            ContactRef::Email(email) => {
                self.client
                    .get_contact_by_email(email.as_str(), &self.properties)
                    .await?
            }
            // Another CRM's id, or a kind added later: not a HubSpot contact.
            _ => None,
        };
        let Some(found) = found else { return Ok(None) };
        let lists = self.list_tags(false).await?;
        Ok(freshest(self.convert(vec![found], lists.as_deref())))
    }

    async fn find_by_email(
        &self,
        _tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<CrmContact>, sync_core::Error> {
        let lists = self.list_tags(false).await?;
        let mapping = &self.config.mapping;
        let mut groups = vec![FilterGroup::new(vec![Filter::new(
            &mapping.email_property,
            Operator::Eq,
            email.as_str(),
        )])];
        if let Some(alt) = &mapping.alternate_email_property {
            groups.push(FilterGroup::new(vec![Filter::new(
                alt,
                Operator::Eq,
                email.as_str(),
            )]));
        }
        let mut req = SearchRequest::new(groups, 100).with_properties(self.properties.clone());
        req = req.sorted_by(&mapping.modified_property, Direction::Descending);
        let page = self.client.search_contacts(&req).await?;
        Ok(self
            .convert(page.results, lists.as_deref())
            .into_iter()
            .filter(|c| {
                !c.archived
                    && (c.email.as_ref() == Some(email)
                        || c.alternate_email.as_ref() == Some(email))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_foreign_ones() {
        let s = Token {
            state: DeltaState::Search {
                start: 5,
                strict: false,
                after: 200,
                newest: 9,
                seen: vec!["1".into()],
            },
            pending: Vec::new(),
            horizon: Some(9),
            archived_from: None,
        };
        assert_eq!(decode(&encode(&s)).unwrap(), s);
        assert!(decode(&PageToken("12345".into())).is_err());
        assert!(decode(&PageToken("hsd1.!!!".into())).is_err());
    }

    #[test]
    fn ids_compare_numerically() {
        assert!(id_cmp("9", "10").is_lt());
        assert!(id_cmp("abc", "abd").is_lt());
    }
}
