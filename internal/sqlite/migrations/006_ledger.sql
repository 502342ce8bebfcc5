-- The ledger over months. A snapshot is a tenant's state as of a ledger
-- position, so that reading usage at a time replays only the events since
-- the snapshot before it; a checkpoint is a position every tenant changed
-- before it has a snapshot for. Pruning removes events up to the horizon
-- (meta: horizon_seq, horizon_time) and the snapshots no later time needs.
CREATE TABLE snapshots (
    region TEXT    NOT NULL,
    tenant TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    time   INTEGER NOT NULL, -- unix nanoseconds, of the event at seq
    usage  TEXT    NOT NULL, -- JSON object
    hard   TEXT    NOT NULL, -- JSON object: hard quotas set by quota.set
    plan   TEXT    NOT NULL,
    PRIMARY KEY (region, tenant, seq)
) WITHOUT ROWID;

-- usage?at= finds the newest snapshot at or before a time.
CREATE INDEX snapshots_time ON snapshots (region, tenant, time);

CREATE TABLE checkpoints (
    region TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    time   INTEGER NOT NULL,
    PRIMARY KEY (region, seq)
) WITHOUT ROWID;
