//! `Outbox`: planned actions, leased to workers (compiled once per backend, see
//! `crate::tables`).
//!
//! A claim is one transaction: check the worker's incarnation is the latest registered,
//! then pick due rows oldest first and lease them. On PostgreSQL the pick locks its rows
//! `FOR UPDATE SKIP LOCKED`, so concurrent workers never wait on each other nor take the
//! same item, and the incarnation check reads the worker row `FOR SHARE`, so a registration
//! of the same instance id in progress is waited for; on SQLite the transaction holds the
//! single writer.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sync_core::ports::{
    LeaseHolder, Outbox, OutboxBacklog, OutboxCounts, OutboxItem, OutboxStatus, Registration,
};
use sync_core::{Action, Error, IdempotencyKey, TenantId};

use super::{Sql, Store};
use crate::db_error::db;
use crate::rows::{
    BacklogRow, OutboxRow, backlog, check_tenant, counts, incarnation, lease_held, not_superseded,
    outbox_items, outbox_payload, to_json,
};
use crate::tables::Dialect;
use crate::time::{deadline_ns, opt_to_ns, sql_limit, to_ns};

/// The columns of an [`OutboxRow`].
pub(super) const COLUMNS: &str = "seq, key, CAST(action AS TEXT) AS action, status, attempts, last_error, leased_by, \
     lease_incarnation, lease_until_ns, not_before_ns, enqueued_at_ns, requeues";

/// Back to pending, claimable at once; the claim does not count as an attempt.
const GIVE_BACK: &str = "status = 'pending', leased_by = NULL, lease_incarnation = NULL, \
     lease_until_ns = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END";

/// The item is held by holder ($2, $3).
const HELD: &str = "status = 'in_flight' AND leased_by = $2 AND lease_incarnation = $3";

/// Registers a start of worker `$2`: its incarnation counts up. On PostgreSQL the upsert
/// locks the worker row until commit, so a claim of an older incarnation (which reads that
/// row `FOR SHARE`) waits, then sees it is superseded.
const REGISTER: &str = "INSERT INTO outbox_workers (tenant, worker, incarnation, registered_at_ns) \
     VALUES ($1, $2, 1, $3) \
     ON CONFLICT (tenant, worker) DO UPDATE SET incarnation = outbox_workers.incarnation + 1, \
         registered_at_ns = EXCLUDED.registered_at_ns \
     RETURNING incarnation";

/// Marks done at `$5` (the completion time [`Outbox::purge_done`] compares) the item held by
/// ($3, $4).
const COMPLETE: &str = "UPDATE outbox SET status = 'done', leased_by = NULL, lease_incarnation = NULL, \
         lease_until_ns = NULL, done_at_ns = $5 \
     WHERE tenant = $1 AND key = $2 AND status = 'in_flight' AND leased_by = $3 AND lease_incarnation = $4";

const FAIL: &str = "UPDATE outbox SET last_error = $4, leased_by = NULL, lease_incarnation = NULL, \
         lease_until_ns = NULL, \
         status = CASE WHEN CAST($5 AS BIGINT) IS NULL THEN 'failed' ELSE 'pending' END, \
         not_before_ns = COALESCE(CAST($5 AS BIGINT), not_before_ns), \
         failed_at_ns = CASE WHEN CAST($5 AS BIGINT) IS NULL THEN CAST($7 AS BIGINT) ELSE NULL END \
     WHERE tenant = $1 AND key = $2 AND status = 'in_flight' AND leased_by = $3 AND lease_incarnation = $6";

const BACKLOG: &str = "SELECT \
         COUNT(*) FILTER (WHERE status = 'pending' AND (not_before_ns IS NULL OR not_before_ns <= $2)), \
         COUNT(*) FILTER (WHERE status = 'pending' AND not_before_ns > $2), \
         COUNT(*) FILTER (WHERE status = 'in_flight' AND lease_until_ns > $2), \
         COUNT(*) FILTER (WHERE status = 'in_flight' AND (lease_until_ns IS NULL OR lease_until_ns <= $2)), \
         MAX(lease_until_ns) FILTER (WHERE status = 'in_flight' AND lease_until_ns > $2), \
         MIN(not_before_ns) FILTER (WHERE status = 'pending' AND not_before_ns > $2) \
     FROM outbox WHERE tenant = $1 AND status IN ('pending', 'in_flight')";

