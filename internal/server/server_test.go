package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/testserver"
)

// scrape reads /metrics into "name{labels}" → value, labels as exposed.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsMoveWithClaims(t *testing.T) {
	srv := testserver.Start(t)
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	ctx := t.Context()
	if _, err := c.CreateTenant(ctx, client.CreateTenantRequest{ID: "acme", Name: "Acme", Plan: "free"}); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, srv.URL)

	volume := func(id string, size int64) error {
		_, err := c.PutConsumer(ctx, "acme", id, client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": size}}, client.PutOptions{})
		return err
	}
	// The free plan allows 2 volumes: two admitted, a third refused, one
	// refused for its size, one refused for a stale generation.
	for _, id := range []string{"v1", "v2"} {
		if err := volume(id, 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := volume("v3", 10); !client.IsCode(err, "quota_exceeded") {
		t.Fatalf("third volume: %v", err)
	}
	if err := volume("v1", 100000); !client.IsCode(err, "limit_violation") {
		t.Fatalf("huge volume: %v", err)
	}
	_, err := c.PutConsumer(ctx, "acme", "v1", client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 11}}, client.PutOptions{IfMatch: 99})
	if !client.IsCode(err, "generation_mismatch") {
		t.Fatalf("stale generation: %v", err)
	}

	after := scrape(t, srv.URL)
	moved := func(series string) float64 { return after[series] - before[series] }
	for series, want := range map[string]float64{
		`allot_claims_total{op="put",result="admitted"}`:                                                                 2,
		`allot_claims_total{op="put",result="quota_exceeded"}`:                                                           1,
		`allot_claims_total{op="put",result="limit_violation"}`:                                                          1,
		`allot_claims_total{op="put",result="generation_mismatch"}`:                                                      1,
		`allot_http_requests_total{method="PUT",route="PUT /api/v1/tenants/{tenant}/consumers/{consumer}",status="201"}`: 2,
		`allot_http_requests_total{method="PUT",route="PUT /api/v1/tenants/{tenant}/consumers/{consumer}",status="409"}`: 1,
		`allot_http_requests_total{method="PUT",route="PUT /api/v1/tenants/{tenant}/consumers/{consumer}",status="422"}`: 1,
		`allot_http_requests_total{method="PUT",route="PUT /api/v1/tenants/{tenant}/consumers/{consumer}",status="412"}`: 1,
	} {
		if got := moved(series); got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
	// Every put was its own commit here (they ran one after another), plus
	// the tenant's creation before the first scrape.
	if got := moved("allot_commit_batch_size_count"); got != 5 {
		t.Errorf("allot_commit_batch_size_count moved by %v, want 5", got)
	}
	if got := moved("allot_commit_duration_seconds_count"); got != 5 {
		t.Errorf("allot_commit_duration_seconds_count moved by %v, want 5", got)
	}
	for _, name := range []string{"allot_queue_depth", "allot_reservations_expired_total", `allot_http_request_duration_seconds_count{method="PUT",route="PUT /api/v1/tenants/{tenant}/consumers/{consumer}"}`} {
		if _, ok := after[name]; !ok {
			t.Errorf("%s is not exposed", name)
		}
	}
	for series := range after {
		if strings.Contains(series, `tenant="`) {
			t.Errorf("per-tenant series without the opt-in: %s", series)
		}
	}
}

func TestStatusCodesOfRefusalsInMetrics(t *testing.T) {
	srv := testserver.Start(t)
	resp, err := http.Get(srv.URL + "/api/v1/tenants/nobody")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m := scrape(t, srv.URL)
	if got := m[`allot_http_requests_total{method="GET",route="GET /api/v1/tenants/{tenant}",status="401"}`]; got != 1 {
		t.Errorf("unauthenticated request counted %v times, want 1", got)
	}
}

func TestPerTenantMetricsAreOptIn(t *testing.T) {
	srv := testserver.Start(t)
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	if _, err := c.CreateTenant(t.Context(), client.CreateTenantRequest{ID: "acme", Name: "Acme", Plan: "free"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutConsumer(t.Context(), "acme", "v1", client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 10}}, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Metrics.WatchTenants(srv.Engine, srv.Engine.Catalog())
	m := scrape(t, srv.URL)
	if got := m[`allot_tenant_usage{resource="compute.total_volume_mb",tenant="acme"}`]; got != 10 {
		t.Errorf("usage gauge = %v, want 10", got)
	}
	if got := m[`allot_tenant_hard{resource="compute.volumes",tenant="acme"}`]; got != 2 {
		t.Errorf("hard gauge = %v, want 2", got)
	}
}

// downStore is a store whose database cannot be reached.
type downStore struct{ quota.Store }

func (downStore) Ping(context.Context) error { return errors.New("connection refused") }

func TestHealthAndReadiness(t *testing.T) {
	srv := testserver.Start(t)
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// No token needed for either.
	if code, body := get(srv.URL + "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(srv.URL + "/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}

	down := testserver.Start(t, testserver.Options{Wrap: func(st quota.Store) quota.Store { return downStore{st} }})
	if code, _ := get(down.URL + "/healthz"); code != 200 {
		t.Errorf("/healthz with the store down: %d, want 200 (the process is up)", code)
	}
	if code, body := get(down.URL + "/readyz"); code != 503 || !strings.Contains(body, "store unavailable") {
		t.Errorf("/readyz with the store down: %d %q", code, body)
	}
}

func TestFailedAuthenticationsAreLimitedPerAddress(t *testing.T) {
	var now atomic.Pointer[time.Time] // read by the server's goroutines
	start := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	now.Store(&start)
	srv := testserver.Start(t, testserver.Options{Now: func() time.Time { return *now.Load() }, FailedAuthLimit: 3})
	get := func(token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/tenants", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for range 3 {
		if resp := get("d3Jvbmc6Z3Vlc3M="); resp.StatusCode != 401 {
			t.Fatalf("a bad token: %d", resp.StatusCode)
		}
	}
	resp := get("d3Jvbmc6Z3Vlc3M=")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the fourth failure in a minute: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := get(srv.AdminToken); resp.StatusCode != 429 {
		t.Fatalf("a good token from a blocked address: %d, want 429", resp.StatusCode)
	}
	later := start.Add(61 * time.Second)
	now.Store(&later)
	if resp := get(srv.AdminToken); resp.StatusCode != 200 {
		t.Fatalf("after the minute: %d, want 200", resp.StatusCode)
	}
}

// failingStore fails every write while broken, as a disk or database that
// errors does.
type failingStore struct {
	quota.Store
	broken atomic.Bool
}

func (f *failingStore) Commit(ctx context.Context, txs []quota.Tx) (int, error) {
	if f.broken.Load() {
		for _, t := range txs {
			t.Rollback()
		}
		return 0, errors.New("injected: input/output error")
	}
	return f.Store.Commit(ctx, txs)
}

func TestAFailingStoreAcknowledgesNothing(t *testing.T) {
	var fs *failingStore
	srv := testserver.Start(t, testserver.Options{Wrap: func(st quota.Store) quota.Store {
		fs = &failingStore{Store: st}
		return fs
	}})
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	ctx := t.Context()
	if _, err := c.CreateTenant(ctx, client.CreateTenantRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	fs.broken.Store(true)
	put := func(id string) error {
		_, err := c.PutConsumer(ctx, "acme", id, client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 2}}, client.PutOptions{})
		return err
	}
	for i := range 5 {
		err := put(fmt.Sprint("v", i))
		ce, ok := errors.AsType[*client.Error](err)
		if !ok || ce.Status != 503 || ce.Problem.Code != "unavailable" {
			t.Fatalf("a write to a failing store: %v", err)
		}
	}
	fs.broken.Store(false)
	if l, _ := c.Consumers(ctx, "acme", client.ConsumerQuery{}); len(l.Consumers) != 0 {
		t.Fatalf("%d consumers stored by failed writes", len(l.Consumers))
	}
	if err := put("after"); err != nil {
		t.Fatalf("after the store recovered: %v", err)
	}
	m := scrape(t, srv.URL)
	if got := m[`allot_store_errors_total{operation="commit"}`]; got != 5 {
		t.Errorf("allot_store_errors_total = %v, want 5", got)
	}
}

func TestMetricLabelsComeFromFixedSets(t *testing.T) {
	srv := testserver.Start(t)
	const n = 2000
	for i := range n {
		// Invented methods on invented paths, and on paths under the
		// dialects' and the native API's prefixes.
		path := []string{"/invented/%d", "/v2/%d/quota", "/api/v1/tenants/x%d/y", "/v1/%d"}[i%4]
		req, err := http.NewRequest(fmt.Sprintf("INVENTED%d", i), srv.URL+fmt.Sprintf(path, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for line := range strings.SplitSeq(string(body), "\n") {
		if !strings.HasPrefix(line, "allot_http_requests_total{") {
			continue
		}
		series++
		if strings.Contains(line, "INVENTED") || strings.Contains(line, "/invented/") {
			t.Errorf("a label carries the request's input: %s", line)
		}
	}
	// A handful of routes, "other" for the method, a few statuses.
	if series == 0 || series > 20 {
		t.Errorf("%d requests with invented methods made %d allot_http_requests_total series, want 1 to 20", n, series)
	}
	if len(body) > 64<<10 {
		t.Errorf("the exposition is %d bytes after %d invented requests, want at most 64 KiB", len(body), n)
	}
}
