package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
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
	failing, err := u.failingWebhooks(r, s)
	if err != nil {
		return err
	}
	u.render(w, r, s, http.StatusOK, "tenants", view{Title: "Tenants", Section: "tenants", Page: struct {
		Query   string
		Rows    []tenantRow
		Total   int
		Failing []client.Webhook
	}{q, rows, total, failing}})
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
	tree, err := c.Tree(ctx, id)
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
		Tree                 []treeRow
	}{*t, th, services, qs.Resources, qs.Limits, consumers.Consumers, filter, kinds, slices.Compact(states), next,
		open, past, buildCharts(samples, units, span.Name), span.Name, []string{"24h", "7d", "30d"},
		s.admin() || s.actor.Tenant == id, s.admin(), treeRows(tree)}})
	return nil
}

// treeRow is one tenant of the subtree the tenant page shows: how its
// allowance is split, resource by resource where a quota is set or
// anything is in use.
type treeRow struct {
	client.TreeNode
	Resources []client.TreeResource
}

// treeRows is the subtree, or nothing for a tenant alone (no parent, no
// children): then the quotas say it all.
func treeRows(t *client.Tree) []treeRow {
	if len(t.Nodes) < 2 && (len(t.Nodes) == 0 || t.Nodes[0].Parent == "") {
		return nil
	}
	rows := make([]treeRow, len(t.Nodes))
	for i, n := range t.Nodes {
		rows[i] = treeRow{TreeNode: n}
		for _, r := range n.Resources {
			if r.Set || r.Tree > 0 {
				rows[i].Resources = append(rows[i].Resources, r)
			}
		}
	}
	return rows
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

// eventsPerPage is how many events a page of the log shows.
const eventsPerPage = 50

// eventsPage shows a page of the events that pass the filters, newest
// first: the newest ones, followed live by the page's script from
// /ui/events/stream; or, for ?before=SEQ, those just older than SEQ; or,
// for ?after=SEQ, those just newer.
func (u *UI) eventsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, c, f := r.Context(), u.client(s), r.URL.Query()
	tenant, typ := strings.TrimSpace(f.Get("tenant")), strings.TrimSpace(f.Get("type"))
	before, err := seqParam(f, "before")
	if err != nil {
		return err
	}
	after, err := seqParam(f, "after")
	if err != nil {
		return err
	}
	if before > 0 && after > 0 {
		return httpError{http.StatusBadRequest, "Give before or after, not both."}
	}
	match := func(e client.Event) bool { return typeMatches(typ, e.Type) }
	var events []client.Event
	var last int64
	more := false // beyond this page, in its direction
	if after > 0 {
		events, more, err = eventsAfter(ctx, c, tenant, match, after, eventsPerPage)
	} else {
		events, last, err = eventsBelow(ctx, c, tenant, match, eventsPerPage+1, before)
		if more = len(events) > eventsPerPage; more {
			events = events[:eventsPerPage]
		}
	}
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
	page := func(k string, seq int64) string {
		q := url.Values{}
		if tenant != "" {
			q.Set("tenant", tenant)
		}
		if typ != "" {
			q.Set("type", typ)
		}
		if k != "" {
			q.Set(k, strconv.FormatInt(seq, 10))
		}
		if len(q) == 0 {
			return "/ui/events"
		}
		return "/ui/events?" + q.Encode()
	}
	v := eventsView{Tenant: tenant, Type: typ, Events: rows, Tenants: tenants, Types: eventTypes(),
		Live: before == 0 && after == 0, Newest: page("", 0), Size: eventsPerPage}
	// The older page starts below the oldest event shown; the live page's
	// script moves that start as new events push old ones off.
	if strings.Contains(v.Newest, "?") {
		v.OlderBase = v.Newest + "&before="
	} else {
		v.OlderBase = v.Newest + "?before="
	}
	if n := len(rows); n > 0 && (more || after > 0) {
		v.Older = page("before", rows[n-1].Seq)
	}
	switch {
	case after > 0 && more:
		v.Newer = page("after", rows[0].Seq)
	case after > 0 && len(rows) > 0:
		v.Newer = v.Newest // nothing newer than this page but the newest
	case before > 0:
		v.Newer = page("after", before-1)
	}
	if v.Live {
		v.Stream = fmt.Sprintf("/ui/events/stream?tenant=%s&type=%s&after=%d", url.QueryEscape(tenant), url.QueryEscape(typ), last)
	}
	u.render(w, r, s, http.StatusOK, "events", view{Title: "Events", Section: "events", Page: v})
	return nil
}

// eventsView is what the events page shows.
type eventsView struct {
	Tenant, Type, Stream string
	Events               []eventRow
	Tenants              []client.Tenant
	Types                []string
	Live                 bool   // the newest events, followed as they happen
	Newest, Newer, Older string // links to other pages; "" for none
	OlderBase            string // the older page's link without its sequence number
	Size                 int
}

// seqParam reads an optional positive sequence number from the query.
func seqParam(q url.Values, name string) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, httpError{http.StatusBadRequest, name + " must be an event's sequence number."}
	}
	return v, nil
}

// eventsAfter returns up to n of the oldest matching events after seq,
// newest first, and whether more match beyond them; it searches the
// 100,000 events after seq at most.
func eventsAfter(ctx context.Context, c *client.Client, tenant string, match func(client.Event) bool, seq int64, n int) ([]client.Event, bool, error) {
	var got []client.Event
	for from := seq; len(got) <= n && from-seq < 100_000; {
		l, err := c.Events(ctx, client.EventQuery{Tenant: tenant, After: from, Limit: 1000})
		if err != nil {
			return nil, false, err
		}
		for _, e := range l.Events {
			if match(e) {
				got = append(got, e)
			}
		}
		if len(l.Events) < 1000 {
			break
		}
		from = l.Next
	}
	more := len(got) > n
	got = got[:min(len(got), n)]
	slices.Reverse(got)
	return got, more, nil
}

// latestEvents returns up to n of the newest events that match, newest
// first, and the newest sequence number the caller may see.
func latestEvents(ctx context.Context, c *client.Client, tenant string, match func(client.Event) bool, n int) ([]client.Event, int64, error) {
	return eventsBelow(ctx, c, tenant, match, n, 0)
}

// eventsBelow returns up to n of the newest events that match and come
// before seq below (0: the newest), newest first, and the newest sequence
// number the caller may see. The API pages forward only, so it finds that
// number by galloping and bisecting, then reads back in doubling windows;
// it searches 100,000 events back at most.
func eventsBelow(ctx context.Context, c *client.Client, tenant string, match func(client.Event) bool, n int, below int64) ([]client.Event, int64, error) {
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
	start := last
	if below > 0 {
		start = min(start, below-1)
	}
	var out []client.Event
	for top, window := start, int64(n); top > 0 && len(out) < n && start-top < 100_000; window *= 2 {
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
