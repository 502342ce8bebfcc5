package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/testserver"
)

// send makes one request as an identity of the world and returns the
// status and the problem's code, if any.
func (w *world) send(t *testing.T, method, path, who, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if tok := w.tokens[who]; tok != "" {
		if strings.HasPrefix(path, "/v2/") || strings.HasPrefix(path, "/v1.0/") {
			req.Header.Set("X-Auth-Token", tok)
		} else {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var p struct {
		Code      string `json:"code"`
		ErrorCode string `json:"error_code"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	json.Unmarshal(b, &p)
	return resp.StatusCode, p.Code + p.ErrorCode, resp.Header
}

// allRoutes is every route of every dialect, as method and path pattern.
func allRoutes() []string {
	return slices.Sorted(func(yield func(string) bool) {
		for p := range maps.Keys(intended) {
			if !yield(p) {
				return
			}
		}
		for p := range maps.Keys(dialectRoutes) {
			if !yield(p) {
				return
			}
		}
	})
}

// TestPathsNameExactlyOneResource: on every route of every dialect, a path
// with a dot segment, an encoded slash or an empty segment is refused with
// a 400, never redirected, and changes nothing.
func TestPathsNameExactlyOneResource(t *testing.T) {
	w := newWorld(t)
	before := digest(t, w.srv.Store)
	mangle := map[string]func(path string) string{
		"dot segment":         func(p string) string { return strings.Replace(p, "/", "/./", 2) },
		"dot-dot segment":     func(p string) string { return p + "/../x" },
		"trailing dot-dot":    func(p string) string { return p + "/.." },
		"encoded dot-dot":     func(p string) string { return p + "/%2e%2E" },
		"half-encoded dots":   func(p string) string { return p + "/.%2e/y" },
		"encoded slash":       func(p string) string { return strings.Replace(p, "/", "/a%2Fb/", 2) },
		"encoded backslash":   func(p string) string { return p + "/a%5Cb" },
		"empty segment":       func(p string) string { return strings.Replace(p, "/", "//", 2) },
		"NUL in a segment":    func(p string) string { return p + "/a%00b" },
		"escape in a segment": func(p string) string { return p + "/a%1Bb" },
		"invalid UTF-8":       func(p string) string { return p + "/a%FFb" },
	}
	sent := 0
	for _, pattern := range allRoutes() {
		method, path, _ := strings.Cut(pattern, " ")
		for name, m := range mangle {
			for _, verb := range []string{method, "DELETE"} {
				status, _, h := w.send(t, verb, m(w.path(path)), "admin", `{}`)
				sent++
				if status != 400 {
					t.Errorf("%s %s (%s): %d (Location %q), want 400", verb, m(w.path(path)), name, status, h.Get("Location"))
				}
			}
		}
	}
	// The finding itself: these deleted the tenant before.
	for _, p := range []string{"/api/v1/tenants/" + tenantB + "/consumers/..", "/api/v1/tenants/" + tenantB + "/credentials/..",
		"/api/v1/tenants/x/../../tokens/svc"} {
		if status, _, _ := w.send(t, "DELETE", p, "admin", ""); status != 400 {
			t.Errorf("DELETE %s: %d, want 400", p, status)
		}
	}
	if after := digest(t, w.srv.Store); after != before {
		t.Fatal("refused paths changed the state")
	}
	t.Logf("%d mangled paths over %d routes: all 400, state unchanged", sent, len(allRoutes()))
}

// TestOneIdentityRule: a tenant is named by exactly one spelling; another
// tenant's id in any other case or in look-alike characters never reaches
// its data, on any route of any dialect.
func TestOneIdentityRule(t *testing.T) {
	w := newWorld(t)
	admin := client.New(w.srv.URL, client.WithToken(w.srv.AdminToken))
	ctx := t.Context()
	// A UUID is case-insensitive (RFC 9562): created in upper case, it is
	// stored in lower case, and the lower-case spelling is the same tenant.
	const upper, lower = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE", "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	created, err := admin.CreateTenant(ctx, client.CreateTenantRequest{ID: upper})
	if err != nil || created.ID != lower {
		t.Fatalf("creating %s: %+v, %v; want it stored as %s", upper, created, err, lower)
	}
	if _, err := admin.CreateTenant(ctx, client.CreateTenantRequest{ID: lower}); err == nil {
		t.Fatal("a second tenant differing from a UUID only by case was created")
	}
	// Other ids are compared byte for byte, and one that differs from an
	// existing tenant's only by case is refused, so no two tenants look
	// alike to a person.
	if _, err := admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "ACME"}); err == nil {
		t.Fatal(`"ACME" was created beside "acme"`)
	}
	tok, err := admin.CreateToken(ctx, client.CreateTokenRequest{Name: "acme-reader", Role: "tenant", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	w.tokens["acme"] = tok.Secret
	uuidTok, err := admin.CreateToken(ctx, client.CreateTokenRequest{Name: "uuid-reader", Role: "tenant", Tenant: lower})
	if err != nil {
		t.Fatal(err)
	}
	w.tokens["uuid"] = uuidTok.Secret

	// Spellings of other tenants: another case, and look-alikes that
	// Unicode case folding or normalization would equate with acme.
	others := []string{"ACME", "Acme", "ａcme", "acm\u0435", "acme\u212a", "ac%CC%81me", strings.ToUpper(tenantA)}
	checked := 0
	for _, pattern := range allRoutes() {
		method, path, _ := strings.Cut(pattern, " ")
		if method != "GET" || !strings.Contains(path, "{tenant}") && !strings.Contains(path, "{uuid}") && !strings.Contains(path, "{project_id}") {
			continue
		}
		for _, other := range others {
			p := strings.NewReplacer("{tenant}", other, "{uuid}", other, "{project_id}", other).Replace(path)
			p = w.path(p)
			status, _, _ := w.send(t, method, p, "acme", "")
			checked++
			if status == 200 {
				t.Errorf("GET %s with acme's token: 200; another tenant's data", p)
			}
		}
		// The UUID tenant's own token reaches it under either spelling.
		if intended[pattern] == tenantReads && strings.Contains(path, "{tenant}") && !strings.Contains(path, "{consumer}") &&
			!strings.Contains(path, "{id}") && !strings.HasSuffix(path, "/history") {
			for _, spelling := range []string{upper, lower} {
				p := w.path(strings.ReplaceAll(path, "{tenant}", spelling))
				if status, _, _ := w.send(t, method, p, "uuid", ""); status != 200 {
					t.Errorf("GET %s with its own token: %d, want 200", p, status)
				}
			}
		}
	}
	// KraftCloud's UUID route, in both spellings, for the UUID tenant.
	for _, spelling := range []string{upper, lower} {
		if status, _, _ := w.send(t, "GET", "/v1/users/"+spelling+"/quotas", "uuid", ""); status != 200 {
			t.Errorf("KraftCloud quotas of %s with its own token: %d, want 200", spelling, status)
		}
	}
	// The events of another tenant, by query.
	for _, other := range others {
		if status, _, _ := w.send(t, "GET", "/api/v1/events?tenant="+other, "acme", ""); status == 200 {
			t.Errorf("events of %q with acme's token: 200", other)
		}
	}
	t.Logf("%d look-alike reads refused", checked)
}

// TestFreeTextFollowsOneRule: every text a caller sends, in a body or a
// query, is refused with a 400 when it holds control characters, bidi
// controls or invalid UTF-8, and nothing changes.
func TestFreeTextFollowsOneRule(t *testing.T) {
	w := newWorld(t)
	bad := map[string]string{
		"NUL":           `a\u0000b`,
		"escape":        `a\u001b]52;c;aGk=\u0007b`,
		"newline":       `a\nb`,
		"DEL":           "a\u007fb",
		"C1":            `a\u0085b`,
		"bidi override": `a\u202eb`,
		"bidi isolate":  `a\u2066b`,
	}
	writes := []struct{ method, path, body string }{
		{"POST", "/api/v1/tenants", `{"id":"fresh","name":%q}`},
		{"PATCH", "/api/v1/tenants/{tenant}", `{"name":%q}`},
		{"POST", "/api/v1/tenants/{tenant}/requests", `{"resource":"dcs.instances","value":4,"reason":%q}`},
		{"POST", "/api/v1/tenants/{tenant}/requests/{id}/deny", `{"comment":%q}`},
		{"POST", "/api/v1/webhooks", `{"url":"http://127.0.0.1:1/%s","secret":"0123456789abcdef"}`},
		{"POST", "/api/v1/tokens", `{"name":"n","role":"tenant","tenant":%q}`},
		{"PUT", "/api/v1/tenants/{tenant}/consumers/vm-9", `{"kind":"compute.instance","state":%q,"attributes":{"memory_mb":64}}`},
		{"PUT", "/api/v1/tenants/{tenant}/consumers/vm-9", `{"kind":"compute.instance","state":"running","attributes":{%q:64}}`},
	}
	before := digest(t, w.srv.Store)
	for _, wr := range writes {
		for name, v := range bad {
			var body string
			if strings.Contains(wr.body, "%q") {
				body = fmt.Sprintf(wr.body, "x")
				body = strings.Replace(body, `"x"`, `"`+v+`"`, 1)
			} else {
				body = strings.Replace(wr.body, "%s", v, 1)
			}
			status, code, _ := w.send(t, wr.method, w.path(wr.path), "admin", body)
			if status != 400 || code != "invalid_request" {
				t.Errorf("%s %s with %s: %d %q, want 400 invalid_request", wr.method, wr.path, name, status, code)
			}
		}
	}
	// Invalid UTF-8 in a body, and in every query value.
	if status, _, _ := w.send(t, "POST", "/api/v1/tenants", "admin", "{\"id\":\"x\",\"name\":\"\xff\"}"); status != 400 {
		t.Errorf("invalid UTF-8 in a body: %d, want 400", status)
	}
	queries := map[string]string{
		"/api/v1/tenants/{tenant}/consumers": "state", "/api/v1/events": "tenant", "/api/v1/utilisation": "q",
		"/api/v1/requests": "status", "/api/v1/tenants/{tenant}/usage": "at",
	}
	for path, param := range queries {
		for _, v := range []string{"%00", "%1b", "%ff", "%E2%80%AE"} {
			status, code, _ := w.send(t, "GET", w.path(path)+"?"+param+"="+v, "admin", "")
			if status != 400 || code != "invalid_request" {
				t.Errorf("GET %s?%s=%s: %d %q, want 400 invalid_request", path, param, v, status, code)
			}
		}
	}
	if after := digest(t, w.srv.Store); after != before {
		t.Fatal("refused text changed the state")
	}
}

// TestQueryParametersAreDeclared: every route refuses a parameter it does
// not take and one given twice; every write honours dry_run.
func TestQueryParametersAreDeclared(t *testing.T) {
	w := newWorld(t)
	before := digest(t, w.srv.Store)
	for _, pattern := range allRoutes() {
		method, path, _ := strings.Cut(pattern, " ")
		if path == "/healthz" || path == "/readyz" || path == "/metrics" {
			continue // operational endpoints answer anyone, whatever the query
		}
		status, code, _ := w.send(t, method, w.path(path)+"?sneaky=1", "admin", "")
		if status != 400 || (code != "unknown_parameter" && code != "DCS.4000" && !strings.HasPrefix(path, "/v1/users")) {
			t.Errorf("%s %s?sneaky=1: %d %q, want 400 unknown_parameter", method, path, status, code)
		}
	}
	if status, _, _ := w.send(t, "GET", "/api/v1/events?limit=1&limit=1000", "admin", ""); status != 400 {
		t.Errorf("a parameter given twice: %d, want 400", status)
	}
	if after := digest(t, w.srv.Store); after != before {
		t.Fatal("refused parameters changed the state")
	}

	// Every write, as a dry run: answered, marked, and nothing changes.
	bodies := map[string]string{
		"POST /api/v1/tenants":                                `{"id":"dry"}`,
		"PATCH /api/v1/tenants/{tenant}":                      `{"name":"Dry"}`,
		"PUT /api/v1/tenants/{tenant}/quotas/{resource}":      `{"hard":3}`,
		"PUT /api/v1/tenants/{tenant}/limits/{kind}/{limit}":  `{"min":16,"max":512}`,
		"PUT /api/v1/tenants/{tenant}/consumers/{consumer}":   `{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":64}}`,
		"POST /api/v1/claims":                                 `{"operations":[{"op":"delete","tenant":"` + tenantA + `","consumer":"vm-1"}]}`,
		"POST /api/v1/tokens":                                 `{"name":"dry","role":"service"}`,
		"POST /api/v1/tenants/{tenant}/requests":              `{"resource":"dcs.instances","value":5}`,
		"PUT /api/v1/tenants/{tenant}/inventory":              `{"kinds":["compute.instance"],"consumers":[]}`,
		"PUT /api/v1/tenants/{tenant}/thresholds":             `{"thresholds":[50]}`,
		"POST /api/v1/webhooks":                               `{"url":"http://127.0.0.1:1/dry","secret":"0123456789abcdef"}`,
		"POST /api/v1/tenants/{tenant}/requests/{id}/approve": ``,
		"POST /api/v1/tenants/{tenant}/requests/{id}/deny":    ``,
		"POST /api/v1/tenants/{tenant}/credentials":           ``,
	}
	for _, pattern := range allRoutes() {
		method, path, _ := strings.Cut(pattern, " ")
		if method == "GET" || !strings.HasPrefix(path, "/api/") {
			continue
		}
		if strings.HasPrefix(pattern, "DELETE /api/v1/tenants/{tenant}") && !strings.Contains(path, "consumers") && !strings.Contains(path, "credentials") {
			// Deleting a tenant with consumers is refused even as a dry run;
			// use the other tenant.
			path = strings.ReplaceAll(path, "{tenant}", tenantB)
		}
		before := digest(t, w.srv.Store)
		status, code, h := w.send(t, method, w.path(path)+"?dry_run=true", "admin", bodies[pattern])
		if status >= 300 || h.Get("Allot-Dry-Run") != "true" {
			t.Errorf("%s %s?dry_run=true: %d %q, Allot-Dry-Run %q; want a success marked as a dry run", method, path, status, code, h.Get("Allot-Dry-Run"))
		}
		if after := digest(t, w.srv.Store); after != before {
			t.Errorf("%s %s?dry_run=true changed the state", method, path)
		}
	}
}

// TestNumbersAndTimesAreInRange: every numeric or time parameter outside
// its documented range is a 400, never a wrapped value.
func TestNumbersAndTimesAreInRange(t *testing.T) {
	w := newWorld(t)
	cases := []struct{ method, path, body string }{
		{"PUT", "/api/v1/tenants/{tenant}/consumers/r-1", `{"kind":"compute.volume","attributes":{"size_mb":2},"ttl_seconds":18446744074}`},
		{"PUT", "/api/v1/tenants/{tenant}/consumers/r-1", `{"kind":"compute.volume","attributes":{"size_mb":2},"ttl_seconds":-1}`},
		{"PUT", "/api/v1/tenants/{tenant}/consumers/r-1", `{"kind":"compute.volume","attributes":{"size_mb":2},"ttl_seconds":9223372036854775807}`},
		{"GET", "/api/v1/tenants/{tenant}/usage/history?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z", ""},
		{"GET", "/api/v1/tenants/{tenant}/usage/history?from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", ""},
		{"GET", "/api/v1/tenants/{tenant}/usage/history?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&points=1", ""},
		{"GET", "/api/v1/tenants/{tenant}/usage/history?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&points=501", ""},
		{"GET", "/api/v1/tenants/{tenant}/usage?at=0001-01-01T00:00:00Z", ""},
		{"GET", "/api/v1/tenants/{tenant}/usage?at=2263-01-01T00:00:00Z", ""},
		{"GET", "/api/v1/events?after=-1", ""},
		{"GET", "/api/v1/events?limit=0", ""},
		{"GET", "/api/v1/events?limit=1001", ""},
		{"GET", "/api/v1/events?after=99999999999999999999", ""},
		{"GET", "/api/v1/tenants/{tenant}/consumers?limit=1001", ""},
		{"GET", "/api/v1/utilisation?limit=0", ""},
		{"PUT", "/api/v1/tenants/{tenant}/quotas/{resource}", `{"hard":-1}`},
		{"PUT", "/api/v1/tenants/{tenant}/quotas/{resource}", `{"hard":1,"requestable":{"min":5,"max":1}}`},
		{"PUT", "/api/v1/tenants/{tenant}/limits/{kind}/{limit}", `{"min":10,"max":1}`},
		{"PUT", "/api/v1/tenants/{tenant}/thresholds", `{"thresholds":[0]}`},
		{"PUT", "/api/v1/tenants/{tenant}/thresholds", `{"thresholds":[1001]}`},
		{"POST", "/api/v1/tenants/{tenant}/requests", `{"resource":"dcs.instances","value":-1}`},
		{"PUT", "/api/v1/tenants/{tenant}/consumers/vm-1", `{"kind":"compute.instance","state":"running","attributes":{"memory_mb":-1}}`},
	}
	before := digest(t, w.srv.Store)
	for _, c := range cases {
		status, code, _ := w.send(t, c.method, w.path(c.path), "admin", c.body)
		if status != 400 && status != 422 {
			t.Errorf("%s %s %s: %d %q, want 400", c.method, c.path, c.body, status, code)
		}
	}
	if after := digest(t, w.srv.Store); after != before {
		t.Fatal("out-of-range requests changed the state")
	}
}

// countingStore counts ledger reads, to show what idle streams cost.
type countingStore struct {
	quota.Store
	events atomic.Int64
}

func (c *countingStore) Events(ctx context.Context, f quota.EventFilter) ([]*quota.Event, error) {
	c.events.Add(1)
	return c.Store.Events(ctx, f)
}

// TestStreamsAreBounded: streams are capped per token, idle streams do not
// read the store, and one commit reaches every stream.
func TestStreamsAreBounded(t *testing.T) {
	var counting *countingStore
	srv := testserver.Start(t, testserver.Options{Wrap: func(st quota.Store) quota.Store {
		counting = &countingStore{Store: st}
		return counting
	}})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	open := func() (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events/stream", nil)
		req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
		return http.DefaultClient.Do(req)
	}
	var streams []*bufio.Reader
	for range 10 {
		resp, err := open()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("opening a stream: %v %v", resp, err)
		}
		defer resp.Body.Close()
		streams = append(streams, bufio.NewReader(resp.Body))
	}
	resp, err := open()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an eleventh stream of one token: %d, want 429 with Retry-After", resp.StatusCode)
	}
	// Idle for a while: the follower reads about once a second, whatever
	// the number of streams; no stream reads on its own.
	time.Sleep(100 * time.Millisecond)
	idleFrom := counting.events.Load()
	time.Sleep(2 * time.Second)
	if n := counting.events.Load() - idleFrom; n > 5 {
		t.Fatalf("10 idle streams read the ledger %d times in 2 s; want about one read a second in all", n)
	}
	// One commit reaches every stream.
	admin := client.New(srv.URL, client.WithToken(srv.AdminToken))
	if _, err := admin.CreateTenant(t.Context(), client.CreateTenantRequest{ID: "streamed"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, s := range streams {
		wg.Go(func() {
			for {
				line, err := s.ReadString('\n')
				if err != nil {
					t.Errorf("stream %d ended before the event: %v", i, err)
					return
				}
				if strings.Contains(line, `"streamed"`) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestARecreatedTenantStartsAFreshHistory: a tenant deleted and created
// again under the same id sees nothing of the previous owner's ledger.
func TestARecreatedTenantStartsAFreshHistory(t *testing.T) {
	srv := testserver.Start(t)
	ctx := t.Context()
	admin := client.New(srv.URL, client.WithToken(srv.AdminToken))
	if _, err := admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "reused"}); err != nil {
		t.Fatal(err)
	}
	put := client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 100}}
	if _, err := admin.PutConsumer(ctx, "reused", "secret-project-volume", put, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	during := time.Now().UTC()
	if err := admin.DeleteConsumer(ctx, "reused", "secret-project-volume", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteTenant(ctx, "reused"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "reused"}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, client.CreateTokenRequest{Name: "new-owner", Role: "tenant", Tenant: "reused"})
	if err != nil {
		t.Fatal(err)
	}
	owner := client.New(srv.URL, client.WithToken(tok.Secret))
	events, err := owner.Events(ctx, client.EventQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Events {
		if e.Subject == "secret-project-volume" || e.Type == "tenant.delete" {
			t.Errorf("the new owner sees the previous owner's event %d %s %s", e.Seq, e.Type, e.Subject)
		}
	}
	if len(events.Events) == 0 || events.Events[0].Type != "tenant.create" {
		t.Fatalf("the new owner's history should start at its creation: %+v", events.Events)
	}
	at, err := owner.UsageAt(ctx, "reused", during)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range at.Resources {
		if r.Used != 0 {
			t.Errorf("usage at a time of the previous owner: %s = %d, want 0", r.Resource, r.Used)
		}
	}
}
