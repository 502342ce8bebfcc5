-- How each subscription's deliveries go: the outcome of its latest attempt,
-- kept after the delivery has left the outbox. last_attempt_at is unix
-- nanoseconds, 0 for never; last_status is the receiver's HTTP status, 0
-- when none answered.
ALTER TABLE webhooks ADD COLUMN last_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN last_status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
