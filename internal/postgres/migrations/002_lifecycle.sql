-- Quota lifecycle: warning thresholds, increase requests, webhooks and
-- their outbox.
-- incompatible: every process must write the outbox rows of the webhooks with its events, or deliveries are lost
ALTER TABLE tenants ADD COLUMN thresholds jsonb; -- NULL: the plan's

CREATE TABLE requests (
    region       text   NOT NULL,
    id           text   NOT NULL,
    tenant       text   NOT NULL,
    resource     text   NOT NULL,
    value        bigint NOT NULL,
    reason       text   NOT NULL,
    status       text   NOT NULL,
    requested_by text   NOT NULL,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    history      jsonb  NOT NULL,
    PRIMARY KEY (region, id)
);
CREATE INDEX requests_tenant ON requests (region, tenant, status);

CREATE TABLE webhooks (
    region     text   NOT NULL,
    id         text   NOT NULL,
    url        text   NOT NULL,
    events     jsonb  NOT NULL,
    tenant     text   NOT NULL, -- '' for every tenant
    sealed     bytea  NOT NULL, -- the signing secret, encrypted
    created_at bigint NOT NULL,
    PRIMARY KEY (region, id)
);

-- One row per event to deliver to one webhook, written with the event.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region       text   NOT NULL,
    webhook      text   NOT NULL,
    seq          bigint NOT NULL,
    tenant       text   NOT NULL,
    attempts     int    NOT NULL DEFAULT 0,
    next_attempt bigint NOT NULL DEFAULT 0,
    lease_until  bigint NOT NULL DEFAULT 0,
    created_at   bigint NOT NULL,
    last_error   text   NOT NULL DEFAULT ''
);
CREATE INDEX outbox_line ON outbox (region, webhook, tenant, id);
