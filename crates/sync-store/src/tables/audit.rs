//! `AuditLog`: an append-only log per tenant (compiled once per backend, see
//! `crate::tables`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sync_core::ports::{AuditEntry, AuditLog};
use sync_core::{Error, TenantId};

use super::{Sql, Store};
use crate::db_error::db;
use crate::rows::{AuditRow, audit_payload, check_tenant};
use crate::tables::Dialect;
use crate::time::{sql_limit, to_ns};

#[async_trait]
impl AuditLog for Store {
    async fn append_audit(&self, tenant: &TenantId, entries: &[AuditEntry]) -> Result<(), Error> {
        check_tenant(tenant)?;
        if entries.is_empty() {
            return Ok(());
        }
        sqlx::query(Sql::AUDIT_APPEND)
            .bind(tenant.as_str())
            .bind(audit_payload(entries)?)
            .execute(self.writer())
            .await
            .map_err(db("append audit", tenant))?;
        Ok(())
    }

    async fn recent_audit(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, Error> {
        check_tenant(tenant)?;
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at_ns, action, target, CAST(before_json AS TEXT) AS before_json, \
                 CAST(after_json AS TEXT) AS after_json, outcome, key, detail \
             FROM audit_log WHERE tenant = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(sql_limit(limit))
        .fetch_all(self.reader())
        .await
        .map_err(db("read audit", tenant))?;
        rows.iter().map(AuditRow::entry).collect()
    }

    async fn purge_audit(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error> {
        check_tenant(tenant)?;
        // One bounded batch, picked oldest first through (tenant, at_ns).
        let done = sqlx::query(
            "DELETE FROM audit_log WHERE seq IN ( \
                 SELECT seq FROM audit_log WHERE tenant = $1 AND at_ns < $2 \
                 ORDER BY at_ns, seq LIMIT $3)",
        )
        .bind(tenant.as_str())
        .bind(to_ns(older_than, "purge cutoff")?)
        .bind(sql_limit(limit))
        .execute(self.writer())
        .await
        .map_err(db("purge audit", tenant))?;
        Ok(done.rows_affected())
    }
}
