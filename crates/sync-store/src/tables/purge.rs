//! `TenantPurge`: every row of one tenant deleted (or counted) in one transaction, then the
//! purge recorded as an operator action with counts only (compiled once per backend, see
//! `crate::tables`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sync_core::ports::{PURGE_ACTION, PurgeCounts, PurgeMode, TenantPurge};
use sync_core::{Error, TenantId};

use super::Store;
use crate::db_error::db;
use crate::rows::check_tenant;
use crate::time::to_ns;

/// The field of [`PurgeCounts`] a table counts into.
type Field = fn(&mut PurgeCounts) -> &mut u64;

/// Every table with a `tenant` column, with the field of [`PurgeCounts`] it counts into.
/// Badge grants belong to their mapping rows and are deleted first without a count of
/// their own.
const TABLES: [(&str, Option<Field>); 13] = [
    ("badge_grants", None),
    ("mappings", Some(|c| &mut c.mappings)),
    ("outbox", Some(|c| &mut c.outbox)),
    ("outbox_workers", Some(|c| &mut c.workers)),
    ("deliveries", Some(|c| &mut c.deliveries)),
    ("audit_log", Some(|c| &mut c.audit)),
    ("checkpoints", Some(|c| &mut c.checkpoints)),
    ("leader_leases", Some(|c| &mut c.leases)),
    ("operator_actions", Some(|c| &mut c.operator_actions)),
    ("run_history", Some(|c| &mut c.runs)),
    ("credential_checks", Some(|c| &mut c.credentials_checks)),
    ("webhook_counts", Some(|c| &mut c.webhook_counts)),
    ("crm_credentials", Some(|c| &mut c.credentials)),
];

#[async_trait]
impl TenantPurge for Store {
    async fn purge_tenant(
        &self,
        tenant: &TenantId,
        mode: PurgeMode,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PurgeCounts, Error> {
        check_tenant(tenant)?;
        let at = to_ns(now, "purge time")?;
        let mut tx = self.begin_write("purge tenant", tenant).await?;
        let mut counts = PurgeCounts::default();
        for (table, field) in TABLES {
            let n = if mode == PurgeMode::DryRun {
                let n: i64 =
                    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE tenant = $1"))
                        .bind(tenant.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db("count tenant rows", tenant))?;
                u64::try_from(n).unwrap_or(0)
            } else {
                sqlx::query(&format!("DELETE FROM {table} WHERE tenant = $1"))
                    .bind(tenant.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db("purge tenant", tenant))?
                    .rows_affected()
            };
            if let Some(field) = field {
                *field(&mut counts) = n;
            }
        }
        if mode == PurgeMode::DryRun {
            // Nothing changed: end the read without a commit.
            tx.rollback()
                .await
                .map_err(db("count tenant rows", tenant))?;
            return Ok(counts);
        }
        sqlx::query(
            "INSERT INTO operator_actions (tenant, at_ns, actor, action, keys, note) \
             VALUES ($1, $2, $3, $4, '[]', $5)",
        )
        .bind(tenant.as_str())
        .bind(at)
        .bind(actor)
        .bind(PURGE_ACTION)
        .bind(counts.note())
        .execute(&mut *tx)
        .await
        .map_err(db("record the purge", tenant))?;
        tx.commit().await.map_err(db("purge tenant", tenant))?;
        Ok(counts)
    }
}
