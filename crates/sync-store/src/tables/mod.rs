//! One implementation per table, shared by the SQLite and PostgreSQL stores.
//!
//! The files next to this one (`mappings.rs`, `outbox.rs`, `checkpoints.rs`,
//! `deliveries.rs`, `leases.rs`, `audit.rs`, `purge.rs`) hold each table's logic once. Each backend
//! compiles them as its own child modules (`#[path = "../tables/..."] mod ...;` in
//! `sqlite/mod.rs` and `postgres/mod.rs`), after naming three things the files use through
//! `super::`:
//!
//! - `Store`: the store type (`SqliteStore` or `PostgresStore`), which provides `reader()`,
//!   `writer()` and `begin_write()`: SQLite has a one-connection writer pool whose
//!   transactions start with `BEGIN IMMEDIATE`, PostgreSQL one pool for everything;
//! - `Db`: the sqlx database type (`sqlx::Sqlite` or `sqlx::Postgres`);
//! - `Sql`: the backend's [`Dialect`], the SQL text that differs between the two.
//!
//! Why not code generic over `sqlx::Database`: every query needs `Encode`/`Type` bounds per
//! bound value, `Decode` bounds per column, a higher-ranked `Executor` bound for
//! transactions and a helper for `rows_affected` (an inherent method per backend), and
//! Rust does not imply the where-clauses of a helper trait, so each of the ~30 functions
//! would repeat them. Why not a `macro_rules!` instantiated per backend: that is the same
//! idea, but its body is not formatted by rustfmt and errors point into the macro. Compiling
//! the same file under two modules gives monomorphic, ordinary code, checked and formatted
//! like any other module.
//!
//! SQL that both databases accept is written once in the table files: `$1`-style
//! placeholders (sqlx's SQLite driver reads `$N` as the N-th bound value), `ON CONFLICT`
//! upserts, `RETURNING`, `COUNT(*) FILTER (WHERE ...)`, `IS NOT DISTINCT FROM`, and
//! `CAST(column AS TEXT)` for columns that PostgreSQL stores as `jsonb` and SQLite as text.
//! The [`Dialect`] holds the rest: row locking (`FOR UPDATE SKIP LOCKED`, `FOR SHARE`),
//! the per-tenant lock of mapping writes, and the statements that unpack a JSON parameter
//! into rows (SQLite's `json_each` against PostgreSQL's `jsonb_to_recordset`). Lists are
//! always bound as one JSON text parameter, so the Rust side of every query is the same.

/// The SQL text that differs between the backends. Implemented by `SqliteSql` and
/// `PostgresSql`; each table file reads it as `super::Sql`.
pub(crate) trait Dialect {
    /// Appended to the claim's row selection so that concurrent claimers skip rows another
    /// transaction holds instead of waiting for them (empty on SQLite: one writer at a time).
    const SKIP_LOCKED: &'static str;
    /// Appended to the read of a worker's registration during a claim, so that the claim
    /// waits for a registration of the same instance id in progress (empty on SQLite).
    const FOR_SHARE: &'static str;
    /// Run first in a mapping write transaction, with the tenant as `$1`, to serialize
    /// writers of one tenant (PostgreSQL); `None` when the transaction already does
    /// (SQLite's `BEGIN IMMEDIATE`).
    const LOCK_TENANT: Option<&'static str>;

    /// Existing keys of a batch: tenant `$1`, JSON arrays of emails `$2`, `[crm_kind, crm_id]`
    /// pairs `$3` and Cativa user ids `$4`. Columns: id, email, cativa_user_id, crm_kind,
    /// crm_id.
    const MAPPING_KEYS: &'static str;
    /// The rows (joined with their grants, selected by the `select_mappings!` columns) whose
    /// email is in the JSON array `$2` or whose CRM record is in the JSON array of pairs `$3`.
    const MAPPING_VIEW: &'static str;
    /// Moves the rows with ids in the JSON array `$2` out of the way of the batch's keys.
    const MAPPING_PARK: &'static str;
    /// Rewrites the rows of the JSON array of row objects `$2` (see `upsert::row_json`).
    const MAPPING_UPDATE: &'static str;
    /// Deletes the grants of the rows with ids in the JSON array `$2`.
    const MAPPING_DELETE_GRANTS: &'static str;
    /// Inserts the rows of the JSON array `$2`, returning (id, email).
    const MAPPING_INSERT: &'static str;
    /// Inserts the grants of the JSON array `$2` (see `upsert::grants_payload`).
    const MAPPING_INSERT_GRANTS: &'static str;

