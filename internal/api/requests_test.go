package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/testserver"
)

type lifecycle struct {
	srv           *testserver.Server
	admin, tenant *client.Client
	tenantToken   string
	c             caller
}

func newLifecycle(t *testing.T) *lifecycle {
	t.Helper()
	srv := testserver.Start(t)
	l := &lifecycle{srv: srv, admin: client.New(srv.URL, client.WithToken(srv.AdminToken)), c: caller{t, srv.URL}}
	ctx := t.Context()
	for _, id := range []string{"acme", "globex"} {
		if _, err := l.admin.CreateTenant(ctx, client.CreateTenantRequest{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := l.admin.CreateToken(ctx, client.CreateTokenRequest{Name: "acme-console", Role: "tenant", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	l.tenantToken = tok.Secret
	l.tenant = client.New(srv.URL, client.WithToken(tok.Secret))
	return l
}

func TestRequestsOverHTTP(t *testing.T) {
	l := newLifecycle(t)
	ctx := t.Context()
	v := func(n int64) *int64 { return &n }

	// A tenant asks for its own tenant; compute is auto, DCS is reviewed.
	r, err := l.tenant.CreateRequest(ctx, "acme", client.CreateRequestRequest{Resource: "compute.instances", Value: v(50), Reason: "launch"})
	if err != nil || r.Status != "approved" || len(r.History) != 2 {
		t.Fatalf("auto request: %+v %v", r, err)
	}
	q, _ := l.admin.Quotas(ctx, "acme")
	if q.Resources[0].Hard != 50 {
		t.Fatalf("hard after an auto request: %d", q.Resources[0].Hard)
	}
	p, err := l.tenant.CreateRequest(ctx, "acme", client.CreateRequestRequest{Resource: "dcs.ram_mb", Value: v(409600)})
	if err != nil || p.Status != "pending" {
		t.Fatalf("review request: %+v %v", p, err)
	}
	// The tenant may not decide, nor ask for another tenant.
	if _, err := l.tenant.ApproveRequest(ctx, "acme", p.ID, ""); !client.IsCode(err, "forbidden") {
		t.Fatalf("tenant approving: %v", err)
	}
	if _, err := l.tenant.CreateRequest(ctx, "globex", client.CreateRequestRequest{Resource: "dcs.ram_mb", Value: v(2048)}); !client.IsCode(err, "not_found") {
		t.Fatalf("tenant asking for another: %v", err)
	}
	pending, err := l.admin.Requests(ctx, "", "pending")
	if err != nil || len(pending) != 1 || pending[0].ID != p.ID {
		t.Fatalf("pending: %+v %v", pending, err)
	}
	a, err := l.admin.ApproveRequest(ctx, "acme", p.ID, "fine")
	if err != nil || a.Status != "approved" || a.History[len(a.History)-1].Comment != "fine" {
		t.Fatalf("approve: %+v %v", a, err)
	}
	for _, tc := range []struct {
		body string
		code string
	}{
		{`{"resource":"compute.instances","value":1000}`, "outside_requestable_range"},
		{`{"resource":"compute.instances","value":-1}`, "invalid_request"},
		{`{"resource":"compute.instances","value":1.5}`, "invalid_request"},
		{`{"resource":"compute.instances","value":"10"}`, "invalid_request"},
		{`{"resource":"compute.instances"}`, "invalid_request"},
		{`{"resource":"compute.nope","value":3}`, "invalid_request"},
		{`{"resource":"compute.instances","value":3,"extra":1}`, "invalid_request"},
		{`{"resource":"compute.instances","value":99999999999999999999}`, "invalid_request"},
	} {
		ans := l.c.do("POST", "/api/v1/tenants/acme/requests", l.tenantToken, tc.body)
		if p := ans.problem(t); p.Code != tc.code {
			t.Errorf("%s: %d %s, want %s", tc.body, ans.status, p.Code, tc.code)
		}
	}
	l.admin.PutConsumer(ctx, "acme", "vm", client.PutConsumerRequest{Kind: "compute.instance", State: "stopped", Attributes: map[string]int64{"memory_mb": 16}}, client.PutOptions{})
	l.admin.SetQuota(ctx, "acme", "compute.instances", client.SetQuotaRequest{Hard: v(50)})
	if _, err := l.tenant.CreateRequest(ctx, "acme", client.CreateRequestRequest{Resource: "compute.instances", Value: v(0)}); !client.IsCode(err, "outside_requestable_range") {
		t.Fatalf("value 0 below the range: %v", err)
	}
	if _, err := l.admin.DenyRequest(ctx, "acme", "req-0000", ""); !client.IsCode(err, "not_found") {
		t.Fatalf("deny unknown: %v", err)
	}
	if ans := l.c.do("GET", "/api/v1/tenants/acme/requests?status=maybe", l.tenantToken, nil); ans.status != 400 {
		t.Fatalf("bad status filter: %d", ans.status)
	}
}

func TestReconcileAndOverQuota(t *testing.T) {
	l := newLifecycle(t)
	ctx := t.Context()
	hard := int64(1)
	l.admin.SetQuota(ctx, "acme", "compute.instances", client.SetQuotaRequest{Hard: &hard})
	inv := client.Inventory{Kinds: []string{"compute.instance"}, Consumers: []client.InventoryConsumer{
		{Consumer: "a", Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 64}},
		{Consumer: "b", Kind: "compute.instance", State: "stopped", Attributes: map[string]int64{"memory_mb": 64}},
	}}
	dry, err := l.admin.Reconcile(ctx, "acme", inv, true)
	if err != nil || !dry.DryRun || len(dry.Created) != 2 || dry.Usage["compute.instances"] != 2 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if over, _ := l.admin.OverQuota(ctx); len(over) != 0 {
		t.Fatalf("a dry run made a tenant over quota: %+v", over)
	}
	rec, err := l.admin.Reconcile(ctx, "acme", inv, false)
	if err != nil || len(rec.Created) != 2 || len(rec.Deleted) != 0 {
		t.Fatalf("reconcile: %+v %v", rec, err)
	}
	over, err := l.admin.OverQuota(ctx)
	if err != nil || len(over) != 1 || over[0].Tenant != "acme" || over[0].Resources[0] != (client.OverQuotaResource{Resource: "compute.instances", Used: 2, Hard: 1, Over: 1}) {
		t.Fatalf("over quota: %+v %v", over, err)
	}
	u, err := l.admin.Utilisation(ctx, "", 0)
	if err != nil || u.Total != 2 || u.Tenants[0].Tenant.ID != "acme" || u.Tenants[0].Worst.Resource != "compute.instances" ||
		u.Tenants[0].Over[0] != "compute.instances" || len(u.Tenants[0].Thresholds) != 2 {
		t.Fatalf("utilisation: %+v %v", u, err)
	}
	if u, _ := l.admin.Utilisation(ctx, "GLOB", 0); u.Total != 1 || u.Tenants[0].Tenant.ID != "globex" {
		t.Fatalf("utilisation search: %+v", u)
	}
	if u, _ := l.admin.Utilisation(ctx, "", 1); u.Total != 2 || len(u.Tenants) != 1 {
		t.Fatalf("utilisation limit: %+v", u)
	}
	if _, err := l.tenant.Utilisation(ctx, "", 0); !client.IsCode(err, "forbidden") {
		t.Fatalf("a tenant ranking everyone: %v", err)
	}
	if _, err := l.tenant.Reconcile(ctx, "acme", inv, false); !client.IsCode(err, "forbidden") {
		t.Fatalf("a tenant reconciling: %v", err)
	}
	for _, body := range []string{
		`{"kinds":[],"consumers":[]}`,
		`{"kinds":["compute.nope"],"consumers":[]}`,
		`{"kinds":["compute.instance"],"consumers":[{"consumer":"x","kind":"compute.volume","attributes":{"size_mb":2}}]}`,
		`{"kinds":["compute.instance"],"consumers":[{"consumer":"x","kind":"compute.instance","attributes":{"memory_mb":16}},{"consumer":"x","kind":"compute.instance","attributes":{"memory_mb":16}}]}`,
		`{"kinds":["compute.instance"],"consumers":[{"consumer":"../x","kind":"compute.instance","attributes":{"memory_mb":16}}]}`,
		`{"kinds":["compute.instance"],"consumers":[{"consumer":"x","kind":"compute.instance","attributes":{"memory_mb":-16}}]}`,
	} {
		if ans := l.c.do("PUT", "/api/v1/tenants/acme/inventory", l.srv.AdminToken, body); ans.status != 400 {
			t.Errorf("%s: %d %s", body, ans.status, ans.body)
		}
	}
	if q, _ := l.admin.Consumers(ctx, "acme", client.ConsumerQuery{}); len(q.Consumers) != 2 {
		t.Fatalf("bad inventories changed something: %d consumers", len(q.Consumers))
	}
}

func TestUsageAtAPastMoment(t *testing.T) {
	l := newLifecycle(t)
	ctx := t.Context()
	put := func(id string) {
		t.Helper()
		if _, err := l.admin.PutConsumer(ctx, "acme", id, client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 10}}, client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("v1")
	put("v2")
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	put("v3")
	hard := int64(7)
	l.admin.SetQuota(ctx, "acme", "compute.volumes", client.SetQuotaRequest{Hard: &hard})
	past, err := l.tenant.UsageAt(ctx, "acme", mid)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := l.tenant.UsageAt(ctx, "acme", time.Now())
	find := func(u *client.UsageAt, res string) client.UsageResource {
		t.Helper()
		for _, r := range u.Resources {
			if r.Resource == res {
				return r
			}
		}
		t.Fatalf("%s missing", res)
		return client.UsageResource{}
	}
	if r := find(past, "compute.volumes"); r.Used != 2 || r.Hard != 10 {
		t.Errorf("at the midpoint: %+v, want 2 of 10", r)
	}
	if r := find(now, "compute.total_volume_mb"); r.Used != 30 {
		t.Errorf("now: %+v, want 30", r)
	}
	if r := find(now, "compute.volumes"); r.Hard != 7 {
		t.Errorf("now: %+v, want hard 7", r)
	}
	if ans := l.c.do("GET", "/api/v1/tenants/acme/usage?at=yesterday", l.tenantToken, nil); ans.status != 400 {
		t.Errorf("bad at: %d", ans.status)
	}
	// The same answers from one pass: a history whose moments straddle the changes.
	h, err := l.tenant.UsageHistory(ctx, "acme", mid.Add(-time.Hour), time.Now().Add(time.Millisecond), 3)
	if err != nil || len(h.Points) != 3 {
		t.Fatalf("history: %+v %v", h, err)
	}
	if r := find(&h.Points[0], "compute.volumes"); r.Used != 0 || r.Hard != 10 {
		t.Errorf("an hour before: %+v, want 0 of 10", r)
	}
	if r := find(&h.Points[2], "compute.volumes"); r.Used != 3 || r.Hard != 7 {
		t.Errorf("at the end of the history: %+v, want 3 of 7", r)
	}
	for _, q := range []string{"", "?from=2026-01-01T00:00:00Z", "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
		"?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&points=1", "?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&points=501", "?from=x&to=y"} {
		if ans := l.c.do("GET", "/api/v1/tenants/acme/usage/history"+q, l.tenantToken, nil); ans.status != 400 {
			t.Errorf("history%s: %d", q, ans.status)
		}
	}
	if ans := l.c.do("GET", "/api/v1/tenants/globex/usage", l.tenantToken, nil); ans.status != 404 {
		t.Errorf("another tenant's usage: %d", ans.status)
	}
}

// sse reads a stream's events until n arrived, then drops the connection.
func sse(t *testing.T, url, token, lastID string, n int) []client.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var out []client.Event
	sc := bufio.NewScanner(resp.Body)
	var id string
	for len(out) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			var e client.Event
			if err := json.Unmarshal([]byte(line[6:]), &e); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(e.Seq) != id {
				t.Fatalf("id %s for event %d", id, e.Seq)
			}
			out = append(out, e)
		}
	}
	if len(out) < n {
		t.Fatalf("the stream ended after %d of %d events: %v", len(out), n, sc.Err())
	}
	return out
}

func TestEventStreamResumesWithoutGapsOrDuplicates(t *testing.T) {
	l := newLifecycle(t)
	ctx := t.Context()
	put := func(tenant, id string) {
		t.Helper()
		if _, err := l.admin.PutConsumer(ctx, tenant, id, client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 2}}, client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := l.admin.Events(ctx, client.EventQuery{Limit: 1000})
	start := len(all.Events)
	put("acme", "v1")
	put("globex", "g1")

	seen := map[int64]int{}
	first := sse(t, l.srv.URL+"/api/v1/events/stream", l.srv.AdminToken, "", start+1)
	for _, e := range first {
		seen[e.Seq]++
	}
	// Disconnected; more happens, some while a second reader waits live.
	put("acme", "v2")
	done := make(chan []client.Event)
	go func() {
		done <- sse(t, l.srv.URL+"/api/v1/events/stream", l.srv.AdminToken, fmt.Sprint(first[len(first)-1].Seq), 4)
	}()
	time.Sleep(50 * time.Millisecond)
	put("acme", "v3")
	put("globex", "g2")
	for _, e := range <-done {
		seen[e.Seq]++
	}
	final, _ := l.admin.Events(ctx, client.EventQuery{Limit: 1000})
	for _, e := range final.Events {
		if seen[e.Seq] != 1 {
			t.Errorf("event %d (%s) seen %d times", e.Seq, e.Type, seen[e.Seq])
		}
	}
	if len(seen) != len(final.Events) {
		t.Errorf("%d distinct events streamed, %d in the ledger", len(seen), len(final.Events))
	}

	// A tenant's stream carries only its own events.
	for _, e := range sse(t, l.srv.URL+"/api/v1/events/stream", l.tenantToken, "", 3) {
		if e.Tenant != "acme" {
			t.Errorf("acme's stream carried %s's event %d", e.Tenant, e.Seq)
		}
	}
	if ans := l.c.do("GET", "/api/v1/events/stream?tenant=globex", l.tenantToken, nil); ans.status != 404 {
		t.Errorf("a tenant asking for another's stream: %d", ans.status)
	}
	for _, id := range []string{"x", "-1", "1e3", "07"} {
		if ans := l.c.do("GET", "/api/v1/events/stream", l.srv.AdminToken, nil, "Last-Event-ID", id); ans.status != 400 {
			t.Errorf("Last-Event-ID %q: %d", id, ans.status)
		}
	}

	// The Go client follows the stream and resumes by itself.
	got := make(chan client.Event, 100)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go l.tenant.StreamEvents(sctx, "", first[len(first)-1].Seq, func(e client.Event) error { got <- e; return nil })
	put("acme", "v4")
	deadline := time.After(10 * time.Second)
	for want := 3; want > 0; {
		select {
		case e := <-got:
			if e.Tenant == "acme" && e.Type == "consumer.put" {
				want--
			}
		case <-deadline:
			t.Fatal("the client's stream did not deliver v2, v3 and v4")
		}
	}
}

func TestWebhookEndpoints(t *testing.T) {
	l := newLifecycle(t)
	ctx := t.Context()
	h, err := l.admin.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "https://hooks.example.com/allot", Secret: "0123456789abcdef"})
	if err != nil || h.Events[0] != "quota.threshold" {
		t.Fatalf("create: %+v %v", h, err)
	}
	if hs, _ := l.admin.Webhooks(ctx); len(hs) != 1 || hs[0].ID != h.ID {
		t.Fatalf("list: %+v", hs)
	}
	for _, body := range []string{
		`{"url":"ftp://x/y","secret":"0123456789abcdef"}`,
		`{"url":"/relative","secret":"0123456789abcdef"}`,
		`{"url":"http://user:pw@x/y","secret":"0123456789abcdef"}`,
		`{"url":"http://x/y","secret":"short"}`,
		`{"url":"http://x/y","secret":"0123456789abcdef","events":["consumer.nope"]}`,
		`{"url":"http://x/y","secret":"0123456789abcdef","tenant":"../etc"}`,
	} {
		if ans := l.c.do("POST", "/api/v1/webhooks", l.srv.AdminToken, body); ans.status != 400 {
			t.Errorf("%s: %d %s", body, ans.status, ans.body)
		}
	}
	if ans := l.c.do("POST", "/api/v1/webhooks", l.srv.AdminToken, `{"url":"http://x/y","secret":"0123456789abcdef","tenant":"nobody"}`); ans.status != 404 {
		t.Errorf("webhook for an unknown tenant: %d", ans.status)
	}
	if _, err := l.tenant.Webhooks(ctx); !client.IsCode(err, "forbidden") {
		t.Errorf("a tenant listing webhooks: %v", err)
	}
	if err := l.admin.DeleteWebhook(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if err := l.admin.DeleteWebhook(ctx, h.ID); !client.IsCode(err, "not_found") {
		t.Fatalf("delete twice: %v", err)
	}
	if ths, err := l.admin.SetThresholds(ctx, "acme", []int64{50, 90}); err != nil || len(ths) != 2 {
		t.Fatalf("thresholds: %v %v", ths, err)
	}
	if ths, _ := l.tenant.Thresholds(ctx, "acme"); len(ths) != 2 || ths[0] != 50 {
		t.Fatalf("thresholds read back: %v", ths)
	}
	if ths, _ := l.admin.SetThresholds(ctx, "acme", nil); len(ths) != 2 || ths[0] != 80 {
		t.Fatalf("thresholds reset to the catalog's: %v", ths)
	}
	for _, body := range []string{`{"thresholds":[90,80]}`, `{"thresholds":[0]}`, `{"thresholds":[5000]}`, `{"thresholds":"80"}`} {
		if ans := l.c.do("PUT", "/api/v1/tenants/acme/thresholds", l.srv.AdminToken, body); ans.status != 400 {
			t.Errorf("%s: %d", body, ans.status)
		}
	}
}

