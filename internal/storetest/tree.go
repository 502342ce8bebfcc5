package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// The tree of tenants: a parent's set hard quota caps the usage of its
// whole subtree, in the same atomic decision as the tenant's own.

func createUnder(id, parent string) quota.Op {
	return &quota.CreateTenant{Tenant: id, Name: "Tenant " + id, Parent: parent}
}

func move(id, parent string) quota.Op {
	return &quota.UpdateTenant{Tenant: id, SetParent: true, Parent: parent}
}

// CheckTree fails t unless every tenant's stored subtree usage equals the
// sum of its descendants' own usage, which CheckInvariants holds to their
// consumers: so each tenant's tree usage is the sum of the footprints below
// it.
func CheckTree(t testing.TB, st quota.Store) {
	t.Helper()
	records, err := st.LoadTenants(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	parent := map[string]string{}
	for _, r := range records {
		parent[r.Tenant.ID] = r.Tenant.Parent
	}
	want := map[string]map[string]int64{}
	for _, r := range records {
		p, steps := parent[r.Tenant.ID], 0
		for ; p != ""; p = parent[p] {
			if steps++; steps > 64 {
				t.Fatalf("tenant %s: its ancestry does not end: a cycle", r.Tenant.ID)
			}
			if _, ok := parent[p]; !ok {
				t.Fatalf("tenant %s: ancestor %s does not exist", r.Tenant.ID, p)
			}
			if want[p] == nil {
				want[p] = map[string]int64{}
			}
			for res, v := range r.Usage {
				want[p][res] += v
			}
		}
	}
	for _, r := range records {
		if got, w := nonZero(r.Below), nonZero(want[r.Tenant.ID]); !maps.Equal(got, w) {
			t.Errorf("tenant %s: its descendants use %v, the store says %v", r.Tenant.ID, w, got)
		}
	}
}

// treeOrg makes org (hard quota set on live instances) over three
// children whose own quotas add up to more than the org's.
func (h *harness) treeOrg(orgLive, childLive int64) []string {
	h.t.Helper()
	h.must(createTenant("org", ""))
	h.must(setHard("org", "compute.live_instances", orgLive))
	children := []string{"web", "db", "ml"}
	for _, c := range children {
		h.must(createUnder(c, "org"))
		h.must(setHard(c, "compute.instances", 100000))
		h.must(setHard(c, "compute.live_vcpus", 100000))
		h.must(setHard(c, "compute.live_instances", childLive))
	}
	return children
}

// raceChildren runs n claims spread over the children and engines and
// returns how many were admitted.
func (h *harness) raceChildren(engines []*quota.Engine, children []string, prefix string, n int) int64 {
	admitted := make(chan struct{}, n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			c := children[i%len(children)]
			_, err := h.doOn(engines[(i/len(children))%len(engines)], false, instance(c, fmt.Sprintf("%s%d", prefix, i), "running", 16))
			switch {
			case err == nil:
				admitted <- struct{}{}
			case quota.ErrorCode(err) != quota.CodeQuotaExceeded:
				h.t.Errorf("claim %d on %s: %v", i, c, err)
			}
		}()
	}
	for range n {
		<-done
	}
	return int64(len(admitted))
}

// testTreeRace: 300 racing creations over three children of one parent
// whose quota is lower than the children's sum: exactly the parent's quota
// is admitted.
func testTreeRace(t *testing.T, h *harness) {
	children := h.treeOrg(40, 30)
	for round := range 2 {
		if got := h.raceChildren([]*quota.Engine{h.engine}, children, fmt.Sprintf("r%d-", round), 300); got != 40 {
			t.Fatalf("round %d: %d admitted under the org, want exactly 40", round, got)
		}
		h.stopAll(children)
	}
}

// testTreeTwoProcesses: the same race across two processes, which
// serialize on the parent's lock.
func testTreeTwoProcesses(t *testing.T, h *harness) {
	if h.cfg.OneProcess {
		t.Skip("the store serves one process")
	}
	_, second := h.start()
	children := h.treeOrg(40, 30)
	for round := range 2 {
		if got := h.raceChildren([]*quota.Engine{h.engine, second}, children, fmt.Sprintf("r%d-", round), 300); got != 40 {
			t.Fatalf("round %d: %d admitted under the org across two processes, want exactly 40", round, got)
		}
		CheckTree(t, h.store)
		h.stopAll(children)
	}
	// A move made by one process is seen by the other's next claim: the
	// ancestry it decides on is the committed one.
	h.must(createTenant("org2", ""))
	h.must(setHard("org2", "compute.live_instances", 0))
	if _, err := h.doOn(second, false, instance("web", "before-move", "running", 16)); err != nil {
		t.Fatal(err)
	}
	h.must(move("web", "org2"))
	_, err := h.doOn(second, false, instance("web", "after-move", "running", 16))
	if qe, ok := errors.AsType[*quota.Error](err); !ok || qe.Code != quota.CodeQuotaExceeded || qe.Violations[0].Tenant != "org2" {
		t.Fatalf("a claim through the other process after the move: %v, want refused by org2", err)
	}
}

