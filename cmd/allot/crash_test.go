package main_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/pgtest"
	"github.com/allot-dev/allot/internal/quota"
)

// state reads what a running allot holds for the tenants: consumers, usage,
// and the usage the ledger replays to.
type state struct {
	consumers map[string]map[string]bool // tenant → consumer IDs
	usage     map[string]map[string]int64
	footprint map[string]map[string]int64 // the sum of the consumers' footprints
	replayed  map[string]map[string]int64 // from the whole ledger, when asked for
	rebuilt   map[string]map[string]int64 // from snapshots and the events since
}

// readState reads the state; with replay, also the whole ledger (which
// pruning would have cut short).
func readState(t *testing.T, p *proc, tenants []string, replay bool) state {
	t.Helper()
	s := state{consumers: map[string]map[string]bool{}, usage: map[string]map[string]int64{}, footprint: map[string]map[string]int64{}}
	for _, tn := range tenants {
		s.consumers[tn], s.footprint[tn], s.usage[tn] = map[string]bool{}, map[string]int64{}, map[string]int64{}
		cursor := ""
		for {
			code, body := p.req(t, "GET", "/api/v1/tenants/"+tn+"/consumers?limit=1000&cursor="+cursor, adminToken, "")
			var page struct {
				Consumers []struct {
					Consumer  string
					Footprint map[string]int64
				}
				NextCursor string `json:"next_cursor"`
			}
			if code != 200 || json.Unmarshal(body, &page) != nil {
				t.Fatalf("consumers of %s: %d %s", tn, code, body)
			}
			for _, c := range page.Consumers {
				s.consumers[tn][c.Consumer] = true
				for r, v := range c.Footprint {
					s.footprint[tn][r] += v
				}
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		_, body := p.req(t, "GET", "/api/v1/tenants/"+tn+"/quotas", adminToken, "")
		var q struct {
			Resources []struct {
				Resource string
				Used     int64
			}
		}
		json.Unmarshal(body, &q)
		for _, r := range q.Resources {
			if r.Used != 0 {
				s.usage[tn][r.Resource] = r.Used
			}
		}
	}
	// The ledger's answer: usage now, rebuilt from the snapshots and the
	// events since (with pruning active, what remains of the ledger).
	s.rebuilt = map[string]map[string]int64{}
	for _, tn := range tenants {
		code, body := p.req(t, "GET", "/api/v1/tenants/"+tn+"/usage?at="+time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano), adminToken, "")
		var u struct {
			Resources []struct {
				Resource string
				Used     int64
			}
		}
		if code != 200 || json.Unmarshal(body, &u) != nil {
			t.Fatalf("usage of %s now, from the ledger: %d %s", tn, code, body)
		}
		s.rebuilt[tn] = map[string]int64{}
		for _, r := range u.Resources {
			s.rebuilt[tn][r.Resource] = r.Used
		}
	}
	if !replay {
		return s
	}
	ledger := quota.NewReplay()
	after := int64(0)
	for {
		code, body := p.req(t, "GET", fmt.Sprintf("/api/v1/events?after=%d&limit=1000", after), adminToken, "")
		var page struct {
			Events []*quota.Event
			Next   int64
		}
		if code != 200 || json.Unmarshal(body, &page) != nil {
			t.Fatalf("events: %d %s", code, body)
		}
		for _, e := range page.Events {
			if err := ledger.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		if len(page.Events) < 1000 {
			break
		}
		after = page.Next
	}
	s.replayed = ledger.Usage
	return s
}

func nonZero(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// TestCrashLoop runs allot under concurrent claims and releases, kills it
// with SIGKILL at a random moment, restarts it, and checks after every
// restart that nothing acknowledged was lost, no batch was half applied,
// usage equals the consumers' footprints, and the ledger rebuilds it. The
// ledger keeps events for two seconds and snapshots every second, so
// pruning and snapshotting are under way when the kills come.
func TestCrashLoop(t *testing.T) {
	kills := 10
	if testing.Short() {
		kills = 2
	}
	stores := map[string]func(t *testing.T) []string{
		"sqlite": func(t *testing.T) []string { return nil },
		"postgres": func(t *testing.T) []string {
			return []string{"ALLOT_DATABASE=" + pgtest.Schema(t)}
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			env := append(stores[name](t), "ALLOT_ADMIN_TOKEN="+adminToken,
				"ALLOT_LEDGER_RETENTION=2s", "ALLOT_SNAPSHOT_INTERVAL=1s", "ALLOT_SNAPSHOT_EVERY=200")
			dir := t.TempDir()
			tenants := []string{"t0", "t1", "t2", "t3"}
			p := start(t, dir, env...)
			for _, tn := range tenants {
				p.req(t, "POST", "/api/v1/tenants", adminToken, `{"id":"`+tn+`"}`)
				p.req(t, "PUT", "/api/v1/tenants/"+tn+"/quotas/compute.instances", adminToken, `{"hard":60}`)
			}
			// present[tenant/id] is the last acknowledged fact about a pair of
			// consumers written by one batch: true (both exist) or false (both gone).
			present := map[string]bool{}
			// inflight marks pairs whose last batch got no answer: it may or
			// may not have been applied, but never half.
			inflight := map[string]bool{}
			checked := 0
			for kill := range kills {
				var mu sync.Mutex
				var wg sync.WaitGroup
				stop := make(chan struct{})
				for w := range 8 {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(kill), uint64(w)))
						for i := 0; ; i++ {
							select {
							case <-stop:
								return
							default:
							}
							tn := tenants[rng.IntN(len(tenants))]
							id := fmt.Sprintf("k%d-w%d-%d", kill, w, rng.IntN(20))
							op := "put"
							body := fmt.Sprintf(`{"operations":[{"op":"put","tenant":"%s","consumer":"%s-a","kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}},{"op":"put","tenant":"%[1]s","consumer":"%[2]s-b","kind":"compute.volume","attributes":{"size_mb":4}}]}`, tn, id)
							if rng.IntN(3) == 0 {
								op = "delete"
								body = fmt.Sprintf(`{"operations":[{"op":"delete","tenant":"%s","consumer":"%s-a"},{"op":"delete","tenant":"%[1]s","consumer":"%[2]s-b"}]}`, tn, id)
							}
							key := tn + "/" + id
							mu.Lock()
							inflight[key] = true
							mu.Unlock()
							req, _ := http.NewRequest("POST", p.url+"/api/v1/claims", strings.NewReader(body))
							req.Header.Set("Authorization", "Bearer "+adminToken)
							resp, err := http.DefaultClient.Do(req)
							if err != nil {
								return // killed: the batch stays in flight
							}
							resp.Body.Close()
							mu.Lock()
							if resp.StatusCode == 200 {
								present[key] = op == "put"
							}
							if resp.StatusCode < 500 { // answered: applied, or refused and not applied
								delete(inflight, key)
							}
							mu.Unlock()
						}
					})
				}
				time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
				p.cmd.Process.Signal(syscall.SIGKILL)
				p.cmd.Wait()
				close(stop)
				wg.Wait()

				p = start(t, dir, env...)
				s := readState(t, p, tenants, false)
				for key, want := range present {
					tn, id, _ := strings.Cut(key, "/")
					a, b := s.consumers[tn][id+"-a"], s.consumers[tn][id+"-b"]
					if a != b {
						t.Fatalf("kill %d: batch %s half applied: a=%v b=%v", kill, key, a, b)
					}
					if a != want && !inflight[key] {
						t.Fatalf("kill %d: %s acknowledged as present=%v, found %v", kill, key, want, a)
					}
					present[key] = a // what the next round builds on
					checked++
				}
				clear(inflight)
				for _, tn := range tenants {
					if !maps.Equal(nonZero(s.usage[tn]), nonZero(s.footprint[tn])) {
						t.Fatalf("kill %d, %s: usage %v, footprints %v", kill, tn, s.usage[tn], s.footprint[tn])
					}
					if !maps.Equal(nonZero(s.rebuilt[tn]), nonZero(s.usage[tn])) {
						t.Fatalf("kill %d, %s: the ledger rebuilds %v, usage is %v", kill, tn, s.rebuilt[tn], s.usage[tn])
					}
				}
			}
			// Pruning went on: the start of the ledger is gone, and said so.
			if code, body := p.req(t, "GET", "/api/v1/events?after=0&limit=1", adminToken, ""); code != 410 || !strings.Contains(string(body), "events_pruned") {
				_, m := p.req(t, "GET", "/metrics", adminToken, "")
				t.Fatalf("events from the start after pruning: %d %s\n%s", code, body, m)
			}
			code, body := p.req(t, "GET", "/metrics", adminToken, "")
			if code != 200 || !strings.Contains(string(body), "allot_ledger_oldest_retained_seq") {
				t.Fatalf("metrics: %d", code)
			}
			t.Logf("%s: %d kills survived; %d acknowledged batch outcomes verified after restarts", name, kills, checked)
		})
	}
}

