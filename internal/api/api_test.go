package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/testserver"
)

// call sends a request and decodes a JSON answer into out (if non-nil).
type caller struct {
	t    *testing.T
	base string
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) problem(t *testing.T) client.Problem {
	t.Helper()
	var p client.Problem
	if err := json.Unmarshal(a.body, &p); err != nil {
		t.Fatalf("not a problem (%d): %s", a.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("problem content type = %q", ct)
	}
	return p
}

func (c caller) do(method, path, token string, body any, hdr ...string) answer {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

// must checks the status and decodes the answer.
func (c caller) must(status int, out any, method, path, token string, body any, hdr ...string) answer {
	c.t.Helper()
	a := c.do(method, path, token, body, hdr...)
	if a.status != status {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, a.status, status, a.body)
	}
	if out != nil {
		if err := json.Unmarshal(a.body, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, a.body)
		}
	}
	return a
}

// fail checks that a request is refused with status and code.
func (c caller) fail(status int, code, method, path, token string, body any, hdr ...string) client.Problem {
	c.t.Helper()
	a := c.do(method, path, token, body, hdr...)
	if a.status != status {
		c.t.Fatalf("%s %s = %d, want %d: %s", method, path, a.status, status, a.body)
	}
	p := a.problem(c.t)
	if p.Code != code || p.Status != status {
		c.t.Fatalf("%s %s: problem = %+v, want code %s", method, path, p, code)
	}
	return p
}

type fixture struct {
	caller
	srv              *testserver.Server
	admin, service   string
	tenantA, tenantB string // tokens
	quotasA          string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := testserver.Start(t)
	f := &fixture{caller: caller{t, srv.URL}, srv: srv, admin: srv.AdminToken}
	for _, id := range []string{"a", "b"} {
		f.must(201, nil, "POST", "/api/v1/tenants", f.admin, client.CreateTenantRequest{ID: id, Name: "Tenant " + id})
	}
	tok := func(role, tenant, name string) string {
		var tk client.Token
		f.must(201, &tk, "POST", "/api/v1/tokens", f.admin, client.CreateTokenRequest{Role: role, Tenant: tenant, Name: name})
		if tk.Secret == "" {
			t.Fatal("token secret not returned")
		}
		return tk.Secret
	}
	f.service = tok("service", "", "cp")
	f.tenantA = tok("tenant", "a", "ta")
	f.tenantB = tok("tenant", "b", "tb")
	return f
}

func instance(mem int64, state string) client.PutConsumerRequest {
	return client.PutConsumerRequest{Kind: "compute.instance", State: state, Attributes: map[string]int64{"memory_mb": mem}}
}

func TestTenants(t *testing.T) {
	f := newFixture(t)
	var ten client.Tenant
	f.must(200, &ten, "GET", "/api/v1/tenants/a", f.admin, nil)
	if ten.ID != "a" || ten.Name != "Tenant a" || ten.CreatedAt.IsZero() {
		t.Fatalf("tenant = %+v", ten)
	}
	f.fail(409, "conflict", "POST", "/api/v1/tenants", f.admin, client.CreateTenantRequest{ID: "a"})
	f.fail(400, "invalid_request", "POST", "/api/v1/tenants", f.admin, client.CreateTenantRequest{ID: "x", Plan: "gold"})
	f.fail(400, "invalid_request", "POST", "/api/v1/tenants", f.admin, client.CreateTenantRequest{ID: "a/b"})
	f.fail(400, "invalid_request", "POST", "/api/v1/tenants", f.admin, client.CreateTenantRequest{ID: strings.Repeat("x", 129)})
	f.must(201, &ten, "POST", "/api/v1/tenants", f.admin, client.CreateTenantRequest{ID: "p", Plan: "pro"})
	if ten.Plan != "pro" || ten.Name != "p" {
		t.Fatalf("created = %+v", ten)
	}
	var list client.TenantList
	f.must(200, &list, "GET", "/api/v1/tenants", f.service, nil)
	if len(list.Tenants) != 3 || list.Tenants[0].ID != "a" {
		t.Fatalf("list = %+v", list)
	}
	// Delete is refused while the tenant owns consumers.
	f.must(201, nil, "PUT", "/api/v1/tenants/p/consumers/i1", f.service, instance(64, "running"))
	f.fail(409, "conflict", "DELETE", "/api/v1/tenants/p", f.admin, nil)
	f.must(204, nil, "DELETE", "/api/v1/tenants/p/consumers/i1", f.service, nil)
	f.must(204, nil, "DELETE", "/api/v1/tenants/p", f.admin, nil)
	f.fail(404, "not_found", "GET", "/api/v1/tenants/p", f.admin, nil)
	f.fail(404, "not_found", "DELETE", "/api/v1/tenants/p", f.admin, nil)
}

