-- How many times an operator requeued a failed outbox item: each requeue is sent to the API
-- under a new idempotency key, so an API that replays stored answers gives a new attempt.
ALTER TABLE outbox ADD COLUMN requeues BIGINT NOT NULL DEFAULT 0;
