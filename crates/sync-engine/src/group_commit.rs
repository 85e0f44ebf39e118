//! Group commit of deliveries: the deliveries that arrive while a commit is in flight are
//! committed together by the next one, in one store call (one transaction), and each caller
//! is answered only once the commit holding its delivery returned.
//!
//! No task of its own (the engine is runtime-agnostic): the first caller to take the commit
//! lock commits everything queued so far; the others wait for the lock and find their answer
//! already there, or commit the next batch themselves. A failed batch is retried one delivery
//! at a time, so one bad delivery does not fail the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use sync_core::ports::{DeliveryCommit, DeliveryWrite, RunRecord, Store};
use sync_core::{Error, TenantId};

/// One queued delivery and where its answer goes.
struct Pending {
    write: DeliveryWrite,
    reply: oneshot::Sender<Result<DeliveryCommit, Error>>,
}

/// The engine's group committer (shared by the engine's clones).
#[derive(Clone, Default)]
pub(crate) struct GroupCommit {
    queue: Arc<Mutex<Vec<Pending>>>,
    committing: Arc<futures::lock::Mutex<()>>,
}

impl GroupCommit {
    /// Commits `write`, batched with the deliveries queued meanwhile when the store commits
    /// atomically (otherwise alone, as the default store calls do).
    pub(crate) async fn commit(
        &self,
        store: &Arc<dyn Store>,
        write: DeliveryWrite,
    ) -> Result<DeliveryCommit, Error> {
        if !store.atomic_delivery_commits() {
            return one(store.as_ref(), &write).await;
        }
        loop {
            let (reply, mut answer) = oneshot::channel();
            self.queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Pending {
                    write: write.clone(),
                    reply,
                });
            let guard = self.committing.lock().await;
            // Committed by the previous holder of the lock, which answered before letting go.
            match answer.try_recv() {
                Ok(Some(result)) => return result,
                Ok(None) => {}
                // The holder was cancelled mid-commit: its batch may or may not be durable.
                // Committing again is safe: if it was, the ledger now says `Duplicate`.
                Err(oneshot::Canceled) => continue,
            }
            let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
            commit_batch(store.as_ref(), batch).await;
            drop(guard);
            match answer.await {
                Ok(result) => return result,
                Err(oneshot::Canceled) => continue,
            }
        }
    }
}

/// Commits one delivery alone.
async fn one(store: &dyn Store, write: &DeliveryWrite) -> Result<DeliveryCommit, Error> {
    let mut done = store.commit_deliveries(std::slice::from_ref(write)).await?;
    match (done.pop(), done.is_empty()) {
        (Some(commit), true) => Ok(commit),
        _ => Err(Error::store(
            "commit delivery",
            "the store answered a number of results other than one for one delivery",
            false,
        )),
    }
}

/// Commits a batch in one call and answers each delivery; on failure, one by one.
async fn commit_batch(store: &dyn Store, batch: Vec<Pending>) {
    let (writes, replies): (Vec<DeliveryWrite>, Vec<_>) =
        batch.into_iter().map(|p| (p.write, p.reply)).unzip();
    metrics::histogram!("cativa_sync_delivery_commit_batch_size").record(writes.len() as f64);
    if writes.len() > 1 {
        match store.commit_deliveries(&writes).await {
            Ok(done) if done.len() == writes.len() => {
                for (reply, commit) in replies.into_iter().zip(done) {
                    // A caller that went away needs no answer: its delivery is durable.
                    let _ = reply.send(Ok(commit));
                }
                return;
            }
            Ok(_) => tracing::warn!(
                deliveries = writes.len(),
                "the store answered a batch commit with the wrong number of results; committing one by one"
            ),
            Err(e) => tracing::info!(
                error = %e,
                deliveries = writes.len(),
                "a batch of deliveries failed to commit; committing them one by one"
            ),
        }
    }
    for (write, reply) in writes.iter().zip(replies) {
        let _ = reply.send(one(store, write).await);
    }
}

/// The last event run of each tenant, written latest-wins: a delivery finishing while another
/// one writes its run record leaves its own for that writer, which writes the newest record
/// before it stops, so concurrent deliveries share one status write instead of one each.
#[derive(Clone, Default)]
pub(crate) struct LatestRuns {
    waiting: Arc<Mutex<HashMap<TenantId, RunRecord>>>,
    writing: Arc<futures::lock::Mutex<()>>,
}

impl LatestRuns {
    /// Records `run` as the tenant's last event run, now or by the writer in progress.
    pub(crate) async fn record(&self, store: &dyn Store, tenant: &TenantId, run: RunRecord) {
        self.lock().insert(tenant.clone(), run);
        loop {
            let Some(writer) = self.writing.try_lock() else {
                // The writer checks again for records after it lets go.
                return;
            };
            loop {
                let next = {
                    let mut waiting = self.lock();
                    let tenant = waiting.keys().next().cloned();
                    tenant.and_then(|t| waiting.remove(&t).map(|run| (t, run)))
                };
                let Some((tenant, run)) = next else { break };
                if let Err(e) = store.record_run(&tenant, &run).await {
                    tracing::warn!(error = %e, mode = run.mode.as_str(), "could not record the end of the run");
                }
            }
            drop(writer);
            // A record left while this writer was finishing would otherwise wait for the
            // next delivery.
            if self.lock().is_empty() {
                return;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, RunRecord>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}
