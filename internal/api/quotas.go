package api

import (
	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

// tenantQuotas is a tenant's quotas, usage and limits as the native API
// shows them, from the tenant and its ancestors (path, parent first) as of
// the last commits.
func tenantQuotas(cat *quota.Catalog, region string, path []*quota.TenantView) client.Quotas {
	t := path[0].Tenant
	q := client.Quotas{Tenant: t.ID, Parent: t.Parent, Region: region, Resources: make([]client.ResourceQuota, 0, len(cat.Resources)), Limits: []client.Limit{}}
	for _, res := range cat.Resources {
		q.Resources = append(q.Resources, pathUse(cat, path, res))
	}
	for _, k := range cat.Kinds {
		for _, l := range k.Limits {
			r := cat.Limit(t, k, l)
			q.Limits = append(q.Limits, client.Limit{Kind: k.Name, Limit: l.Name, Min: r.Min, Max: r.Max})
		}
	}
	return q
}

// pathUse is one resource of a tenant: its own use and its tree's, its
// hard quota, and what it could still claim along its path.
func pathUse(cat *quota.Catalog, path []*quota.TenantView, res *quota.Resource) client.ResourceQuota {
	v := path[0]
	rq := wireUse(cat, v.Tenant, cat.Use(v.Tenant, res, v.Usage))
	rq.Tree = v.Tree(res.Name)
	rq.Available = cat.Headroom(path, res)
	rq.OverQuota = rq.OverQuota || cat.TreeOver(v, res)
	return rq
}
