//! Scheduled pulls: a delta every interval (plus random jitter, so instances and tenants do
//! not pull in step) and a daily full reconcile, for every tenant the service serves, each
//! run only by the holder of that tenant's leader lease. The lease is renewed while a run
//! lasts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use sync_core::TenantId;
use sync_core::status::Schedule;
use sync_engine::RunReport;
use tokio::sync::watch;

use super::PULL_LEASE;
use crate::options::FullReconcile;
use crate::service::Shared;

/// The schedule the status shows: the delta interval, the pull loop's next wake-up and the
/// next full reconcile of `tenant`. Empty when this service does not pull (no interval or no
/// source).
pub(crate) fn schedule(shared: &Shared, tenant: &TenantId, now: DateTime<Utc>) -> Schedule {
    let options = &shared.options.schedule;
    let Some(interval) = options
        .delta_interval
        .filter(|_| shared.engine.has_source())
    else {
        return Schedule::default();
    };
    let state = shared.pulls.lock().unwrap_or_else(|e| e.into_inner());
    let mut schedule = Schedule::every(interval.as_secs().max(1));
    schedule.next_delta = state.next_delta;
    schedule.next_full_reconcile = next_full_reconcile(
        &options.full_reconcile,
        state.last_full.get(tenant).copied(),
        state.next_delta,
        now,
    );
    schedule
}

/// When the next full reconcile runs: with the first pull from its hour on, once a day.
pub(crate) fn next_full_reconcile(
    schedule: &FullReconcile,
    last_full: Option<NaiveDate>,
    next_pull: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let FullReconcile::DailyAt { hour } = schedule else {
        return None;
    };
    let today = now.date_naive();
    let at = |day: NaiveDate| day.and_hms_opt(*hour, 0, 0).map(|t| t.and_utc());
    if last_full == Some(today) {
        return at(today.succ_opt()?);
    }
    let today_at = at(today)?;
    if now >= today_at {
        // Due: the next pull is the full reconcile.
        return Some(next_pull.map_or(now, |p| p.max(now)));
    }
    Some(today_at)
}

fn note_next_pull(shared: &Shared, wait: Duration) {
    let at = chrono::Duration::from_std(wait)
        .ok()
        .and_then(|d| Utc::now().checked_add_signed(d));
    shared
        .pulls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .next_delta = at;
}

/// Whether the daily full reconcile is due at `now`: from `hour` (UTC) on, once per day.
pub(crate) fn full_reconcile_due(
    schedule: &FullReconcile,
    last_full: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> bool {
    match schedule {
        FullReconcile::DailyAt { hour } => {
            now.hour() >= *hour && last_full != Some(now.date_naive())
        }
        FullReconcile::Never => false,
    }
}

fn jitter(max: Duration) -> Duration {
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(sync_http::random::up_to(ms))
}

pub(super) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let schedule = shared.options.schedule.clone();
    let Some(interval) = schedule.delta_interval else {
        return;
    };
    // A tenant stopped on its quota is not pulled again before the reset.
    let mut quota: HashMap<TenantId, DateTime<Utc>> = HashMap::new();
    // The first pull soon after start, spread by the jitter.
    let mut wait = jitter(schedule.jitter);
    loop {
        note_next_pull(&shared, wait);
        if super::pause(&mut stop, wait).await {
            return;
        }
        wait = interval + jitter(schedule.jitter);
        for tenant in shared.tenants() {
            if *stop.borrow() {
                return;
            }
            if quota.get(&tenant).is_some_and(|reset| *reset > Utc::now()) {
                continue;
            }
            quota.remove(&tenant);
            if let Some(reset) = pull_tenant(&shared, &tenant).await {
                quota.insert(tenant, reset);
            }
        }
    }
}

