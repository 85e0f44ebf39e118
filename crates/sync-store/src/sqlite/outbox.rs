//! `Outbox` on SQLite: claims are one `UPDATE ... RETURNING` on the single writer.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sync_core::ports::{Outbox, OutboxCounts, OutboxItem, OutboxStatus};
use sync_core::{Action, Error, IdempotencyKey, TenantId};

use super::{SqliteStore, db};
use crate::rows::{OutboxRow, check_tenant, counts, lease_held, outbox_items, outbox_payload};
use crate::time::{deadline_ns, opt_to_ns, sql_limit, to_ns};

const COLUMNS: &str = "seq, key, action, status, attempts, last_error, leased_by, lease_until_ns, not_before_ns, enqueued_at_ns";

#[async_trait]
impl Outbox for SqliteStore {
    async fn enqueue(
        &self,
        tenant: &TenantId,
        actions: &[Action],
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        check_tenant(tenant)?;
        if actions.is_empty() {
            return Ok(0);
        }
        // `WHERE true` resolves SQLite's parsing ambiguity between a join and an upsert.
        let done = sqlx::query(
            "INSERT INTO outbox (tenant, key, kind, action, status, attempts, enqueued_at_ns) \
             SELECT ?1, j.value ->> '$.key', j.value ->> '$.kind', j.value ->> '$.action', 'pending', 0, ?3 \
             FROM json_each(?2) AS j WHERE true ORDER BY j.key \
             ON CONFLICT (tenant, key) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(outbox_payload(actions)?)
        .bind(to_ns(now, "enqueue time")?)
        .execute(&self.writer)
        .await
        .map_err(db("enqueue", tenant))?;
        Ok(done.rows_affected())
    }

    async fn claim(
        &self,
        tenant: &TenantId,
        worker: &str,
        limit: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, Error> {
        check_tenant(tenant)?;
        let now_ns = to_ns(now, "claim time")?;
        let rows: Vec<OutboxRow> = sqlx::query_as(&format!(
            "UPDATE outbox SET status = 'in_flight', leased_by = ?2, lease_until_ns = ?3, attempts = attempts + 1 \
             WHERE seq IN (SELECT seq FROM outbox WHERE tenant = ?1 AND \
                 status IN ('pending', 'in_flight') AND ((status = 'pending' AND (not_before_ns IS NULL OR not_before_ns <= ?4)) \
                  OR (status = 'in_flight' AND (lease_until_ns IS NULL OR lease_until_ns <= ?4))) \
                 ORDER BY seq LIMIT ?5) \
             RETURNING {COLUMNS}"
        ))
        .bind(tenant.as_str())
        .bind(worker)
        .bind(deadline_ns(now, lease)?)
        .bind(now_ns)
        .bind(sql_limit(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(db("claim outbox items", tenant))?;
        outbox_items(rows)
    }

    async fn complete(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        worker: &str,
        _now: DateTime<Utc>,
    ) -> Result<(), Error> {
        check_tenant(tenant)?;
        let done = sqlx::query(
            "UPDATE outbox SET status = 'done', leased_by = NULL, lease_until_ns = NULL \
             WHERE tenant = ?1 AND key = ?2 AND status = 'in_flight' AND leased_by = ?3",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .bind(worker)
        .execute(&self.writer)
        .await
        .map_err(db("complete outbox item", tenant))?;
        lease_held(done.rows_affected(), key, worker)
    }

    async fn fail(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        worker: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        _now: DateTime<Utc>,
    ) -> Result<(), Error> {
        check_tenant(tenant)?;
        let done = sqlx::query(
            "UPDATE outbox SET last_error = ?4, leased_by = NULL, lease_until_ns = NULL, \
                 status = CASE WHEN ?5 IS NULL THEN 'failed' ELSE 'pending' END, \
                 not_before_ns = COALESCE(?5, not_before_ns) \
             WHERE tenant = ?1 AND key = ?2 AND status = 'in_flight' AND leased_by = ?3",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .bind(worker)
        .bind(error)
        .bind(opt_to_ns(retry_at, "retry time")?)
        .execute(&self.writer)
        .await
        .map_err(db("fail outbox item", tenant))?;
        lease_held(done.rows_affected(), key, worker)
    }

    async fn outbox_counts(&self, tenant: &TenantId) -> Result<OutboxCounts, Error> {
        check_tenant(tenant)?;
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM outbox WHERE tenant = ?1 GROUP BY status")
                .bind(tenant.as_str())
                .fetch_all(&self.reader)
                .await
                .map_err(db("count outbox items", tenant))?;
        counts(rows)
    }

    async fn list_outbox(
        &self,
        tenant: &TenantId,
        status: OutboxStatus,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, Error> {
        check_tenant(tenant)?;
        let rows: Vec<OutboxRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE tenant = ?1 AND status = ?2 ORDER BY seq LIMIT ?3"
        ))
        .bind(tenant.as_str())
        .bind(status.as_str())
        .bind(sql_limit(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db("list outbox items", tenant))?;
        outbox_items(rows)
    }
}