func TestQuotasAndLimits(t *testing.T) {
	f := newFixture(t)
	var q client.Quotas
	f.must(200, &q, "GET", "/api/v1/tenants/a/quotas", f.tenantA, nil)
	if q.Tenant != "a" || q.Region != "local" || len(q.Resources) != 10 {
		t.Fatalf("quotas = %+v", q)
	}
	mem := q.Resources[3]
	if mem.Resource != "compute.live_memory_mb" || mem.Unit != "MB" || mem.Hard != 2048 || mem.Requestable != (client.Range{Min: 16, Max: 65536}) {
		t.Fatalf("memory row = %+v", mem)
	}
	if q.Limits[0] != (client.Limit{Kind: "compute.instance", Limit: "memory_mb", Min: 16, Max: 2048}) {
		t.Fatalf("limits = %+v", q.Limits)
	}

	f.must(201, nil, "PUT", "/api/v1/tenants/a/consumers/i1", f.service, instance(512, "running"))
	var rq client.ResourceQuota
	f.must(200, &rq, "PUT", "/api/v1/tenants/a/quotas/compute.live_memory_mb", f.admin,
		map[string]any{"hard": 256, "requestable": map[string]int64{"min": 1, "max": 4096}})
	if !rq.OverQuota || rq.Hard != 256 || rq.Used != 512 || rq.Requestable.Max != 4096 {
		t.Fatalf("set below usage = %+v", rq)
	}
	// Growth is refused, shrinking works while over quota.
	f.fail(409, "quota_exceeded", "PUT", "/api/v1/tenants/a/consumers/i2", f.service, instance(16, "running"))
	f.must(200, nil, "PUT", "/api/v1/tenants/a/consumers/i1", f.service, instance(300, "running"))

	var l client.Limit
	f.must(200, &l, "PUT", "/api/v1/tenants/a/limits/compute.instance/memory_mb", f.admin, map[string]int64{"min": 32, "max": 64})
	if l.Min != 32 || l.Max != 64 {
		t.Fatalf("limit = %+v", l)
	}
	f.fail(422, "limit_violation", "PUT", "/api/v1/tenants/a/consumers/i3", f.service, instance(16, "stopped"))

	for _, tc := range []struct{ path, body string }{
		{"/api/v1/tenants/a/quotas/compute.nope", `{"hard":1}`},
		{"/api/v1/tenants/a/quotas/compute.instances", `{"hard":-1}`},
		{"/api/v1/tenants/a/quotas/compute.instances", `{}`},
		{"/api/v1/tenants/a/quotas/compute.instances", `{"hard":1.5}`},
		{"/api/v1/tenants/a/quotas/compute.instances", `{"hard":99999999999999999999}`},
		{"/api/v1/tenants/a/quotas/compute.instances", `{"hard":1,"requestable":{"min":5,"max":1}}`},
		{"/api/v1/tenants/a/limits/compute.instance/nope", `{"min":1,"max":2}`},
		{"/api/v1/tenants/a/limits/compute.nope/memory_mb", `{"min":1,"max":2}`},
		{"/api/v1/tenants/a/limits/compute.instance/memory_mb", `{"min":3,"max":2}`},
		{"/api/v1/tenants/a/limits/compute.instance/memory_mb", `{"min":1}`},
	} {
		f.fail(400, "invalid_request", "PUT", tc.path, f.admin, tc.body)
	}
	f.fail(404, "not_found", "PUT", "/api/v1/tenants/zz/quotas/compute.instances", f.admin, `{"hard":1}`)
}

