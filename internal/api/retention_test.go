package api_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/ledger"
	"github.com/allot-dev/allot/internal/testserver"
)

// TestReadsAfterPruning: once the ledger is pruned, a read that names a
// position or a time pruning has passed gets a 410 with a stable code and
// the oldest position or time kept; a read that names none starts at the
// oldest kept; audit events kept below the horizon can be read on purpose.
func TestReadsAfterPruning(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	srv := testserver.Start(t, testserver.Options{Now: clock})
	admin := client.New(srv.URL, client.WithToken(srv.AdminToken))
	ctx := t.Context()
	if _, err := admin.CreateTenant(ctx, client.CreateTenantRequest{ID: "acme", Plan: "pro"}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, client.CreateTokenRequest{Name: "acme-console", Role: "tenant", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := ledger.New(ledger.Config{Store: srv.Store, Logger: slog.New(slog.DiscardHandler), Now: clock, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := caller{t, srv.URL}
	start := clock()
	for i := range 12 { // two hours
		body := fmt.Sprintf(`{"kind":"compute.volume","attributes":{"size_mb":%d}}`, 2+i)
		if a := c.do("PUT", fmt.Sprintf("/api/v1/tenants/acme/consumers/v%d", i%3), srv.AdminToken, body); a.status >= 300 {
			t.Fatalf("put: %d %s", a.status, a.body)
		}
		if _, err := k.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		advance(10 * time.Minute)
	}
	for range 20 {
		if err := k.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h, err := srv.Store.Horizon(ctx)
	if err != nil || h.Seq == 0 {
		t.Fatalf("horizon %+v %v", h, err)
	}

	// A position pruning has passed: 410, naming where to read on.
	a := c.do("GET", "/api/v1/events?after=0", srv.AdminToken, nil)
	if p := a.problem(t); a.status != 410 || p.Code != "events_pruned" {
		t.Fatalf("events after 0: %d %+v", a.status, p)
	}
	a = c.do("GET", "/api/v1/events/stream", srv.AdminToken, nil, "Last-Event-ID", "1")
	if p := a.problem(t); a.status != 410 || p.Code != "events_pruned" {
		t.Fatalf("stream resuming from 1: %d %+v", a.status, p)
	}
	// No position: from the oldest kept, for operators and tenants.
	for _, token := range []string{srv.AdminToken, tok.Secret} {
		a = c.do("GET", "/api/v1/events?limit=1000", token, nil)
		var page client.EventList
		if a.status != 200 || json.Unmarshal(a.body, &page) != nil || len(page.Events) == 0 {
			t.Fatalf("events from the oldest kept: %d %s", a.status, a.body)
		}
		if page.Events[0].Seq <= h.Seq {
			t.Fatalf("events from the oldest kept start at %d, at or before the horizon %d", page.Events[0].Seq, h.Seq)
		}
	}
	// Audit events kept below the horizon, on purpose.
	a = c.do("GET", "/api/v1/events?after=0&audit=true&limit=1000", srv.AdminToken, nil)
	var page client.EventList
	if a.status != 200 || json.Unmarshal(a.body, &page) != nil {
		t.Fatalf("audit events: %d %s", a.status, a.body)
	}
	if len(page.Events) < 2 || page.Events[1].Type != "tenant.create" {
		t.Fatalf("audit events from the start: %d, want the admin token's and the tenant's creation first", len(page.Events))
	}
	for _, e := range page.Events {
		if e.Seq <= h.Seq && e.Type == "consumer.put" {
			t.Fatalf("a consumer event below the horizon survived: %+v", e)
		}
	}

	// Usage at a time before the horizon: 410 naming the earliest time.
	before := start.Add(5 * time.Minute).Format(time.RFC3339)
	a = c.do("GET", "/api/v1/tenants/acme/usage?at="+url.QueryEscape(before), tok.Secret, nil)
	if p := a.problem(t); a.status != 410 || p.Code != "before_retention" {
		t.Fatalf("usage before the horizon: %d %+v", a.status, p)
	}
	a = c.do("GET", "/api/v1/tenants/acme/usage/history?points=10&from="+url.QueryEscape(before)+"&to="+url.QueryEscape(clock().Format(time.RFC3339)), tok.Secret, nil)
	if p := a.problem(t); a.status != 410 || p.Code != "before_retention" {
		t.Fatalf("history from before the horizon: %d %+v", a.status, p)
	}
	// After it: answered, and the same as the live usage at the end.
	u, err := admin.UsageAt(ctx, "acme", h.Time.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	live, err := admin.UsageAt(ctx, "acme", clock())
	// At 09:00:01 the volumes were those of puts 4, 5 and 6 (6+7+8 MB);
	// now, of puts 9, 10 and 11.
	if err != nil || u.Resources[7].Resource != "compute.total_volume_mb" || u.Resources[7].Used != 21 || live.Resources[7].Used != 36 {
		t.Fatalf("usage at the horizon %+v, now %+v, %v", u, live, err)
	}
}
