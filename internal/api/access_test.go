package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/api"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/testserver"
)

// world is a server with two tenants, an object of every kind the routes
// name, and a token for each identity of the access matrix.
type world struct {
	srv    *testserver.Server
	tokens map[string]string // identity → bearer token
	ids    map[string]string // path parameter → value
}

const tenantA, tenantB = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := testserver.Start(t)
	ctx := t.Context()
	admin := client.New(srv.URL, client.WithToken(srv.AdminToken))
	w := &world{srv: srv, tokens: map[string]string{"admin": srv.AdminToken, "none": "", "bad": "bm9ib2R5OnNlY3JldA=="}, ids: map[string]string{}}
	for _, id := range []string{tenantA, tenantB} {
		if _, err := admin.CreateTenant(ctx, client.CreateTenantRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	mint := func(name, role, tenant string) string {
		tok, err := admin.CreateToken(ctx, client.CreateTokenRequest{Name: name, Role: role, Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Secret
	}
	w.tokens["service"] = mint("svc", "service", "")
	w.tokens["own tenant"] = mint("own", "tenant", tenantA)
	w.tokens["other tenant"] = mint("other", "tenant", tenantB)
	w.tokens["revoked"] = mint("gone", "admin", "")
	if err := admin.RevokeToken(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutConsumer(ctx, tenantA, "vm-1", client.PutConsumerRequest{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 64}}, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	v := int64(3)
	req, err := admin.CreateRequest(ctx, tenantA, client.CreateRequestRequest{Resource: "dcs.instances", Value: &v})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := admin.CreateCredential(ctx, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	hook, err := admin.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "http://127.0.0.1:1/x", Secret: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	w.ids = map[string]string{"tenant": tenantA, "consumer": "vm-1", "resource": "compute.instances", "kind": "compute.instance",
		"limit": "memory_mb", "id": req.ID, "name": "svc", "access_key": cred.AccessKey, "uuid": tenantA, "project_id": tenantA}
	w.ids["webhook"] = hook.ID
	return w
}

// path fills a route pattern's parameters.
func (w *world) path(pattern string) string {
	out := pattern
	for k, v := range w.ids {
		if k == "id" && strings.Contains(pattern, "/webhooks/") {
			v = w.ids["webhook"]
		}
		out = strings.ReplaceAll(out, "{"+k+"}", v)
	}
	return out
}

// access is who may call a route, as intended.
type access string

const (
	everyone     access = "unauthenticated"
	anyToken     access = "any valid token"
	adminOnly    access = "admin"
	operators    access = "admin, service"
	tenantReads  access = "admin, service, own tenant"
	tenantWrites access = "admin, own tenant"
	// subtreeReads: as tenantReads, and a tenant token of an ancestor of
	// the tenant named too (TestTreeVisibility); in this world the tenants
	// are roots, so the matrix is tenantReads'.
	subtreeReads access = "admin, service, own tenant or its ancestor"
)

// intended lists every route of the native API with who may call it. A
// route added without a line here fails TestAccessMatrix.
var intended = map[string]access{
	"GET /api/v1/openapi.json": everyone,

	"POST /api/v1/tenants":              adminOnly,
	"GET /api/v1/tenants":               operators,
	"GET /api/v1/tenants/{tenant}":      tenantReads,
	"PATCH /api/v1/tenants/{tenant}":    adminOnly,
	"DELETE /api/v1/tenants/{tenant}":   adminOnly,
	"GET /api/v1/tenants/{tenant}/tree": subtreeReads,

	"GET /api/v1/tenants/{tenant}/quotas":                tenantReads,
	"PUT /api/v1/tenants/{tenant}/quotas/{resource}":     adminOnly,
	"PUT /api/v1/tenants/{tenant}/limits/{kind}/{limit}": adminOnly,

	"GET /api/v1/tenants/{tenant}/consumers":               tenantReads,
	"GET /api/v1/tenants/{tenant}/consumers/{consumer}":    tenantReads,
	"PUT /api/v1/tenants/{tenant}/consumers/{consumer}":    operators,
	"DELETE /api/v1/tenants/{tenant}/consumers/{consumer}": operators,
	"POST /api/v1/claims":                                  operators,

	"POST /api/v1/tokens":          adminOnly,
	"GET /api/v1/tokens":           adminOnly,
	"DELETE /api/v1/tokens/{name}": adminOnly,

	"POST /api/v1/tenants/{tenant}/credentials":                adminOnly,
	"GET /api/v1/tenants/{tenant}/credentials":                 adminOnly,
	"DELETE /api/v1/tenants/{tenant}/credentials/{access_key}": adminOnly,

	"GET /api/v1/events":                                  anyToken,
	"GET /api/v1/events/stream":                           anyToken,
	"GET /api/v1/tenants/{tenant}/usage/history":          tenantReads,
	"GET /api/v1/tenants/{tenant}/usage":                  tenantReads,
	"POST /api/v1/tenants/{tenant}/requests":              tenantWrites,
	"GET /api/v1/tenants/{tenant}/requests":               tenantReads,
	"GET /api/v1/tenants/{tenant}/requests/{id}":          tenantReads,
	"POST /api/v1/tenants/{tenant}/requests/{id}/approve": adminOnly,
	"POST /api/v1/tenants/{tenant}/requests/{id}/deny":    adminOnly,
	"GET /api/v1/requests":                                operators,
	"PUT /api/v1/tenants/{tenant}/inventory":              operators,
	"GET /api/v1/utilisation":                             operators,
	"GET /api/v1/near-limit":                              operators,
	"GET /api/v1/overquota":                               operators,
	"GET /api/v1/tenants/{tenant}/thresholds":             tenantReads,
	"PUT /api/v1/tenants/{tenant}/thresholds":             adminOnly,
	"POST /api/v1/webhooks":                               adminOnly,
	"GET /api/v1/webhooks":                                adminOnly,
	"DELETE /api/v1/webhooks/{id}":                        adminOnly,
}

// The dialects and the operational endpoints, with the status each
// identity gets.
var dialectRoutes = map[string]map[string]int{
	"GET /v1/users/quotas": {"own tenant": 200, "other tenant": 200, "service": 404, "admin": 404},
	// Tenant IDs here are DCS project IDs, not UUIDs: every valid caller is
	// told the UUID is malformed (isolation is in internal/kraftcloud's tests).
	"GET /v1/users/{uuid}/quotas":  {"own tenant": 400, "other tenant": 400, "service": 400, "admin": 400},
	"GET /v2/{project_id}/quota":   {"own tenant": 200, "other tenant": 401, "service": 200, "admin": 200},
	"GET /v1.0/{project_id}/quota": {"own tenant": 200, "other tenant": 401, "service": 200, "admin": 200},
	"GET /healthz":                 {"none": 200, "bad": 200, "revoked": 200, "own tenant": 200, "other tenant": 200, "service": 200, "admin": 200},
	"GET /readyz":                  {"none": 200, "bad": 200, "revoked": 200, "own tenant": 200, "other tenant": 200, "service": 200, "admin": 200},
	"GET /metrics":                 {"none": 200, "bad": 200, "revoked": 200, "own tenant": 200, "other tenant": 200, "service": 200, "admin": 200},
}

var identities = []string{"none", "bad", "revoked", "other tenant", "own tenant", "service", "admin"}

// expect is the status class an identity should get on a native route:
// "401", "403", "404" (another tenant's: indistinguishable from absent), or
// "ok" (anything the handler itself answers: 2xx, or 4xx about the body).
func expect(acc access, identity string, tenantInPath bool) string {
	switch {
	case acc == everyone:
		return "ok"
	case identity == "none" || identity == "bad" || identity == "revoked":
		return "401"
	case identity == "other tenant" && tenantInPath:
		return "404"
	case acc == anyToken, identity == "admin":
		return "ok"
	case identity == "service" && (acc == operators || acc == tenantReads || acc == subtreeReads):
		return "ok"
	case (identity == "own tenant" || identity == "other tenant") && (acc == tenantReads || acc == tenantWrites || acc == subtreeReads):
		return "ok"
	}
	return "403"
}

func classify(status int) string {
	switch status {
	case 401, 403, 404:
		return fmt.Sprint(status)
	}
	return "ok"
}

// routePatterns lists what the native API registers.
type patternRecorder struct{ patterns []string }

func (p *patternRecorder) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	p.patterns = append(p.patterns, pattern)
}

func TestAccessMatrix(t *testing.T) {
	srv := testserver.Start(t)
	rec := &patternRecorder{}
	native, err := api.New(api.Config{Engine: srv.Engine, Store: srv.Store, Sealer: srv.Sealer, Region: "local", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	native.Routes(rec)
	for _, p := range rec.patterns {
		if _, ok := intended[p]; !ok {
			t.Errorf("route %s has no line in the access matrix", p)
		}
	}
	cells := 0
	for _, pattern := range slices.Sorted(maps.Keys(intended)) {
		acc := intended[pattern]
		method, path, _ := strings.Cut(pattern, " ")
		t.Run(pattern, func(t *testing.T) {
			w := newWorld(t)
			for _, who := range identities {
				if method != "GET" {
					w = newWorld(t) // a write must not find the previous identity's effects
				}
				ctx, cancel := context.WithCancel(t.Context())
				req, _ := http.NewRequestWithContext(ctx, method, w.srv.URL+w.path(path), strings.NewReader(""))
				if tok := w.tokens[who]; tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got := classify(resp.StatusCode)
				cancel() // ends event streams
				resp.Body.Close()
				want := expect(acc, who, strings.Contains(path, "{tenant}"))
				if got != want {
					t.Errorf("%s as %s: %d, want %s (%s)", pattern, who, resp.StatusCode, want, acc)
				}
				cells++
			}
		})
	}
	w := newWorld(t)
	for _, pattern := range slices.Sorted(maps.Keys(dialectRoutes)) {
		method, path, _ := strings.Cut(pattern, " ")
		for _, who := range identities {
			want, ok := dialectRoutes[pattern][who]
			if !ok {
				want = 401
			}
			req, _ := http.NewRequest(method, w.srv.URL+w.path(path), nil)
			if tok := w.tokens[who]; tok != "" {
				if strings.HasPrefix(path, "/v2/") || strings.HasPrefix(path, "/v1.0/") {
					req.Header.Set("X-Auth-Token", tok)
				} else {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("%s as %s: %d, want %d", pattern, who, resp.StatusCode, want)
			}
			cells++
		}
	}
	t.Logf("access matrix: %d routes × %d identities = %d cells checked", len(intended)+len(dialectRoutes), len(identities), cells)
}

// digest summarizes everything a refused request must leave untouched.
func digest(t *testing.T, st quota.Store) string {
	t.Helper()
	ctx := t.Context()
	h := sha256.New()
	ts, err := st.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range ts {
		u, _ := st.Usage(ctx, tn.ID)
		cs, _ := st.Consumers(ctx, quota.ConsumerFilter{Tenant: tn.ID, Limit: 10000})
		json.NewEncoder(h).Encode([]any{tn, u, cs})
	}
	toks, _ := st.Tokens(ctx)
	es, _ := st.Events(ctx, quota.EventFilter{Limit: 100000})
	rs, _ := st.Requests(ctx, quota.RequestFilter{Limit: 1000})
	hs, _ := st.Webhooks(ctx)
	json.NewEncoder(h).Encode([]any{toks, len(es), rs, hs})
	return hex.EncodeToString(h.Sum(nil))
}

// TestHostileInput sends malformed and hostile requests to every route
// that reads input, and checks each gets a 4xx with a stable code and
// changes nothing.
func TestHostileInput(t *testing.T) {
	w := newWorld(t)
	bodies := map[string]string{
		"huge number":      `{"hard":99999999999999999999999,"value":99999999999999999999999,"attributes":{"memory_mb":99999999999999999999}}`,
		"negative":         `{"hard":-1,"value":-5,"min":-1,"max":-1,"kind":"compute.instance","attributes":{"memory_mb":-64}}`,
		"float":            `{"hard":1.5,"value":2.5,"min":0.5,"max":1.5,"kind":"compute.instance","attributes":{"memory_mb":64.5}}`,
		"NaN in a string":  `{"hard":"NaN","value":"NaN","min":"NaN","max":"Infinity","attributes":{"memory_mb":"NaN"}}`,
		"deep nesting":     strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000),
		"duplicate keys":   `{"hard":1,"hard":1000000,"value":1,"value":2,"kind":"compute.instance","kind":"compute.volume"}`,
		"invalid UTF-8":    "{\"name\":\"\xff\xfe\",\"id\":\"\xc3\x28\",\"reason\":\"\xed\xa0\x80\",\"url\":\"http://\xff/\"}",
		"oversized body":   `{"name":"` + strings.Repeat("x", 2<<20) + `"}`,
		"trailing data":    `{"hard":1} {"hard":2}`,
		"not an object":    `[1,2,3]`,
		"unknown field":    `{"hard":1,"value":1,"kinds":["compute.instance"],"operations":[],"url":"http://x/","secret":"0123456789abcdef","sneaky":true}`,
		"empty":            ``,
		"wrong types":      `{"hard":"1","value":true,"min":[],"max":{},"kind":7,"attributes":[1],"operations":"all","kinds":"x","thresholds":"80"}`,
		"null everywhere":  `{"hard":null,"value":null,"min":null,"max":null,"kind":null,"operations":null,"kinds":null,"url":null}`,
		"many operations":  `{"operations":[` + strings.TrimSuffix(strings.Repeat(`{"op":"delete","tenant":"x","consumer":"y"},`, 1001), ",") + `]}`,
		"control chars id": `{"id":"a\u0000b","name":"x"}`,
	}
	paths := map[string]string{
		"path traversal":  "/api/v1/tenants/..%2f..%2fetc%2fpasswd/quotas",
		"encoded slash":   "/api/v1/tenants/a%2Fb/consumers/c",
		"dots":            "/api/v1/tenants/../consumers/..",
		"long id":         "/api/v1/tenants/" + strings.Repeat("a", 300) + "/quotas",
		"percent garbage": "/api/v1/tenants/%zz/quotas",
		"NUL":             "/api/v1/tenants/a%00b/quotas",
	}
	before := digest(t, w.srv.Store)
	sent := 0
	for pattern := range intended {
		method, path, _ := strings.Cut(pattern, " ")
		if method == "GET" || method == "DELETE" { // DELETE reads no body
			continue
		}
		optional := strings.HasSuffix(path, "/credentials") || strings.HasSuffix(path, "/approve") || strings.HasSuffix(path, "/deny")
		for name, body := range bodies {
			if optional && name == "empty" { // no body is a valid request there
				continue
			}
			req, _ := http.NewRequest(method, w.srv.URL+w.path(path), strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+w.srv.AdminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var p client.Problem
			json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			sent++
			if resp.StatusCode < 400 || resp.StatusCode > 499 || p.Code == "" {
				t.Errorf("%s with %s: %d %q, want a 4xx with a code", pattern, name, resp.StatusCode, p.Code)
			}
		}
	}
	for name, p := range paths {
		for _, method := range []string{"GET", "PUT", "DELETE"} {
			req, err := http.NewRequest(method, w.srv.URL+p, strings.NewReader(`{"hard":1}`))
			if err != nil {
				continue // Go refuses to build some of these at all
			}
			req.Header.Set("Authorization", "Bearer "+w.srv.AdminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			resp.Body.Close()
			sent++
			if resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Errorf("%s %s (%s): %d, want a 4xx, never a redirect", method, p, name, resp.StatusCode)
			}
		}
	}
	// Oversized headers.
	req, _ := http.NewRequest("GET", w.srv.URL+"/api/v1/tenants", nil)
	req.Header.Set("Authorization", "Bearer "+w.srv.AdminToken)
	req.Header.Set("X-Padding", strings.Repeat("x", 2<<20))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("2 MiB of headers: %d, want 431", resp.StatusCode)
		}
	}
	if after := digest(t, w.srv.Store); after != before {
		t.Fatal("hostile requests changed the state")
	}
	t.Logf("%d hostile requests, state unchanged", sent)
}

// TestTreeVisibility holds the rule for a tenant token on the tree route:
// it reads the tree of its own tenant or of a tenant below it (its tenant
// is on the path from the root), never an ancestor's, which would show it
// the ancestor's other children; every other tenant route stays its own
// tenant's only.
func TestTreeVisibility(t *testing.T) {
	srv := testserver.Start(t)
	ctx := t.Context()
	admin := client.New(srv.URL, client.WithToken(srv.AdminToken))
	for _, tn := range []client.CreateTenantRequest{{ID: "org"}, {ID: "web", Parent: "org"}, {ID: "db", Parent: "org"}, {ID: "web-eu", Parent: "web"}} {
		if _, err := admin.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}
	tokenOf := func(tenant string) *client.Client {
		tok, err := admin.CreateToken(ctx, client.CreateTokenRequest{Name: "t-" + tenant, Role: "tenant", Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		return client.New(srv.URL, client.WithToken(tok.Secret))
	}
	org, web := tokenOf("org"), tokenOf("web")
	cases := []struct {
		who    string
		c      *client.Client
		tree   string
		status int
		nodes  []string
	}{
		{"org", org, "org", 200, []string{"org", "db", "web", "web-eu"}},
		{"org", org, "web", 200, []string{"web", "web-eu"}},
		{"web", web, "web", 200, []string{"web", "web-eu"}},
		{"web", web, "web-eu", 200, []string{"web-eu"}},
		{"web", web, "org", 404, nil}, // its ancestor: would show db
		{"web", web, "db", 404, nil},  // its sibling
	}
	for _, tc := range cases {
		tr, err := tc.c.Tree(ctx, tc.tree)
		if tc.status != 200 {
			if pe, ok := err.(*client.Error); !ok || pe.Status != tc.status {
				t.Errorf("%s reads the tree of %s: %v, want %d", tc.who, tc.tree, err, tc.status)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s reads the tree of %s: %v", tc.who, tc.tree, err)
			continue
		}
		var got []string
		for _, n := range tr.Nodes {
			got = append(got, n.ID)
		}
		if !slices.Equal(got, tc.nodes) {
			t.Errorf("%s reads the tree of %s: %v, want %v", tc.who, tc.tree, got, tc.nodes)
		}
	}
	// The tree route alone widens what an ancestor's token reads.
	if _, err := org.Quotas(ctx, "web"); err == nil {
		t.Error("the org's token read web's quotas; only the tree route shows a descendant")
	}
}
