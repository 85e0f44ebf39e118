//! `MappingStore` on PostgreSQL.

use async_trait::async_trait;
use sync_core::planner::StateView;
use sync_core::ports::MappingStore;
use sync_core::{CativaUserId, CrmRecordId, Email, Error, Mapping, TenantId};

use super::{PostgresStore, db};
use crate::db_error::run_to_completion;
use crate::rows::{KeyRow, MappingRow, assemble_mappings, check_tenant};
use crate::time::sql_limit;
use crate::upsert::{Lookup, UpsertPlan, grants_payload, inserts_payload, updates_payload};

macro_rules! select_mappings {
    ($rest:literal) => {
        concat!(
            "SELECT m.id, m.email, m.cativa_user_id, m.crm_kind, m.crm_id, m.profile::text AS profile, m.invited_at_ns, \
             m.updated_at_ns, g.badge AS g_badge, g.provenance AS g_provenance, g.rule_id AS g_rule, g.source AS g_source, \
             g.granted_at_ns AS g_granted_at_ns ",
            $rest
        )
    };
}

const BY_EMAIL: &str = select_mappings!(
    "FROM mappings m LEFT JOIN badge_grants g ON g.mapping_id = m.id \
     WHERE m.tenant = $1 AND m.email = $2 ORDER BY g.position"
);
const BY_CRM: &str = select_mappings!(
    "FROM mappings m LEFT JOIN badge_grants g ON g.mapping_id = m.id \
     WHERE m.tenant = $1 AND m.crm_kind = $2 AND m.crm_id = $3 ORDER BY g.position"
);
const BY_USER: &str = select_mappings!(
    "FROM mappings m LEFT JOIN badge_grants g ON g.mapping_id = m.id \
     WHERE m.tenant = $1 AND m.cativa_user_id = $2 ORDER BY g.position"
);
// Two queries rather than `($3 IS NULL OR email > $3)`, so that every page is an index range
// scan starting at `after`.
const FIRST_PAGE: &str = select_mappings!(
    "FROM (SELECT * FROM mappings WHERE tenant = $1 ORDER BY email LIMIT $2) m \
     LEFT JOIN badge_grants g ON g.mapping_id = m.id ORDER BY m.email, g.position"
);
const NEXT_PAGE: &str = select_mappings!(
    "FROM (SELECT * FROM mappings WHERE tenant = $1 AND email > $3 ORDER BY email LIMIT $2) m \
     LEFT JOIN badge_grants g ON g.mapping_id = m.id ORDER BY m.email, g.position"
);
const VIEW: &str = select_mappings!(
    "FROM (SELECT id FROM mappings WHERE tenant = $1 AND email = ANY($2::text[]) \
           UNION SELECT id FROM mappings WHERE tenant = $1 \
             AND (crm_kind, crm_id) IN (SELECT * FROM UNNEST($3::text[], $4::text[]))) hit \
     JOIN mappings m ON m.id = hit.id LEFT JOIN badge_grants g ON g.mapping_id = m.id ORDER BY m.id, g.position"
);
const FULL_VIEW: &str = select_mappings!(
    "FROM mappings m LEFT JOIN badge_grants g ON g.mapping_id = m.id WHERE m.tenant = $1 ORDER BY m.id, g.position"
);

/// Serializes mapping writes of one tenant across instances (key: 'SYNC', tenant hash).
const LOCK_TENANT: &str = "SELECT pg_advisory_xact_lock(1398361667, hashtext($1))";

const KEYS: &str = "\
    SELECT id, email, cativa_user_id, crm_kind, crm_id FROM mappings \
      WHERE tenant = $1 AND email IN (SELECT value FROM jsonb_array_elements_text($2::jsonb)) \
    UNION SELECT id, email, cativa_user_id, crm_kind, crm_id FROM mappings \
      WHERE tenant = $1 AND (crm_kind, crm_id) IN (SELECT e ->> 0, e ->> 1 FROM jsonb_array_elements($3::jsonb) e) \
    UNION SELECT id, email, cativa_user_id, crm_kind, crm_id FROM mappings \
      WHERE tenant = $1 AND cativa_user_id IN (SELECT value FROM jsonb_array_elements_text($4::jsonb))";

// A parked email contains spaces, which no `Email` does, so it cannot collide.
const PARK: &str = "\
    UPDATE mappings SET email = ' parked ' || id, cativa_user_id = NULL, crm_kind = NULL, crm_id = NULL \
    WHERE tenant = $1 AND id = ANY($2::bigint[])";

