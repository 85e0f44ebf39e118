//! `StatusStore`: failed work and the operator's actions on it, the last run of each mode,
//! the last credentials check and webhook delivery counts (compiled once per backend, see
//! `crate::tables`).
//!
//! Dismissal is a flag on a failed outbox row (`dismissed_at_ns`), not a status: the row
//! stays failed, so no claim ever takes it, and only requeue by key clears it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sync_core::ports::{
    CredentialsCheck, Dismissal, FailedFilter, FailedItem, LastRun, OperatorAction, Requeue,
    RunRecord, StatusStore, WebhookCounts, WebhookOutcome, hour_bucket,
};
use sync_core::{Error, IdempotencyKey, TenantId};

use super::outbox::COLUMNS;
use super::{Sql, Store};
use crate::db_error::db;
use crate::rows::{OutboxRow, check_tenant, corrupt, to_json};
use crate::tables::Dialect;
use crate::time::{from_ns, opt_from_ns, opt_to_ns, sql_limit, to_ns};

/// When a failed row failed (rows failed before this was recorded: when enqueued).
const FAILED_AT: &str = "COALESCE(failed_at_ns, enqueued_at_ns)";

/// The filter of [`FailedFilter`] over parameters `$2` (kind), `$3` (error prefix), `$4`
/// (failed at or after) and `$5` (failed before).
const MATCHES: &str = "tenant = $1 AND status = 'failed' \
     AND (CAST($2 AS TEXT) IS NULL OR kind = $2) \
     AND (CAST($3 AS TEXT) IS NULL OR substr(last_error, 1, length($3)) = $3) \
     AND (CAST($4 AS BIGINT) IS NULL OR COALESCE(failed_at_ns, enqueued_at_ns) >= $4) \
     AND (CAST($5 AS BIGINT) IS NULL OR COALESCE(failed_at_ns, enqueued_at_ns) < $5)";

/// Back to pending, attempts reset, claimable at once, no longer dismissed.
const REQUEUE: &str = "UPDATE outbox SET status = 'pending', attempts = 0, requeues = requeues + 1, not_before_ns = NULL, \
     failed_at_ns = NULL, dismissed_at_ns = NULL, dismissed_by = NULL, dismiss_note = NULL";

const APPEND_ACTION: &str = "INSERT INTO operator_actions (tenant, at_ns, actor, action, keys, note) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// A failed outbox row with its failure time and dismissal.
#[derive(Debug)]
struct FailedRow {
    row: OutboxRow,
    failed_at: i64,
    dismissed_at_ns: Option<i64>,
    dismissed_by: Option<String>,
    dismiss_note: Option<String>,
}

impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for FailedRow
where
    &'r str: sqlx::ColumnIndex<R>,
    OutboxRow: sqlx::FromRow<'r, R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            row: OutboxRow::from_row(row)?,
            failed_at: row.try_get("failed_at")?,
            dismissed_at_ns: row.try_get("dismissed_at_ns")?,
            dismissed_by: row.try_get("dismissed_by")?,
            dismiss_note: row.try_get("dismiss_note")?,
        })
    }
}