// TestBackupUnderLoadRestores takes a backup while claims are being made,
// restores it into a new data directory, and finds a consistent state.
func TestBackupUnderLoadRestores(t *testing.T) {
	dir := t.TempDir()
	env := "ALLOT_ADMIN_TOKEN=" + adminToken
	p := start(t, dir, env)
	p.req(t, "POST", "/api/v1/tenants", adminToken, `{"id":"acme"}`)
	p.req(t, "PUT", "/api/v1/tenants/acme/quotas/compute.instances", adminToken, `{"hard":100000}`)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p.req(t, "PUT", fmt.Sprintf("/api/v1/tenants/acme/consumers/w%d-%d", w, i), adminToken,
					`{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	backup := filepath.Join(t.TempDir(), "allot-backup.db")
	out, err := exec.Command(binary, "backup", backup, "--data", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()

	if out, err := exec.Command(binary, "restore", backup, "--data", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "in use") {
		t.Fatalf("restoring over a running allot: %v\n%s", err, out)
	}
	restored := t.TempDir()
	if out, err := exec.Command(binary, "restore", backup, "--data", restored).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	// The AK/SK key file goes with the backup, as the README says.
	key, _ := os.ReadFile(filepath.Join(dir, "secret.key"))
	os.WriteFile(filepath.Join(restored, "secret.key"), key, 0o600)
	q := start(t, restored, env)
	s := readState(t, q, []string{"acme"}, true)
	n := len(s.consumers["acme"])
	if n == 0 {
		t.Fatal("the backup holds no consumers")
	}
	if !maps.Equal(nonZero(s.usage["acme"]), nonZero(s.footprint["acme"])) || !maps.Equal(nonZero(s.replayed["acme"]), nonZero(s.usage["acme"])) {
		t.Fatalf("restored state inconsistent: usage %v, footprints %v, ledger %v", s.usage["acme"], s.footprint["acme"], s.replayed["acme"])
	}
	if bad, err := exec.Command(binary, "restore", filepath.Join(dir, "secret.key"), "--data", t.TempDir()).CombinedOutput(); err == nil {
		t.Fatalf("restoring a file that is not a database succeeded:\n%s", bad)
	}
	t.Logf("backup taken under load: %d consumers, consistent after restore", n)
}
