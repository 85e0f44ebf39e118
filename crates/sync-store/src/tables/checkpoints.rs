//! `CheckpointStore`: compare-and-set as one conditional statement (compiled once per
//! backend, see `crate::tables`). On PostgreSQL a racing update re-checks the condition on
//! the row it waited for; on SQLite writes are serialized.

use async_trait::async_trait;
use sync_core::ports::CheckpointStore;
use sync_core::{Cursor, Error, TenantId};

use super::Store;
use crate::db_error::db;
use crate::rows::{CheckpointRow, check_tenant};
use crate::time::to_ns;

#[async_trait]
impl CheckpointStore for Store {
    async fn checkpoint(
        &self,
        tenant: &TenantId,
        source: &str,
        stream: &str,
    ) -> Result<Option<Cursor>, Error> {
        check_tenant(tenant)?;
        let row: Option<CheckpointRow> =
            sqlx::query_as("SELECT modified_at_ns, last_id FROM checkpoints WHERE tenant = $1 AND source = $2 AND stream = $3")
                .bind(tenant.as_str())
                .bind(source)
                .bind(stream)
                .fetch_optional(self.reader())
                .await
                .map_err(db("read checkpoint", tenant))?;
        Ok(row.map(CheckpointRow::cursor))
    }

    async fn advance_checkpoint(
        &self,
        tenant: &TenantId,
        source: &str,
        stream: &str,
        expected: Option<&Cursor>,
        next: &Cursor,
    ) -> Result<bool, Error> {
        check_tenant(tenant)?;
        let next_ns = to_ns(next.modified_at, "checkpoint")?;
        let done = match expected {
            None => sqlx::query(
                "INSERT INTO checkpoints (tenant, source, stream, modified_at_ns, last_id) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant, source, stream) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(source)
            .bind(stream)
            .bind(next_ns)
            .bind(next.last_id.as_deref())
            .execute(self.writer())
            .await
            .map_err(db("advance checkpoint", tenant))?,
            // The stored cursor must equal `expected`, so "not before it" is decided here.
            Some(expected) if next < expected => return Ok(false),
            Some(expected) => sqlx::query(
                "UPDATE checkpoints SET modified_at_ns = $4, last_id = $5 \
                 WHERE tenant = $1 AND source = $2 AND stream = $3 AND modified_at_ns = $6 \
                   AND last_id IS NOT DISTINCT FROM CAST($7 AS TEXT)",
            )
            .bind(tenant.as_str())
            .bind(source)
            .bind(stream)
            .bind(next_ns)
            .bind(next.last_id.as_deref())
            .bind(to_ns(expected.modified_at, "expected checkpoint")?)
            .bind(expected.last_id.as_deref())
            .execute(self.writer())
            .await
            .map_err(db("advance checkpoint", tenant))?,
        };
        Ok(done.rows_affected() == 1)
    }
}
