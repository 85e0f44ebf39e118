//! `DeliveryCommitter`: the writes of several deliveries in one transaction (compiled once
//! per backend, see `crate::tables`).
//!
//! The transaction takes the write lock of every tenant in the batch first (SQLite: the
//! single writer under `BEGIN IMMEDIATE`; PostgreSQL: the tenants' advisory locks, in
//! order, so two batches never wait for each other in a cycle). Then, per delivery, the
//! ledger insert-if-absent decides: a new delivery writes its mapping rows and outbox
//! items, a recorded one writes nothing. One commit makes the whole batch durable.

use async_trait::async_trait;
use sync_core::ports::{DeliveryCommit, DeliveryCommitter, DeliveryWrite};
use sync_core::{Error, TenantId};

use super::mappings::{Tx, write_mappings_in};
use super::{Sql, Store};
use crate::db_error::{db, run_to_completion};
use crate::rows::{check_tenant, outbox_payload};
use crate::tables::Dialect;
use crate::time::to_ns;

const RECORD: &str = "INSERT INTO deliveries (tenant, delivery_id, received_at_ns) VALUES ($1, $2, $3) \
     ON CONFLICT (tenant, delivery_id) DO NOTHING";

impl Store {
    /// The body of `commit_deliveries`, run to completion on its own task.
    async fn write_deliveries(
        &self,
        writes: &[DeliveryWrite],
    ) -> Result<Vec<DeliveryCommit>, Error> {
        let Some(first) = writes.first() else {
            return Ok(Vec::new());
        };
        let mut tx = self.begin_write("commit deliveries", &first.tenant).await?;
        if let Some(lock) = Sql::LOCK_TENANT {
            let mut tenants: Vec<&TenantId> = writes.iter().map(|w| &w.tenant).collect();
            tenants.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
            tenants.dedup();
            for tenant in tenants {
                sqlx::query(lock)
                    .bind(tenant.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db("lock tenant for a delivery commit", tenant))?;
            }
        }
        let mut done = Vec::with_capacity(writes.len());
        for w in writes {
            done.push(write_one(&mut tx, w).await?);
        }
        tx.commit()
            .await
            .map_err(db("commit deliveries: commit", &first.tenant))?;
        Ok(done)
    }
}

/// One delivery inside the batch's transaction.
async fn write_one(tx: &mut Tx, w: &DeliveryWrite) -> Result<DeliveryCommit, Error> {
    let tenant = &w.tenant;
    let fresh = sqlx::query(RECORD)
        .bind(tenant.as_str())
        .bind(&w.delivery_id)
        .bind(to_ns(w.received_at, "delivery time")?)
        .execute(&mut **tx)
        .await
        .map_err(db("commit deliveries: record delivery", tenant))?
        .rows_affected()
        == 1;
    if !fresh {
        return Ok(DeliveryCommit::Duplicate);
    }
    if !w.mappings.is_empty() {
        write_mappings_in(tx, tenant, &w.mappings).await?;
    }
    let mut enqueued = 0;
    if !w.actions.is_empty() {
        enqueued = sqlx::query(Sql::OUTBOX_ENQUEUE)
            .bind(tenant.as_str())
            .bind(outbox_payload(&w.actions)?)
            .bind(to_ns(w.received_at, "enqueue time")?)
            .execute(&mut **tx)
            .await
            .map_err(db("commit deliveries: enqueue", tenant))?
            .rows_affected();
    }
    Ok(DeliveryCommit::Recorded { enqueued })
}

#[async_trait]
impl DeliveryCommitter for Store {
    async fn commit_deliveries(
        &self,
        writes: &[DeliveryWrite],
    ) -> Result<Vec<DeliveryCommit>, Error> {
        for w in writes {
            check_tenant(&w.tenant)?;
        }
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let (store, writes) = (self.clone(), writes.to_vec());
        run_to_completion("commit deliveries", async move {
            store.write_deliveries(&writes).await
        })
        .await
    }

    fn atomic_delivery_commits(&self) -> bool {
        true
    }
}
