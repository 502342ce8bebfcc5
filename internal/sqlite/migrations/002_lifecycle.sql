-- Quota lifecycle: warning thresholds, increase requests, webhooks and
-- their outbox.
ALTER TABLE tenants ADD COLUMN thresholds TEXT; -- JSON array; NULL: the plan's

CREATE TABLE requests (
    region       TEXT NOT NULL,
    id           TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    resource     TEXT NOT NULL,
    value        INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    status       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    history      TEXT NOT NULL, -- JSON array of steps
    PRIMARY KEY (region, id)
) WITHOUT ROWID;
CREATE INDEX requests_tenant ON requests (region, tenant, status);

CREATE TABLE webhooks (
    region     TEXT NOT NULL,
    id         TEXT NOT NULL,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL, -- JSON array of event types, or ["*"]
    tenant     TEXT NOT NULL, -- '' for every tenant
    sealed     BLOB NOT NULL, -- the signing secret, encrypted
    created_at INTEGER NOT NULL,
    PRIMARY KEY (region, id)
) WITHOUT ROWID;

-- One row per event to deliver to one webhook, written with the event.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    region       TEXT NOT NULL,
    webhook      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    tenant       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL DEFAULT 0,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_line ON outbox (region, webhook, tenant, id);
