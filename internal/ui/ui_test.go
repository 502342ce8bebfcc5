package ui_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/api"
	"github.com/allot-dev/allot/internal/testserver"
	"github.com/allot-dev/allot/internal/ui"
)

// env is a real allot with the dashboard on top, and a few tenants:
// acme at 80 % of compute.instances with a pending dcs.instances request,
// initech over its compute.volumes quota, globex idle.
type env struct {
	t      *testing.T
	srv    *testserver.Server
	admin  *client.Client
	ui     *httptest.Server
	tokens map[string]string // admin, service, acme, globex
	clock  *clock
	req    *client.Request // acme's pending request
}

type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	ts := testserver.Start(t)
	log := slog.New(slog.DiscardHandler)
	e := &env{t: t, srv: ts, admin: client.New(ts.URL, client.WithToken(ts.AdminToken)), clock: &clock{},
		tokens: map[string]string{"admin": ts.AdminToken}}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"acme", "globex", "initech"} {
		must(e.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: id, Name: strings.ToUpper(id[:1]) + id[1:] + " Inc."}))
	}
	hard := func(n int64) *int64 { return &n }
	must(e.admin.SetQuota(ctx, "acme", "compute.instances", client.SetQuotaRequest{Hard: hard(5)}))
	must(e.admin.SetQuota(ctx, "acme", "dcs.instances", client.SetQuotaRequest{Hard: hard(2)}))
	for i, state := range []string{"running", "running", "stopped", "standby"} {
		must(e.admin.PutConsumer(ctx, "acme", "vm-"+string(rune('a'+i)), client.PutConsumerRequest{Kind: "compute.instance",
			State: state, Attributes: map[string]int64{"memory_mb": 128}}, client.PutOptions{}))
	}
	must(e.admin.PutConsumer(ctx, "acme", "disk-1", client.PutConsumerRequest{Kind: "compute.volume",
		Attributes: map[string]int64{"size_mb": 100}}, client.PutOptions{}))
	for _, id := range []string{"d1", "d2"} {
		must(e.admin.PutConsumer(ctx, "initech", id, client.PutConsumerRequest{Kind: "compute.volume",
			Attributes: map[string]int64{"size_mb": 10}}, client.PutOptions{}))
	}
	must(e.admin.SetQuota(ctx, "initech", "compute.volumes", client.SetQuotaRequest{Hard: hard(1)}))
	for name, req := range map[string]client.CreateTokenRequest{
		"service": {Role: "service", Name: "cp"},
		"acme":    {Role: "tenant", Tenant: "acme", Name: "acme-user"},
		"globex":  {Role: "tenant", Tenant: "globex", Name: "globex-user"},
	} {
		tok, err := e.admin.CreateToken(ctx, req)
		must(tok, err)
		e.tokens[name] = tok.Secret
	}
	var err error
	e.req, err = client.New(ts.URL, client.WithToken(e.tokens["acme"])).CreateRequest(ctx, "acme",
		client.CreateRequestRequest{Resource: "dcs.instances", Value: hard(6), Reason: "launch"})
	must(e.req, err)
	native, err := api.New(api.Config{Engine: ts.Engine, Store: ts.Store, Sealer: ts.Sealer, Region: "local", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	u := ui.New(ui.Config{API: native.Handler(), Tokens: ts.Store,
		Catalog: ts.Engine.Catalog(), Logger: log, Now: e.clock.now})
	e.ui = httptest.NewServer(u)
	t.Cleanup(e.ui.Close)
	return e
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// signIn returns a browser signed in with the named token.
func (e *env) signIn(name string) *browser {
	e.t.Helper()
	b := e.browser()
	if res, _ := b.post("/ui/signin", url.Values{"token": {e.tokens[name]}, "csrf": {b.csrf("/ui/signin")}}); res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("signing in as %s: %s", name, res.Status)
	}
	return b
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.e.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return res, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.ui.URL+path, nil)
	return b.do(req)
}

// post sends a form as a browser would from the dashboard's own page.
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.ui.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.e.ui.URL)
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf opens a page and returns its forms' CSRF token.
func (b *browser) csrf(path string) string {
	b.e.t.Helper()
	res, body := b.get(path)
	m := csrfField.FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		b.e.t.Fatalf("GET %s: %s, no csrf field", path, res.Status)
	}
	return m[1]
}

