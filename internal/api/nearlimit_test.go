package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/testserver"
)

// nearLimitCatalog has two services so filters have something to tell
// apart, a plan that sets one quota, and first thresholds of 50 %.
const nearLimitCatalog = `
thresholds: [50, 90]
services:
  s:
    resources:
      a: {default: 10, requestable: [0, 100], policy: auto}
      b: {default: 10, requestable: [0, 100], policy: auto}
    kinds:
      k:
        attributes: {a: {limit: [0, 1000]}, b: {limit: [0, 1000]}}
        usage: {always: {a: a, b: b}}
  t:
    resources:
      c: {default: 4, requestable: [0, 100], policy: auto}
    kinds:
      k:
        attributes: {c: {limit: [0, 1000]}}
        usage: {always: {c: c}}
plans:
  small:
    quotas: {s.a: 5}
`

// GET /api/v1/near-limit: every tenant and resource at or above a
// utilisation (by default each tenant's first threshold), sorted by
// utilisation, use or headroom, filtered and paged, each with where its
// hard quota comes from.
func TestNearLimit(t *testing.T) {
	cat, err := quota.ParseCatalog([]byte(nearLimitCatalog))
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t, testserver.Options{Catalog: cat})
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	put := func(tenant, kind string, attrs map[string]int64) {
		t.Helper()
		must(c.PutConsumer(ctx, tenant, "x-"+kind, client.PutConsumerRequest{Kind: kind, Attributes: attrs}, client.PutOptions{}))
	}
	zero := int64(0)
	must(c.CreateTenant(ctx, client.CreateTenantRequest{ID: "p1", Name: "P One", Plan: "small"}))
	for _, id := range []string{"p2", "p3", "p4"} {
		must(c.CreateTenant(ctx, client.CreateTenantRequest{ID: id}))
	}
	put("p1", "s.k", map[string]int64{"a": 4, "b": 9})  // s.a 4/5 (plan), s.b 9/10
	put("p2", "s.k", map[string]int64{"a": 10, "b": 1}) // s.a 10/10, s.b 1/0 below
	must(c.SetQuota(ctx, "p2", "s.b", client.SetQuotaRequest{Hard: &zero}))
	put("p3", "s.k", map[string]int64{"a": 6, "b": 0})
	put("p3", "t.k", map[string]int64{"c": 4}) // t.c 4/4
	must(c.SetThresholds(ctx, "p3", []int64{95}))

	rows := func(q client.NearLimitQuery) ([]string, *client.NearLimit) {
		t.Helper()
		got, err := c.NearLimit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range got.Rows {
			out = append(out, r.Tenant+"/"+r.Resource)
		}
		return out, got
	}
	pct := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		name  string
		q     client.NearLimitQuery
		want  []string
		total int
	}{
		{"first thresholds, by utilisation", client.NearLimitQuery{}, []string{"p2/s.b", "p2/s.a", "p3/t.c", "p1/s.b", "p1/s.a"}, 5},
		{"by use", client.NearLimitQuery{Sort: "used"}, []string{"p2/s.a", "p1/s.b", "p1/s.a", "p3/t.c", "p2/s.b"}, 5},
		{"by headroom", client.NearLimitQuery{Sort: "headroom"}, []string{"p2/s.b", "p2/s.a", "p3/t.c", "p1/s.a", "p1/s.b"}, 5},
		{"one service, every level", client.NearLimitQuery{Min: pct(0), Service: "t"}, []string{"p3/t.c", "p1/t.c", "p2/t.c", "p4/t.c"}, 4},
		{"one plan", client.NearLimitQuery{Plan: "small"}, []string{"p1/s.b", "p1/s.a"}, 2},
		{"one resource from 70 %", client.NearLimitQuery{Min: pct(70), Resource: "s.a"}, []string{"p2/s.a", "p1/s.a"}, 2},
		{"a page", client.NearLimitQuery{Offset: 1, Limit: 2}, []string{"p2/s.a", "p3/t.c"}, 5},
		{"past the end", client.NearLimitQuery{Offset: 9}, nil, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, page := rows(tc.q)
			if !slices.Equal(got, tc.want) || page.Total != tc.total {
				t.Errorf("rows %v (total %d), want %v (total %d)", got, page.Total, tc.want, tc.total)
			}
		})
	}

	_, page := rows(client.NearLimitQuery{})
	byKey := map[string]client.NearLimitRow{}
	for _, r := range page.Rows {
		byKey[r.Tenant+"/"+r.Resource] = r
	}
	for key, want := range map[string]client.NearLimitRow{
		"p1/s.a": {Tenant: "p1", Name: "P One", Plan: "small", Resource: "s.a", Used: 4, Hard: 5, Source: "plan", Percent: pct(80), Headroom: 1, FirstThreshold: 50},
		"p1/s.b": {Tenant: "p1", Name: "P One", Plan: "small", Resource: "s.b", Used: 9, Hard: 10, Source: "catalog", Percent: pct(90), Headroom: 1, FirstThreshold: 50},
		"p2/s.b": {Tenant: "p2", Name: "p2", Resource: "s.b", Used: 1, Hard: 0, Source: "override", Headroom: -1, FirstThreshold: 50, OverQuota: true},
		"p3/t.c": {Tenant: "p3", Name: "p3", Resource: "t.c", Used: 4, Hard: 4, Source: "catalog", Percent: pct(100), Headroom: 0, FirstThreshold: 95},
	} {
		got := byKey[key]
		if got.Percent != nil && want.Percent != nil && *got.Percent == *want.Percent {
			got.Percent = want.Percent
		}
		if got != want {
			t.Errorf("%s: %+v, want %+v", key, got, want)
		}
	}

	// The tenants' own quotas say where each hard quota comes from too.
	q, err := c.Quotas(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range q.Resources {
		if want := map[string]string{"s.a": "plan", "s.b": "catalog", "t.c": "catalog"}[r.Resource]; r.Source != want {
			t.Errorf("p1's %s comes from %q, want %q", r.Resource, r.Source, want)
		}
	}

	for _, tc := range []struct{ query, want string }{
		{"min=abc", "min must be an integer"},
		{"min=1001", "min must be an integer"},
		{"sort=name", "sort must be utilisation, used or headroom"},
		{"service=nope", `unknown service "nope"`},
		{"resource=s.z", `unknown resource "s.z"`},
		{"plan=huge", `unknown plan "huge"`},
		{"limit=0", "limit must be an integer"},
	} {
		status, code, detail := get(t, srv, "/api/v1/near-limit?"+tc.query, srv.AdminToken)
		if status != 400 || code != "invalid_request" || !strings.Contains(detail, tc.want) {
			t.Errorf("?%s: %d %s %q, want 400 invalid_request saying %q", tc.query, status, code, detail, tc.want)
		}
	}
}

// get sends a GET with token and returns the status and the problem's code
// and detail, if any.
func get(t *testing.T, srv *testserver.Server, path, token string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p client.Problem
	json.NewDecoder(res.Body).Decode(&p)
	return res.StatusCode, p.Code, p.Detail
}