// stopAll stops every running instance of the tenants.
func (h *harness) stopAll(tenants []string) {
	h.t.Helper()
	for _, tn := range tenants {
		cs, _ := h.store.Consumers(h.ctx, quota.ConsumerFilter{Tenant: tn, Limit: 1000})
		for _, c := range cs {
			h.must(instance(tn, c.ID, "stopped", 16))
		}
	}
}

// testTreeRefusal: a refusal names the level that failed; a level with no
// quota set does not limit; dry runs, batches, reservations and
// thresholds work at every level.
func testTreeRefusal(t *testing.T, h *harness) {
	h.must(createTenant("org", ""))
	h.must(setHard("org", "compute.live_memory_mb", 1000))
	h.must(&quota.SetThresholds{Tenant: "org", Thresholds: []int64{50}})
	h.must(createUnder("team", "org")) // no quota set: does not limit
	h.must(createUnder("p1", "team"))
	h.must(createUnder("p2", "team"))
	h.must(instance("p1", "a", "running", 600))
	then := h.clock.Now()
	h.clock.Advance(time.Minute)
	// The org's threshold fired on its tree usage.
	fired := false
	for _, e := range h.events("org") {
		fired = fired || e.Type == quota.EventThreshold && e.Subject == "compute.live_memory_mb"
	}
	if !fired {
		t.Error("the org's 50% threshold did not fire on its tree usage of 600 of 1000")
	}
	qe := h.refused(quota.CodeQuotaExceeded, instance("p2", "b", "running", 600))
	want := quota.Violation{Tenant: "org", Resource: "compute.live_memory_mb", Used: 600, Hard: 1000, Requested: 600, Available: 400}
	if len(qe.Violations) != 1 || qe.Violations[0] != want {
		t.Fatalf("violations = %+v, want %+v", qe.Violations, want)
	}
	// A dry run answers the same, and an admitted dry run changes nothing.
	if _, err := h.doOn(h.engine, true, instance("p2", "b", "running", 600)); quota.ErrorCode(err) != quota.CodeQuotaExceeded {
		t.Fatalf("dry run: %v, want quota_exceeded", err)
	}
	if _, err := h.doOn(h.engine, true, instance("p2", "b", "running", 400)); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	// A batch whose second claim the org refuses is not applied at all.
	_, err := h.do(instance("p2", "c", "running", 300), instance("p1", "d", "running", 300))
	if quota.ErrorCode(err) != quota.CodeQuotaExceeded {
		t.Fatalf("batch: %v, want quota_exceeded", err)
	}
	if u := h.usage("p2"); u["compute.live_memory_mb"] != 0 {
		t.Fatalf("p2 after the refused batch = %v", u)
	}
	// A reservation holds tree usage until it expires.
	r := instance("p2", "r", "running", 400)
	r.Spec.TTL = time.Second
	h.must(r)
	h.refused(quota.CodeQuotaExceeded, instance("p1", "e", "running", 16))
	h.clock.Advance(2 * time.Second)
	if _, err := h.engine.Sweep(h.ctx); err != nil {
		t.Fatal(err)
	}
	h.must(instance("p1", "e", "running", 16))
	// The tenant's own quota is named as itself.
	h.must(setHard("p1", "compute.live_instances", 2))
	qe = h.refused(quota.CodeQuotaExceeded, instance("p1", "f", "running", 16))
	if qe.Violations[0].Tenant != "p1" || qe.Violations[0].Resource != "compute.live_instances" {
		t.Fatalf("violations = %+v, want p1's own live_instances", qe.Violations)
	}
	// Usage at a past time answers for the tree: the org's own was 0, its
	// tree's 600.
	samples, err := quota.DefaultCatalog().UsageHistory(h.ctx, h.store, "org", []time.Time{then}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range samples[0].Resources {
		if u.Resource.Name == "compute.live_memory_mb" && (u.Used != 0 || u.Below != 600) {
			t.Fatalf("org's memory at %v: own %d, below %d; want 0 and 600", then, u.Used, u.Below)
		}
	}
	CheckTree(t, h.store)
}

// testTreeRules: cycles, missing parents and the depth limit are refused
// with their codes and change nothing; a tenant with children cannot be
// deleted.
func testTreeRules(t *testing.T, h *harness) {
	h.must(createTenant("a", ""))
	h.must(createUnder("b", "a"))
	h.must(createUnder("c", "b"))
	h.refused(quota.CodeParentCycle, move("a", "c"))
	h.refused(quota.CodeParentCycle, move("a", "b"))
	h.refused(quota.CodeParentCycle, move("b", "b"))
	h.refused(quota.CodeParentNotFound, move("b", "nobody"))
	h.refused(quota.CodeParentNotFound, createUnder("d", "nobody"))
	// Six levels at most: a b c x4 x5 x6.
	h.must(createUnder("x4", "c"))
	h.must(createUnder("x5", "x4"))
	h.must(createUnder("x6", "x5"))
	h.refused(quota.CodeTreeTooDeep, createUnder("x7", "x6"))
	// A subtree of two levels fits under level 4, not under level 5.
	h.must(createTenant("s", ""))
	h.must(createUnder("s1", "s"))
	h.refused(quota.CodeTreeTooDeep, move("s", "x5"))
	h.must(move("s", "x4"))
	if tn, _ := h.store.Tenant(h.ctx, "s"); tn.Parent != "x4" {
		t.Fatalf("s after the move: parent %q, want x4", tn.Parent)
	}
	// A tenant with children is not deleted; detached, it is.
	h.refused(quota.CodeHasChildren, &quota.DeleteTenant{Tenant: "s"})
	h.must(move("s1", ""))
	h.must(&quota.DeleteTenant{Tenant: "s"})
	if tn, _ := h.store.Tenant(h.ctx, "s1"); tn.Parent != "" {
		t.Fatalf("s1 detached: parent %q", tn.Parent)
	}
	moves := 0
	for _, e := range h.events("s1") {
		if e.Type == quota.EventTenantMove {
			moves++
		}
	}
	if moves != 1 {
		t.Fatalf("%d tenant.move events for s1, want 1", moves)
	}
	CheckTree(t, h.store)
}

// testTreeMoveUnderFullParent: moving a subtree under a full parent is
// allowed; the parent is then over quota, growth is refused, shrinking
// allowed.
func testTreeMoveUnderFullParent(t *testing.T, h *harness) {
	h.must(createTenant("full", ""))
	h.must(setHard("full", "compute.live_instances", 2))
	h.must(createUnder("f1", "full"))
	h.must(instance("f1", "a", "running", 16), instance("f1", "b", "running", 16))
	h.must(createTenant("x", ""))
	h.must(createUnder("x1", "x"))
	h.must(instance("x1", "c", "running", 16), instance("x1", "d", "running", 16))
	h.must(move("x", "full"))
	v, err := h.engine.View(h.ctx, "full")
	if err != nil || v.Tree("compute.live_instances") != 4 {
		t.Fatalf("full after the move: %+v, %v; want tree usage 4", v, err)
	}
	over := quota.DefaultCatalog().OverQuotaViews(h.engine.Views())
	if !slices.ContainsFunc(over, func(o quota.OverQuota) bool {
		return o.Tenant == "full" && len(o.Resources) == 1 && o.Resources[0].Tree && o.Resources[0].Used == 4 && o.Resources[0].Hard == 2
	}) {
		t.Fatalf("over quota = %+v, want full's tree at 4 of 2", over)
	}
	qe := h.refused(quota.CodeQuotaExceeded, instance("x1", "e", "running", 16))
	if qe.Violations[0].Tenant != "full" {
		t.Fatalf("growth refused by %+v, want full", qe.Violations)
	}
	h.must(instance("x1", "c", "stopped", 16))
	h.must(del("x1", "d"))
	CheckTree(t, h.store)
}

// testTreeReplay: after a random sequence of moves, claims and deletes,
// replaying the ledger gives every level's tree usage (CheckLedger), and
// the stored tree usage is the sum of the footprints below (CheckTree).
func testTreeReplay(t *testing.T, h *harness) {
	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	tenants := []string{"r", "a", "b", "c", "d", "e"}
	h.must(createTenant("r", ""))
	h.must(setHard("r", "compute.live_memory_mb", 4000))
	for _, id := range tenants[1:] {
		h.must(createUnder(id, "r"))
	}
	for range 300 {
		tn := tenants[rng.IntN(len(tenants))]
		id := fmt.Sprint("c", rng.IntN(6))
		var err error
		switch rng.IntN(7) {
		case 0, 1:
			_, err = h.do(instance(tn, id+"i", []string{"running", "stopped"}[rng.IntN(2)], int64(16+rng.IntN(600))))
		case 2:
			_, err = h.do(volume(tn, id+"v", int64(2+rng.IntN(300))))
		case 3:
			_, err = h.do(del(tn, id+"i"))
		case 4:
			_, err = h.do(move(tn, tenants[rng.IntN(len(tenants))]))
		case 5:
			_, err = h.do(setHard(tn, "compute.live_memory_mb", int64(rng.IntN(3000))))
		case 6: // delete a leaf with nothing left, and create it again
			cs, _ := h.store.Consumers(h.ctx, quota.ConsumerFilter{Tenant: tn, Limit: 100})
			for _, c := range cs {
				h.must(del(tn, c.ID))
			}
			if _, err = h.do(&quota.DeleteTenant{Tenant: tn}); err == nil {
				h.must(createUnder(tn, "r"))
			}
		}
		if err == nil {
			continue
		}
		switch quota.ErrorCode(err) {
		case quota.CodeQuotaExceeded, quota.CodeParentCycle, quota.CodeTreeTooDeep, quota.CodeHasChildren, quota.CodeNotFound:
		default:
			t.Fatalf("%v", err)
		}
	}
	CheckTree(t, h.store)
	CheckLedger(t, h.store)
}
