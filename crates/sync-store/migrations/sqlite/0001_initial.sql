-- sync-store schema for SQLite. Every table is keyed by tenant; times are nanoseconds since
-- the Unix epoch (INTEGER), so they compare as numbers and round-trip exactly.

-- The identity mapping: one row per person known by email, per tenant.
CREATE TABLE mappings (
    id             INTEGER PRIMARY KEY,
    tenant         TEXT    NOT NULL,
    email          TEXT    NOT NULL,
    cativa_user_id TEXT,
    crm_kind       TEXT,
    crm_id         TEXT,
    profile        TEXT,
    invited_at_ns  INTEGER,
    updated_at_ns  INTEGER NOT NULL,
    CHECK ((crm_kind IS NULL) = (crm_id IS NULL))
);
-- Unique per tenant on email, on Cativa user id and on CRM record (NULLs do not collide).
CREATE UNIQUE INDEX mappings_tenant_email ON mappings (tenant, email);
CREATE UNIQUE INDEX mappings_tenant_user ON mappings (tenant, cativa_user_id);
CREATE UNIQUE INDEX mappings_tenant_crm ON mappings (tenant, crm_kind, crm_id);

-- Badges a mapped user holds, in the order the mapping lists them, with their provenance:
-- granted by this sync under a rule, or granted elsewhere (a source label).
CREATE TABLE badge_grants (
    mapping_id    INTEGER NOT NULL REFERENCES mappings (id) ON DELETE CASCADE,
    tenant        TEXT    NOT NULL,
    position      INTEGER NOT NULL,
    badge         TEXT    NOT NULL,
    provenance    TEXT    NOT NULL CHECK (provenance IN ('sync', 'external')),
    rule_id       TEXT,
    source        TEXT,
    granted_at_ns INTEGER NOT NULL,
    PRIMARY KEY (mapping_id, position),
    CHECK ((provenance = 'sync') = (rule_id IS NOT NULL)),
    CHECK ((provenance = 'external') = (source IS NOT NULL))
);

-- Delta checkpoints per (tenant, source, stream).
CREATE TABLE checkpoints (
    tenant         TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    stream         TEXT    NOT NULL,
    modified_at_ns INTEGER NOT NULL,
    last_id        TEXT,
    PRIMARY KEY (tenant, source, stream)
);

-- Processed webhook deliveries (the idempotency ledger), purged after a retention window.
CREATE TABLE deliveries (
    tenant         TEXT    NOT NULL,
    delivery_id    TEXT    NOT NULL,
    received_at_ns INTEGER NOT NULL,
    PRIMARY KEY (tenant, delivery_id)
);
CREATE INDEX deliveries_tenant_received ON deliveries (tenant, received_at_ns);

-- The outbox of planned actions. seq orders items oldest first.
CREATE TABLE outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant         TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('pending', 'in_flight', 'done', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    leased_by      TEXT,
    lease_until_ns INTEGER,
    not_before_ns  INTEGER,
    enqueued_at_ns INTEGER NOT NULL
);
CREATE UNIQUE INDEX outbox_tenant_key ON outbox (tenant, key);
CREATE INDEX outbox_tenant_status_seq ON outbox (tenant, status, seq);

-- The audit log: one row per applied (or attempted) action. seq orders rows.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant      TEXT    NOT NULL,
    at_ns       INTEGER NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    before_json TEXT,
    after_json  TEXT,
    outcome     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    detail      TEXT
);
CREATE INDEX audit_log_tenant_seq ON audit_log (tenant, seq);
CREATE INDEX audit_log_tenant_key ON audit_log (tenant, key);

-- Leader leases (one row per tenant and lease name).
CREATE TABLE leader_leases (
    tenant        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    holder        TEXT    NOT NULL,
    expires_at_ns INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
);
