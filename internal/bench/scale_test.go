package bench_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
)

// TestStartAtScale fills a SQLite store with 100,000 tenants and 1,000,000
// consumers, then starts a real `allot serve` on it and reports how long it
// takes to be ready and how much memory it holds. It takes minutes, so it
// runs only with ALLOT_SCALE_TEST=1. Then it puts every consumer again, to
// warm the committer's cache, and reports the memory again:
//
//	ALLOT_SCALE_TEST=1 go test -run StartAtScale -v -timeout 30m ./internal/bench/
func TestStartAtScale(t *testing.T) {
	if os.Getenv("ALLOT_SCALE_TEST") != "1" {
		t.Skip("set ALLOT_SCALE_TEST=1 to fill a store with 100k tenants and 1M consumers and time allot's start")
	}
	const tenants, perTenant = 100_000, 10
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "allot.db"), "local", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cat := quota.DefaultCatalog()
	k := cat.Kind("compute.instance")
	now := time.Now()
	fill := time.Now()
	for from := 0; from < tenants; from += 1000 {
		w := &quota.Writes{}
		for i := from; i < from+1000; i++ {
			id := fmt.Sprintf("tenant-%06d", i)
			w.CreateTenants = append(w.CreateTenants, &quota.Tenant{ID: id, Name: id, CreatedAt: now})
			usage := map[string]int64{}
			for j := range perTenant {
				state := []string{"running", "stopped"}[j%2]
				attrs := map[string]int64{"memory_mb": 64, "vcpus": 1}
				fp, err := quota.FootprintOf(k, state, attrs)
				if err != nil {
					t.Fatal(err)
				}
				for r, v := range fp {
					usage[r] += v
				}
				w.PutConsumers = append(w.PutConsumers, &quota.Consumer{Tenant: id, ID: fmt.Sprint("vm-", j), Kind: k.Name, State: state,
					Attributes: attrs, Generation: 1, Footprint: fp, CreatedAt: now, UpdatedAt: now})
			}
			for r, v := range usage {
				w.Usage = append(w.Usage, quota.UsageRow{Tenant: id, Resource: r, Used: v})
			}
		}
		tx, err := st.Begin(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		tx.Apply(w)
		if _, err := st.Commit(ctx, []quota.Tx{tx}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	t.Logf("filled %d tenants and %d consumers in %s", tenants, tenants*perTenant, time.Since(fill).Round(time.Second))

	bin := filepath.Join(t.TempDir(), "allot")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/allot").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	start := time.Now()
	cmd := exec.Command(bin, "serve", "--data", dir, "--listen", "127.0.0.1:18089")
	cmd.Env = append(os.Environ(), "ALLOT_ADMIN_TOKEN=scale-test-admin")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for {
		resp, err := http.Get("http://127.0.0.1:18089/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Since(start) > 60*time.Second {
			t.Fatal("not ready after 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ready := time.Since(start)
	// Some reads across the key space, as a control plane would make.
	for i := 0; i < 1000; i++ {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:18089/api/v1/tenants/tenant-%06d/quotas", i*97), nil)
		req.Header.Set("Authorization", "Bearer scale-test-admin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("quotas: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	memory := func() string {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		rss := ""
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
				rss += strings.Join(strings.Fields(line), " ") + "; "
			}
		}
		return rss
	}
	info, _ := os.Stat(filepath.Join(dir, "allot.db"))
	t.Logf("ready %s after start; %s database %d MB", ready.Round(time.Millisecond), memory(), info.Size()>>20)

	// Warm the consumer cache: put every consumer again as it is, a
	// thousand to a batch, so that the committer holds all of them.
	c := client.New("http://127.0.0.1:18089", client.WithToken("scale-test-admin"))
	warm := time.Now()
	for from := 0; from < tenants; from += 100 {
		var ops []client.Operation
		for i := from; i < from+100; i++ {
			for j := range perTenant {
				ops = append(ops, client.Operation{Op: "put", Tenant: fmt.Sprintf("tenant-%06d", i), Consumer: fmt.Sprint("vm-", j),
					Kind: k.Name, State: []string{"running", "stopped"}[j%2], Attributes: map[string]int64{"memory_mb": 64, "vcpus": 1}})
			}
		}
		if _, err := c.Claims(ctx, client.ClaimsRequest{Operations: ops}); err != nil {
			t.Fatalf("warming the cache: %v", err)
		}
	}
	t.Logf("every consumer cached in %s; %s", time.Since(warm).Round(time.Second), memory())
}
