-- Retention of the status tables: the bounded purge of operator actions picks the oldest
-- through (tenant, at_ns). Webhook counters are purged through their primary key, which
-- starts with (tenant, hour_ns).
CREATE INDEX operator_actions_tenant_at ON operator_actions (tenant, at_ns);