func wantStatus(t *testing.T, what string, res *http.Response, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("%s: %s, want %d", what, res.Status, status)
	}
}

func wantRedirect(t *testing.T, what string, res *http.Response, to string) {
	t.Helper()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != to {
		t.Fatalf("%s: %s to %q, want 303 to %q", what, res.Status, res.Header.Get("Location"), to)
	}
}

func wantContains(t *testing.T, what, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Errorf("%s: the page lacks %q", what, p)
		}
	}
}

func (e *env) hard(tenant, resource string) int64 {
	e.t.Helper()
	q, err := e.admin.Quotas(context.Background(), tenant)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range q.Resources {
		if r.Resource == resource {
			return r.Hard
		}
	}
	e.t.Fatalf("no resource %s", resource)
	return 0
}

func TestSignIn(t *testing.T) {
	e := setup(t)
	t.Run("form", func(t *testing.T) {
		res, body := e.browser().get("/ui/signin")
		wantStatus(t, "GET /ui/signin", res, 200)
		wantContains(t, "sign-in", body, `<html lang="en">`, `<label for="token">`, `type="password"`)
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	})
	for role, home := range map[string]string{"admin": "/ui/tenants", "service": "/ui/tenants", "acme": "/ui/tenants/acme"} {
		t.Run(role, func(t *testing.T) {
			b := e.browser()
			res, _ := b.post("/ui/signin", url.Values{"token": {e.tokens[role]}, "csrf": {b.csrf("/ui/signin")}})
			wantRedirect(t, "sign-in", res, "/ui/")
			var c *http.Cookie
			for _, k := range res.Cookies() {
				if k.Name == ui.SessionCookie {
					c = k
				}
			}
			if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || strings.Contains(c.Value, e.tokens[role]) {
				t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, no token", c)
			}
			res, _ = b.get("/ui/")
			wantRedirect(t, "GET /ui/", res, home)
			res, _ = b.get(home)
			wantStatus(t, "GET "+home, res, 200)
		})
	}
	t.Run("bad token", func(t *testing.T) {
		b := e.browser()
		res, body := b.post("/ui/signin", url.Values{"token": {"bm9ib2R5Om5vdGhpbmc="}, "csrf": {b.csrf("/ui/signin")}})
		wantStatus(t, "sign-in with a bad token", res, http.StatusUnauthorized)
		wantContains(t, "sign-in with a bad token", body, "That token is not valid")
		for _, k := range res.Cookies() {
			if k.Name == ui.SessionCookie && k.MaxAge >= 0 {
				t.Fatal("a bad token got a session cookie")
			}
		}
		res, _ = b.get("/ui/tenants")
		wantRedirect(t, "after a bad sign-in", res, "/ui/signin")
	})
	t.Run("forged", func(t *testing.T) {
		b := e.browser()
		secret := b.csrf("/ui/signin")
		res, _ := b.post("/ui/signin", url.Values{"token": {e.tokens["admin"]}})
		wantStatus(t, "sign-in without the form's secret", res, http.StatusForbidden)
		req, _ := http.NewRequest("POST", e.ui.URL+"/ui/signin", strings.NewReader(url.Values{"token": {e.tokens["admin"]}, "csrf": {secret}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		res, _ = b.do(req)
		wantStatus(t, "sign-in from another site", res, http.StatusForbidden)
	})
}

func TestSignOut(t *testing.T) {
	e := setup(t)
	b := e.signIn("admin")
	u, _ := url.Parse(e.ui.URL + "/ui/")
	old := b.c.Jar.Cookies(u)
	res, _ := b.post("/ui/signout", url.Values{"csrf": {b.csrf("/ui/tenants")}})
	wantRedirect(t, "sign-out", res, "/ui/signin")
	res, _ = b.get("/ui/tenants")
	wantRedirect(t, "after sign-out", res, "/ui/signin")
	replay := e.browser() // the old cookie, kept by someone, no longer works
	replay.c.Jar.SetCookies(u, old)
	res, _ = replay.get("/ui/tenants")
	wantRedirect(t, "the old session cookie", res, "/ui/signin")
}

func TestSessionEnds(t *testing.T) {
	e := setup(t)
	t.Run("idle", func(t *testing.T) {
		b := e.signIn("admin")
		e.clock.advance(11 * time.Hour)
		res, _ := b.get("/ui/tenants")
		wantStatus(t, "after 11 h", res, 200)
		e.clock.advance(12*time.Hour + time.Minute)
		res, _ = b.get("/ui/tenants")
		wantRedirect(t, "after 12 h idle", res, "/ui/signin")
	})
	t.Run("revoked token", func(t *testing.T) {
		b := e.signIn("service")
		if err := e.admin.RevokeToken(context.Background(), "cp"); err != nil {
			t.Fatal(err)
		}
		res, _ := b.get("/ui/tenants")
		wantRedirect(t, "with a revoked token", res, "/ui/signin")
		res, _ = b.get("/ui/requests")
		wantRedirect(t, "the session is gone", res, "/ui/signin")
	})
	t.Run("signed out", func(t *testing.T) {
		for _, path := range []string{"/ui/", "/ui/tenants", "/ui/tenants/acme", "/ui/requests", "/ui/events"} {
			res, _ := e.browser().get(path)
			wantRedirect(t, "GET "+path, res, "/ui/signin")
		}
		res, _ := e.browser().get("/ui/events/stream")
		wantStatus(t, "the stream without a session", res, http.StatusUnauthorized)
	})
}

func TestTenantsPage(t *testing.T) {
	e := setup(t)
	b := e.signIn("service")
	res, body := b.get("/ui/tenants")
	wantStatus(t, "GET /ui/tenants", res, 200)
	i, a, g := strings.Index(body, `href="/ui/tenants/initech"`), strings.Index(body, `href="/ui/tenants/acme"`), strings.Index(body, `href="/ui/tenants/globex"`)
	if i < 0 || a < 0 || g < 0 || !(i < a && a < g) {
		t.Errorf("order: initech at %d, acme at %d, globex at %d; want over quota, then most used", i, a, g)
	}
	wantContains(t, "overview", body, `<tr class="row-over">`, `<tr class="row-warn">`, "near quota", "over quota",
		"compute.instances", "4 / 5 · 80 %", "over: compute.volumes")
	res, body = b.get("/ui/tenants?q=GLOB")
	wantStatus(t, "search", res, 200)
	if !strings.Contains(body, "/ui/tenants/globex") || strings.Contains(body, "/ui/tenants/acme") {
		t.Errorf("searching GLOB should list globex only")
	}
}

func TestTenantPage(t *testing.T) {
	e := setup(t)
	for _, who := range []string{"admin", "service", "acme"} {
		t.Run(who, func(t *testing.T) {
			res, body := e.signIn(who).get("/ui/tenants/acme")
			wantStatus(t, "GET /ui/tenants/acme", res, 200)
			wantContains(t, "tenant page", body, "<h2 id=\"quotas-h\">Quotas</h2>", "<h3>compute</h3>", "<h3>dcs</h3>",
				`<div class="bar warn">`, "4 / 5 · 80 %", "requestable 1–100", "warning thresholds 80 %, 100 %",
				"compute.instance", "memory_mb", "dcs.instances → 6", "launch", "vm-a", "disk-1",
				`<polyline class="used"`, "Usage over time", `aria-label="compute.instances over the last 24h`)
			forms := map[string]bool{"/ui/tenants/acme/requests": who != "service", "/ui/tenants/acme/quotas": who == "admin",
				"/ui/tenants/acme/limits": who == "admin", "/ui/tenants/acme/requests/" + e.req.ID + "/decide": who == "admin"}
			for action, want := range forms {
				if got := strings.Contains(body, `action="`+action+`"`); got != want {
					t.Errorf("form %s shown: %v, want %v", action, got, want)
				}
			}
		})
	}
	b := e.signIn("admin")
	t.Run("consumer filters", func(t *testing.T) {
		_, body := b.get("/ui/tenants/acme?kind=compute.volume")
		if !strings.Contains(body, "disk-1") || strings.Contains(body, `<th scope="row">vm-a`) {
			t.Error("kind=compute.volume should list disk-1 only")
		}
		_, body = b.get("/ui/tenants/acme?kind=compute.instance&state=stopped")
		if !strings.Contains(body, `<th scope="row">vm-c`) || strings.Contains(body, `<th scope="row">vm-a`) || strings.Contains(body, `<th scope="row">disk-1`) {
			t.Error("state=stopped should list vm-c only")
		}
		res, _ := b.get("/ui/tenants/acme?kind=nope")
		wantStatus(t, "an unknown kind", res, http.StatusBadRequest)
	})
	t.Run("chart ranges", func(t *testing.T) {
		for _, r := range []string{"7d", "30d"} {
			res, body := b.get("/ui/tenants/acme?range=" + r)
			wantStatus(t, r, res, 200)
			wantContains(t, r, body, "over the last "+r, `aria-current="true">last `+r)
		}
	})
	t.Run("missing tenant", func(t *testing.T) {
		res, _ := b.get("/ui/tenants/nobody")
		wantStatus(t, "an unknown tenant", res, http.StatusNotFound)
	})
}

func TestTenantIsolation(t *testing.T) {
	e := setup(t)
	b := e.signIn("globex")
	res, body := b.get("/ui/tenants/globex")
	wantStatus(t, "its own page", res, 200)
	if strings.Contains(body, "acme") || strings.Contains(body, "initech") {
		t.Error("globex's page names another tenant")
	}
	res, body = b.get("/ui/tenants/acme")
	wantStatus(t, "another tenant's page", res, http.StatusNotFound)
	if strings.Contains(body, "vm-a") {
		t.Error("the 404 page shows acme's consumers")
	}
	for _, path := range []string{"/ui/tenants", "/ui/requests", "/ui/events"} {
		res, _ := b.get(path)
		wantStatus(t, "operator page "+path, res, http.StatusForbidden)
	}
	res, _ = b.get("/ui/events/stream?tenant=acme")
	wantStatus(t, "another tenant's event stream", res, http.StatusNotFound)
	csrf := b.csrf("/ui/tenants/globex")
	res, _ = b.post("/ui/tenants/acme/requests", url.Values{"csrf": {csrf}, "resource": {"compute.instances"}, "value": {"50"}})
	wantStatus(t, "a request for another tenant", res, http.StatusNotFound)
	res, _ = b.post("/ui/tenants/globex/quotas", url.Values{"csrf": {csrf}, "resource": {"compute.instances"}, "hard": {"99"}})
	wantStatus(t, "a tenant setting its own quota", res, http.StatusForbidden)
	res, _ = b.post("/ui/tenants/acme/requests/"+e.req.ID+"/decide", url.Values{"csrf": {csrf}, "decision": {"approve"}})
	wantStatus(t, "a tenant approving another's request", res, http.StatusNotFound)
	if got := e.hard("acme", "compute.instances"); got != 5 {
		t.Errorf("acme's compute.instances = %d, want 5 unchanged", got)
	}
	if got := e.hard("globex", "compute.instances"); got != 10 {
		t.Errorf("globex's compute.instances = %d, want 10 unchanged", got)
	}
	if x, _ := e.admin.Request(context.Background(), "acme", e.req.ID); x.Status != "pending" {
		t.Errorf("acme's request is %s, want pending", x.Status)
	}
}

func TestRequestChange(t *testing.T) {
	e := setup(t)
	b := e.signIn("acme")
	csrf := b.csrf("/ui/tenants/acme")
	res, _ := b.post("/ui/tenants/acme/requests", url.Values{"csrf": {csrf}, "resource": {"dcs.ram_mb"}, "value": {"2048"},
		"reason": {"cache"}, "next": {"/ui/tenants/acme"}})
	wantRedirect(t, "a review request", res, "/ui/tenants/acme")
	_, body := b.get("/ui/tenants/acme")
	wantContains(t, "after the request", body, "Asked for dcs.ram_mb = 2,048; the request is pending.", "dcs.ram_mb → 2,048")
	res, _ = b.post("/ui/tenants/acme/requests", url.Values{"csrf": {csrf}, "resource": {"compute.instances"}, "value": {"8"}})
	wantRedirect(t, "an auto request", res, "/ui/tenants/acme")
	_, body = b.get("/ui/tenants/acme")
	wantContains(t, "after the auto request", body, "Approved at once: the hard quota of compute.instances is now 8.")
	if got := e.hard("acme", "compute.instances"); got != 8 {
		t.Errorf("compute.instances = %d, want 8", got)
	}
	for _, c := range []struct{ value, msg string }{{"1000", "requestable"}, {"lots", "must be a whole number"}} {
		res, _ = b.post("/ui/tenants/acme/requests", url.Values{"csrf": {csrf}, "resource": {"compute.instances"}, "value": {c.value}})
		wantRedirect(t, "a refused request", res, "/ui/tenants/acme")
		_, body = b.get("/ui/tenants/acme")
		wantContains(t, "a refused request", body, `class="flash error"`, c.msg)
	}
	if got := e.hard("acme", "compute.instances"); got != 8 {
		t.Errorf("compute.instances = %d after refusals, want 8", got)
	}
	s := e.signIn("service")
	res, _ = s.post("/ui/tenants/acme/requests", url.Values{"csrf": {s.csrf("/ui/tenants")}, "resource": {"compute.instances"}, "value": {"9"}})
	wantStatus(t, "a request by a service", res, http.StatusForbidden)
}

func TestDecide(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	s := e.signIn("service")
	res, body := s.get("/ui/requests")
	wantStatus(t, "requests as service", res, 200)
	wantContains(t, "requests as service", body, "Only an admin may decide.", "dcs.instances", "0 / 2")
	if strings.Contains(body, "/decide") {
		t.Error("a service sees decision forms")
	}
	res, _ = s.post("/ui/tenants/acme/requests/"+e.req.ID+"/decide", url.Values{"csrf": {s.csrf("/ui/requests")}, "decision": {"approve"}})
	wantStatus(t, "a service approving", res, http.StatusForbidden)

	b := e.signIn("admin")
	_, body = b.get("/ui/requests")
	wantContains(t, "requests as admin", body, `action="/ui/tenants/acme/requests/`+e.req.ID+`/decide"`, "launch")
	res, _ = b.post("/ui/tenants/acme/requests/"+e.req.ID+"/decide", url.Values{"csrf": {b.csrf("/ui/requests")},
		"decision": {"approve"}, "comment": {"ok for launch"}, "next": {"/ui/requests"}})
	wantRedirect(t, "approve", res, "/ui/requests")
	_, body = b.get("/ui/requests")
	wantContains(t, "after approving", body, "Approved dcs.instances of acme = 6.", "No request is waiting.", "ok for launch")
	if got := e.hard("acme", "dcs.instances"); got != 6 {
		t.Errorf("dcs.instances = %d, want 6", got)
	}
	x, err := client.New(e.srv.URL, client.WithToken(e.tokens["acme"])).CreateRequest(ctx, "acme",
		client.CreateRequestRequest{Resource: "dcs.instances", Value: func(n int64) *int64 { return &n }(9)})
	if err != nil {
		t.Fatal(err)
	}
	res, _ = b.post("/ui/tenants/acme/requests/"+x.ID+"/decide", url.Values{"csrf": {b.csrf("/ui/requests")}, "decision": {"deny"}, "comment": {"no"}})
	wantRedirect(t, "deny", res, "/ui/requests")
	if got, _ := e.admin.Request(ctx, "acme", x.ID); got.Status != "denied" || e.hard("acme", "dcs.instances") != 6 {
		t.Errorf("after deny: %s, hard %d; want denied, 6", got.Status, e.hard("acme", "dcs.instances"))
	}
	res, _ = b.post("/ui/tenants/acme/requests/"+x.ID+"/decide", url.Values{"csrf": {b.csrf("/ui/requests")}, "decision": {"approve"}})
	wantRedirect(t, "approving a denied request", res, "/ui/requests")
	_, body = b.get("/ui/requests")
	wantContains(t, "approving a denied request", body, `class="flash error"`)
}

func TestSetQuotaAndLimit(t *testing.T) {
	e := setup(t)
	b := e.signIn("admin")
	csrf := b.csrf("/ui/tenants/globex")
	res, _ := b.post("/ui/tenants/globex/quotas", url.Values{"csrf": {csrf}, "resource": {"compute.instances"}, "hard": {"42"},
		"min": {"2"}, "max": {"60"}})
	wantRedirect(t, "set quota", res, "/ui/tenants/globex")
	_, body := b.get("/ui/tenants/globex")
	wantContains(t, "after set quota", body, "The hard quota of compute.instances is now 42 (requestable 2–60).", "0 / 42", "requestable 2–60")
	res, _ = b.post("/ui/tenants/globex/limits", url.Values{"csrf": {csrf}, "limit": {"compute.instance/memory_mb"}, "min": {"32"}, "max": {"1024"}})
	wantRedirect(t, "set limit", res, "/ui/tenants/globex")
	_, body = b.get("/ui/tenants/globex")
	wantContains(t, "after set limit", body, "The limit compute.instance.memory_mb is now 32–1,024.")
	q, _ := e.admin.Quotas(context.Background(), "globex")
	for _, l := range q.Limits {
		if l.Kind == "compute.instance" && l.Limit == "memory_mb" && (l.Min != 32 || l.Max != 1024) {
			t.Errorf("memory_mb limit = %d–%d, want 32–1024", l.Min, l.Max)
		}
	}
	res, _ = b.post("/ui/tenants/globex/quotas", url.Values{"csrf": {csrf}, "resource": {"compute.instances"}, "hard": {"7"}, "min": {"3"}})
	wantRedirect(t, "half a range", res, "/ui/tenants/globex")
	_, body = b.get("/ui/tenants/globex")
	wantContains(t, "half a range", body, "The requestable maximum must be a whole number.")
	if got := e.hard("globex", "compute.instances"); got != 42 {
		t.Errorf("hard = %d, want 42", got)
	}
	s := e.signIn("service")
	res, _ = s.post("/ui/tenants/globex/quotas", url.Values{"csrf": {s.csrf("/ui/tenants")}, "resource": {"compute.instances"}, "hard": {"1"}})
	wantStatus(t, "a service setting a quota", res, http.StatusForbidden)
	res, _ = s.post("/ui/tenants/globex/limits", url.Values{"csrf": {s.csrf("/ui/tenants")}, "limit": {"compute.instance/memory_mb"}, "min": {"16"}, "max": {"16"}})
	wantStatus(t, "a service setting a limit", res, http.StatusForbidden)
	if got := e.hard("globex", "compute.instances"); got != 42 {
		t.Errorf("hard = %d after a service's attempt, want 42", got)
	}
}

// Every form refuses a POST without this session's CSRF token, or from
// another site, and changes nothing.
func TestCSRF(t *testing.T) {
	e := setup(t)
	b := e.signIn("admin")
	csrf := b.csrf("/ui/tenants/acme")
	forms := map[string]url.Values{
		"/ui/tenants/acme/requests":                         {"resource": {"compute.instances"}, "value": {"9"}},
		"/ui/tenants/acme/requests/" + e.req.ID + "/decide": {"decision": {"approve"}},
		"/ui/tenants/acme/quotas":                           {"resource": {"compute.instances"}, "hard": {"99"}},
		"/ui/tenants/acme/limits":                           {"limit": {"compute.instance/memory_mb"}, "min": {"16"}, "max": {"32"}},
		"/ui/signout":                                       {},
	}
	for path, form := range forms {
		for name, token := range map[string]string{"none": "", "wrong": csrf[:len(csrf)-1] + "!", "another session's": e.signIn("admin").csrf("/ui/tenants")} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if token != "" {
				f.Set("csrf", token)
			}
			res, body := b.post(path, f)
			wantStatus(t, path+" with "+name+" csrf", res, http.StatusForbidden)
			wantContains(t, path, body, "This form has expired or was sent from another site.")
		}
		f := url.Values{"csrf": {csrf}}
		for k, v := range form {
			f[k] = v
		}
		for _, hdr := range []string{"Origin", "Referer"} {
			req, _ := http.NewRequest("POST", e.ui.URL+path, strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(hdr, "https://evil.example/page")
			res, _ := b.do(req)
			wantStatus(t, path+" with a foreign "+hdr, res, http.StatusForbidden)
		}
	}
	if got := e.hard("acme", "compute.instances"); got != 5 {
		t.Errorf("compute.instances = %d, want 5", got)
	}
	q, _ := e.admin.Quotas(context.Background(), "acme")
	for _, l := range q.Limits {
		if l.Kind == "compute.instance" && l.Limit == "memory_mb" && l.Max != 2048 {
			t.Errorf("memory_mb max = %d, want 2048", l.Max)
		}
	}
	if x, _ := e.admin.Request(context.Background(), "acme", e.req.ID); x.Status != "pending" {
		t.Errorf("request %s, want pending", x.Status)
	}
	res, _ := b.get("/ui/tenants")
	wantStatus(t, "still signed in", res, 200)
}

func TestEventsPage(t *testing.T) {
	e := setup(t)
	b := e.signIn("admin")
	res, body := b.get("/ui/events")
	wantStatus(t, "GET /ui/events", res, 200)
	wantContains(t, "events", body, "quota.set", "consumer.put", "request.create", `data-stream="/ui/events/stream?tenant=&amp;type=&amp;after=`,
		`<script src="/ui/static/events.js"></script>`, `<label for="f-type">`)
	_, body = b.get("/ui/events?tenant=initech&type=quota")
	wantContains(t, "filtered", body, `<td data-label="Type">quota.set</td>`, `tenant=initech&amp;type=quota`)
	if strings.Contains(body, `<td data-label="Type">consumer.put</td>`) || strings.Contains(body, `<a href="/ui/tenants/acme">`) {
		t.Error("the filtered log shows other types or tenants")
	}
	res, _ = b.get("/ui/events?tenant=bad%20id")
	wantStatus(t, "a malformed tenant", res, http.StatusBadRequest)
}

func TestLatestEvents(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	all, err := e.admin.Events(ctx, client.EventQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 10, 1000} {
		got, last, err := ui.LatestEvents(ctx, e.admin, "", func(client.Event) bool { return true }, n)
		if err != nil {
			t.Fatal(err)
		}
		if last != all.Next || len(got) != min(n, len(all.Events)) || got[0].Seq != last {
			t.Fatalf("n=%d: %d events, last %d; want %d, last %d", n, len(got), last, min(n, len(all.Events)), all.Next)
		}
		for i := range got {
			if want := all.Events[len(all.Events)-1-i]; got[i].Seq != want.Seq {
				t.Fatalf("n=%d: event %d is #%d, want #%d", n, i, got[i].Seq, want.Seq)
			}
		}
	}
	got, _, _ := ui.LatestEvents(ctx, e.admin, "globex", func(e client.Event) bool { return true }, 100)
	for _, ev := range got {
		if ev.Tenant != "globex" {
			t.Errorf("tenant filter: event of %q", ev.Tenant)
		}
	}
	if len(got) == 0 {
		t.Error("no globex events")
	}
}

func TestEventStream(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := e.signIn("admin")
	last, err := e.admin.Events(ctx, client.EventQuery{After: 0, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ui.URL+"/ui/events/stream?type=quota.set&after="+
		strconv.FormatInt(last.Next, 10), nil)
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s %s", res.Status, res.Header.Get("Content-Type"))
	}
	hard := int64(77)
	if _, err := e.admin.PutConsumer(ctx, "globex", "vm-x", client.PutConsumerRequest{Kind: "compute.instance",
		State: "running", Attributes: map[string]int64{"memory_mb": 64}}, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetQuota(ctx, "globex", "compute.instances", client.SetQuotaRequest{Hard: &hard}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data: ") {
			if !strings.Contains(line, `"type":"quota.set"`) || !strings.Contains(line, `"tenant":"globex"`) || !strings.Contains(line, `77`) {
				t.Fatalf("first relayed event: %s; want globex's quota.set (the consumer.put is filtered out)", line)
			}
			return
		}
	}
	t.Fatalf("the stream ended: %v", sc.Err())
}

func TestStaticAndHeaders(t *testing.T) {
	e := setup(t)
	b := e.browser()
	for path, ctype := range map[string]string{"/ui/static/style.css": "text/css", "/ui/static/events.js": "text/javascript", "/ui/static/favicon.svg": "image/svg+xml"} {
		res, _ := b.get(path)
		wantStatus(t, path, res, 200)
		if !strings.HasPrefix(res.Header.Get("Content-Type"), ctype) {
			t.Errorf("%s: Content-Type %q", path, res.Header.Get("Content-Type"))
		}
	}
	res, _ := e.signIn("admin").get("/ui/nowhere")
	wantStatus(t, "an unknown page", res, http.StatusNotFound)
	// Nothing the dashboard serves may reach out to another host.
	external := regexp.MustCompile(`(?i)(src|href|url)\s*[=(]\s*["']?(https?:)?//`)
	for _, dir := range []string{"templates", "static"} {
		files, _ := ui.Assets.ReadDir(dir)
		for _, f := range files {
			data, _ := ui.Assets.ReadFile(dir + "/" + f.Name())
			if m := external.Find(data); m != nil {
				t.Errorf("%s/%s refers to another host: %s", dir, f.Name(), m)
			}
		}
	}
}
