//! `AuditLog` on PostgreSQL.

use async_trait::async_trait;
use sync_core::ports::{AuditEntry, AuditLog};
use sync_core::{Error, TenantId};

use super::{PostgresStore, db};
use crate::rows::{AuditRow, audit_payload, check_tenant};
use crate::time::sql_limit;

#[async_trait]
impl AuditLog for PostgresStore {
    async fn append_audit(&self, tenant: &TenantId, entries: &[AuditEntry]) -> Result<(), Error> {
        check_tenant(tenant)?;
        if entries.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO audit_log (tenant, at_ns, action, target, before_json, after_json, outcome, key, detail) \
             SELECT $1, j.at, j.action, j.target, j.before::jsonb, j.after::jsonb, j.outcome, j.key, j.detail \
             FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (at bigint, action text, target text, before text, \
                 after text, outcome text, key text, detail text)) \
                 WITH ORDINALITY AS j(at, action, target, before, after, outcome, key, detail, ord) \
             ORDER BY j.ord",
        )
        .bind(tenant.as_str())
        .bind(audit_payload(entries)?)
        .execute(&self.pool)
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
            "SELECT at_ns, action, target, before_json::text AS before_json, after_json::text AS after_json, outcome, key, \
                 detail FROM audit_log WHERE tenant = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db("read audit", tenant))?;
        rows.iter().map(AuditRow::entry).collect()
    }
}