    /// Enqueues the actions of the JSON array `$2` (see `rows::outbox_payload`) in array
    /// order, pending from time `$3`, skipping keys already queued.
    const OUTBOX_ENQUEUE: &'static str;

    /// Appends the audit entries of the JSON array `$2` (see `rows::audit_payload`) in
    /// array order.
    const AUDIT_APPEND: &'static str;

    /// A subquery listing the strings of the JSON array bound at `param` (e.g. `"$4"`).
    fn text_elements(param: &str) -> String;
}

/// Selects mapping rows `m` joined with their grants `g`; append the `FROM`. JSON columns
/// are read as text on both backends.
macro_rules! select_mappings {
    ($rest:literal) => {
        concat!(
            "SELECT m.id, m.email, m.cativa_user_id, m.crm_kind, m.crm_id, CAST(m.profile AS TEXT) AS profile, \
             m.invited_at_ns, m.updated_at_ns, m.generation, g.badge AS g_badge, g.provenance AS g_provenance, g.rule_id AS g_rule, \
             g.source AS g_source, g.granted_at_ns AS g_granted_at_ns ",
            $rest
        )
    };
}
pub(crate) use select_mappings;

/// SQLite: JSON parameters are unpacked with `json_each`.
#[cfg(feature = "sqlite")]
#[derive(Debug)]
pub(crate) enum SqliteSql {}

#[cfg(feature = "sqlite")]
impl Dialect for SqliteSql {
    const SKIP_LOCKED: &'static str = "";
    const FOR_SHARE: &'static str = "";
    const LOCK_TENANT: Option<&'static str> = None;

