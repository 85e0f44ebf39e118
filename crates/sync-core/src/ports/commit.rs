//! One webhook delivery's writes in one store call: the mapping rows it changed, the actions
//! it planned and its ledger row, committed together (see [`DeliveryCommitter`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Mapping, TenantId};
use crate::error::Error;
use crate::plan::Action;
use crate::ports::{DeliveryLedger, MappingStore, Outbox};

/// The writes of one delivery: what [`DeliveryCommitter::commit_deliveries`] commits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryWrite {
    /// The tenant.
    pub tenant: TenantId,
    /// The delivery id recorded in the ledger.
    pub delivery_id: String,
    /// Mapping rows to upsert (as [`MappingStore::put_mappings`]).
    pub mappings: Vec<Mapping>,
    /// Actions to enqueue (as [`Outbox::enqueue`]).
    pub actions: Vec<Action>,
    /// When the delivery was received: the ledger's time and the outbox items' enqueue time.
    pub received_at: DateTime<Utc>,
}

impl DeliveryWrite {
    /// A delivery writing nothing but its ledger row; add rows and actions with the fields.
    pub fn new(
        tenant: TenantId,
        delivery_id: impl Into<String>,
        received_at: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant,
            delivery_id: delivery_id.into(),
            mappings: Vec::new(),
            actions: Vec::new(),
            received_at,
        }
    }
}

/// What committing one delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryCommit {
    /// The delivery was new: its writes are durable and its id is in the ledger.
    Recorded {
        /// How many of its actions were new to the outbox.
        enqueued: u64,
    },
    /// The delivery id was already in the ledger.
    Duplicate,
}

/// Commits deliveries: the mapping writes, the outbox items and the ledger row of each.
///
/// The default implementation is built from the other store calls, one after another, so a
/// store implementing the other traits gets it with an empty `impl`. It is not atomic: a
/// failure part-way can leave a delivery's rows and items written without its ledger row
/// (the sender's retry then writes them again, which the outbox's idempotency keys absorb),
/// and a copy of the delivery running at the same time is not excluded: the engine holds
/// the delivery's lease around it.
///
/// A store that commits each delivery in one transaction whose ledger insert decides
/// whether anything else is written overrides both methods (the SQLite and PostgreSQL
/// stores do): the engine then groups concurrent deliveries into one call and skips the
/// lease for deliveries that only touch the store.
#[async_trait]
pub trait DeliveryCommitter: MappingStore + DeliveryLedger + Outbox {
    /// Commits each write in order and says, for each, whether it was new. A delivery whose
    /// id is already in the ledger is [`DeliveryCommit::Duplicate`].
    ///
    /// On an error, an atomic store has committed none of `writes`.
    async fn commit_deliveries(
        &self,
        writes: &[DeliveryWrite],
    ) -> Result<Vec<DeliveryCommit>, Error> {
        let mut done = Vec::with_capacity(writes.len());
        for w in writes {
            // The order of the engine's separate calls: the ledger row last, once the
            // work is durable, so a failure before it leaves the delivery to be retried.
            if !w.mappings.is_empty() {
                self.put_mappings(&w.tenant, &w.mappings).await?;
            }
            let enqueued = if w.actions.is_empty() {
                0
            } else {
                self.enqueue(&w.tenant, &w.actions, w.received_at).await?
            };
            let fresh = self
                .record_delivery(&w.tenant, &w.delivery_id, w.received_at)
                .await?;
            done.push(if fresh {
                DeliveryCommit::Recorded { enqueued }
            } else {
                DeliveryCommit::Duplicate
            });
        }
        Ok(done)
    }

    /// Whether [`DeliveryCommitter::commit_deliveries`] is atomic: all of `writes` or none,
    /// and for each delivery its ledger insert-if-absent and its writes in the same
    /// transaction, so two copies of a delivery committing at once write it once.
    fn atomic_delivery_commits(&self) -> bool {
        false
    }
}
