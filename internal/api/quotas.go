package api

import (
	"context"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

// TenantQuotas reads a tenant's quotas, usage and limits as the native API
// shows them.
func TenantQuotas(ctx context.Context, store quota.Store, cat *quota.Catalog, region, tenant string) (client.Quotas, error) {
	t, err := store.Tenant(ctx, tenant)
	if err != nil {
		return client.Quotas{}, err
	}
	used, err := store.Usage(ctx, tenant)
	if err != nil {
		return client.Quotas{}, err
	}
	q := client.Quotas{Tenant: t.ID, Region: region, Resources: []client.ResourceQuota{}, Limits: []client.Limit{}}
	for _, res := range cat.Resources {
		q.Resources = append(q.Resources, wireUse(cat.Use(t, res, used)))
	}
	for _, k := range cat.Kinds {
		for _, l := range k.Limits {
			r := cat.Limit(t, k, l)
			q.Limits = append(q.Limits, client.Limit{Kind: k.Name, Limit: l.Name, Min: r.Min, Max: r.Max})
		}
	}
	return q, nil
}
