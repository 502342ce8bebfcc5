-- allot's schema on PostgreSQL. Times are unix nanoseconds (bigint), so they
-- round-trip exactly, as in the SQLite store. Every row carries its region:
-- one database may hold several, a server serves one.
CREATE TABLE tenants (
    region     text   NOT NULL,
    id         text   NOT NULL,
    name       text   NOT NULL,
    plan       text   NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (region, id)
);

CREATE TABLE quota_overrides (
    region   text NOT NULL,
    tenant   text NOT NULL,
    resource text NOT NULL,
    hard     bigint,
    req_min  bigint,
    req_max  bigint,
    PRIMARY KEY (region, tenant, resource)
);

CREATE TABLE limit_overrides (
    region text   NOT NULL,
    tenant text   NOT NULL,
    key    text   NOT NULL, -- kind.limit
    min    bigint NOT NULL,
    max    bigint NOT NULL,
    PRIMARY KEY (region, tenant, key)
);

CREATE TABLE usage (
    region   text   NOT NULL,
    tenant   text   NOT NULL,
    resource text   NOT NULL,
    used     bigint NOT NULL,
    PRIMARY KEY (region, tenant, resource)
);

CREATE TABLE consumers (
    region     text   NOT NULL,
    tenant     text   NOT NULL,
    id         text   NOT NULL,
    kind       text   NOT NULL,
    state      text   NOT NULL,
    attributes jsonb  NOT NULL,
    generation bigint NOT NULL,
    footprint  jsonb  NOT NULL,
    expires_at bigint,          -- NULL unless a reservation
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (region, tenant, id)
);
CREATE INDEX consumers_expiry ON consumers (region, expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE tokens (
    region     text   NOT NULL,
    name       text   NOT NULL,
    role       text   NOT NULL,
    tenant     text   NOT NULL,
    hash       bytea,
    sealed     bytea,
    created_at bigint NOT NULL,
    revoked_at bigint,
    PRIMARY KEY (region, name)
);

-- seq is assigned while the appending transaction holds the ledger lock,
-- so sequence order is commit order: a reader paging by seq never skips an
-- event that commits later with a smaller number.
CREATE TABLE events (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region  text   NOT NULL,
    time    bigint NOT NULL,
    type    text   NOT NULL,
    tenant  text   NOT NULL,
    subject text   NOT NULL,
    actor   text   NOT NULL,
    role    text   NOT NULL,
    reason  text   NOT NULL,
    before  json,
    after   json
);
CREATE INDEX events_tenant ON events (region, tenant, seq);
