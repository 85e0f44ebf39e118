//! In-memory fakes of the ports, for your own tests and for trying configurations:
//! [`MemoryCrm`] (a CRM: source and sink) and [`RecordingBadgeSink`] / [`RecordingInviter`]
//! (community sinks that record effects, deduplicated by idempotency key like a real
//! idempotent API). Failures can be injected to test retries.
//!
//! Behind the `test-util` feature: enable it in `[dev-dependencies]`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::domain::{
    BadgeId, CativaUserId, CrmContact, CrmKind, CrmRecordId, Cursor, Email, TenantId,
};
use crate::error::{Error, RemoteError, RemoteErrorKind};
use crate::ports::{
    Activity, BadgeChange, BadgeOp, BadgeSink, ContactDraft, ContactPage, CrmSink, CrmSource,
    Invite, Inviter, ItemResult, PageToken, PropertyUpdate, Provisioned,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct CrmState {
    contacts: BTreeMap<CrmRecordId, CrmContact>,
    next_id: u64,
    calls: BTreeMap<String, u64>,
    activities: Vec<Activity>,
    fail_reads: u32,
}

/// An in-memory CRM. Reads page in modification order; writes bump `updated_at` to the
/// time of the write.
#[derive(Debug)]
pub struct MemoryCrm {
    kind: CrmKind,
    page_size: usize,
    state: Mutex<CrmState>,
}

impl MemoryCrm {
    /// An empty CRM of `kind`, serving pages of `page_size` contacts.
    pub fn new(kind: CrmKind, page_size: usize) -> Self {
        Self {
            kind,
            page_size: page_size.max(1),
            state: Mutex::new(CrmState::default()),
        }
    }

    /// Inserts or replaces a contact.
    pub fn put(&self, contact: CrmContact) {
        lock(&self.state)
            .contacts
            .insert(contact.id.clone(), contact);
    }

    /// A contact by id.
    pub fn get(&self, id: &CrmRecordId) -> Option<CrmContact> {
        lock(&self.state).contacts.get(id).cloned()
    }

    /// Every contact.
    pub fn all(&self) -> Vec<CrmContact> {
        lock(&self.state).contacts.values().cloned().collect()
    }

    /// Changes a contact in place.
    pub fn update(&self, id: &CrmRecordId, f: impl FnOnce(&mut CrmContact)) {
        if let Some(c) = lock(&self.state).contacts.get_mut(id) {
            f(c);
        }
    }

    /// Makes the next `n` page reads fail with a server error.
    pub fn fail_next_reads(&self, n: u32) {
        lock(&self.state).fail_reads = n;
    }

    /// Activities logged so far.
    pub fn activities(&self) -> Vec<Activity> {
        lock(&self.state).activities.clone()
    }

    fn call(&self, endpoint: &str) -> Result<(), Error> {
        let mut s = lock(&self.state);
        *s.calls.entry(endpoint.to_owned()).or_insert(0) += 1;
        if endpoint.starts_with("read") && s.fail_reads > 0 {
            s.fail_reads -= 1;
            return Err(RemoteError::new(
                "memory-crm",
                RemoteErrorKind::Server,
                "injected read failure",
            )
            .into());
        }
        Ok(())
    }

    fn page(&self, mut items: Vec<CrmContact>, token: Option<&PageToken>) -> ContactPage {
        items.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
        let start: usize = token.and_then(|t| t.0.parse().ok()).unwrap_or(0);
        let end = (start + self.page_size).min(items.len());
        let next = (end < items.len()).then(|| PageToken(end.to_string()));
        ContactPage::new(
            items
                .get(start..end)
                .map(<[CrmContact]>::to_vec)
                .unwrap_or_default(),
            next,
        )
    }
}

#[async_trait]
impl CrmSource for MemoryCrm {
    fn crm(&self) -> CrmKind {
        self.kind.clone()
    }

    async fn changed_since(
        &self,
        _tenant: &TenantId,
        since: &Cursor,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        self.call("read:changed_since")?;
        let items = lock(&self.state)
            .contacts
            .values()
            .filter(|c| c.updated_at >= since.modified_at)
            .cloned()
            .collect();
        Ok(self.page(items, page))
    }

    async fn scan(
        &self,
        _tenant: &TenantId,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        self.call("read:scan")?;
        let items = lock(&self.state)
            .contacts
            .values()
            .filter(|c| !c.archived)
            .cloned()
            .collect();
        Ok(self.page(items, page))
    }

    async fn get_by_ids(
        &self,
        _tenant: &TenantId,
        ids: &[CrmRecordId],
    ) -> Result<Vec<CrmContact>, Error> {
        self.call("read:get_by_ids")?;
        let s = lock(&self.state);
        Ok(ids
            .iter()
            .filter_map(|id| s.contacts.get(id).cloned())
            .collect())
    }

    async fn find_by_email(
        &self,
        _tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<CrmContact>, Error> {
        self.call("read:find_by_email")?;
        Ok(lock(&self.state)
            .contacts
            .values()
            .filter(|c| c.email.as_ref() == Some(email) && !c.archived)
            .cloned()
            .collect())
    }

    fn api_calls(&self) -> BTreeMap<String, u64> {
        lock(&self.state).calls.clone()
    }
}

#[async_trait]
impl CrmSink for MemoryCrm {
    fn crm(&self) -> CrmKind {
        self.kind.clone()
    }

    fn max_batch(&self) -> usize {
        100
    }

    async fn upsert_contacts(
        &self,
        _tenant: &TenantId,
        drafts: &[ContactDraft],
    ) -> Result<Vec<ItemResult<Provisioned>>, Error> {
        self.call("write:upsert_contacts")?;
        let mut s = lock(&self.state);
        let now = chrono::Utc::now();
        let mut out = Vec::with_capacity(drafts.len());
        for d in drafts {
            let existing = s
                .contacts
                .values()
                .find(|c| c.email.as_ref() == Some(&d.email) && !c.archived)
                .map(|c| c.id.clone());
            let (id, created) = match existing {
                Some(id) => (id, false),
                None => {
                    s.next_id += 1;
                    let id = CrmRecordId::new(self.kind.clone(), format!("m{}", s.next_id));
                    s.contacts.insert(
                        id.clone(),
                        CrmContact::new(id.clone(), Some(d.email.clone()), now),
                    );
                    (id, true)
                }
            };
            if let Some(c) = s.contacts.get_mut(&id) {
                c.properties.extend(d.properties.clone());
                if let Some(u) = &d.cativa_user_id {
                    c.properties.insert("cativa_user_id".into(), u.to_string());
                }
                c.updated_at = now;
            }
            out.push(Ok(Provisioned { id, created }));
        }
        Ok(out)
    }

    async fn update_properties(
        &self,
        _tenant: &TenantId,
        updates: &[PropertyUpdate],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        self.call("write:update_properties")?;
        let mut s = lock(&self.state);
        let now = chrono::Utc::now();
        Ok(updates
            .iter()
            .map(|u| match s.contacts.get_mut(&u.id) {
                Some(c) => {
                    c.properties.extend(u.properties.clone());
                    c.updated_at = now;
                    Ok(())
                }
                None => Err(RemoteError::new(
                    "memory-crm",
                    RemoteErrorKind::NotFound,
                    format!("no contact {}", u.id),
                )
                .into()),
            })
            .collect())
    }

    async fn log_activities(
        &self,
        _tenant: &TenantId,
        activities: &[Activity],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        self.call("write:log_activities")?;
        let mut s = lock(&self.state);
        s.activities.extend_from_slice(activities);
        Ok(activities.iter().map(|_| Ok(())).collect())
    }

    fn api_calls(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
}

#[derive(Debug, Default)]
struct BadgeState {
    held: HashMap<CativaUserId, HashSet<BadgeId>>,
    keys: HashSet<String>,
    effects: u64,
    assigns: HashMap<(CativaUserId, BadgeId), u64>,
    calls: u64,
    fail_users: HashMap<CativaUserId, (RemoteErrorKind, u32)>,
    fail_calls: Option<(RemoteErrorKind, u32)>,
}

/// A badge sink that records the badges each user holds. A repeated idempotency key has no
/// second effect, like an idempotent API.
#[derive(Debug, Default)]
pub struct RecordingBadgeSink {
    state: Mutex<BadgeState>,
}

impl RecordingBadgeSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Badges a user holds through this sink.
    pub fn badges_of(&self, user: &CativaUserId) -> HashSet<BadgeId> {
        lock(&self.state)
            .held
            .get(user)
            .cloned()
            .unwrap_or_default()
    }

    /// Changes applied (each idempotency key counted once).
    pub fn effects(&self) -> u64 {
        lock(&self.state).effects
    }

    /// Calls made.
    pub fn calls(&self) -> u64 {
        lock(&self.state).calls
    }

    /// Whether a change under idempotency key `key` took effect.
    pub fn applied_key(&self, key: &str) -> bool {
        lock(&self.state).keys.contains(key)
    }

    /// Assignments of `badge` to `user` that took effect (a repeated key does not count).
    pub fn grants(&self, user: &CativaUserId, badge: &BadgeId) -> u64 {
        lock(&self.state)
            .assigns
            .get(&(user.clone(), badge.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// Makes the next `times` changes for `user` fail with `kind`.
    pub fn fail_user(&self, user: CativaUserId, kind: RemoteErrorKind, times: u32) {
        lock(&self.state).fail_users.insert(user, (kind, times));
    }

    /// Makes the next `times` whole calls fail with `kind`.
    pub fn fail_calls(&self, kind: RemoteErrorKind, times: u32) {
        lock(&self.state).fail_calls = Some((kind, times));
    }
}

#[async_trait]
impl BadgeSink for RecordingBadgeSink {
    async fn apply_badges(
        &self,
        _tenant: &TenantId,
        changes: &[BadgeChange],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        let mut s = lock(&self.state);
        s.calls += 1;
        if let Some((kind, n)) = s.fail_calls
            && n > 0
        {
            s.fail_calls = Some((kind, n - 1));
            return Err(RemoteError::new("recording", kind, "injected call failure").into());
        }
        let mut out = Vec::with_capacity(changes.len());
        for ch in changes {
            if let Some((kind, n)) = s.fail_users.get(&ch.user).copied()
                && n > 0
            {
                s.fail_users.insert(ch.user.clone(), (kind, n - 1));
                out.push(Err(RemoteError::new(
                    "recording",
                    kind,
                    format!("injected failure for {}", ch.user),
                )
                .into()));
                continue;
            }
            if s.keys.insert(ch.key.to_string()) {
                s.effects += 1;
                if ch.op == BadgeOp::Assign {
                    *s.assigns
                        .entry((ch.user.clone(), ch.badge.clone()))
                        .or_insert(0) += 1;
                }
                let held = s.held.entry(ch.user.clone()).or_default();
                match ch.op {
                    BadgeOp::Assign => held.insert(ch.badge.clone()),
                    BadgeOp::Remove => held.remove(&ch.badge),
                };
            }
            out.push(Ok(()));
        }
        Ok(out)
    }

    fn api_calls(&self) -> BTreeMap<String, u64> {
        [("badges".to_owned(), lock(&self.state).calls)].into()
    }
}

/// An inviter that records invites (one per idempotency key).
#[derive(Debug, Default)]
pub struct RecordingInviter {
    invites: Mutex<BTreeMap<String, Invite>>,
}

impl RecordingInviter {
    /// An empty inviter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Invites sent.
    pub fn invites(&self) -> Vec<Invite> {
        lock(&self.invites).values().cloned().collect()
    }
}

#[async_trait]
impl Inviter for RecordingInviter {
    async fn invite(
        &self,
        _tenant: &TenantId,
        invites: &[Invite],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        let mut m = lock(&self.invites);
        for i in invites {
            m.entry(i.key.to_string()).or_insert_with(|| i.clone());
        }
        Ok(invites.iter().map(|_| Ok(())).collect())
    }
}

/// Group members held in memory: a [`CommunityGroups`](crate::ports::CommunityGroups) for
/// tests. A group never [`set`](Self::set) has unknown members (`None`), so a reconcile
/// removes nothing from its list.
#[derive(Debug, Default)]
pub struct MemoryGroups {
    groups: Mutex<BTreeMap<String, std::collections::BTreeSet<Email>>>,
}

impl MemoryGroups {
    /// No group known.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `group`'s members.
    pub fn set(&self, group: &str, members: impl IntoIterator<Item = Email>) {
        lock(&self.groups).insert(group.to_owned(), members.into_iter().collect());
    }

    /// Forgets `group`'s members (unknown again).
    pub fn forget(&self, group: &str) {
        lock(&self.groups).remove(group);
    }
}

#[async_trait]
impl crate::ports::CommunityGroups for MemoryGroups {
    async fn members(
        &self,
        _tenant: &TenantId,
        group: &str,
    ) -> Result<Option<std::collections::BTreeSet<Email>>, Error> {
        Ok(lock(&self.groups).get(group).cloned())
    }
}