const UPDATE: &str = "\
    UPDATE mappings m SET email = j.email, cativa_user_id = j.\"user\", crm_kind = j.crm_kind, crm_id = j.crm_id, \
        profile = j.profile::jsonb, invited_at_ns = j.invited, updated_at_ns = j.updated \
    FROM jsonb_to_recordset($2::jsonb) AS j(id bigint, email text, \"user\" text, crm_kind text, crm_id text, \
        profile text, invited bigint, updated bigint) \
    WHERE m.tenant = $1 AND m.id = j.id";

const DELETE_GRANTS: &str =
    "DELETE FROM badge_grants WHERE tenant = $1 AND mapping_id = ANY($2::bigint[])";

const INSERT: &str = "\
    INSERT INTO mappings (tenant, email, cativa_user_id, crm_kind, crm_id, profile, invited_at_ns, updated_at_ns) \
    SELECT $1, j.email, j.\"user\", j.crm_kind, j.crm_id, j.profile::jsonb, j.invited, j.updated \
    FROM jsonb_to_recordset($2::jsonb) AS j(email text, \"user\" text, crm_kind text, crm_id text, profile text, \
        invited bigint, updated bigint) \
    RETURNING id, email";

const INSERT_GRANTS: &str = "\
    INSERT INTO badge_grants (mapping_id, tenant, position, badge, provenance, rule_id, source, granted_at_ns) \
    SELECT j.m, $1, j.p, j.b, j.k, j.r, j.s, j.g \
    FROM jsonb_to_recordset($2::jsonb) AS j(m bigint, p bigint, b text, k text, r text, s text, g bigint)";

