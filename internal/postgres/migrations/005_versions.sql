-- Every commit that changes a tenant raises its version, so each process,
-- which keeps tenants in memory, can tell under the tenant's lock whether
-- another process changed it meanwhile. The webhooks' version is in meta.
-- incompatible: every process must raise the versions, or the others serve stale tenants
ALTER TABLE tenants ADD COLUMN version bigint NOT NULL DEFAULT 0;