/// One tenant's scheduled pull, when this instance holds its lease: the full reconcile when
/// due, else a delta. When a quota stopped it, when the quota resets.
async fn pull_tenant(shared: &Shared, tenant: &TenantId) -> Option<DateTime<Utc>> {
    if !lead(shared, tenant).await {
        return None;
    }
    let last_full = shared
        .pulls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last_full
        .get(tenant)
        .copied();
    let full = full_reconcile_due(
        &shared.options.schedule.full_reconcile,
        last_full,
        Utc::now(),
    );
    let report = tokio::select! {
        r = pull(shared, tenant, full) => r,
        () = renew_while_running(shared, tenant) => None,
    }?;
    if full && report.scan_complete == Some(true) {
        shared
            .pulls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_full
            .insert(tenant.clone(), Utc::now().date_naive());
    }
    report.resume_after.filter(|at| *at > Utc::now())
}

/// Takes or renews the leader lease; `false` when another instance holds it (or the store
/// failed: then nobody pulls this round, which a later round makes up for).
async fn lead(shared: &Shared, tenant: &TenantId) -> bool {
    let ttl = shared.options.schedule.leader_lease;
    match shared
        .engine
        .store()
        .try_acquire_lease(
            tenant,
            PULL_LEASE,
            &shared.instance,
            ttl,
            shared.engine.now(),
        )
        .await
    {
        Ok(won) => won,
        Err(e) => {
            tracing::warn!(tenant = %tenant, error = %e, "could not take the leader lease; skipping this pull");
            false
        }
    }
}

/// Renews the lease every third of its length; returns only if the lease was lost.
async fn renew_while_running(shared: &Shared, tenant: &TenantId) {
    let every = shared.options.schedule.leader_lease / 3;
    loop {
        tokio::time::sleep(every).await;
        if !lead(shared, tenant).await {
            tracing::warn!(tenant = %tenant, "lost the leader lease during a pull; stopping it");
            return;
        }
    }
}

async fn pull(shared: &Shared, tenant: &TenantId, full: bool) -> Option<RunReport> {
    let result = if full {
        shared.engine.run_full_reconcile(tenant).await
    } else {
        shared.engine.run_delta(tenant).await
    };
    match result {
        Ok(report) => {
            tracing::info!(tenant = %tenant, kind = %report.kind, read = report.read, enqueued = report.enqueued, failed = report.failed, "scheduled pull finished");
            shared.wake(tenant);
            Some(report)
        }
        Err(e) => {
            tracing::warn!(tenant = %tenant, error = %e, full, "scheduled pull failed; the next one retries");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_full_reconcile_is_due_once_a_day_from_its_hour() {
        let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap();
        let daily = FullReconcile::DailyAt { hour: 3 };
        assert!(!full_reconcile_due(&daily, None, at(1, 2)));
        assert!(full_reconcile_due(&daily, None, at(1, 3)));
        let day1 = at(1, 3).date_naive();
        assert!(!full_reconcile_due(&daily, Some(day1), at(1, 23)));
        assert!(!full_reconcile_due(&daily, Some(day1), at(2, 1)));
        assert!(full_reconcile_due(&daily, Some(day1), at(2, 4)));
        assert!(!full_reconcile_due(&FullReconcile::Never, None, at(1, 12)));
    }

    #[test]
    fn the_next_full_reconcile_follows_its_hour_and_the_last_one() {
        let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap();
        let daily = FullReconcile::DailyAt { hour: 3 };
        // Before its hour: today at the hour.
        assert_eq!(
            next_full_reconcile(&daily, None, None, at(1, 1)),
            Some(at(1, 3))
        );
        // Past its hour, not run today: with the next pull.
        assert_eq!(
            next_full_reconcile(&daily, None, Some(at(1, 6)), at(1, 5)),
            Some(at(1, 6))
        );
        assert_eq!(
            next_full_reconcile(&daily, None, None, at(1, 5)),
            Some(at(1, 5))
        );
        // Run today: tomorrow at the hour.
        let day1 = at(1, 3).date_naive();
        assert_eq!(
            next_full_reconcile(&daily, Some(day1), None, at(1, 5)),
            Some(at(2, 3))
        );
        assert_eq!(
            next_full_reconcile(&FullReconcile::Never, None, None, at(1, 5)),
            None
        );
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        for _ in 0..100 {
            assert!(jitter(Duration::from_millis(500)) <= Duration::from_millis(500));
        }
    }
}
