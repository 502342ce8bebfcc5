// The operators' consoles beyond the overview: every quota near its limit,
// and how the webhooks' deliveries go.

package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/client"
)

// nearPerPage is how many rows a page of the near-limit list shows.
const nearPerPage = 50

// nearRow is one tenant's use of one resource, as the page draws it.
type nearRow struct {
	client.NearLimitRow
	Bar bar
}

// sortLink is a column header that sorts the list.
type sortLink struct {
	Label, Key, Href string
	Current          bool
	Order            string // aria-sort of the current column
}

// nearLimitPage lists every tenant and resource at or above a chosen
// utilisation (default: each tenant's first warning threshold), as the
// cloud consoles' "quotas near their limit": sortable by utilisation, use
// or headroom, filtered by service, resource and plan, and paged.
func (u *UI) nearLimitPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, c, f := r.Context(), u.client(s), r.URL.Query()
	q := client.NearLimitQuery{Service: f.Get("service"), Resource: f.Get("resource"), Plan: f.Get("plan"),
		Sort: f.Get("sort"), Limit: nearPerPage}
	if q.Sort == "" {
		q.Sort = "utilisation"
	}
	if v := strings.TrimSpace(f.Get("min")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1000 {
			return httpError{http.StatusBadRequest, "The utilisation must be a whole percentage from 0 to 1000."}
		}
		q.Min = &n
	}
	if v := f.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return httpError{http.StatusBadRequest, "offset must be a row number."}
		}
		q.Offset = n
	}
	res, err := c.NearLimit(ctx, q)
	if err != nil {
		return err
	}
	rows := make([]nearRow, len(res.Rows))
	for i, x := range res.Rows {
		rows[i] = nearRow{NearLimitRow: x, Bar: newBar(client.ResourceQuota{Resource: x.Resource, Unit: x.Unit, Used: x.Used,
			Hard: x.Hard, Source: x.Source, OverQuota: x.OverQuota}, []int64{x.FirstThreshold})}
	}
	link := func(change func(url.Values)) string {
		v := url.Values{}
		for k, vs := range f {
			if k != "offset" && len(vs) > 0 && vs[0] != "" {
				v.Set(k, vs[0])
			}
		}
		change(v)
		return "/ui/quotas?" + v.Encode()
	}
	var sorts []sortLink
	for _, x := range []struct{ label, key, order string }{
		{"Utilisation", "utilisation", "descending"}, {"Used", "used", "descending"}, {"Headroom", "headroom", "ascending"},
	} {
		sorts = append(sorts, sortLink{Label: x.label, Key: x.key, Current: q.Sort == x.key, Order: x.order,
			Href: link(func(v url.Values) { v.Set("sort", x.key) }) + "#near"})
	}
	var prev, next string
	if q.Offset > 0 {
		prev = link(func(v url.Values) { v.Set("offset", strconv.Itoa(max(q.Offset-nearPerPage, 0))) })
	}
	if q.Offset+len(rows) < res.Total {
		next = link(func(v url.Values) { v.Set("offset", strconv.Itoa(q.Offset+nearPerPage)) })
	}
	var services, resources []string
	for _, x := range u.cfg.Catalog.Services {
		services = append(services, x.Name)
	}
	for _, x := range u.cfg.Catalog.Resources {
		resources = append(resources, x.Name)
	}
	var plans []string
	for name := range u.cfg.Catalog.Plans {
		plans = append(plans, name)
	}
	slices.Sort(plans)
	failing, err := u.failingWebhooks(r, s)
	if err != nil {
		return err
	}
	level := ""
	if q.Min != nil {
		level = strconv.FormatInt(*q.Min, 10)
	}
	u.render(w, r, s, http.StatusOK, "quotas", view{Title: "Near their limit", Section: "quotas", Page: struct {
		Query                     client.NearLimitQuery
		Min                       string
		Rows                      []nearRow
		Total, First, Last        int
		Sorts                     []sortLink
		Prev, Next                string
		Services, Resources, Plan []string
		Failing                   []client.Webhook
	}{q, level, rows, res.Total, q.Offset + 1, q.Offset + len(rows), sorts, prev, next, services, resources, plans, failing}})
	return nil
}

// failingWebhooks are the subscriptions whose latest attempt failed, for an
// admin's pages; nobody else may read webhooks.
func (u *UI) failingWebhooks(r *http.Request, s *session) ([]client.Webhook, error) {
	if !s.admin() {
		return nil, nil
	}
	hs, err := u.client(s).Webhooks(r.Context())
	if err != nil {
		return nil, err
	}
	var out []client.Webhook
	for _, h := range hs {
		if h.Failing {
			out = append(out, h)
		}
	}
	return out, nil
}

// webhooksPage shows every subscription with how its deliveries go.
func (u *UI) webhooksPage(w http.ResponseWriter, r *http.Request, s *session) error {
	hs, err := u.client(s).Webhooks(r.Context())
	if err != nil {
		return err
	}
	failing := 0
	for _, h := range hs {
		if h.Failing {
			failing++
		}
	}
	u.render(w, r, s, http.StatusOK, "webhooks", view{Title: "Webhooks", Section: "webhooks", Page: struct {
		Webhooks []client.Webhook
		Failing  int
	}{hs, failing}})
	return nil
}
