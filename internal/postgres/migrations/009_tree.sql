-- Tenants in a tree: a tenant may sit under a parent (NULL: a root), and a
-- parent's hard quota caps the usage of its whole subtree. subtree_usage
-- holds, for each tenant with descendants, what they use (its own usage
-- stays in usage): tree usage is the sum of both. Snapshots carry both, so
-- usage at a past time answers for the tree too.
-- incompatible: every process must check the ancestors' quotas and keep subtree usage, or claims through an older allot pass a parent's quota
ALTER TABLE tenants ADD COLUMN parent text;
CREATE INDEX tenants_parent ON tenants (region, parent);

CREATE TABLE subtree_usage (
    region   text   NOT NULL,
    tenant   text   NOT NULL,
    resource text   NOT NULL,
    used     bigint NOT NULL,
    PRIMARY KEY (region, tenant, resource)
);

ALTER TABLE snapshots ADD COLUMN parent text NOT NULL DEFAULT '',
    ADD COLUMN below jsonb NOT NULL DEFAULT '{}';
