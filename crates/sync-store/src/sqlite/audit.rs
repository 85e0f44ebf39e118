//! `AuditLog` on SQLite.

use async_trait::async_trait;
use sync_core::ports::{AuditEntry, AuditLog};
use sync_core::{Error, TenantId};

use super::{SqliteStore, db};
use crate::rows::{AuditRow, audit_payload, check_tenant};
use crate::time::sql_limit;

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append_audit(&self, tenant: &TenantId, entries: &[AuditEntry]) -> Result<(), Error> {
        check_tenant(tenant)?;
        if entries.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO audit_log (tenant, at_ns, action, target, before_json, after_json, outcome, key, detail) \
             SELECT ?1, j.value ->> '$.at', j.value ->> '$.action', j.value ->> '$.target', j.value ->> '$.before', \
                 j.value ->> '$.after', j.value ->> '$.outcome', j.value ->> '$.key', j.value ->> '$.detail' \
             FROM json_each(?2) AS j ORDER BY j.key",
        )
        .bind(tenant.as_str())
        .bind(audit_payload(entries)?)
        .execute(&self.writer)
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
            "SELECT at_ns, action, target, before_json, after_json, outcome, key, detail FROM audit_log \
             WHERE tenant = ?1 ORDER BY seq DESC LIMIT ?2",
        )
        .bind(tenant.as_str())
        .bind(sql_limit(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db("read audit", tenant))?;
        rows.iter().map(AuditRow::entry).collect()
    }
}