impl FailedRow {
    fn failed(&self) -> Result<FailedItem, Error> {
        let mut failed = FailedItem::new(self.row.item()?, from_ns(self.failed_at));
        failed.dismissed = self.dismissed_at_ns.map(|at| {
            Dismissal::new(
                from_ns(at),
                self.dismissed_by.clone().unwrap_or_default(),
                self.dismiss_note.clone().unwrap_or_default(),
            )
        });
        Ok(failed)
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    table: &str,
    column: &str,
    raw: &str,
) -> Result<T, Error> {
    serde_json::from_str(raw).map_err(|e| {
        corrupt(
            table,
            format!("{column} is not valid JSON for its type: {e}"),
        )
    })
}

impl Store {
    /// Requeues the matching rows inside `tx`, returning their keys.
    async fn requeue_rows(
        tx: &mut sqlx::Transaction<'static, super::Db>,
        tenant: &TenantId,
        which: &Requeue,
    ) -> Result<Vec<String>, Error> {
        let rows: Vec<(String,)> = match which {
            Requeue::Keys(keys) => {
                let keys: Vec<&str> = keys.iter().map(IdempotencyKey::as_str).collect();
                sqlx::query_as(&format!(
                    "{REQUEUE} WHERE tenant = $1 AND status = 'failed' AND key IN ({}) RETURNING key",
                    Sql::text_elements("$2")
                ))
                .bind(tenant.as_str())
                .bind(to_json(&keys, "outbox keys")?)
                .fetch_all(&mut **tx)
                .await
            }
            Requeue::Matching(filter) => {
                sqlx::query_as(&format!(
                    "{REQUEUE} WHERE {MATCHES} AND dismissed_at_ns IS NULL RETURNING key"
                ))
                .bind(tenant.as_str())
                .bind(filter.kind.as_deref())
                .bind(filter.reason_prefix.as_deref())
                .bind(opt_to_ns(filter.failed_after, "filter time")?)
                .bind(opt_to_ns(filter.failed_before, "filter time")?)
                .fetch_all(&mut **tx)
                .await
            }
            _ => return Ok(Vec::new()),
        }
        .map_err(db("requeue failed items", tenant))?;
        let mut keys: Vec<String> = rows.into_iter().map(|(k,)| k).collect();
        keys.sort();
        Ok(keys)
    }

