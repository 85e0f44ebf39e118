//! Row shapes shared by both databases, and their decoding into domain values.
//!
//! Every decode checks what it reads (emails re-parsed, JSON re-validated, enums matched) and
//! reports a bad value as [`Error::CorruptRow`] naming the table and the column: a row edited
//! by hand or written by an incompatible version never panics the process.

use serde::de::DeserializeOwned;
use sync_core::ports::{
    AuditEntry, AuditOutcome, LeaseHolder, OutboxBacklog, OutboxCounts, OutboxItem, OutboxStatus,
};
use sync_core::{
    Action, BadgeGrant, BadgeId, CativaUserId, CommunityProfile, CrmKind, CrmRecordId, Cursor,
    Email, Error, IdempotencyKey, Mapping, Provenance, RuleId, TenantId,
};

use crate::time::{from_ns, opt_from_ns};

/// Refuses the empty tenant id, as every store does.
pub(crate) fn check_tenant(tenant: &TenantId) -> Result<(), Error> {
    if tenant.as_str().is_empty() {
        return Err(Error::UnknownTenant(tenant.clone()));
    }
    Ok(())
}

pub(crate) fn corrupt(table: &str, detail: impl Into<String>) -> Error {
    Error::CorruptRow {
        table: table.to_owned(),
        detail: detail.into(),
    }
}

fn parse_json<T: DeserializeOwned>(table: &str, column: &str, raw: &str) -> Result<T, Error> {
    serde_json::from_str(raw).map_err(|e| {
        corrupt(
            table,
            format!("{column} is not valid JSON for its type: {e}"),
        )
    })
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::store(format!("encode {what}"), e, false))
}

/// Decodes a stored email, which must already be in normalized form.
pub(crate) fn stored_email(table: &str, raw: &str) -> Result<Email, Error> {
    match Email::parse(raw) {
        Ok(email) if email.as_str() == raw => Ok(email),
        Ok(_) => Err(corrupt(
            table,
            format!("email {raw:?} is not normalized (trimmed, lowercase)"),
        )),
        Err(e) => Err(corrupt(table, format!("email {raw:?} is invalid: {e}"))),
    }
}

crate::from_row::from_row! {
    /// One mapping row joined with at most one of its badge grants (`g_*` are null when the
    /// mapping has none). Rows of one mapping come consecutively, grants in position order.
    #[derive(Debug)]
    pub(crate) struct MappingRow {
        pub id: i64,
        pub email: String,
        pub cativa_user_id: Option<String>,
        pub crm_kind: Option<String>,
        pub crm_id: Option<String>,
        pub profile: Option<String>,
        pub invited_at_ns: Option<i64>,
        pub updated_at_ns: i64,
        pub generation: i64,
        pub g_badge: Option<String>,
        pub g_provenance: Option<String>,
        pub g_rule: Option<String>,
        pub g_source: Option<String>,
        pub g_granted_at_ns: Option<i64>,
    }
}

impl MappingRow {
    fn mapping(&self) -> Result<Mapping, Error> {
        let mut m = Mapping::new(
            stored_email("mappings", &self.email)?,
            from_ns(self.updated_at_ns),
        );
        m.cativa_user_id = self.cativa_user_id.as_deref().map(CativaUserId::new);
        m.crm_id = match (&self.crm_kind, &self.crm_id) {
            (Some(kind), Some(id)) => Some(CrmRecordId::new(CrmKind::from_name(kind), id.clone())),
            (None, None) => None,
            _ => {
                return Err(corrupt(
                    "mappings",
                    format!(
                        "row {}: crm_kind and crm_id must be both set or both null",
                        self.id
                    ),
                ));
            }
        };
        m.profile = self
            .profile
            .as_deref()
            .map(|raw| parse_json::<CommunityProfile>("mappings", "profile", raw))
            .transpose()?;
        m.invited_at = opt_from_ns(self.invited_at_ns);
        m.generation = u64::try_from(self.generation).map_err(|_| {
            corrupt(
                "mappings",
                format!("row {}: negative generation {}", self.id, self.generation),
            )
        })?;
        Ok(m)
    }

    fn grant(&self) -> Result<Option<BadgeGrant>, Error> {
        let Some(badge) = &self.g_badge else {
            return Ok(None);
        };
        let provenance = match (self.g_provenance.as_deref(), &self.g_rule, &self.g_source) {
            (Some("sync"), Some(rule), _) => Provenance::Sync {
                rule: RuleId::new(rule.clone()),
            },
            (Some("external"), _, Some(source)) => Provenance::external(source.clone()),
            (other, _, _) => {
                return Err(corrupt(
                    "badge_grants",
                    format!(
                        "grant of {badge} on mapping {}: provenance {other:?} lacks its rule id or source",
                        self.id
                    ),
                ));
            }
        };
        let granted_at = self.g_granted_at_ns.ok_or_else(|| {
            corrupt(
                "badge_grants",
                format!("grant of {badge} on mapping {} has no granted_at", self.id),
            )
        })?;
        Ok(Some(BadgeGrant::new(
            BadgeId::new(badge.clone()),
            provenance,
            from_ns(granted_at),
        )))
    }
}

