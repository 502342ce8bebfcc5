-- Settings every process on the database must agree on (Store.Pin), such as
-- the fingerprint of the key that seals secrets.
CREATE TABLE meta (
    region text NOT NULL,
    key    text NOT NULL,
    value  text NOT NULL,
    PRIMARY KEY (region, key)
);
