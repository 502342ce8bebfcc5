-- Settings every process on the database must agree on (Store.Pin), such as
-- the fingerprint of the key that seals secrets.
CREATE TABLE meta (
    region TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (region, key)
) WITHOUT ROWID;
