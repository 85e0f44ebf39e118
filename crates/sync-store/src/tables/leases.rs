//! `LeaderLease`: a lease row taken or renewed by one conditional upsert (compiled once per
//! backend, see `crate::tables`).
//!
//! A lease row (rather than a PostgreSQL session advisory lock) matches the port's contract:
//! it has a time to live, survives connection churn in the pool, and a crashed holder's
//! lease simply expires.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sync_core::ports::LeaderLease;
use sync_core::{Error, TenantId};

use super::Store;
use crate::db_error::db;
use crate::rows::check_tenant;
use crate::time::{deadline_ns, to_ns};

#[async_trait]
impl LeaderLease for Store {
    async fn try_acquire_lease(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        check_tenant(tenant)?;
        let done = sqlx::query(
            "INSERT INTO leader_leases (tenant, name, holder, expires_at_ns) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant, name) DO UPDATE SET holder = excluded.holder, expires_at_ns = excluded.expires_at_ns \
             WHERE leader_leases.holder = excluded.holder OR leader_leases.expires_at_ns <= $5",
        )
        .bind(tenant.as_str())
        .bind(name)
        .bind(holder)
        .bind(deadline_ns(now, ttl)?)
        .bind(to_ns(now, "lease time")?)
        .execute(self.writer())
        .await
        .map_err(db("acquire lease", tenant))?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
    ) -> Result<(), Error> {
        check_tenant(tenant)?;
        sqlx::query("DELETE FROM leader_leases WHERE tenant = $1 AND name = $2 AND holder = $3")
            .bind(tenant.as_str())
            .bind(name)
            .bind(holder)
            .execute(self.writer())
            .await
            .map_err(db("release lease", tenant))?;
        Ok(())
    }
}
