-- How each subscription's deliveries go: the outcome of its latest attempt,
-- kept after the delivery has left the outbox. last_attempt_at is unix
-- nanoseconds, 0 for never; last_status is the receiver's HTTP status, 0
-- when none answered.
ALTER TABLE webhooks ADD COLUMN last_attempt_at bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_status int NOT NULL DEFAULT 0,
    ADD COLUMN last_error text NOT NULL DEFAULT '';
