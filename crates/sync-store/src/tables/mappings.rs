//! `MappingStore`: the mapping table and its badge grants (compiled once per backend, see
//! `crate::tables`).
//!
//! A batch write runs in one transaction, serialized per tenant (SQLite: the single writer
//! under `BEGIN IMMEDIATE`; PostgreSQL: a transaction advisory lock): look up the rows the
//! batch's keys hit, plan the upsert (`crate::upsert`), park rows whose keys move, rewrite
//! the updated rows and their grants, insert the new rows, then insert the grants.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::Transaction;
use sync_core::planner::StateView;
use sync_core::ports::MappingStore;
use sync_core::{CativaUserId, CrmRecordId, Email, Error, Mapping, TenantId};

use super::{Db, Sql, Store};
use crate::db_error::{db, run_to_completion};
use crate::rows::{KeyRow, MappingRow, assemble_mappings, check_tenant, to_json};
use crate::tables::{Dialect, select_mappings};
use crate::time::sql_limit;
use crate::upsert::{Lookup, UpsertPlan, grants_payload, inserts_payload, updates_payload};

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
// scan starting at `after` (the OR form rescans the tenant's rows from the start).
const FIRST_PAGE: &str = select_mappings!(
    "FROM (SELECT * FROM mappings WHERE tenant = $1 ORDER BY email LIMIT $2) m \
     LEFT JOIN badge_grants g ON g.mapping_id = m.id ORDER BY m.email, g.position"
);
const NEXT_PAGE: &str = select_mappings!(
    "FROM (SELECT * FROM mappings WHERE tenant = $1 AND email > $3 ORDER BY email LIMIT $2) m \
     LEFT JOIN badge_grants g ON g.mapping_id = m.id ORDER BY m.email, g.position"
);
const FULL_VIEW: &str = select_mappings!(
    "FROM mappings m LEFT JOIN badge_grants g ON g.mapping_id = m.id WHERE m.tenant = $1 ORDER BY m.id, g.position"
);
// Grants are deleted explicitly rather than by the foreign key's cascade, which SQLite
// applies only on connections that enable foreign keys.
const DELETE_GRANTS_OF: &str = "DELETE FROM badge_grants \
     WHERE mapping_id IN (SELECT id FROM mappings WHERE tenant = $1 AND email = $2)";
const DELETE: &str = "DELETE FROM mappings WHERE tenant = $1 AND email = $2";

/// A query selecting mapping rows (the `select_mappings!` columns).
type MappingQuery<'q> =
    sqlx::query::QueryAs<'q, Db, MappingRow, <Db as sqlx::Database>::Arguments<'q>>;

/// An open write transaction.
pub(super) type Tx = Transaction<'static, Db>;

impl Store {
    async fn fetch_one_mapping(
        &self,
        tenant: &TenantId,
        query: MappingQuery<'_>,
    ) -> Result<Option<Mapping>, Error> {
        let rows = query
            .fetch_all(self.reader())
            .await
            .map_err(db("read mapping", tenant))?;
        Ok(assemble_mappings(&rows)?.into_iter().next())
    }

    /// Opens a mapping write transaction, holding the tenant's write lock.
    pub(super) async fn begin_mapping_write(
        &self,
        operation: &'static str,
        tenant: &TenantId,
    ) -> Result<Tx, Error> {
        let mut tx = self.begin_write(operation, tenant).await?;
        if let Some(lock) = Sql::LOCK_TENANT {
            sqlx::query(lock)
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db("lock tenant for a mapping write", tenant))?;
        }
        Ok(tx)
    }

    /// The body of `put_mappings`, run to completion on its own task.
    async fn write_mappings(&self, tenant: &TenantId, mappings: &[Mapping]) -> Result<(), Error> {
        let mut tx = self.begin_mapping_write("put mappings", tenant).await?;
        write_mappings_in(&mut tx, tenant, mappings).await?;
        tx.commit()
            .await
            .map_err(db("put mappings: commit", tenant))
    }

    /// The body of `delete_mapping`, run to completion on its own task.
    async fn remove_mapping(&self, tenant: &TenantId, email: &Email) -> Result<bool, Error> {
        let mut tx = self.begin_mapping_write("delete mapping", tenant).await?;
        sqlx::query(DELETE_GRANTS_OF)
            .bind(tenant.as_str())
            .bind(email.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db("delete mapping grants", tenant))?;
        let done = sqlx::query(DELETE)
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

/// Upserts `mappings` inside `tx`, which holds the tenant's write lock (see
/// `Store::begin_mapping_write` and `tables::Dialect::LOCK_TENANT`).
pub(super) async fn write_mappings_in(
    tx: &mut Tx,
    tenant: &TenantId,
    mappings: &[Mapping],
) -> Result<(), Error> {
    let lookup = Lookup::of(mappings)?;
    let existing: Vec<KeyRow> = sqlx::query_as(Sql::MAPPING_KEYS)
        .bind(tenant.as_str())
        .bind(&lookup.emails)
        .bind(&lookup.crm_ids)
        .bind(&lookup.users)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("put mappings: look up keys", tenant))?;
    let plan = UpsertPlan::resolve(tenant, &existing, mappings)?;
    if !plan.park.is_empty() {
        sqlx::query(Sql::MAPPING_PARK)
            .bind(tenant.as_str())
            .bind(to_json(&plan.park, "parked ids")?)
            .execute(&mut **tx)
            .await
            .map_err(db("put mappings: park keys", tenant))?;
    }
    let mut written = update_rows(tx, tenant, &plan, mappings).await?;
    written.extend(insert_rows(tx, tenant, &plan, mappings).await?);
    if written.iter().any(|(_, m)| !m.badges.is_empty()) {
        sqlx::query(Sql::MAPPING_INSERT_GRANTS)
            .bind(tenant.as_str())
            .bind(grants_payload(written.into_iter())?)
            .execute(&mut **tx)
            .await
            .map_err(db("put mappings: insert badge grants", tenant))?;
    }
    Ok(())
}

