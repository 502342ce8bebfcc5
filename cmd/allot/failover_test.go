package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/pgtest"
	"github.com/allot-dev/allot/internal/postgres"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/storetest"
)

// claim is one PUT of a new consumer and what came of it.
type claim struct {
	proc           int
	tenant, id     string
	sent, answered time.Time
	status         int    // 0: no answer
	code           string // the problem's code of a refusal
	retryAfter     bool
	err            error
}

// TestFailoverToASynchronousStandby runs two allot processes over a
// primary with a synchronous standby, with a multi-host URL, kills the
// primary with pg_ctl stop -m immediate under claim load and promotes the
// standby. allot must find the new primary by itself, answer 503 with
// Retry-After meanwhile, and lose no claim it acknowledged: each one is on
// the new primary, and a claim answered "unavailable" (nothing stored) is
// not. Usage must equal the consumers' footprints and the ledger replay to
// it.
func TestFailoverToASynchronousStandby(t *testing.T) {
	c := pgtest.StartCluster(t)
	env := []string{"ALLOT_DATABASE=" + c.DSN(), "ALLOT_ADMIN_TOKEN=" + adminToken, "ALLOT_SECRET_KEY_FILE=" + keyFile(t, "33"),
		// A dead host costs at most this per connection attempt.
		"ALLOT_DATABASE_CONNECT_TIMEOUT=1s"}
	ps := []*proc{start(t, t.TempDir(), env...), start(t, t.TempDir(), env...)}
	tenants := []string{"fo-0", "fo-1", "fo-2", "fo-3", "fo-4", "fo-5", "fo-6", "fo-7"}
	for _, tn := range tenants {
		if code, body := ps[0].req(t, "POST", "/api/v1/tenants", adminToken, `{"id":"`+tn+`"}`); code != 201 {
			t.Fatalf("create tenant: %d %s", code, body)
		}
		if code, body := ps[1].req(t, "PUT", "/api/v1/tenants/"+tn+"/quotas/compute.instances", adminToken, `{"hard":100000}`); code != 200 {
			t.Fatalf("set quota: %d %s", code, body)
		}
	}

	// The load: 16 writers, half on each process, each claim a new
	// consumer, bounded in count and time. After a 503 a writer pauses
	// briefly, not the second Retry-After asks for, so that the moment
	// writes resume is measured finely.
	const writers, maxClaims = 16, 40000
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: writers}}
	var (
		mu     sync.Mutex
		claims []*claim
		sent   atomic.Int64
		wg     sync.WaitGroup
	)
	ctx, stop := context.WithTimeout(t.Context(), 50*time.Second)
	defer stop()
	for w := range writers {
		wg.Go(func() {
			p := ps[w%2]
			for i := 0; ctx.Err() == nil && sent.Add(1) <= maxClaims; i++ {
				cl := &claim{proc: w % 2, tenant: tenants[(w/2+i)%len(tenants)], id: fmt.Sprintf("w%d-%d", w, i), sent: time.Now()}
				put(client, p, cl)
				mu.Lock()
				claims = append(claims, cl)
				mu.Unlock()
				if cl.status != 201 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	// waitFor polls the claims so far until ok says so, or fails the test.
	waitFor := func(what string, d time.Duration, ok func([]*claim) bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			mu.Lock()
			done := ok(claims)
			mu.Unlock()
			if done {
				return
			}
			if time.Now().After(deadline) {
				stop()
				wg.Wait()
				t.Fatalf("%s: not within %s (%s)", what, d, summary(claims))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// acked reports whether each process acknowledged n claims sent after
	// since.
	acked := func(since time.Time, n int) func([]*claim) bool {
		return func(cs []*claim) bool {
			var per [2]int
			for _, cl := range cs {
				if cl.status == 201 && !cl.sent.Before(since) {
					per[cl.proc]++
				}
			}
			return per[0] >= n && per[1] >= n
		}
	}
	waitFor("claims acknowledged before the kill", 20*time.Second, acked(time.Time{}, 100))

	killed := time.Now()
	c.Primary.Kill()
	down := time.Since(killed)
	// No primary for a while, as a failover manager takes to decide.
	time.Sleep(time.Second)
	c.Standby.Promote()
	promoted := time.Since(killed)
	waitFor("writes succeed again through both processes after the failover", 30*time.Second, acked(killed, 1))
	resumedAt := time.Now()
	// A little more load on the new primary, then stop.
	waitFor("more claims acknowledged after the failover", 20*time.Second, acked(resumedAt, 50))
	stop()
	wg.Wait()

	// The time from the kill until writes succeed again: the first claim,
	// sent after the kill, that each process acknowledged.
	var resumed [2]time.Duration
	for _, cl := range claims {
		if cl.status == 201 && cl.sent.After(killed) {
			if d := cl.answered.Sub(killed); resumed[cl.proc] == 0 || d < resumed[cl.proc] {
				resumed[cl.proc] = d
			}
		}
	}
	t.Logf("primary killed in %s, standby promoted %s after the kill; writes succeeded again %s (process 0) and %s (process 1) after the kill",
		down.Round(time.Millisecond), promoted.Round(time.Millisecond), resumed[0].Round(time.Millisecond), resumed[1].Round(time.Millisecond))
	t.Logf("claims: %s", summary(claims))

	// What the new primary holds.
	st, err := postgres.Open(t.Context(), c.Standby.DSN(), "local", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := map[string]bool{} // tenant/consumer
	for _, tn := range tenants {
		for after := ""; ; {
			cs, err := st.Consumers(t.Context(), quota.ConsumerFilter{Tenant: tn, After: after, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, cn := range cs {
				stored[tn+"/"+cn.ID] = true
				after = cn.ID
			}
			if len(cs) < 1000 {
				break
			}
		}
	}
	var unavailable, unknown, unknownStored, overloaded, unanswered int
	for _, cl := range claims {
		key := cl.tenant + "/" + cl.id
		switch {
		case cl.status == 201:
			if !stored[key] {
				t.Errorf("claim %s was acknowledged (process %d, sent at %+dms from the kill, answered at %+dms) but is not on the new primary",
					key, cl.proc, cl.sent.Sub(killed).Milliseconds(), cl.answered.Sub(killed).Milliseconds())
			}
		case cl.status == 503:
			if !cl.retryAfter {
				t.Errorf("claim %s: 503 without Retry-After", key)
			}
			switch cl.code {
			case string(quota.CodeOutcomeUnknown):
				unknown++
				if stored[key] {
					unknownStored++
				}
			case string(quota.CodeUnavailable), string(quota.CodeOverloaded):
				if cl.code == string(quota.CodeUnavailable) {
					unavailable++
				} else {
					overloaded++
				}
				// Either code promises that nothing was stored.
				if stored[key] {
					t.Errorf("claim %s was answered 503 %s, nothing stored, but it is on the new primary", key, cl.code)
				}
			default:
				t.Errorf("claim %s: 503 with code %q", key, cl.code)
			}
		case cl.status == 0:
			unanswered++
			t.Errorf("claim %s got no answer: %v", key, cl.err)
		default:
			t.Errorf("claim %s: status %d %s", key, cl.status, cl.code)
		}
	}
	if unavailable+unknown+overloaded == 0 {
		t.Error("no claim was answered 503: the failover happened under no load")
	}
	t.Logf("503s: %d unavailable, %d outcome_unknown (%d of them stored), %d overloaded; %d without answer",
		unavailable, unknown, unknownStored, overloaded, unanswered)
	for _, tn := range tenants {
		storetest.CheckInvariants(t, st, tn)
	}
	storetest.CheckLedger(t, st)

	// Both processes still run, and each sees what the other commits
	// (its notification listener found the new primary too).
	for i, p := range ps {
		if p.cmd.ProcessState != nil {
			t.Fatalf("process %d exited: %v", i, p.cmd.ProcessState)
		}
		other := ps[1-i]
		for _, tn := range tenants {
			cl := &claim{tenant: tn, id: fmt.Sprintf("final-%d", i)}
			if put(client, p, cl); cl.status != 201 {
				t.Fatalf("a claim after the failover through process %d: %d %s %v", i, cl.status, cl.code, cl.err)
			}
		}
		waitUsage(t, other, st, tenants)
	}
}

// put sends cl's claim through p and records the answer.
func put(client *http.Client, p *proc, cl *claim) {
	req, _ := http.NewRequest("PUT", p.url+"/api/v1/tenants/"+cl.tenant+"/consumers/"+cl.id,
		strings.NewReader(`{"kind":"compute.instance","state":"stopped","attributes":{"memory_mb":16}}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := client.Do(req)
	cl.answered = time.Now()
	if err != nil {
		cl.err = err
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	cl.status, cl.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After") != ""
	if resp.StatusCode >= 300 {
		var problem struct{ Code string }
		json.Unmarshal(body, &problem)
		cl.code = problem.Code
	}
}

// summary counts claims by status and code.
func summary(claims []*claim) string {
	counts := map[string]int{}
	for _, cl := range claims {
		k := fmt.Sprint(cl.status)
		if cl.code != "" {
			k += " " + cl.code
		}
		counts[k]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d × %s", counts[k], k))
	}
	return fmt.Sprintf("%d sent: %s", len(claims), strings.Join(parts, ", "))
}

// waitUsage waits until p's view of every tenant's instances equals the
// stored usage.
func waitUsage(t *testing.T, p *proc, st *postgres.Store, tenants []string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, tn := range tenants {
		used, err := st.Usage(t.Context(), tn)
		if err != nil {
			t.Fatal(err)
		}
		for {
			_, body := p.req(t, "GET", "/api/v1/tenants/"+tn+"/quotas", adminToken, "")
			var q struct {
				Resources []struct {
					Resource string
					Used     int64
				}
			}
			json.Unmarshal(body, &q)
			var seen int64 = -1
			for _, r := range q.Resources {
				if r.Resource == "compute.instances" {
					seen = r.Used
				}
			}
			if seen == used["compute.instances"] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tenant %s: a process sees %d instances used, the new primary holds %d", tn, seen, used["compute.instances"])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
