-- created_seq is the ledger position of a tenant's tenant.create event:
-- the start of this owner's history. A tenant deleted and created again
-- under the same id must not see the previous owner's events.
-- incompatible: every process must set created_seq when it creates a tenant
ALTER TABLE tenants ADD COLUMN created_seq bigint NOT NULL DEFAULT 0;
UPDATE tenants SET created_seq = coalesce((SELECT max(seq) FROM events
    WHERE events.region = tenants.region AND events.tenant = tenants.id AND events.type = 'tenant.create'), 0);