/// Rewrites the rows the plan updates and drops their grants (the batch's grants replace
/// them); returns the (row id, mapping) pairs written.
async fn update_rows<'m>(
    tx: &mut Tx,
    tenant: &TenantId,
    plan: &UpsertPlan,
    mappings: &'m [Mapping],
) -> Result<Vec<(i64, &'m Mapping)>, Error> {
    if plan.updates.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(Sql::MAPPING_UPDATE)
        .bind(tenant.as_str())
        .bind(updates_payload(plan, mappings)?)
        .execute(&mut **tx)
        .await
        .map_err(db("put mappings: update rows", tenant))?;
    let ids: Vec<i64> = plan.updates.iter().map(|&(id, _)| id).collect();
    sqlx::query(Sql::MAPPING_DELETE_GRANTS)
        .bind(tenant.as_str())
        .bind(to_json(&ids, "updated ids")?)
        .execute(&mut **tx)
        .await
        .map_err(db("put mappings: replace badge grants", tenant))?;
    Ok(plan
        .updates
        .iter()
        .map(|&(id, i)| (id, &mappings[i]))
        .collect())
}

/// Inserts the rows the plan adds; returns the (row id, mapping) pairs written.
async fn insert_rows<'m>(
    tx: &mut Tx,
    tenant: &TenantId,
    plan: &UpsertPlan,
    mappings: &'m [Mapping],
) -> Result<Vec<(i64, &'m Mapping)>, Error> {
    if plan.inserts.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<(i64, String)> = sqlx::query_as(Sql::MAPPING_INSERT)
        .bind(tenant.as_str())
        .bind(inserts_payload(plan, mappings)?)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("put mappings: insert rows", tenant))?;
    let by_email: HashMap<&str, i64> = ids.iter().map(|(id, e)| (e.as_str(), *id)).collect();
    plan.inserts
        .iter()
        .map(|&i| {
            let m = &mappings[i];
            match by_email.get(m.email.as_str()) {
                Some(&id) => Ok((id, m)),
                None => Err(Error::store(
                    "put mappings",
                    format!("inserted row for {} not returned", m.email),
                    true,
                )),
            }
        })
        .collect()
}

#[async_trait]
impl MappingStore for Store {
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
            .fetch_all(self.reader())
            .await
            .map_err(db("list mappings", tenant))?;
        assemble_mappings(&rows)
    }

    async fn count_mappings(&self, tenant: &TenantId) -> Result<u64, Error> {
        check_tenant(tenant)?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mappings WHERE tenant = $1")
            .bind(tenant.as_str())
            .fetch_one(self.reader())
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
        let crm_ids: Vec<[&str; 2]> = crm_ids
            .iter()
            .map(|c| [c.crm.as_str(), c.id.as_str()])
            .collect();
        let rows: Vec<MappingRow> = sqlx::query_as(Sql::MAPPING_VIEW)
            .bind(tenant.as_str())
            .bind(to_json(&emails, "view emails")?)
            .bind(to_json(&crm_ids, "view crm ids")?)
            .fetch_all(self.reader())
            .await
            .map_err(db("load view", tenant))?;
        Ok(StateView::new(assemble_mappings(&rows)?))
    }

    async fn load_full_view(&self, tenant: &TenantId) -> Result<StateView, Error> {
        check_tenant(tenant)?;
        let rows: Vec<MappingRow> = sqlx::query_as(FULL_VIEW)
            .bind(tenant.as_str())
            .fetch_all(self.reader())
            .await
            .map_err(db("load full view", tenant))?;
        Ok(StateView::new(assemble_mappings(&rows)?))
    }
}
