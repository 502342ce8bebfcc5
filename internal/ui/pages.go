package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/allot-dev/allot/client"
)

// tenantRow is a tenant of the operators' overview.
type tenantRow struct {
	client.Tenant
	Worst bar      // its most used resource
	Over  []string // resources used beyond their hard quota
}

// tenantsPage lists the tenants, over-quota ones first, then by their
// highest utilisation.
func (u *UI) tenantsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, c := r.Context(), u.client(s)
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	util, err := c.Utilisation(ctx, q, tenantsShown) // ranked by the server in one pass
	if err != nil {
		return err
	}
	total := util.Total
	if q != "" { // Total counts the matches; the page also shows how many tenants there are
		all, err := c.Utilisation(ctx, "", 1)
		if err != nil {
			return err
		}
		total = all.Total
	}
	rows := make([]tenantRow, 0, len(util.Tenants))
	for _, x := range util.Tenants {
		rows = append(rows, tenantRow{Tenant: x.Tenant, Worst: newBar(x.Worst, x.Thresholds), Over: x.Over})
	}
	u.render(w, r, s, http.StatusOK, "tenants", view{Title: "Tenants", Section: "tenants", Page: struct {
		Query string
		Rows  []tenantRow
		Total int
	}{q, rows, total}})
	return nil
}

// tenantsShown is the most tenants the overview lists; search finds the rest.
const tenantsShown = 500

type service struct {
	Name string
	Bars []bar
}

// tenantPage is everything about one tenant.
func (u *UI) tenantPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, c, id, f := r.Context(), u.client(s), r.PathValue("tenant"), r.URL.Query()
	t, err := c.Tenant(ctx, id)
	if err != nil {
		return err
	}
	qs, err := c.Quotas(ctx, id)
	if err != nil {
		return err
	}
	th, err := c.Thresholds(ctx, id)
	if err != nil {
		return err
	}
	var services []service
	units := map[string]string{}
	for _, rq := range qs.Resources {
		name, _, _ := strings.Cut(rq.Resource, ".")
		if len(services) == 0 || services[len(services)-1].Name != name {
			services = append(services, service{Name: name})
		}
		services[len(services)-1].Bars = append(services[len(services)-1].Bars, newBar(rq, th))
		units[rq.Resource] = rq.Unit
	}
	filter := client.ConsumerQuery{Kind: f.Get("kind"), State: f.Get("state"), Cursor: f.Get("cursor"), Limit: 50}
	consumers, err := c.Consumers(ctx, id, filter)
	if err != nil {
		return err
	}
	reqs, err := c.Requests(ctx, id, "")
	if err != nil {
		return err
	}
	var open, past []client.Request
	for _, x := range reqs {
		if x.Status == "pending" {
			open = append(open, x)
		} else {
			past = append(past, x)
		}
	}
	span := chartRanges[0]
	for _, cr := range chartRanges {
		if cr.Name == f.Get("range") {
			span = cr
		}
	}
	now := u.now()
	history, err := c.UsageHistory(ctx, id, now.Add(-span.Span), now, chartPoints) // one pass over the ledger
	if err != nil {
		return err
	}
	samples := make([]*client.UsageAt, len(history.Points))
	for i := range history.Points {
		samples[i] = &history.Points[i]
	}
	var kinds, states []string
	for _, k := range u.cfg.Catalog.Kinds {
		kinds = append(kinds, k.Name)
		states = append(states, k.States...)
	}
	slices.Sort(states)
	next := ""
	if consumers.NextCursor != "" {
		q := r.URL.Query()
		q.Set("cursor", consumers.NextCursor)
		next = "?" + q.Encode() + "#consumers"
	}
	u.render(w, r, s, http.StatusOK, "tenant", view{Title: "Tenant " + t.ID, Section: "tenant", Page: struct {
		Tenant               client.Tenant
		Thresholds           []int64
		Services             []service
		Resources            []client.ResourceQuota
		Limits               []client.Limit
		Consumers            []client.Consumer
		Filter               client.ConsumerQuery
		Kinds, States        []string
		NextConsumers        string
		Open, Past           []client.Request
		Charts               []chart
		Range                string
		Ranges               []string
		CanRequest, CanAdmin bool
	}{*t, th, services, qs.Resources, qs.Limits, consumers.Consumers, filter, kinds, slices.Compact(states), next,
		open, past, buildCharts(samples, units, span.Name), span.Name, []string{"24h", "7d", "30d"},
		s.admin() || s.actor.Tenant == id, s.admin()}})
	return nil
}

// pendingRow is a pending request with the tenant's use of its resource now.
type pendingRow struct {
	client.Request
	Now *client.ResourceQuota
}

