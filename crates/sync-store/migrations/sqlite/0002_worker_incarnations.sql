-- Instance identity for outbox claims: each start of a worker instance id gets a new
-- incarnation (its fencing token), and every claim records the incarnation that took it.
CREATE TABLE outbox_workers (
    tenant           TEXT    NOT NULL,
    worker           TEXT    NOT NULL,
    incarnation      INTEGER NOT NULL,
    registered_at_ns INTEGER NOT NULL,
    PRIMARY KEY (tenant, worker)
);
ALTER TABLE outbox ADD COLUMN lease_incarnation INTEGER;
CREATE INDEX outbox_tenant_leased_by ON outbox (tenant, leased_by) WHERE status = 'in_flight';
