//! `Outbox` on PostgreSQL: claims lock their rows with `FOR UPDATE SKIP LOCKED`, so
//! concurrent workers never wait on each other nor take the same item.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sync_core::ports::{Outbox, OutboxCounts, OutboxItem, OutboxStatus};
use sync_core::{Action, Error, IdempotencyKey, TenantId};

use super::{PostgresStore, db};
use crate::rows::{OutboxRow, check_tenant, counts, lease_held, to_json};
use crate::time::{deadline_ns, opt_to_ns, sql_limit, to_ns};

macro_rules! returning {
    ($prefix:literal) => {
        concat!(
            $prefix,
            "seq, key, action::text AS action, status, attempts, last_error, leased_by, lease_until_ns, not_before_ns, enqueued_at_ns"
        )
    };
}

const CLAIM: &str = concat!(
    "WITH picked AS (SELECT seq FROM outbox WHERE tenant = $1 AND \
         status IN ('pending', 'in_flight') AND ((status = 'pending' AND (not_before_ns IS NULL OR not_before_ns <= $4)) \
          OR (status = 'in_flight' AND (lease_until_ns IS NULL OR lease_until_ns <= $4))) \
         ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED) \
     UPDATE outbox o SET status = 'in_flight', leased_by = $2, lease_until_ns = $3, attempts = o.attempts + 1 \
     FROM picked WHERE o.seq = picked.seq ",
    returning!("RETURNING o.")
);

#[async_trait]
impl Outbox for PostgresStore {
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
        let keys: Vec<&str> = actions.iter().map(|a| a.key.as_str()).collect();
        let kinds: Vec<&str> = actions.iter().map(|a| a.kind.name()).collect();
        let bodies = actions
            .iter()
            .map(|a| to_json(a, "outbox action"))
            .collect::<Result<Vec<_>, _>>()?;
        let done = sqlx::query(
            "INSERT INTO outbox (tenant, key, kind, action, status, attempts, enqueued_at_ns) \
             SELECT $1, j.key, j.kind, j.action::jsonb, 'pending', 0, $5 \
             FROM UNNEST($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS j(key, kind, action, ord) ORDER BY j.ord \
             ON CONFLICT (tenant, key) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(&keys)
        .bind(&kinds)
        .bind(&bodies)
        .bind(to_ns(now, "enqueue time")?)
        .execute(&self.pool)
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
        let rows: Vec<OutboxRow> = sqlx::query_as(CLAIM)
            .bind(tenant.as_str())
            .bind(worker)
            .bind(deadline_ns(now, lease)?)
            .bind(to_ns(now, "claim time")?)
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db("claim outbox items", tenant))?;
        crate::rows::outbox_items(rows)
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
             WHERE tenant = $1 AND key = $2 AND status = 'in_flight' AND leased_by = $3",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .bind(worker)
        .execute(&self.pool)
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
            "UPDATE outbox SET last_error = $4, leased_by = NULL, lease_until_ns = NULL, \
                 status = CASE WHEN $5::bigint IS NULL THEN 'failed' ELSE 'pending' END, \
                 not_before_ns = COALESCE($5::bigint, not_before_ns) \
             WHERE tenant = $1 AND key = $2 AND status = 'in_flight' AND leased_by = $3",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .bind(worker)
        .bind(error)
        .bind(opt_to_ns(retry_at, "retry time")?)
        .execute(&self.pool)
        .await
        .map_err(db("fail outbox item", tenant))?;
        lease_held(done.rows_affected(), key, worker)
    }

    async fn outbox_counts(&self, tenant: &TenantId) -> Result<OutboxCounts, Error> {
        check_tenant(tenant)?;
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM outbox WHERE tenant = $1 GROUP BY status")
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
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
        let rows: Vec<OutboxRow> = sqlx::query_as(concat!(
            returning!("SELECT "),
            " FROM outbox WHERE tenant = $1 AND status = $2 ORDER BY seq LIMIT $3"
        ))
        .bind(tenant.as_str())
        .bind(status.as_str())
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db("list outbox items", tenant))?;
        crate::rows::outbox_items(rows)
    }
}