    const MAPPING_KEYS: &'static str = "\
        SELECT id, email, cativa_user_id, crm_kind, crm_id FROM mappings \
          WHERE tenant = $1 AND email IN (SELECT value FROM json_each($2)) \
        UNION SELECT id, email, cativa_user_id, crm_kind, crm_id FROM mappings \
          WHERE tenant = $1 AND (crm_kind, crm_id) IN (SELECT value ->> '$[0]', value ->> '$[1]' FROM json_each($3)) \
        UNION SELECT id, email, cativa_user_id, crm_kind, crm_id FROM mappings \
          WHERE tenant = $1 AND cativa_user_id IN (SELECT value FROM json_each($4))";
    const MAPPING_VIEW: &'static str = select_mappings!(
        "FROM (SELECT id FROM mappings WHERE tenant = $1 AND email IN (SELECT value FROM json_each($2)) \
               UNION SELECT id FROM mappings WHERE tenant = $1 \
                 AND (crm_kind, crm_id) IN (SELECT value ->> '$[0]', value ->> '$[1]' FROM json_each($3))) hit \
         JOIN mappings m ON m.id = hit.id LEFT JOIN badge_grants g ON g.mapping_id = m.id ORDER BY m.id, g.position"
    );
    // A parked email contains spaces, which no `Email` does, so it cannot collide. The ids
    // come from the tenant-scoped key lookup of the same transaction; `+tenant` keeps SQLite
    // from scanning the tenant's index instead of looking the ids up.
    const MAPPING_PARK: &'static str = "\
        UPDATE mappings SET email = ' parked ' || id, cativa_user_id = NULL, crm_kind = NULL, crm_id = NULL \
        WHERE +tenant = $1 AND id IN (SELECT value FROM json_each($2))";
    // An upsert on the primary key: one key lookup per row (SQLite plans `UPDATE ... FROM
    // json_each` as a scan of the table per row of the batch). `WHERE true` resolves
    // SQLite's parsing ambiguity between a join and an upsert.
    const MAPPING_UPDATE: &'static str = "\
        INSERT INTO mappings (id, tenant, email, cativa_user_id, crm_kind, crm_id, profile, invited_at_ns, updated_at_ns, \
            generation) \
        SELECT value ->> '$.id', $1, value ->> '$.email', value ->> '$.user', value ->> '$.crm_kind', \
            value ->> '$.crm_id', value ->> '$.profile', value ->> '$.invited', value ->> '$.updated', \
            value ->> '$.generation' \
        FROM json_each($2) WHERE true \
        ON CONFLICT (id) DO UPDATE SET email = excluded.email, cativa_user_id = excluded.cativa_user_id, \
            crm_kind = excluded.crm_kind, crm_id = excluded.crm_id, profile = excluded.profile, \
            invited_at_ns = excluded.invited_at_ns, updated_at_ns = excluded.updated_at_ns, \
            generation = excluded.generation \
        WHERE mappings.tenant = excluded.tenant";
    const MAPPING_DELETE_GRANTS: &'static str = "\
        DELETE FROM badge_grants WHERE +tenant = $1 AND mapping_id IN (SELECT value FROM json_each($2))";
    const MAPPING_INSERT: &'static str = "\
        INSERT INTO mappings (tenant, email, cativa_user_id, crm_kind, crm_id, profile, invited_at_ns, updated_at_ns, \
            generation) \
        SELECT $1, value ->> '$.email', value ->> '$.user', value ->> '$.crm_kind', value ->> '$.crm_id', \
            value ->> '$.profile', value ->> '$.invited', value ->> '$.updated', value ->> '$.generation' \
        FROM json_each($2) \
        RETURNING id, email";
    const MAPPING_INSERT_GRANTS: &'static str = "\
        INSERT INTO badge_grants (mapping_id, tenant, position, badge, provenance, rule_id, source, granted_at_ns) \
        SELECT value ->> '$.m', $1, value ->> '$.p', value ->> '$.b', value ->> '$.k', value ->> '$.r', \
            value ->> '$.s', value ->> '$.g' FROM json_each($2)";

    const OUTBOX_ENQUEUE: &'static str = "\
        INSERT INTO outbox (tenant, key, kind, action, status, attempts, enqueued_at_ns) \
        SELECT $1, j.value ->> '$.key', j.value ->> '$.kind', j.value ->> '$.action', 'pending', 0, $3 \
        FROM json_each($2) AS j WHERE true ORDER BY j.key \
        ON CONFLICT (tenant, key) DO NOTHING";

    const AUDIT_APPEND: &'static str = "\
        INSERT INTO audit_log (tenant, at_ns, action, target, before_json, after_json, outcome, key, detail) \
        SELECT $1, j.value ->> '$.at', j.value ->> '$.action', j.value ->> '$.target', j.value ->> '$.before', \
            j.value ->> '$.after', j.value ->> '$.outcome', j.value ->> '$.key', j.value ->> '$.detail' \
        FROM json_each($2) AS j ORDER BY j.key";

    fn text_elements(param: &str) -> String {
        format!("SELECT value FROM json_each({param})")
    }
}

/// PostgreSQL: JSON parameters are unpacked with the `jsonb` functions; row locks let
/// several instances share the tables.
#[cfg(feature = "postgres")]
#[derive(Debug)]
pub(crate) enum PostgresSql {}

#[cfg(feature = "postgres")]
impl Dialect for PostgresSql {
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const FOR_SHARE: &'static str = " FOR SHARE";
    // A transaction-scoped advisory lock (key: 'SYNC', tenant hash), so two instances
    // upserting the same person serialize instead of failing on a unique index.
    const LOCK_TENANT: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(1398361667, hashtext($1))");