/// Folds joined rows into mappings, keeping the order of first appearance.
pub(crate) fn assemble_mappings(rows: &[MappingRow]) -> Result<Vec<Mapping>, Error> {
    let mut out: Vec<Mapping> = Vec::new();
    let mut current: Option<i64> = None;
    for row in rows {
        if current != Some(row.id) {
            out.push(row.mapping()?);
            current = Some(row.id);
        }
        if let (Some(grant), Some(last)) = (row.grant()?, out.last_mut()) {
            last.badges.push(grant);
        }
    }
    Ok(out)
}

crate::from_row::from_row! {
    /// The identity keys of a mapping row, for resolving upserts.
    #[derive(Debug)]
    pub(crate) struct KeyRow {
        pub id: i64,
        pub email: String,
        pub cativa_user_id: Option<String>,
        pub crm_kind: Option<String>,
        pub crm_id: Option<String>,
    }
}

crate::from_row::from_row! {
    /// An outbox row.
    #[derive(Debug)]
    pub(crate) struct OutboxRow {
        pub seq: i64,
        pub key: String,
        pub action: String,
        pub status: String,
        pub attempts: i64,
        pub last_error: Option<String>,
        pub leased_by: Option<String>,
        pub lease_incarnation: Option<i64>,
        pub lease_until_ns: Option<i64>,
        pub not_before_ns: Option<i64>,
        pub enqueued_at_ns: i64,
        pub requeues: i64,
    }
}

impl OutboxRow {
    pub(crate) fn item(&self) -> Result<OutboxItem, Error> {
        let action: Action = parse_json("outbox", "action", &self.action)?;
        if action.key.as_str() != self.key {
            return Err(corrupt(
                "outbox",
                format!(
                    "item {}: the action's key differs from the key column {}",
                    self.seq, self.key
                ),
            ));
        }
        let status = OutboxStatus::parse(&self.status).ok_or_else(|| {
            corrupt(
                "outbox",
                format!("item {}: unknown status {:?}", self.seq, self.status),
            )
        })?;
        let attempts = u32::try_from(self.attempts).map_err(|_| {
            corrupt(
                "outbox",
                format!("item {}: attempts {} out of range", self.seq, self.attempts),
            )
        })?;
        let mut item = OutboxItem::new(action, from_ns(self.enqueued_at_ns));
        item.status = status;
        item.attempts = attempts;
        item.last_error = self.last_error.clone();
        item.leased_by = self.leased_by.clone();
        item.lease_incarnation = self.lease_incarnation.and_then(|n| u64::try_from(n).ok());
        item.lease_until = opt_from_ns(self.lease_until_ns);
        item.not_before = opt_from_ns(self.not_before_ns);
        item.requeues = u32::try_from(self.requeues).unwrap_or(u32::MAX);
        Ok(item)
    }
}

/// Decodes outbox rows, oldest first.
pub(crate) fn outbox_items(mut rows: Vec<OutboxRow>) -> Result<Vec<OutboxItem>, Error> {
    rows.sort_by_key(|r| r.seq);
    rows.iter().map(OutboxRow::item).collect()
}

crate::from_row::from_row! {
    /// An audit row.
    #[derive(Debug)]
    pub(crate) struct AuditRow {
        pub at_ns: i64,
        pub action: String,
        pub target: String,
        pub before_json: Option<String>,
        pub after_json: Option<String>,
        pub outcome: String,
        pub key: String,
        pub detail: Option<String>,
    }
}

impl AuditRow {
    pub(crate) fn entry(&self) -> Result<AuditEntry, Error> {
        let outcome: AuditOutcome =
            serde_json::from_value(serde_json::Value::String(self.outcome.clone()))
                .map_err(|_| corrupt("audit_log", format!("unknown outcome {:?}", self.outcome)))?;
        let mut entry = AuditEntry::new(
            from_ns(self.at_ns),
            self.action.clone(),
            self.target.clone(),
            outcome,
            IdempotencyKey::from_raw(self.key.clone()),
        );
        entry.before = self
            .before_json
            .as_deref()
            .map(|raw| parse_json("audit_log", "before", raw))
            .transpose()?;
        entry.after = self
            .after_json
            .as_deref()
            .map(|raw| parse_json("audit_log", "after", raw))
            .transpose()?;
        entry.detail = self.detail.clone();
        Ok(entry)
    }
}

