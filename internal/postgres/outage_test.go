package postgres_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/pgtest"
	"github.com/allot-dev/allot/internal/storetest"
	"github.com/allot-dev/allot/internal/testserver"
)

// TestDatabaseOutage cuts allot off from PostgreSQL under a light load and
// restores it: meanwhile writes answer 503 with Retry-After and /readyz
// fails; afterwards allot serves again without a restart.
func TestDatabaseOutage(t *testing.T) {
	px, dsn := pgtest.ProxyFor(t, pgtest.Schema(t))
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	st := open(t, u.String())
	srv := testserver.Start(t, testserver.Options{Store: st})

	do := func(method, path, body string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return 0, nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	if code, _, body := do("POST", "/api/v1/tenants", `{"id":"acme"}`); code != 201 {
		t.Fatalf("create tenant: %d %s", code, body)
	}
	if code, _, body := do("PUT", "/api/v1/tenants/acme/quotas/compute.instances", `{"hard":100000}`); code != 200 {
		t.Fatalf("set quota: %d %s", code, body)
	}

	// A light load all along: one claim every 20ms.
	var mu sync.Mutex
	statuses := map[int]int{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			code, _, _ := do("PUT", fmt.Sprintf("/api/v1/tenants/acme/consumers/load-%d", i),
				`{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`)
			mu.Lock()
			statuses[code]++
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	})
	time.Sleep(300 * time.Millisecond)

	px.Cut()
	code, header, body := do("PUT", "/api/v1/tenants/acme/consumers/during", `{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`)
	if code != 503 || header.Get("Retry-After") == "" || !strings.Contains(body, `"code":"unavailable"`) {
		t.Fatalf("write during the outage: %d Retry-After=%q %s", code, header.Get("Retry-After"), body)
	}
	if code, _, _ := do("GET", "/readyz", ""); code != 503 {
		t.Fatalf("/readyz during the outage: %d, want 503", code)
	}
	if code, _, _ := do("GET", "/healthz", ""); code != 200 {
		t.Fatalf("/healthz during the outage: %d, want 200", code)
	}
	// The outage lasts until the load has met it (a loaded machine may
	// take a while to send its next claim).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		met := statuses[503] > 0
		mu.Unlock()
		if met {
			break
		}
	}

	px.Refuse(false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _, body := do("PUT", "/api/v1/tenants/acme/consumers/after", `{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`)
		if code == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("allot did not recover within 20s: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _, _ := do("GET", "/readyz", ""); code != 200 {
		t.Fatalf("/readyz after the outage: %d, want 200", code)
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for code, n := range statuses {
		if code != 201 && code != 503 {
			t.Errorf("%d answers with status %d; only 201 and 503 are right", n, code)
		}
	}
	if statuses[201] == 0 || statuses[503] == 0 {
		t.Errorf("the load saw %v; want both admitted claims and 503s", statuses)
	}
	storetest.CheckInvariants(t, st, "acme")
	t.Logf("load answers: %v", statuses)
}
