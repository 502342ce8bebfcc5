-- Consumers move to a rowid table with a unique index on their key: a
-- WITHOUT ROWID table keeps whole rows in its key's b-tree, and writing a
-- consumer cost about twice as much there.
CREATE TABLE consumers_by_rowid (
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
    updated_at INTEGER NOT NULL
);
INSERT INTO consumers_by_rowid SELECT region, tenant, id, kind, state, attributes, generation, footprint, expires_at, created_at, updated_at FROM consumers;
DROP TABLE consumers;
ALTER TABLE consumers_by_rowid RENAME TO consumers;
CREATE UNIQUE INDEX consumers_key ON consumers (region, tenant, id);
CREATE INDEX consumers_expiry ON consumers (region, expires_at) WHERE expires_at IS NOT NULL;
