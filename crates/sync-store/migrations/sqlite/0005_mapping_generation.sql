-- How many times a mapping row moved from one CRM record to another. The planner keys the
-- links and grants of a row by it, so one planned again after the row came back is not
-- taken for a repeat of one already applied. Existing rows start at 0, which keys their
-- actions exactly as before (their outbox items keep matching).
ALTER TABLE mappings ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