/// Deletes at most `$3` done items completed before `$2`, the earliest completed first
/// (through the partial index on (tenant, done_at_ns) of done items).
const PURGE_DONE: &str = "DELETE FROM outbox WHERE seq IN ( \
         SELECT seq FROM outbox WHERE tenant = $1 AND status = 'done' AND done_at_ns < $2 \
         ORDER BY done_at_ns, seq LIMIT $3)";

/// Leases due items to holder ($2, incarnation $6) until `$3`: pending items whose retry
/// time has come and items whose lease expired, oldest first, at most `$5`.
fn claim_sql() -> String {
    format!(
        "WITH picked AS (SELECT seq FROM outbox WHERE tenant = $1 \
             AND status IN ('pending', 'in_flight') \
             AND ((status = 'pending' AND (not_before_ns IS NULL OR not_before_ns <= $4)) \
               OR (status = 'in_flight' AND (lease_until_ns IS NULL OR lease_until_ns <= $4))) \
             ORDER BY seq LIMIT $5{skip_locked}) \
         UPDATE outbox SET status = 'in_flight', leased_by = $2, lease_incarnation = $6, \
             lease_until_ns = $3, attempts = attempts + 1 \
         WHERE seq IN (SELECT seq FROM picked) \
         RETURNING {COLUMNS}",
        skip_locked = Sql::SKIP_LOCKED,
    )
}