impl PostgresStore {
    async fn fetch_one_mapping<'q>(
        &self,
        tenant: &TenantId,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, MappingRow, sqlx::postgres::PgArguments>,
    ) -> Result<Option<Mapping>, Error> {
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(db("read mapping", tenant))?;
        Ok(assemble_mappings(&rows)?.into_iter().next())
    }

    /// The body of `put_mappings`, run to completion on its own task.
    async fn write_mappings(&self, tenant: &TenantId, mappings: &[Mapping]) -> Result<(), Error> {
        let lookup = Lookup::of(mappings)?;
        let t = tenant.as_str();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("put mappings: begin", tenant))?;
        sqlx::query(LOCK_TENANT)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(db("put mappings: lock tenant", tenant))?;
        let existing: Vec<KeyRow> = sqlx::query_as(KEYS)
            .bind(t)
            .bind(&lookup.emails)
            .bind(&lookup.crm_ids)
            .bind(&lookup.users)
            .fetch_all(&mut *tx)
            .await
            .map_err(db("put mappings: look up keys", tenant))?;
        let plan = UpsertPlan::resolve(tenant, &existing, mappings)?;
        let mut written: Vec<(i64, &Mapping)> = Vec::with_capacity(mappings.len());
        if !plan.park.is_empty() {
            sqlx::query(PARK)
                .bind(t)
                .bind(&plan.park)
                .execute(&mut *tx)
                .await
                .map_err(db("put mappings: park keys", tenant))?;
        }
        if !plan.updates.is_empty() {
            sqlx::query(UPDATE)
                .bind(t)
                .bind(updates_payload(&plan, mappings)?)
                .execute(&mut *tx)
                .await
                .map_err(db("put mappings: update rows", tenant))?;
            let ids: Vec<i64> = plan.updates.iter().map(|&(id, _)| id).collect();
            sqlx::query(DELETE_GRANTS)
                .bind(t)
                .bind(&ids)
                .execute(&mut *tx)
                .await
                .map_err(db("put mappings: replace badge grants", tenant))?;
            written.extend(plan.updates.iter().map(|&(id, i)| (id, &mappings[i])));
        }
        if !plan.inserts.is_empty() {
            let ids: Vec<(i64, String)> = sqlx::query_as(INSERT)
                .bind(t)
                .bind(inserts_payload(&plan, mappings)?)
                .fetch_all(&mut *tx)
                .await
                .map_err(db("put mappings: insert rows", tenant))?;
            let by_email: std::collections::HashMap<&str, i64> =
                ids.iter().map(|(id, e)| (e.as_str(), *id)).collect();
            for &i in &plan.inserts {
                let m = &mappings[i];
                let id = by_email.get(m.email.as_str()).copied().ok_or_else(|| {
                    Error::store(
                        "put mappings",
                        format!("inserted row for {} not returned", m.email),
                        true,
                    )
                })?;
                written.push((id, m));
            }
        }
        if written.iter().any(|(_, m)| !m.badges.is_empty()) {
            sqlx::query(INSERT_GRANTS)
                .bind(t)
                .bind(grants_payload(written.into_iter())?)
                .execute(&mut *tx)
                .await
                .map_err(db("put mappings: insert badge grants", tenant))?;
        }
        tx.commit()
            .await
            .map_err(db("put mappings: commit", tenant))
    }

    /// The body of `delete_mapping`, run to completion on its own task.
    async fn remove_mapping(&self, tenant: &TenantId, email: &Email) -> Result<bool, Error> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("delete mapping: begin", tenant))?;
        sqlx::query(LOCK_TENANT)
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db("delete mapping: lock tenant", tenant))?;
        // Grants go with the row (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM mappings WHERE tenant = $1 AND email = $2")
            .bind(tenant.as_str())
            .bind(email.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db("delete mapping", tenant))?;
        tx.commit()
            .await
            .map_err(db("delete mapping: commit", tenant))?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl MappingStore for PostgresStore {
    async fn mapping_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<Mapping>, Error> {
        check_tenant(tenant)?;
        let q = sqlx::query_as(BY_EMAIL)
            .bind(tenant.as_str())
            .bind(email.as_str());
        self.fetch_one_mapping(tenant, q).await
    }

    async fn mapping_by_crm_id(
        &self,
        tenant: &TenantId,
        crm_id: &CrmRecordId,
    ) -> Result<Option<Mapping>, Error> {
        check_tenant(tenant)?;
        let q = sqlx::query_as(BY_CRM)
            .bind(tenant.as_str())
            .bind(crm_id.crm.as_str())
            .bind(crm_id.id.as_str());
        self.fetch_one_mapping(tenant, q).await
    }

    async fn mapping_by_user(
        &self,
        tenant: &TenantId,
        user: &CativaUserId,
    ) -> Result<Option<Mapping>, Error> {
        check_tenant(tenant)?;
        let q = sqlx::query_as(BY_USER)
            .bind(tenant.as_str())
            .bind(user.as_str());
        self.fetch_one_mapping(tenant, q).await
    }

    async fn put_mapping(&self, tenant: &TenantId, mapping: &Mapping) -> Result<(), Error> {
        self.put_mappings(tenant, std::slice::from_ref(mapping))
            .await
    }

    async fn put_mappings(&self, tenant: &TenantId, mappings: &[Mapping]) -> Result<(), Error> {
        check_tenant(tenant)?;
        if mappings.is_empty() {
            return Ok(());
        }
        let (store, tenant, mappings) = (self.clone(), tenant.clone(), mappings.to_vec());
        run_to_completion("put mappings", async move {
            store.write_mappings(&tenant, &mappings).await
        })
        .await
    }

    async fn delete_mapping(&self, tenant: &TenantId, email: &Email) -> Result<bool, Error> {
        check_tenant(tenant)?;
        let (store, tenant, email) = (self.clone(), tenant.clone(), email.clone());
        run_to_completion("delete mapping", async move {
            store.remove_mapping(&tenant, &email).await
        })
        .await
    }

    async fn list_mappings(
        &self,
        tenant: &TenantId,
        after: Option<&Email>,
        limit: usize,
    ) -> Result<Vec<Mapping>, Error> {
        check_tenant(tenant)?;
        let query = sqlx::query_as(if after.is_some() {
            NEXT_PAGE
        } else {
            FIRST_PAGE
        })
        .bind(tenant.as_str())
        .bind(sql_limit(limit));
        let query = match after {
            Some(after) => query.bind(after.as_str()),
            None => query,
        };
        let rows: Vec<MappingRow> = query
            .fetch_all(&self.pool)
            .await
            .map_err(db("list mappings", tenant))?;
        assemble_mappings(&rows)
    }

    async fn count_mappings(&self, tenant: &TenantId) -> Result<u64, Error> {
        check_tenant(tenant)?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mappings WHERE tenant = $1")
            .bind(tenant.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(db("count mappings", tenant))?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn load_view(
        &self,
        tenant: &TenantId,
        crm_ids: &[CrmRecordId],
        emails: &[Email],
    ) -> Result<StateView, Error> {
        check_tenant(tenant)?;
        let emails: Vec<&str> = emails.iter().map(Email::as_str).collect();
        let kinds: Vec<&str> = crm_ids.iter().map(|c| c.crm.as_str()).collect();
        let ids: Vec<&str> = crm_ids.iter().map(|c| c.id.as_str()).collect();
        let rows: Vec<MappingRow> = sqlx::query_as(VIEW)
            .bind(tenant.as_str())
            .bind(&emails)
            .bind(&kinds)
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db("load view", tenant))?;
        Ok(StateView::new(assemble_mappings(&rows)?))
    }

    async fn load_full_view(&self, tenant: &TenantId) -> Result<StateView, Error> {
        check_tenant(tenant)?;
        let rows: Vec<MappingRow> = sqlx::query_as(FULL_VIEW)
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db("load full view", tenant))?;
        Ok(StateView::new(assemble_mappings(&rows)?))
    }
}