func TestTenantUpdate(t *testing.T) {
	l := newLifecycle(t)
	ctx := t.Context()
	str := func(s string) *string { return &s }
	before := time.Now()
	time.Sleep(20 * time.Millisecond)
	tn, err := l.admin.UpdateTenant(ctx, "acme", client.UpdateTenantRequest{Name: str("Acme Corp"), Plan: str("free")})
	if err != nil || tn.Name != "Acme Corp" || tn.Plan != "free" {
		t.Fatalf("update: %+v %v", tn, err)
	}
	q, _ := l.admin.Quotas(ctx, "acme")
	if q.Resources[0].Hard != 2 {
		t.Fatalf("hard after moving to free: %d", q.Resources[0].Hard)
	}
	// The past keeps the plan it had.
	past, err := l.admin.UsageAt(ctx, "acme", before)
	if err != nil || past.Resources[0].Hard != 10 {
		t.Fatalf("usage before the change: %+v %v", past, err)
	}
	if tn, _ := l.admin.UpdateTenant(ctx, "acme", client.UpdateTenantRequest{Plan: str("")}); tn.Plan != "" {
		t.Fatalf("back to no plan: %+v", tn)
	}
	if _, err := l.tenant.UpdateTenant(ctx, "acme", client.UpdateTenantRequest{Plan: str("pro")}); !client.IsCode(err, "forbidden") {
		t.Fatalf("a tenant changing its own plan: %v", err)
	}
	for _, body := range []string{`{"plan":"gold"}`, `{"name":""}`, `{"plan":7}`, `{"owner":"x"}`, `{"name":"` + strings.Repeat("n", 300) + `"}`} {
		if a := l.c.do("PATCH", "/api/v1/tenants/acme", l.srv.AdminToken, body); a.status != 400 {
			t.Errorf("%s: %d %s", body, a.status, a.body)
		}
	}
	if a := l.c.do("PATCH", "/api/v1/tenants/nobody", l.srv.AdminToken, `{"plan":"free"}`); a.status != 404 {
		t.Errorf("an unknown tenant: %d", a.status)
	}
}