func TestConsumerLifecycle(t *testing.T) {
	f := newFixture(t)
	var c client.Consumer
	a := f.must(201, &c, "PUT", "/api/v1/tenants/a/consumers/i1?dry_run=true", f.service, instance(256, "running"))
	if !c.DryRun || !c.Created || c.Usage["compute.live_memory_mb"] != 256 {
		t.Fatalf("dry run = %+v", c)
	}
	f.fail(404, "not_found", "GET", "/api/v1/tenants/a/consumers/i1", f.admin, nil)

	a = f.must(201, &c, "PUT", "/api/v1/tenants/a/consumers/i1", f.service, instance(256, "running"))
	if c.Generation != 1 || c.Footprint["compute.live_memory_mb"] != 256 || c.Attributes["vcpus"] != 1 || a.header.Get("ETag") != `"1"` {
		t.Fatalf("created = %+v (etag %s)", c, a.header.Get("ETag"))
	}
	// The same PUT again is harmless: no change, same generation.
	f.must(200, &c, "PUT", "/api/v1/tenants/a/consumers/i1", f.service, instance(256, "running"))
	if c.Generation != 1 || c.Usage["compute.live_memory_mb"] != 256 {
		t.Fatalf("repeat = %+v", c)
	}
	// Stopping frees live memory.
	f.must(200, &c, "PUT", "/api/v1/tenants/a/consumers/i1", f.service, instance(256, "stopped"), "If-Match", `"1"`)
	if c.Generation != 2 || c.Usage["compute.live_memory_mb"] != 0 || c.Usage["compute.instances"] != 1 {
		t.Fatalf("stopped = %+v", c)
	}
	f.fail(412, "generation_mismatch", "PUT", "/api/v1/tenants/a/consumers/i1", f.service, instance(256, "running"), "If-Match", "1")
	f.fail(400, "invalid_request", "PUT", "/api/v1/tenants/a/consumers/i1", f.service, instance(256, "running"), "If-Match", "one")
	f.fail(409, "conflict", "PUT", "/api/v1/tenants/a/consumers/i1", f.service,
		client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 4}})

	var got client.Consumer
	f.must(200, &got, "GET", "/api/v1/tenants/a/consumers/i1", f.tenantA, nil)
	if got.State != "stopped" || got.Generation != 2 {
		t.Fatalf("get = %+v", got)
	}
	f.fail(412, "generation_mismatch", "DELETE", "/api/v1/tenants/a/consumers/i1", f.service, nil, "If-Match", "7")
	f.must(204, nil, "DELETE", "/api/v1/tenants/a/consumers/i1?dry_run=true", f.service, nil)
	f.must(200, nil, "GET", "/api/v1/tenants/a/consumers/i1", f.admin, nil)
	f.must(204, nil, "DELETE", "/api/v1/tenants/a/consumers/i1", f.service, nil)
	f.fail(404, "not_found", "DELETE", "/api/v1/tenants/a/consumers/i1", f.service, nil)
	var q client.Quotas
	f.must(200, &q, "GET", "/api/v1/tenants/a/quotas", f.admin, nil)
	for _, r := range q.Resources {
		if r.Used != 0 {
			t.Errorf("%s used %d after delete", r.Resource, r.Used)
		}
	}
}

func TestRefusalsSayWhy(t *testing.T) {
	f := newFixture(t)
	f.must(200, nil, "PUT", "/api/v1/tenants/a/quotas/compute.live_instances", f.admin, `{"hard":1}`)
	f.must(201, nil, "PUT", "/api/v1/tenants/a/consumers/i1", f.service, instance(64, "running"))
	p := f.fail(409, "quota_exceeded", "PUT", "/api/v1/tenants/a/consumers/i2", f.service, instance(64, "running"))
	want := client.Violation{Tenant: "a", Resource: "compute.live_instances", Used: 1, Hard: 1, Requested: 1, Available: 0}
	if len(p.Violations) != 1 || p.Violations[0] != want {
		t.Fatalf("violations = %+v", p.Violations)
	}
	p = f.fail(422, "limit_violation", "PUT", "/api/v1/tenants/a/consumers/i2", f.service, instance(4096, "stopped"))
	wantA := client.Violation{Kind: "compute.instance", Attribute: "memory_mb", Value: 4096, Min: 16, Max: 2048}
	if len(p.Violations) != 1 || p.Violations[0] != wantA {
		t.Fatalf("violations = %+v", p.Violations)
	}
}

