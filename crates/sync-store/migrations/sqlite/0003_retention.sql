-- Retention: when each outbox item was completed, so done items can be purged after a
-- window, and the indexes the bounded purges of done items and audit rows scan.
ALTER TABLE outbox ADD COLUMN done_at_ns INTEGER;
-- Items done before this migration recorded no completion time: they count as completed
-- now, so none is purged before a full window has passed.
UPDATE outbox SET done_at_ns = CAST(strftime('%s', 'now') AS INTEGER) * 1000000000
    WHERE status = 'done';
CREATE INDEX outbox_tenant_done_at ON outbox (tenant, done_at_ns) WHERE status = 'done';
CREATE INDEX audit_log_tenant_at ON audit_log (tenant, at_ns);
