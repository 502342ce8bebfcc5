package api

import (
	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

// tenantQuotas is a tenant's quotas, usage and limits as the native API
// shows them, from the tenant as of the last commit.
func tenantQuotas(cat *quota.Catalog, region string, v *quota.TenantView) client.Quotas {
	t := v.Tenant
	q := client.Quotas{Tenant: t.ID, Region: region, Resources: make([]client.ResourceQuota, 0, len(cat.Resources)), Limits: []client.Limit{}}
	for _, res := range cat.Resources {
		q.Resources = append(q.Resources, wireUse(cat, t, cat.Use(t, res, v.Usage)))
	}
	for _, k := range cat.Kinds {
		for _, l := range k.Limits {
			r := cat.Limit(t, k, l)
			q.Limits = append(q.Limits, client.Limit{Kind: k.Name, Limit: l.Name, Min: r.Min, Max: r.Max})
		}
	}
	return q
}