func TestBadConsumerInput(t *testing.T) {
	f := newFixture(t)
	path := "/api/v1/tenants/a/consumers/i1"
	for name, body := range map[string]string{
		"malformed":          `{"kind":`,
		"not an object":      `[1,2]`,
		"empty":              ``,
		"unknown field":      `{"kind":"compute.volume","attributes":{"size_mb":4},"colour":"red"}`,
		"unknown kind":       `{"kind":"compute.gpu"}`,
		"unknown state":      `{"kind":"compute.instance","state":"paused","attributes":{"memory_mb":64}}`,
		"unknown attribute":  `{"kind":"compute.volume","attributes":{"size_mb":4,"iops":1}}`,
		"negative attribute": `{"kind":"compute.volume","attributes":{"size_mb":-4}}`,
		"float attribute":    `{"kind":"compute.volume","attributes":{"size_mb":4.5}}`,
		"string attribute":   `{"kind":"compute.volume","attributes":{"size_mb":"4"}}`,
		"huge attribute":     `{"kind":"compute.volume","attributes":{"size_mb":1e400}}`,
		"overflow":           `{"kind":"compute.volume","attributes":{"size_mb":9223372036854775808}}`,
		"duplicate key":      `{"kind":"compute.volume","kind":"compute.instance","attributes":{"size_mb":4}}`,
		"trailing data":      `{"kind":"compute.volume","attributes":{"size_mb":4}} {}`,
		"negative ttl":       `{"kind":"compute.volume","attributes":{"size_mb":4},"ttl_seconds":-1}`,
		"huge ttl":           `{"kind":"compute.volume","attributes":{"size_mb":4},"ttl_seconds":9223372036854775807}`,
		"deep nesting":       `{"kind":"compute.volume","attributes":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 41),
	} {
		t.Run(name, func(t *testing.T) {
			f.fail(400, "invalid_request", "PUT", path, f.service, body)
		})
	}
	f.fail(413, "body_too_large", "PUT", path, f.service, `{"kind":"`+strings.Repeat("x", 1<<20)+`"}`)
	f.fail(400, "invalid_request", "PUT", "/api/v1/tenants/a/consumers/"+strings.Repeat("c", 129), f.service, instance(64, "running"))
	f.fail(400, "invalid_request", "PUT", "/api/v1/tenants/a/consumers/a%20b", f.service, instance(64, "running"))
	f.fail(400, "invalid_request", "PUT", path+"?dry_run=maybe", f.service, instance(64, "running"))
	f.fail(404, "not_found", "PUT", "/api/v1/tenants/nope/consumers/i1", f.service, instance(64, "running"))
	// Nothing of that changed anything.
	var list client.ConsumerList
	f.must(200, &list, "GET", "/api/v1/tenants/a/consumers", f.admin, nil)
	if len(list.Consumers) != 0 {
		t.Fatalf("bad input left consumers: %+v", list)
	}
}

func TestListConsumersPages(t *testing.T) {
	f := newFixture(t)
	for i := range 7 {
		state := "running"
		if i%2 == 1 {
			state = "stopped"
		}
		f.must(201, nil, "PUT", fmt.Sprintf("/api/v1/tenants/a/consumers/i%d", i), f.service, instance(16, state))
	}
	f.must(201, nil, "PUT", "/api/v1/tenants/a/consumers/v1", f.service,
		client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 8}})
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		var page client.ConsumerList
		f.must(200, &page, "GET", "/api/v1/tenants/a/consumers?kind=compute.instance&limit=3&cursor="+cursor, f.tenantA, nil)
		for _, c := range page.Consumers {
			seen = append(seen, c.Consumer)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if strings.Join(seen, ",") != "i0,i1,i2,i3,i4,i5,i6" {
		t.Fatalf("paged = %v", seen)
	}
	var stopped client.ConsumerList
	f.must(200, &stopped, "GET", "/api/v1/tenants/a/consumers?state=stopped", f.admin, nil)
	if len(stopped.Consumers) != 3 {
		t.Fatalf("stopped = %+v", stopped)
	}
	f.fail(400, "invalid_request", "GET", "/api/v1/tenants/a/consumers?limit=1001", f.admin, nil)
	f.fail(400, "invalid_request", "GET", "/api/v1/tenants/a/consumers?limit=0", f.admin, nil)
	f.fail(400, "invalid_request", "GET", "/api/v1/tenants/a/consumers?cursor=%%%", f.admin, nil)
	f.fail(400, "invalid_request", "GET", "/api/v1/tenants/a/consumers?kind=compute.gpu", f.admin, nil)
	f.fail(404, "not_found", "GET", "/api/v1/tenants/zz/consumers", f.admin, nil)
}

func TestClaimsBatch(t *testing.T) {
	f := newFixture(t)
	f.must(200, nil, "PUT", "/api/v1/tenants/b/quotas/compute.volumes", f.admin, `{"hard":1}`)
	vol := func(tenant, id string) client.Operation {
		return client.Operation{Op: "put", Tenant: tenant, Consumer: id, Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 4}}
	}
	// The third operation fails, so none is applied.
	p := f.fail(409, "quota_exceeded", "POST", "/api/v1/claims", f.service,
		client.ClaimsRequest{Operations: []client.Operation{vol("a", "v1"), vol("b", "v1"), vol("b", "v2")}})
	if p.Operation == nil || *p.Operation != 2 {
		t.Fatalf("failing operation = %v", p.Operation)
	}
	var list client.ConsumerList
	f.must(200, &list, "GET", "/api/v1/tenants/a/consumers", f.admin, nil)
	if len(list.Consumers) != 0 {
		t.Fatal("a refused batch applied part of itself")
	}
	var res client.ClaimsResponse
	f.must(200, &res, "POST", "/api/v1/claims", f.service,
		client.ClaimsRequest{DryRun: true, Operations: []client.Operation{vol("a", "v1"), vol("b", "v1")}})
	if !res.DryRun || len(res.Results) != 2 || !res.Results[1].Created {
		t.Fatalf("dry run = %+v", res)
	}
	f.must(200, &res, "POST", "/api/v1/claims", f.service,
		client.ClaimsRequest{Operations: []client.Operation{vol("a", "v1"), vol("b", "v1"), {Op: "delete", Tenant: "a", Consumer: "v1"}}})
	if res.Results[2].Consumer != "v1" || res.Results[2].Usage["compute.volumes"] != 0 {
		t.Fatalf("results = %+v", res.Results)
	}
	f.must(200, &list, "GET", "/api/v1/tenants/b/consumers", f.admin, nil)
	if len(list.Consumers) != 1 {
		t.Fatalf("b = %+v", list)
	}
	p = f.fail(400, "invalid_request", "POST", "/api/v1/claims", f.service,
		client.ClaimsRequest{Operations: []client.Operation{vol("a", "v9"), {Op: "frob", Tenant: "a", Consumer: "x"}}})
	if p.Operation == nil || *p.Operation != 1 {
		t.Fatalf("bad op index = %v", p.Operation)
	}
	f.fail(400, "invalid_request", "POST", "/api/v1/claims", f.service, client.ClaimsRequest{})
	many := make([]client.Operation, 1001)
	for i := range many {
		many[i] = vol("a", fmt.Sprintf("v%d", i))
	}
	f.fail(400, "invalid_request", "POST", "/api/v1/claims", f.service, client.ClaimsRequest{Operations: many})
	f.fail(404, "not_found", "POST", "/api/v1/claims", f.service, client.ClaimsRequest{Operations: []client.Operation{vol("nope", "v1")}})
}

func TestTokens(t *testing.T) {
	f := newFixture(t)
	f.fail(409, "conflict", "POST", "/api/v1/tokens", f.admin, client.CreateTokenRequest{Role: "service", Name: "cp"})
	f.fail(400, "invalid_request", "POST", "/api/v1/tokens", f.admin, client.CreateTokenRequest{Role: "root", Name: "x"})
	f.fail(400, "invalid_request", "POST", "/api/v1/tokens", f.admin, client.CreateTokenRequest{Role: "tenant", Name: "x"})
	f.fail(400, "invalid_request", "POST", "/api/v1/tokens", f.admin, client.CreateTokenRequest{Role: "service", Tenant: "a", Name: "x"})
	f.fail(400, "invalid_request", "POST", "/api/v1/tokens", f.admin, client.CreateTokenRequest{Role: "service", Name: "a:b"})
	f.fail(404, "not_found", "POST", "/api/v1/tokens", f.admin, client.CreateTokenRequest{Role: "tenant", Tenant: "zz", Name: "x"})
	var list client.TokenList
	f.must(200, &list, "GET", "/api/v1/tokens", f.admin, nil)
	if len(list.Tokens) != 4 {
		t.Fatalf("tokens = %+v", list)
	}
	for _, tk := range list.Tokens {
		if tk.Secret != "" {
			t.Fatal("a listed token shows its secret")
		}
	}
	f.must(200, nil, "GET", "/api/v1/tenants/a/quotas", f.tenantA, nil)
	f.must(204, nil, "DELETE", "/api/v1/tokens/ta", f.admin, nil)
	f.fail(401, "unauthorized", "GET", "/api/v1/tenants/a/quotas", f.tenantA, nil)
	f.fail(404, "not_found", "DELETE", "/api/v1/tokens/nope", f.admin, nil)
}

// TestRoleMatrix checks every route against every kind of caller.
func TestRoleMatrix(t *testing.T) {
	f := newFixture(t)
	f.must(201, nil, "PUT", "/api/v1/tenants/a/consumers/c1", f.service, instance(16, "stopped"))
	f.must(201, nil, "PUT", "/api/v1/tenants/b/consumers/c1", f.service, instance(16, "stopped"))
	callers := []struct{ name, token string }{
		{"none", ""}, {"bad", "bm9wZTpub3Bl"}, {"admin", f.admin}, {"service", f.service}, {"own", f.tenantA}, {"other", f.tenantB},
	}
	type route struct {
		method, path, body string
		// Wanted status per caller, in the order above.
		want [6]int
	}
	routes := []route{
		{"GET", "/api/v1/tenants", "", [6]int{401, 401, 200, 200, 403, 403}},
		{"POST", "/api/v1/tenants", `{"id":"new"}`, [6]int{401, 401, 201, 403, 403, 403}},
		{"GET", "/api/v1/tenants/a", "", [6]int{401, 401, 200, 200, 200, 404}},
		{"GET", "/api/v1/tenants/a/quotas", "", [6]int{401, 401, 200, 200, 200, 404}},
		{"PUT", "/api/v1/tenants/a/quotas/compute.instances", `{"hard":20}`, [6]int{401, 401, 200, 403, 403, 404}},
		{"PUT", "/api/v1/tenants/a/limits/compute.instance/memory_mb", `{"min":16,"max":1024}`, [6]int{401, 401, 200, 403, 403, 404}},
		{"GET", "/api/v1/tenants/a/consumers", "", [6]int{401, 401, 200, 200, 200, 404}},
		{"GET", "/api/v1/tenants/a/consumers/c1", "", [6]int{401, 401, 200, 200, 200, 404}},
		{"PUT", "/api/v1/tenants/a/consumers/c1", `{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`, [6]int{401, 401, 200, 200, 403, 404}},
		{"POST", "/api/v1/claims", `{"operations":[{"op":"put","tenant":"a","consumer":"c1","kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}]}`, [6]int{401, 401, 200, 200, 403, 403}},
		{"GET", "/api/v1/tokens", "", [6]int{401, 401, 200, 403, 403, 403}},
		{"POST", "/api/v1/tokens", `{"role":"service","name":"n"}`, [6]int{401, 401, 201, 403, 403, 403}},
		{"GET", "/api/v1/events", "", [6]int{401, 401, 200, 200, 200, 200}},
		{"DELETE", "/api/v1/tenants/a/consumers/c1", "", [6]int{401, 401, 204, 204, 403, 404}},
		{"DELETE", "/api/v1/tenants/new", "", [6]int{401, 401, 204, 403, 404, 404}},
		{"DELETE", "/api/v1/tokens/n", "", [6]int{401, 401, 204, 403, 403, 403}},
	}
	for _, rt := range routes {
		for i, c := range callers {
			// Callers after admin would find the admin's effect (a created
			// tenant, a deleted consumer) so only the admin's call may succeed.
			if rt.want[i] >= 200 && rt.want[i] < 300 && c.name != "admin" {
				continue
			}
			var body any
			if rt.body != "" {
				body = rt.body
			}
			a := f.do(rt.method, rt.path, c.token, body)
			if a.status != rt.want[i] {
				t.Errorf("%s %s as %s = %d, want %d: %s", rt.method, rt.path, c.name, a.status, rt.want[i], a.body)
			}
		}
	}
	// Successes by non-admin callers, checked on their own.
	f.must(200, nil, "GET", "/api/v1/tenants/a", f.tenantA, nil)
	f.must(201, nil, "PUT", "/api/v1/tenants/a/consumers/c2", f.service, `{"kind":"compute.volume","attributes":{"size_mb":2}}`)
	f.must(200, nil, "GET", "/api/v1/tenants", f.service, nil)
}

func TestTenantSeesOnlyItsOwnEvents(t *testing.T) {
	f := newFixture(t)
	f.must(201, nil, "PUT", "/api/v1/tenants/a/consumers/c1", f.service, instance(16, "stopped"))
	f.must(201, nil, "PUT", "/api/v1/tenants/b/consumers/c1", f.service, instance(16, "stopped"))
	var ev client.EventList
	f.must(200, &ev, "GET", "/api/v1/events?limit=1000", f.tenantA, nil)
	if len(ev.Events) == 0 {
		t.Fatal("no events")
	}
	for _, e := range ev.Events {
		if e.Tenant != "a" {
			t.Fatalf("tenant a sees %+v", e)
		}
	}
	f.fail(404, "not_found", "GET", "/api/v1/events?tenant=b", f.tenantA, nil)
	f.must(200, &ev, "GET", "/api/v1/events?limit=1000", f.admin, nil)
	types := map[string]int{}
	for _, e := range ev.Events {
		types[e.Type]++
	}
	if types["consumer.put"] != 2 || types["tenant.create"] != 2 || types["token.create"] < 3 {
		t.Fatalf("event types = %v", types)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	f := newFixture(t)
	f.fail(404, "not_found", "GET", "/api/v1/nope", f.admin, nil)
	p := f.do("POST", "/api/v1/tenants/a", f.admin, `{}`)
	if p.status != 405 || p.header.Get("Allow") != "GET, PATCH, DELETE" {
		t.Fatalf("POST tenant = %d allow %q", p.status, p.header.Get("Allow"))
	}
	if p.problem(t).Code != "method_not_allowed" {
		t.Fatal("405 without its code")
	}
	if id := p.header.Get("X-Request-Id"); id == "" {
		t.Fatal("no X-Request-Id")
	}
}

// TestRaceForTheLastSlots: many callers race over HTTP for one tenant's
// few live instances; exactly the hard quota is admitted.
func TestRaceForTheLastSlots(t *testing.T) {
	f := newFixture(t)
	f.must(200, nil, "PUT", "/api/v1/tenants/a/quotas/compute.live_instances", f.admin, `{"hard":10}`)
	f.must(200, nil, "PUT", "/api/v1/tenants/a/quotas/compute.live_vcpus", f.admin, `{"hard":1000}`)
	var wg sync.WaitGroup
	statuses := make([]int, 200)
	for i := range statuses {
		wg.Go(func() {
			body, _ := json.Marshal(instance(16, "running"))
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/api/v1/tenants/a/consumers/r%d", f.base, i), bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+f.service)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[201] != 10 || count[409] != 190 {
		t.Fatalf("statuses = %v, want 10 created and 190 refused", count)
	}
	var q client.Quotas
	f.must(200, &q, "GET", "/api/v1/tenants/a/quotas", f.admin, nil)
	if q.Resources[1].Used != 10 {
		t.Fatalf("live_instances used = %d", q.Resources[1].Used)
	}
}
