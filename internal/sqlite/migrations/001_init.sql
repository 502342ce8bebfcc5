-- Every row carries its region: one file may hold several, a server serves one.
CREATE TABLE tenants (
    region     TEXT NOT NULL,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    plan       TEXT NOT NULL,
    created_at INTEGER NOT NULL, -- unix nanoseconds
    PRIMARY KEY (region, id)
) WITHOUT ROWID;

CREATE TABLE quota_overrides (
    region   TEXT NOT NULL,
    tenant   TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard     INTEGER,
    req_min  INTEGER,
    req_max  INTEGER,
    PRIMARY KEY (region, tenant, resource)
) WITHOUT ROWID;

CREATE TABLE limit_overrides (
    region TEXT NOT NULL,
    tenant TEXT NOT NULL,
    key    TEXT NOT NULL, -- kind.limit
    min    INTEGER NOT NULL,
    max    INTEGER NOT NULL,
    PRIMARY KEY (region, tenant, key)
) WITHOUT ROWID;

CREATE TABLE usage (
    region   TEXT NOT NULL,
    tenant   TEXT NOT NULL,
    resource TEXT NOT NULL,
    used     INTEGER NOT NULL,
    PRIMARY KEY (region, tenant, resource)
) WITHOUT ROWID;

CREATE TABLE consumers (
    region     TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    id         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    attributes TEXT NOT NULL, -- JSON object
    generation INTEGER NOT NULL,
    footprint  TEXT NOT NULL, -- JSON object
    expires_at INTEGER,       -- unix nanoseconds; NULL unless a reservation
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (region, tenant, id)
) WITHOUT ROWID;
CREATE INDEX consumers_expiry ON consumers (region, expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE tokens (
    region     TEXT NOT NULL,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    hash       BLOB,
    sealed     BLOB,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (region, name)
) WITHOUT ROWID;

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    region     TEXT NOT NULL,
    time       INTEGER NOT NULL,
    type       TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    actor      TEXT NOT NULL,
    role       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    before     TEXT,
    after      TEXT
);
CREATE INDEX events_tenant ON events (region, tenant, seq);