// requestsPage shows the pending requests (decided here by admins) and the
// latest decisions.
func (u *UI) requestsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, c := r.Context(), u.client(s)
	pending, err := c.Requests(ctx, "", "pending")
	if err != nil {
		return err
	}
	all, err := c.Requests(ctx, "", "")
	if err != nil {
		return err
	}
	quotas := map[string]*client.Quotas{}
	rows := make([]pendingRow, 0, len(pending))
	for _, x := range pending {
		if _, ok := quotas[x.Tenant]; !ok {
			if quotas[x.Tenant], err = c.Quotas(ctx, x.Tenant); err != nil && !client.IsCode(err, "not_found") {
				return err
			}
		}
		row := pendingRow{Request: x}
		if q := quotas[x.Tenant]; q != nil {
			for i := range q.Resources {
				if q.Resources[i].Resource == x.Resource {
					row.Now = &q.Resources[i]
				}
			}
		}
		rows = append(rows, row)
	}
	var recent []client.Request
	for _, x := range all {
		if x.Status != "pending" && len(recent) < 20 {
			recent = append(recent, x)
		}
	}
	u.render(w, r, s, http.StatusOK, "requests", view{Title: "Requests", Section: "requests", Page: struct {
		Pending []pendingRow
		Recent  []client.Request
	}{rows, recent}})
	return nil
}

// eventsPage shows the newest events that pass the filters; the page's
// script then follows /ui/events/stream from the newest on.
func (u *UI) eventsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, c, f := r.Context(), u.client(s), r.URL.Query()
	tenant, typ := strings.TrimSpace(f.Get("tenant")), strings.TrimSpace(f.Get("type"))
	events, last, err := latestEvents(ctx, c, tenant, func(e client.Event) bool { return typeMatches(typ, e.Type) }, 100)
	if err != nil {
		return err
	}
	tenants, err := c.Tenants(ctx)
	if err != nil {
		return err
	}
	rows := make([]eventRow, len(events))
	for i, e := range events {
		rows[i] = newEventRow(e)
	}
	stream := fmt.Sprintf("/ui/events/stream?tenant=%s&type=%s&after=%d", url.QueryEscape(tenant), url.QueryEscape(typ), last)
	u.render(w, r, s, http.StatusOK, "events", view{Title: "Events", Section: "events", Page: struct {
		Tenant, Type, Stream string
		Events               []eventRow
		Tenants              []client.Tenant
		Types                []string
	}{tenant, typ, stream, rows, tenants, eventTypes()}})
	return nil
}

// latestEvents returns up to n of the newest events that match, newest
// first, and the newest sequence number the caller may see. The API pages
// forward only, so it finds that number by galloping and bisecting, then
// reads back in doubling windows; it searches the newest 100,000 at most.
func latestEvents(ctx context.Context, c *client.Client, tenant string, match func(client.Event) bool, n int) ([]client.Event, int64, error) {
	firstAfter := func(after int64) (int64, error) {
		l, err := c.Events(ctx, client.EventQuery{Tenant: tenant, After: after, Limit: 1})
		if err != nil || len(l.Events) == 0 {
			return 0, err
		}
		return l.Events[0].Seq, nil
	}
	lo, err := firstAfter(0) // an event at lo, none after hi
	if err != nil || lo == 0 {
		return nil, 0, err
	}
	hi := lo
	for step := int64(1); ; step *= 2 {
		s, err := firstAfter(lo + step)
		if err != nil {
			return nil, 0, err
		}
		if s == 0 {
			hi = lo + step
			break
		}
		lo = s
	}
	for lo < hi {
		s, err := firstAfter(lo + (hi-lo)/2)
		if err != nil {
			return nil, 0, err
		}
		if s == 0 {
			hi = lo + (hi-lo)/2
		} else {
			lo = s
		}
	}
	last := lo
	var out []client.Event
	for top, window := last, int64(n); top > 0 && len(out) < n && last-top < 100_000; window *= 2 {
		bottom := max(top-window, 0)
		var chunk []client.Event
		for after := bottom; after < top; {
			l, err := c.Events(ctx, client.EventQuery{Tenant: tenant, After: after, Limit: 1000})
			if err != nil {
				return nil, 0, err
			}
			for _, e := range l.Events {
				if e.Seq <= top && match(e) {
					chunk = append(chunk, e)
				}
			}
			if len(l.Events) < 1000 {
				break
			}
			after = l.Next
		}
		for i := len(chunk) - 1; i >= 0 && len(out) < n; i-- {
			out = append(out, chunk[i])
		}
		top = bottom
	}
	return out, last, nil
}