/// The stored name of an audit outcome (its serde name).
pub(crate) fn outcome_name(outcome: AuditOutcome) -> Result<String, Error> {
    match serde_json::to_value(outcome) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(Error::store(
            "encode audit outcome",
            format!("{outcome:?} has no stored name"),
            false,
        )),
    }
}

crate::from_row::from_row! {
    /// A checkpoint row.
    #[derive(Debug)]
    pub(crate) struct CheckpointRow {
        pub modified_at_ns: i64,
        pub last_id: Option<String>,
    }
}

impl CheckpointRow {
    pub(crate) fn cursor(self) -> Cursor {
        Cursor {
            modified_at: from_ns(self.modified_at_ns),
            last_id: self.last_id,
        }
    }
}

/// The JSON payload of one audit entry for bulk inserts.
pub(crate) fn audit_payload(entries: &[AuditEntry]) -> Result<String, Error> {
    let mut rows = Vec::with_capacity(entries.len());
    for e in entries {
        rows.push(serde_json::json!({
            "at": crate::time::to_ns(e.at, "audit time")?,
            "action": e.action,
            "target": e.target,
            "before": e.before.as_ref().map(|v| to_json(v, "audit before")).transpose()?,
            "after": e.after.as_ref().map(|v| to_json(v, "audit after")).transpose()?,
            "outcome": outcome_name(e.outcome)?,
            "key": e.key.as_str(),
            "detail": e.detail,
        }));
    }
    to_json(&rows, "audit entries")
}

/// The JSON payload of actions for bulk enqueue.
pub(crate) fn outbox_payload(actions: &[Action]) -> Result<String, Error> {
    let mut rows = Vec::with_capacity(actions.len());
    for a in actions {
        rows.push(serde_json::json!({
            "key": a.key.as_str(),
            "kind": a.kind.name(),
            "action": to_json(a, "outbox action")?,
        }));
    }
    to_json(&rows, "outbox actions")
}

/// `Ok` if one row was updated, else the caller no longer held the lease.
pub(crate) fn lease_held(
    rows_affected: u64,
    key: &IdempotencyKey,
    holder: &LeaseHolder,
) -> Result<(), Error> {
    if rows_affected == 1 {
        Ok(())
    } else {
        Err(Error::LeaseLost {
            key: key.to_string(),
            worker: holder.to_string(),
        })
    }
}

/// The incarnation as stored (a fencing token far below `i64::MAX` in practice).
pub(crate) fn incarnation(holder: &LeaseHolder) -> i64 {
    i64::try_from(holder.incarnation).unwrap_or(i64::MAX)
}

/// `Err(Superseded)` when the latest registered incarnation is newer than the holder's.
pub(crate) fn not_superseded(latest: Option<i64>, holder: &LeaseHolder) -> Result<(), Error> {
    match latest {
        Some(latest) if latest > incarnation(holder) => Err(Error::Superseded {
            worker: holder.worker.clone(),
            incarnation: holder.incarnation,
        }),
        _ => Ok(()),
    }
}

/// A backlog row: due, retry later, held live, held expired, latest live lease end,
/// earliest retry time.
pub(crate) type BacklogRow = (i64, i64, i64, i64, Option<i64>, Option<i64>);

/// Decodes a backlog row.
pub(crate) fn backlog(row: BacklogRow) -> OutboxBacklog {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut b = OutboxBacklog::default();
    b.pending = n(row.0);
    b.retry_later = n(row.1);
    b.held_live = n(row.2);
    b.held_expired = n(row.3);
    b.held_until = row.4.map(from_ns);
    b.next_retry_at = row.5.map(from_ns);
    b
}

/// Folds `(status, count)` rows into counts.
pub(crate) fn counts(rows: Vec<(String, i64)>) -> Result<OutboxCounts, Error> {
    let mut counts = OutboxCounts::default();
    for (status, n) in rows {
        let n = u64::try_from(n).unwrap_or_default();
        if status == "dismissed" {
            counts.dismissed += n;
            continue;
        }
        match OutboxStatus::parse(&status) {
            Some(OutboxStatus::Pending) => counts.pending += n,
            Some(OutboxStatus::InFlight) => counts.in_flight += n,
            Some(OutboxStatus::Done) => counts.done += n,
            Some(OutboxStatus::Failed) => counts.failed += n,
            _ => return Err(corrupt("outbox", format!("unknown status {status:?}"))),
        }
    }
    Ok(counts)
}
