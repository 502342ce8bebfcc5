package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/pgtest"
)

// startPair runs two allot processes over one PostgreSQL schema, sealing
// secrets with one key as every process on a database must.
func startPair(t *testing.T) [2]*proc {
	dsn := pgtest.Schema(t)
	env := []string{"ALLOT_DATABASE=" + dsn, "ALLOT_ADMIN_TOKEN=" + adminToken, "ALLOT_SECRET_KEY_FILE=" + keyFile(t, "11")}
	return [2]*proc{start(t, t.TempDir(), env...), start(t, t.TempDir(), env...)}
}

// keyFile writes a secret key file of 32 bytes of the hex byte b.
func keyFile(t *testing.T, b string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(path, []byte(strings.Repeat(b, 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAMismatchedSecretKeyIsRefused: a process that would seal and open
// secrets with another key than the database's refuses to start, naming
// both fingerprints, instead of failing every AK/SK request later.
func TestAMismatchedSecretKeyIsRefused(t *testing.T) {
	dsn := pgtest.Schema(t)
	start(t, t.TempDir(), "ALLOT_DATABASE="+dsn, "ALLOT_ADMIN_TOKEN="+adminToken, "ALLOT_SECRET_KEY_FILE="+keyFile(t, "11"))
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir())
	cmd.Env = append(os.Environ(), "ALLOT_DATABASE="+dsn, "ALLOT_ADMIN_TOKEN="+adminToken, "ALLOT_SECRET_KEY_FILE="+keyFile(t, "22"))
	out, err := runFor(cmd, 20*time.Second)
	if err == nil {
		t.Fatalf("a process with another secret key started:\n%s", out)
	}
	if !strings.Contains(out, "is not the key this database's secrets are sealed with") || !strings.Contains(out, "fingerprint") {
		t.Fatalf("the refusal does not say why:\n%s", out)
	}
}

// TestTwoProcessesNeverPassAHardQuota sends 400 racing instance creations
// for one tenant with hard 25, half to each of two allot processes.
func TestTwoProcessesNeverPassAHardQuota(t *testing.T) {
	ps := startPair(t)
	for round := range 3 {
		tenant := fmt.Sprintf("race-%d", round)
		if code, body := ps[0].req(t, "POST", "/api/v1/tenants", adminToken, `{"id":"`+tenant+`"}`); code != 201 {
			t.Fatalf("create tenant: %d %s", code, body)
		}
		if code, body := ps[1].req(t, "PUT", "/api/v1/tenants/"+tenant+"/quotas/compute.instances", adminToken, `{"hard":25}`); code != 200 {
			t.Fatalf("set quota: %d %s", code, body)
		}
		statuses := make([]int, 400)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range statuses {
			wg.Go(func() {
				<-gate
				p := ps[i%2]
				req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/api/v1/tenants/%s/consumers/vm-%d", p.url, tenant, i),
					strings.NewReader(`{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`))
				req.Header.Set("Authorization", "Bearer "+adminToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			})
		}
		close(gate)
		wg.Wait()
		counts := map[int]int{}
		for _, s := range statuses {
			counts[s]++
		}
		if counts[201] != 25 || counts[409] != 375 {
			t.Fatalf("round %d: statuses %v, want 25 × 201 and 375 × 409", round, counts)
		}
		for _, p := range ps {
			code, body := p.req(t, "GET", "/api/v1/tenants/"+tenant+"/quotas", adminToken, "")
			var q struct {
				Resources []struct {
					Resource   string
					Used, Hard int
				}
			}
			if err := json.Unmarshal(body, &q); code != 200 || err != nil {
				t.Fatalf("quotas: %d %s", code, body)
			}
			if r := q.Resources[0]; r.Resource != "compute.instances" || r.Used != 25 || r.Hard != 25 {
				t.Fatalf("round %d: %+v, want 25 of 25 used", round, r)
			}
			code, body = p.req(t, "GET", "/api/v1/tenants/"+tenant+"/consumers?limit=1000", adminToken, "")
			var page struct{ Consumers []json.RawMessage }
			if err := json.Unmarshal(body, &page); code != 200 || err != nil || len(page.Consumers) != 25 {
				t.Fatalf("round %d: %d consumers exist, want 25 (%d %.200s)", round, len(page.Consumers), code, body)
			}
		}
	}
}

// TestTwoProcessesExpireEachReservationOnce lets reservations made through
// two processes run out while both sweep.
func TestTwoProcessesExpireEachReservationOnce(t *testing.T) {
	ps := startPair(t)
	if code, body := ps[0].req(t, "POST", "/api/v1/tenants", adminToken, `{"id":"res"}`); code != 201 {
		t.Fatalf("create tenant: %d %s", code, body)
	}
	const n = 10 // the default quota of volumes
	for i := range n {
		code, body := ps[i%2].req(t, "PUT", fmt.Sprintf("/api/v1/tenants/res/consumers/hold-%d", i), adminToken,
			`{"kind":"compute.volume","attributes":{"size_mb":10},"ttl_seconds":1}`)
		if code != 201 {
			t.Fatalf("reserve: %d %s", code, body)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := ps[1].req(t, "GET", "/api/v1/tenants/res/consumers", adminToken, "")
		var page struct{ Consumers []json.RawMessage }
		json.Unmarshal(body, &page)
		if len(page.Consumers) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reservations still held after 20s", len(page.Consumers))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Both sweepers ran; give a late duplicate the chance to show itself.
	time.Sleep(1500 * time.Millisecond)
	code, body := ps[0].req(t, "GET", "/api/v1/events?tenant=res&limit=1000", adminToken, "")
	var events struct {
		Events []struct{ Type, Subject string }
	}
	if err := json.Unmarshal(body, &events); code != 200 || err != nil {
		t.Fatalf("events: %d %s", code, body)
	}
	expired := map[string]int{}
	for _, e := range events.Events {
		if e.Type == "consumer.expired" {
			expired[e.Subject]++
		}
	}
	for i := range n {
		if id := fmt.Sprintf("hold-%d", i); expired[id] != 1 {
			t.Errorf("%s expired %d times, want once", id, expired[id])
		}
	}
	_, body = ps[1].req(t, "GET", "/api/v1/tenants/res/quotas", adminToken, "")
	if !strings.Contains(string(body), `"resource":"compute.volumes","used":0`) {
		t.Errorf("volumes still used after expiry: %s", body)
	}
}
