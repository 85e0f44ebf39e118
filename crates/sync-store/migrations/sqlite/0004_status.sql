-- Sync status: when an outbox item failed for good and whether a person dismissed it, the
-- operator actions on failed work, the last run of each mode, the last credentials check,
-- and webhook deliveries counted per hour.
ALTER TABLE outbox ADD COLUMN failed_at_ns INTEGER;
ALTER TABLE outbox ADD COLUMN dismissed_at_ns INTEGER;
ALTER TABLE outbox ADD COLUMN dismissed_by TEXT;
ALTER TABLE outbox ADD COLUMN dismiss_note TEXT;
CREATE INDEX outbox_tenant_failed_at ON outbox (tenant, failed_at_ns) WHERE status = 'failed';

CREATE TABLE operator_actions (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT    NOT NULL,
    at_ns  INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    keys   TEXT    NOT NULL,
    note   TEXT
);
CREATE INDEX operator_actions_tenant_seq ON operator_actions (tenant, seq);

CREATE TABLE run_history (
    tenant        TEXT    NOT NULL,
    mode          TEXT    NOT NULL,
    record        TEXT    NOT NULL,
    last_ok_at_ns INTEGER,
    PRIMARY KEY (tenant, mode)
);

CREATE TABLE credential_checks (
    tenant        TEXT    PRIMARY KEY,
    checked_at_ns INTEGER NOT NULL,
    error         TEXT,
    account_id    TEXT
);

CREATE TABLE webhook_counts (
    tenant  TEXT    NOT NULL,
    hour_ns INTEGER NOT NULL,
    outcome TEXT    NOT NULL,
    reason  TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (tenant, hour_ns, outcome, reason)
);
