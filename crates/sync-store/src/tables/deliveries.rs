//! `DeliveryLedger`: insert-if-absent on the (tenant, delivery id) key, so of several
//! racing receivers exactly one is told a delivery is new (compiled once per backend, see
//! `crate::tables`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sync_core::ports::DeliveryLedger;
use sync_core::{Error, TenantId};

use super::Store;
use crate::db_error::db;
use crate::rows::check_tenant;
use crate::time::{sql_limit, to_ns};

#[async_trait]
impl DeliveryLedger for Store {
    async fn record_delivery(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        received_at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        check_tenant(tenant)?;
        let done = sqlx::query(
            "INSERT INTO deliveries (tenant, delivery_id, received_at_ns) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant, delivery_id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(delivery_id)
        .bind(to_ns(received_at, "delivery time")?)
        .execute(self.writer())
        .await
        .map_err(db("record delivery", tenant))?;
        Ok(done.rows_affected() == 1)
    }

    async fn has_delivery(&self, tenant: &TenantId, delivery_id: &str) -> Result<bool, Error> {
        check_tenant(tenant)?;
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE tenant = $1 AND delivery_id = $2)",
        )
        .bind(tenant.as_str())
        .bind(delivery_id)
        .fetch_one(self.reader())
        .await
        .map_err(db("read delivery", tenant))
    }

    async fn purge_deliveries(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error> {
        check_tenant(tenant)?;
        // One bounded batch, picked oldest first through (tenant, received_at_ns).
        let done = sqlx::query(
            "DELETE FROM deliveries WHERE tenant = $1 AND delivery_id IN ( \
                 SELECT delivery_id FROM deliveries WHERE tenant = $1 AND received_at_ns < $2 \
                 ORDER BY received_at_ns, delivery_id LIMIT $3)",
        )
        .bind(tenant.as_str())
        .bind(to_ns(older_than, "purge cutoff")?)
        .bind(sql_limit(limit))
        .execute(self.writer())
        .await
        .map_err(db("purge deliveries", tenant))?;
        Ok(done.rows_affected())
    }
}