    /// Appends one operator action inside `tx`.
    async fn append_action(
        tx: &mut sqlx::Transaction<'static, super::Db>,
        tenant: &TenantId,
        action: &OperatorAction,
    ) -> Result<(), Error> {
        sqlx::query(APPEND_ACTION)
            .bind(tenant.as_str())
            .bind(to_ns(action.at, "operator action time")?)
            .bind(&action.actor)
            .bind(&action.action)
            .bind(to_json(&action.keys, "operator action keys")?)
            .bind(action.note.as_deref())
            .execute(&mut **tx)
            .await
            .map_err(db("append operator action", tenant))?;
        Ok(())
    }
}

#[async_trait]
impl StatusStore for Store {
    async fn list_failed(
        &self,
        tenant: &TenantId,
        filter: &FailedFilter,
    ) -> Result<Vec<FailedItem>, Error> {
        check_tenant(tenant)?;
        let rows: Vec<FailedRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS}, {FAILED_AT} AS failed_at, dismissed_at_ns, dismissed_by, dismiss_note \
             FROM outbox WHERE {MATCHES} AND ($6 OR dismissed_at_ns IS NULL) \
             ORDER BY failed_at, seq LIMIT $7"
        ))
        .bind(tenant.as_str())
        .bind(filter.kind.as_deref())
        .bind(filter.reason_prefix.as_deref())
        .bind(opt_to_ns(filter.failed_after, "filter time")?)
        .bind(opt_to_ns(filter.failed_before, "filter time")?)
        .bind(filter.include_dismissed)
        .bind(sql_limit(filter.limit))
        .fetch_all(self.reader())
        .await
        .map_err(db("list failed items", tenant))?;
        rows.iter().map(FailedRow::failed).collect()
    }

    async fn requeue_failed(
        &self,
        tenant: &TenantId,
        which: &Requeue,
        actor: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        check_tenant(tenant)?;
        let mut tx = self.begin_write("requeue failed items", tenant).await?;
        let keys = Self::requeue_rows(&mut tx, tenant, which).await?;
        let moved = keys.len() as u64;
        let action = OperatorAction::new(now, actor, "requeue", keys, note.map(str::to_owned));
        Self::append_action(&mut tx, tenant, &action).await?;
        tx.commit()
            .await
            .map_err(db("requeue failed items", tenant))?;
        Ok(moved)
    }

    async fn dismiss_failed(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        actor: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        check_tenant(tenant)?;
        let mut tx = self.begin_write("dismiss failed item", tenant).await?;
        let done = sqlx::query(
            "UPDATE outbox SET dismissed_at_ns = $3, dismissed_by = $4, dismiss_note = $5 \
             WHERE tenant = $1 AND key = $2 AND status = 'failed'",
        )
        .bind(tenant.as_str())
        .bind(key.as_str())
        .bind(to_ns(now, "dismissal time")?)
        .bind(actor)
        .bind(note)
        .execute(&mut *tx)
        .await
        .map_err(db("dismiss failed item", tenant))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let action = OperatorAction::new(
            now,
            actor,
            "dismiss",
            vec![key.to_string()],
            Some(note.to_owned()),
        );
        Self::append_action(&mut tx, tenant, &action).await?;
        tx.commit()
            .await
            .map_err(db("dismiss failed item", tenant))?;
        Ok(true)
    }

    async fn operator_actions(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<OperatorAction>, Error> {
        check_tenant(tenant)?;
        let rows: Vec<(i64, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT at_ns, actor, action, keys, note FROM operator_actions \
             WHERE tenant = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(sql_limit(limit))
        .fetch_all(self.reader())
        .await
        .map_err(db("read operator actions", tenant))?;
        rows.into_iter()
            .map(|(at, actor, action, keys, note)| {
                let keys: Vec<String> = parse_json("operator_actions", "keys", &keys)?;
                Ok(OperatorAction::new(from_ns(at), actor, action, keys, note))
            })
            .collect()
    }

    async fn record_run(&self, tenant: &TenantId, run: &RunRecord) -> Result<(), Error> {
        check_tenant(tenant)?;
        let ok_at = (run.outcome == sync_core::ports::RunOutcome::Ok).then_some(run.finished_at);
        sqlx::query(
            "INSERT INTO run_history (tenant, mode, record, last_ok_at_ns) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant, mode) DO UPDATE SET record = excluded.record, \
                 last_ok_at_ns = COALESCE(excluded.last_ok_at_ns, run_history.last_ok_at_ns)",
        )
        .bind(tenant.as_str())
        .bind(run.mode.as_str())
        .bind(to_json(run, "run record")?)
        .bind(opt_to_ns(ok_at, "run end")?)
        .execute(self.writer())
        .await
        .map_err(db("record run", tenant))?;
        Ok(())
    }

    async fn last_runs(&self, tenant: &TenantId) -> Result<Vec<LastRun>, Error> {
        check_tenant(tenant)?;
        let rows: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT record, last_ok_at_ns FROM run_history WHERE tenant = $1")
                .bind(tenant.as_str())
                .fetch_all(self.reader())
                .await
                .map_err(db("read last runs", tenant))?;
        let mut runs = rows
            .iter()
            .map(|(record, ok)| {
                let run: RunRecord = parse_json("run_history", "record", record)?;
                Ok(LastRun::new(run, opt_from_ns(*ok)))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        runs.sort_by_key(|r| r.run.mode);
        Ok(runs)
    }

    async fn record_credentials_check(
        &self,
        tenant: &TenantId,
        check: &CredentialsCheck,
    ) -> Result<(), Error> {
        check_tenant(tenant)?;
        sqlx::query(
            "INSERT INTO credential_checks (tenant, checked_at_ns, error, account_id) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant) DO UPDATE SET checked_at_ns = excluded.checked_at_ns, \
                 error = excluded.error, \
                 account_id = COALESCE(excluded.account_id, credential_checks.account_id)",
        )
        .bind(tenant.as_str())
        .bind(to_ns(check.at, "check time")?)
        .bind(check.error.as_deref())
        .bind(check.account_id.as_deref())
        .execute(self.writer())
        .await
        .map_err(db("record credentials check", tenant))?;
        Ok(())
    }

    async fn credentials_check(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<CredentialsCheck>, Error> {
        check_tenant(tenant)?;
        let row: Option<(i64, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT checked_at_ns, error, account_id FROM credential_checks WHERE tenant = $1",
        )
        .bind(tenant.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(db("read credentials check", tenant))?;
        Ok(row.map(|(at, error, account)| {
            let mut check = CredentialsCheck::ok(from_ns(at), account);
            check.error = error;
            check
        }))
    }

    async fn record_delivery_outcome(
        &self,
        tenant: &TenantId,
        outcome: WebhookOutcome,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        check_tenant(tenant)?;
        sqlx::query(
            "INSERT INTO webhook_counts (tenant, hour_ns, outcome, reason, n) VALUES ($1, $2, $3, $4, 1) \
             ON CONFLICT (tenant, hour_ns, outcome, reason) DO UPDATE SET n = webhook_counts.n + 1",
        )
        .bind(tenant.as_str())
        .bind(to_ns(hour_bucket(at), "delivery time")?)
        .bind(outcome.as_str())
        .bind(reason.unwrap_or_default())
        .execute(self.writer())
        .await
        .map_err(db("count webhook delivery", tenant))?;
        Ok(())
    }

    async fn webhook_counts(
        &self,
        tenant: &TenantId,
        since: DateTime<Utc>,
    ) -> Result<WebhookCounts, Error> {
        check_tenant(tenant)?;
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT outcome, reason, CAST(SUM(n) AS BIGINT) FROM webhook_counts \
             WHERE tenant = $1 AND hour_ns >= $2 GROUP BY outcome, reason",
        )
        .bind(tenant.as_str())
        .bind(to_ns(hour_bucket(since), "count start")?)
        .fetch_all(self.reader())
        .await
        .map_err(db("read webhook counts", tenant))?;
        let mut counts = WebhookCounts::default();
        for (outcome, reason, n) in rows {
            let outcome = match outcome.as_str() {
                "accepted" => WebhookOutcome::Accepted,
                "duplicate" => WebhookOutcome::Duplicate,
                "refused" => WebhookOutcome::Refused,
                other => {
                    return Err(corrupt(
                        "webhook_counts",
                        format!("unknown outcome {other:?}"),
                    ));
                }
            };
            counts.add(outcome, &reason, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }

    async fn purge_webhook_counts(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error> {
        check_tenant(tenant)?;
        // One bounded batch of whole hour buckets, oldest first through the primary key
        // (tenant, hour_ns, ...); the table has no single-column key, so rows are named by
        // their primary key.
        let done = sqlx::query(
            "DELETE FROM webhook_counts WHERE (tenant, hour_ns, outcome, reason) IN ( \
                 SELECT tenant, hour_ns, outcome, reason FROM webhook_counts \
                 WHERE tenant = $1 AND hour_ns < $2 ORDER BY hour_ns, outcome, reason LIMIT $3)",
        )
        .bind(tenant.as_str())
        .bind(to_ns(hour_bucket(older_than), "purge cutoff")?)
        .bind(sql_limit(limit))
        .execute(self.writer())
        .await
        .map_err(db("purge webhook counts", tenant))?;
        Ok(done.rows_affected())
    }

    async fn purge_operator_actions(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error> {
        check_tenant(tenant)?;
        // One bounded batch, picked oldest first through (tenant, at_ns).
        let done = sqlx::query(
            "DELETE FROM operator_actions WHERE seq IN ( \
                 SELECT seq FROM operator_actions WHERE tenant = $1 AND at_ns < $2 \
                 ORDER BY at_ns, seq LIMIT $3)",
        )
        .bind(tenant.as_str())
        .bind(to_ns(older_than, "purge cutoff")?)
        .bind(sql_limit(limit))
        .execute(self.writer())
        .await
        .map_err(db("purge operator actions", tenant))?;
        Ok(done.rows_affected())
    }
}
