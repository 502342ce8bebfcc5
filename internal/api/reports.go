package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

// The operators' views: who is over quota, who is close, and usage as it
// was. The read models are quota's; these handlers decode, read, call and
// encode.

// overQuota lists tenants whose usage exceeds a hard quota, most over first.
func (a *API) overQuota(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	out := client.OverQuotaList{Tenants: []client.OverQuotaTenant{}}
	for _, o := range a.cat.OverQuotaViews(a.engine.Views()) {
		t := client.OverQuotaTenant{Tenant: o.Tenant}
		for _, u := range o.Resources {
			level := ""
			if u.Tree {
				level = "tree"
			}
			t.Resources = append(t.Resources, client.OverQuotaResource{Resource: u.Resource.Name, Used: u.Used, Hard: u.Hard, Over: u.Used - u.Hard, Level: level})
		}
		out.Tenants = append(out.Tenants, t)
	}
	respond(w, http.StatusOK, out)
	return nil
}

// utilisation ranks tenants by their highest utilisation, over-quota ones
// first, from two reads (tenants, and everyone's usage).
func (a *API) utilisation(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	limit, err := queryInt(r, "limit", 100, 1, 10000)
	if err != nil {
		return err
	}
	search := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(search) > 256 {
		return quota.Errorf(quota.CodeInvalid, "q is longer than 256 bytes")
	}
	ts, usage, err := a.tenantsAndUsage(r)
	if err != nil {
		return err
	}
	rows := a.cat.Utilisation(ts, usage, search)
	out := client.Utilisation{Tenants: []client.TenantUtilisation{}, Total: len(rows)}
	for _, row := range rows[:min(len(rows), int(limit))] {
		out.Tenants = append(out.Tenants, client.TenantUtilisation{Tenant: wireTenant(row.Tenant),
			Worst: wireUse(a.cat, row.Tenant, row.Worst), Over: row.Over, Thresholds: row.Thresholds})
	}
	respond(w, http.StatusOK, out)
	return nil
}

// tenantsAndUsage is every tenant and its usage as of the last commits.
func (a *API) tenantsAndUsage(*http.Request) ([]*quota.Tenant, map[string]map[string]int64, error) {
	vs := a.engine.Views()
	ts, usage := make([]*quota.Tenant, len(vs)), make(map[string]map[string]int64, len(vs))
	for i, v := range vs {
		ts[i], usage[v.Tenant.ID] = v.Tenant, v.Usage
	}
	return ts, usage, nil
}

func wireUse(cat *quota.Catalog, t *quota.Tenant, u quota.ResourceUse) client.ResourceQuota {
	return client.ResourceQuota{Resource: u.Resource.Name, Unit: u.Resource.Unit, Used: u.Used, Tree: u.Used, Hard: u.Hard, Available: max(0, u.Hard-u.Used),
		Source: quotaSource(cat, t, u.Resource), Requestable: client.Range{Min: u.Requestable.Min, Max: u.Requestable.Max}, OverQuota: u.Over()}
}

// Times a query may name: the ledger's times are unix nanoseconds.
var (
	earliestTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	latestTime   = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// maxHistorySpan bounds one usage history request.
const maxHistorySpan = 400 * 24 * time.Hour

// maxReplay bounds the ledger events one request may replay.
const maxReplay = 200_000

// usageAt rebuilds a tenant's usage and hard quotas at a past moment from
// the ledger.
func (a *API) usageAt(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	at := a.now().UTC()
	if s := r.URL.Query().Get("at"); s != "" {
		var err error
		if at, err = parseTime("at", s); err != nil {
			return err
		}
	}
	points, err := a.history(r, r.PathValue("tenant"), []time.Time{at})
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, points[0])
	return nil
}

// usageHistory answers usage at evenly spaced moments, replaying the
// ledger once for all of them.
func (a *API) usageHistory(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	q := r.URL.Query()
	if q.Get("from") == "" || q.Get("to") == "" {
		return quota.Errorf(quota.CodeInvalid, "from and to are required")
	}
	from, err := parseTime("from", q.Get("from"))
	if err != nil {
		return err
	}
	to, err := parseTime("to", q.Get("to"))
	if err != nil {
		return err
	}
	if !to.After(from) {
		return quota.Errorf(quota.CodeInvalid, "to must be after from")
	}
	if to.Sub(from) > maxHistorySpan {
		return quota.Errorf(quota.CodeInvalid, "from and to may be at most %d days apart", int(maxHistorySpan/(24*time.Hour)))
	}
	n, err := queryInt(r, "points", 24, 2, 500)
	if err != nil {
		return err
	}
	moments := make([]time.Time, n)
	span := to.Sub(from)
	for i := range moments {
		moments[i] = from.Add(span / time.Duration(n-1) * time.Duration(i))
	}
	moments[n-1] = to
	points, err := a.history(r, r.PathValue("tenant"), moments)
	if err != nil {
		return err
	}
	respond(w, http.StatusOK, client.UsageHistory{Tenant: r.PathValue("tenant"), Points: points})
	return nil
}

func parseTime(name, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, quota.Errorf(quota.CodeInvalid, "%s must be an RFC 3339 time, such as 2026-11-24T09:30:00Z", name)
	}
	if t.Before(earliestTime) || !t.Before(latestTime) {
		return time.Time{}, quota.Errorf(quota.CodeInvalid, "%s must be from 1970-01-01T00:00:00Z to before 2262-01-01T00:00:00Z", name)
	}
	return t.UTC(), nil
}

// history rebuilds the tenant's usage and hard quotas at each moment
// (ascending), from its nearest snapshot.
func (a *API) history(r *http.Request, tenant string, moments []time.Time) ([]client.UsageAt, error) {
	samples, err := a.cat.UsageHistory(r.Context(), a.store, tenant, moments, maxReplay)
	if err != nil {
		return nil, err
	}
	out := make([]client.UsageAt, 0, len(samples))
	for _, s := range samples {
		u := client.UsageAt{Tenant: tenant, At: s.At, Resources: make([]client.UsageResource, 0, len(s.Resources))}
		for _, res := range s.Resources {
			u.Resources = append(u.Resources, client.UsageResource{Resource: res.Resource.Name, Used: res.Used, Tree: res.Used + res.Below, Hard: res.Hard})
		}
		out = append(out, u)
	}
	return out, nil
}