    const MAPPING_KEYS: &'static str = "\
        SELECT id, email, cativa_user_id, crm_kind, crm_id FROM mappings \
          WHERE tenant = $1 AND email IN (SELECT value FROM jsonb_array_elements_text($2::jsonb)) \
        UNION SELECT id, email, cativa_user_id, crm_kind, crm_id FROM mappings \
          WHERE tenant = $1 AND (crm_kind, crm_id) IN (SELECT e ->> 0, e ->> 1 FROM jsonb_array_elements($3::jsonb) e) \
        UNION SELECT id, email, cativa_user_id, crm_kind, crm_id FROM mappings \
          WHERE tenant = $1 AND cativa_user_id IN (SELECT value FROM jsonb_array_elements_text($4::jsonb))";
    const MAPPING_VIEW: &'static str = select_mappings!(
        "FROM (SELECT id FROM mappings WHERE tenant = $1 \
                 AND email IN (SELECT value FROM jsonb_array_elements_text($2::jsonb)) \
               UNION SELECT id FROM mappings WHERE tenant = $1 \
                 AND (crm_kind, crm_id) IN (SELECT e ->> 0, e ->> 1 FROM jsonb_array_elements($3::jsonb) e)) hit \
         JOIN mappings m ON m.id = hit.id LEFT JOIN badge_grants g ON g.mapping_id = m.id ORDER BY m.id, g.position"
    );
    // A parked email contains spaces, which no `Email` does, so it cannot collide.
    const MAPPING_PARK: &'static str = "\
        UPDATE mappings SET email = ' parked ' || id, cativa_user_id = NULL, crm_kind = NULL, crm_id = NULL \
        WHERE tenant = $1 AND id IN (SELECT value::bigint FROM jsonb_array_elements_text($2::jsonb))";
    const MAPPING_UPDATE: &'static str = "\
        UPDATE mappings m SET email = j.email, cativa_user_id = j.\"user\", crm_kind = j.crm_kind, crm_id = j.crm_id, \
            profile = j.profile::jsonb, invited_at_ns = j.invited, updated_at_ns = j.updated, generation = j.generation \
        FROM jsonb_to_recordset($2::jsonb) AS j(id bigint, email text, \"user\" text, crm_kind text, crm_id text, \
            profile text, invited bigint, updated bigint, generation bigint) \
        WHERE m.tenant = $1 AND m.id = j.id";
    const MAPPING_DELETE_GRANTS: &'static str = "\
        DELETE FROM badge_grants WHERE tenant = $1 \
          AND mapping_id IN (SELECT value::bigint FROM jsonb_array_elements_text($2::jsonb))";
    const MAPPING_INSERT: &'static str = "\
        INSERT INTO mappings (tenant, email, cativa_user_id, crm_kind, crm_id, profile, invited_at_ns, updated_at_ns, \
            generation) \
        SELECT $1, j.email, j.\"user\", j.crm_kind, j.crm_id, j.profile::jsonb, j.invited, j.updated, j.generation \
        FROM jsonb_to_recordset($2::jsonb) AS j(email text, \"user\" text, crm_kind text, crm_id text, profile text, \
            invited bigint, updated bigint, generation bigint) \
        RETURNING id, email";
    const MAPPING_INSERT_GRANTS: &'static str = "\
        INSERT INTO badge_grants (mapping_id, tenant, position, badge, provenance, rule_id, source, granted_at_ns) \
        SELECT j.m, $1, j.p, j.b, j.k, j.r, j.s, j.g \
        FROM jsonb_to_recordset($2::jsonb) AS j(m bigint, p bigint, b text, k text, r text, s text, g bigint)";

    const OUTBOX_ENQUEUE: &'static str = "\
        INSERT INTO outbox (tenant, key, kind, action, status, attempts, enqueued_at_ns) \
        SELECT $1, j.key, j.kind, j.action::jsonb, 'pending', 0, $3 \
        FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (key text, kind text, action text)) \
            WITH ORDINALITY AS j(key, kind, action, ord) \
        ORDER BY j.ord \
        ON CONFLICT (tenant, key) DO NOTHING";

    const AUDIT_APPEND: &'static str = "\
        INSERT INTO audit_log (tenant, at_ns, action, target, before_json, after_json, outcome, key, detail) \
        SELECT $1, j.at, j.action, j.target, j.before::jsonb, j.after::jsonb, j.outcome, j.key, j.detail \
        FROM ROWS FROM (jsonb_to_recordset($2::jsonb) AS (at bigint, action text, target text, before text, \
            after text, outcome text, key text, detail text)) \
            WITH ORDINALITY AS j(at, action, target, before, after, outcome, key, detail, ord) \
        ORDER BY j.ord";

    fn text_elements(param: &str) -> String {
        format!("SELECT value FROM jsonb_array_elements_text({param}::jsonb)")
    }
}
