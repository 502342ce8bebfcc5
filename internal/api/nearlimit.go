package api

import (
	"cmp"
	"math"
	"net/http"
	"slices"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

// nearLimit lists every tenant and resource at or above a utilisation
// (min, in percent; absent: each tenant's own first warning threshold),
// filtered by service, resource and plan, sorted and paged: the "quotas
// near their limit" view of the cloud consoles. It reads the engine's
// views, like /utilisation, so it costs one pass over tenants in memory.
func (a *API) nearLimit(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	q := r.URL.Query()
	var level *int64 // nil: each tenant's first threshold
	if q.Get("min") != "" {
		v, err := queryInt(r, "min", 0, 0, 1000)
		if err != nil {
			return err
		}
		level = &v
	}
	offset, err := queryInt(r, "offset", 0, 0, 1<<31-1)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 50, 1, 1000)
	if err != nil {
		return err
	}
	service, resource, plan, sort := q.Get("service"), q.Get("resource"), q.Get("plan"), q.Get("sort")
	if service != "" && !slices.ContainsFunc(a.cat.Services, func(s *quota.Service) bool { return s.Name == service }) {
		return quota.Errorf(quota.CodeInvalid, "unknown service %q", truncate(service, 64))
	}
	if resource != "" && a.cat.Resource(resource) == nil {
		return quota.Errorf(quota.CodeInvalid, "unknown resource %q", truncate(resource, 128))
	}
	if plan != "" && a.cat.Plans[plan] == nil {
		return quota.Errorf(quota.CodeInvalid, "unknown plan %q", truncate(plan, 64))
	}
	less, ok := nearLimitOrders[cmp.Or(sort, "utilisation")]
	if !ok {
		return quota.Errorf(quota.CodeInvalid, "sort must be utilisation, used or headroom, not %q", truncate(sort, 32))
	}

	var rows []client.NearLimitRow
	for _, v := range a.engine.Views() {
		t := v.Tenant
		if plan != "" && t.Plan != plan {
			continue
		}
		first := int64(80) // as the dashboard colours a tenant without thresholds
		if ts := a.cat.TenantThresholds(t); len(ts) > 0 {
			first = slices.Min(ts)
		}
		at := first
		if level != nil {
			at = *level
		}
		for _, res := range a.cat.Resources {
			if service != "" && res.Service != service || resource != "" && res.Name != resource {
				continue
			}
			u := a.cat.Use(t, res, v.Usage)
			if !atLeast(u.Used, u.Hard, at) {
				continue
			}
			row := client.NearLimitRow{Tenant: t.ID, Name: t.Name, Plan: t.Plan, Resource: res.Name, Unit: res.Unit,
				Used: u.Used, Hard: u.Hard, Source: quotaSource(a.cat, t, res), Headroom: u.Hard - u.Used,
				FirstThreshold: first, OverQuota: u.Over()}
			if u.Hard > 0 {
				p := u.Used * 100 / u.Hard
				row.Percent = &p
			} else if u.Used == 0 {
				var p int64
				row.Percent = &p
			}
			rows = append(rows, row)
		}
	}
	slices.SortStableFunc(rows, func(x, y client.NearLimitRow) int {
		return cmp.Or(less(x, y), cmp.Compare(x.Tenant, y.Tenant))
	})
	out := client.NearLimit{Rows: []client.NearLimitRow{}, Total: len(rows)}
	if int(offset) < len(rows) {
		out.Rows = rows[offset:min(offset+limit, int64(len(rows)))]
	}
	respond(w, http.StatusOK, out)
	return nil
}

// atLeast reports whether used/hard is at least pct percent. Something
// used of a hard quota of 0 is beyond every level; nothing of nothing is
// 0 %.
func atLeast(used, hard, pct int64) bool {
	switch {
	case hard == 0:
		return used > 0 || pct == 0
	case used < 1<<40 && hard < 1<<40: // exact, without overflow
		return used*100 >= pct*hard
	}
	return float64(used)*100 >= float64(pct)*float64(hard)
}

// nearLimitOrders are the sorts of nearLimit, each comparing two rows; the
// rows of one tenant keep the catalog's order among equals.
var nearLimitOrders = map[string]func(x, y client.NearLimitRow) int{
	"utilisation": func(x, y client.NearLimitRow) int { return compareUtilisation(y, x) },
	"used":        func(x, y client.NearLimitRow) int { return cmp.Compare(y.Used, x.Used) },
	"headroom":    func(x, y client.NearLimitRow) int { return cmp.Compare(x.Headroom, y.Headroom) },
}

// compareUtilisation orders by used/hard, with use of a hard quota of 0
// above every ratio and nothing of nothing at 0.
func compareUtilisation(x, y client.NearLimitRow) int {
	ratio := func(r client.NearLimitRow) float64 {
		switch {
		case r.Hard > 0:
			return float64(r.Used) / float64(r.Hard)
		case r.Used > 0:
			return math.Inf(1)
		}
		return 0
	}
	if x.Hard > 0 && y.Hard > 0 && x.Used < 1<<31 && y.Used < 1<<31 && x.Hard < 1<<31 && y.Hard < 1<<31 {
		return cmp.Compare(x.Used*y.Hard, y.Used*x.Hard) // exact
	}
	return cmp.Or(cmp.Compare(ratio(x), ratio(y)), cmp.Compare(x.Used, y.Used))
}

// quotaSource says where a tenant's hard quota of res comes from, by the
// precedence quota.Catalog.Hard applies: the tenant's override, its plan,
// the catalog.
func quotaSource(cat *quota.Catalog, t *quota.Tenant, res *quota.Resource) string {
	if o, ok := t.Quotas[res.Name]; ok && o.Hard != nil {
		return client.SourceOverride
	}
	if p := cat.Plans[t.Plan]; p != nil {
		if _, ok := p.Quotas[res.Name]; ok {
			return client.SourcePlan
		}
	}
	return client.SourceCatalog
}