#[async_trait]
impl Outbox for Store {
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
        let done = sqlx::query(Sql::OUTBOX_ENQUEUE)
            .bind(tenant.as_str())
            .bind(outbox_payload(actions)?)
            .bind(to_ns(now, "enqueue time")?)
            .execute(self.writer())
            .await
            .map_err(db("enqueue", tenant))?;
        Ok(done.rows_affected())
    }

    async fn register_worker(
        &self,
        tenant: &TenantId,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<Registration, Error> {
        check_tenant(tenant)?;
        let mut tx = self.begin_write("register worker", tenant).await?;
        let (latest,): (i64,) = sqlx::query_as(REGISTER)
            .bind(tenant.as_str())
            .bind(worker)
            .bind(to_ns(now, "registration time")?)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("register worker", tenant))?;
        // Claims of earlier incarnations go back to pending at once.
        let taken = sqlx::query(&format!(
            "UPDATE outbox SET {GIVE_BACK} WHERE tenant = $1 AND status = 'in_flight' \
             AND leased_by = $2 AND lease_incarnation < $3"
        ))
        .bind(tenant.as_str())
        .bind(worker)
        .bind(latest)
        .execute(&mut *tx)
        .await
        .map_err(db("take back claims", tenant))?;
        tx.commit().await.map_err(db("register worker", tenant))?;
        let mut registration =
            Registration::new(LeaseHolder::new(worker, u64::try_from(latest).unwrap_or(0)));
        registration.taken_back = taken.rows_affected();
        Ok(registration)
    }

    async fn claim(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        limit: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, Error> {
        check_tenant(tenant)?;
        // One transaction: no registration slips between the check and the claim.
        let mut tx = self.begin_write("claim outbox items", tenant).await?;
        let latest: Option<(i64,)> = sqlx::query_as(&format!(
            "SELECT incarnation FROM outbox_workers WHERE tenant = $1 AND worker = $2{}",
            Sql::FOR_SHARE
        ))
        .bind(tenant.as_str())
        .bind(&holder.worker)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("claim outbox items", tenant))?;
        not_superseded(latest.map(|(n,)| n), holder)?;
        let rows: Vec<OutboxRow> = sqlx::query_as(&claim_sql())
            .bind(tenant.as_str())
            .bind(&holder.worker)
            .bind(deadline_ns(now, lease)?)
            .bind(to_ns(now, "claim time")?)
            .bind(sql_limit(limit))
            .bind(incarnation(holder))
            .fetch_all(&mut *tx)
            .await
            .map_err(db("claim outbox items", tenant))?;
        tx.commit()
            .await
            .map_err(db("claim outbox items", tenant))?;
        outbox_items(rows)
    }

    async fn renew(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        keys: &[IdempotencyKey],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        check_tenant(tenant)?;
        if keys.is_empty() {
            return Ok(0);
        }
        let keys: Vec<&str> = keys.iter().map(IdempotencyKey::as_str).collect();
        let done = sqlx::query(&format!(
            "UPDATE outbox SET lease_until_ns = $4 WHERE tenant = $1 AND {HELD} AND key IN ({})",
            Sql::text_elements("$5")
        ))
        .bind(tenant.as_str())
        .bind(&holder.worker)
        .bind(incarnation(holder))
        .bind(deadline_ns(now, lease)?)
        .bind(to_json(&keys, "outbox keys")?)
        .execute(self.writer())
        .await
        .map_err(db("renew outbox leases", tenant))?;
        Ok(done.rows_affected())
    }

    async fn release(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        keys: Option<&[IdempotencyKey]>,
        _now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        check_tenant(tenant)?;
        let all = format!("UPDATE outbox SET {GIVE_BACK} WHERE tenant = $1 AND {HELD}");
        let query = match keys {
            Some(keys) => {
                let keys: Vec<&str> = keys.iter().map(IdempotencyKey::as_str).collect();
                let some = format!("{all} AND key IN ({})", Sql::text_elements("$4"));
                sqlx::query(&some)
                    .bind(tenant.as_str())
                    .bind(&holder.worker)
                    .bind(incarnation(holder))
                    .bind(to_json(&keys, "outbox keys")?)
                    .execute(self.writer())
                    .await
            }
            None => {
                sqlx::query(&all)
                    .bind(tenant.as_str())
                    .bind(&holder.worker)
                    .bind(incarnation(holder))
                    .execute(self.writer())
                    .await
            }
        };
        let done = query.map_err(db("release outbox claims", tenant))?;
        Ok(done.rows_affected())
    }

    async fn complete(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        check_tenant(tenant)?;
        let done = sqlx::query(COMPLETE)
            .bind(tenant.as_str())
            .bind(key.as_str())
            .bind(&holder.worker)
            .bind(incarnation(holder))
            .bind(to_ns(now, "completion time")?)
            .execute(self.writer())
            .await
            .map_err(db("complete outbox item", tenant))?;
        lease_held(done.rows_affected(), key, holder)
    }

    async fn fail(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        holder: &LeaseHolder,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        check_tenant(tenant)?;
        let done = sqlx::query(FAIL)
            .bind(tenant.as_str())
            .bind(key.as_str())
            .bind(&holder.worker)
            .bind(error)
            .bind(opt_to_ns(retry_at, "retry time")?)
            .bind(incarnation(holder))
            .bind(to_ns(now, "failure time")?)
            .execute(self.writer())
            .await
            .map_err(db("fail outbox item", tenant))?;
        lease_held(done.rows_affected(), key, holder)
    }

    async fn purge_done(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error> {
        check_tenant(tenant)?;
        let done = sqlx::query(PURGE_DONE)
            .bind(tenant.as_str())
            .bind(to_ns(older_than, "purge cutoff")?)
            .bind(sql_limit(limit))
            .execute(self.writer())
            .await
            .map_err(db("purge done outbox items", tenant))?;
        Ok(done.rows_affected())
    }

    async fn outbox_counts(&self, tenant: &TenantId) -> Result<OutboxCounts, Error> {
        check_tenant(tenant)?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT CASE WHEN dismissed_at_ns IS NOT NULL THEN 'dismissed' ELSE status END AS s, \
                 COUNT(*) FROM outbox WHERE tenant = $1 GROUP BY 1",
        )
        .bind(tenant.as_str())
        .fetch_all(self.reader())
        .await
        .map_err(db("count outbox items", tenant))?;
        counts(rows)
    }

    async fn outbox_backlog(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
    ) -> Result<OutboxBacklog, Error> {
        check_tenant(tenant)?;
        let row: BacklogRow = sqlx::query_as(BACKLOG)
            .bind(tenant.as_str())
            .bind(to_ns(now, "backlog time")?)
            .fetch_one(self.reader())
            .await
            .map_err(db("count outbox backlog", tenant))?;
        Ok(backlog(row))
    }

    async fn list_outbox(
        &self,
        tenant: &TenantId,
        status: OutboxStatus,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, Error> {
        check_tenant(tenant)?;
        let rows: Vec<OutboxRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE tenant = $1 AND status = $2 ORDER BY seq LIMIT $3"
        ))
        .bind(tenant.as_str())
        .bind(status.as_str())
        .bind(sql_limit(limit))
        .fetch_all(self.reader())
        .await
        .map_err(db("list outbox items", tenant))?;
        outbox_items(rows)
    }
}
