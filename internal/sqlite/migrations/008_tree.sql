-- Tenants in a tree: a tenant may sit under a parent (NULL: a root), and a
-- parent's hard quota caps the usage of its whole subtree. subtree_usage
-- holds, for each tenant with descendants, what they use (its own usage
-- stays in usage): tree usage is the sum of both. Snapshots carry both, so
-- usage at a past time answers for the tree too.
ALTER TABLE tenants ADD COLUMN parent TEXT;
CREATE INDEX tenants_parent ON tenants (region, parent);

CREATE TABLE subtree_usage (
    region   TEXT NOT NULL,
    tenant   TEXT NOT NULL,
    resource TEXT NOT NULL,
    used     INTEGER NOT NULL,
    PRIMARY KEY (region, tenant, resource)
) WITHOUT ROWID;

ALTER TABLE snapshots ADD COLUMN parent TEXT NOT NULL DEFAULT '';
ALTER TABLE snapshots ADD COLUMN below TEXT NOT NULL DEFAULT '{}';
