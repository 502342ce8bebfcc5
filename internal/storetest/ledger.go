// The ledger: replaying it must reproduce the stored usage.

package storetest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// CheckLedger fails t unless replaying the ledger reproduces every
// tenant's stored usage: from the retention horizon's snapshots (from the
// start while nothing was pruned), and again from the newest checkpoint's,
// which holds the snapshots to the events they stand for.
func CheckLedger(t testing.TB, st quota.Store) {
	t.Helper()
	ctx := t.Context()
	h, err := st.Horizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkReplayFrom(t, st, h.Seq)
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) > 0 && cps[len(cps)-1].Seq > h.Seq {
		checkReplayFrom(t, st, cps[len(cps)-1].Seq)
	}
}

// checkReplayFrom replays the ledger after seq, each tenant starting from
// its newest snapshot at or before seq.
func checkReplayFrom(t testing.TB, st quota.Store, seq int64) {
	t.Helper()
	ctx := t.Context()
	ts, err := st.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	replay := quota.NewReplay()
	if seq > 0 {
		ids := make([]string, len(ts))
		for i, tn := range ts {
			ids[i] = tn.ID
		}
		snaps, err := st.Snapshots(ctx, ids, seq)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range snaps {
			replay.Seed(s)
		}
	}
	after := seq
	for {
		es, err := st.Events(ctx, quota.EventFilter{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Seq <= after {
				t.Fatalf("event %d after event %d: the ledger is out of order", e.Seq, after)
			}
			if err := replay.Apply(e); err != nil {
				t.Fatal(err)
			}
			after = e.Seq
		}
		if len(es) < 1000 {
			break
		}
	}
	for _, tn := range ts {
		used, err := st.Usage(ctx, tn.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := nonZero(replay.Usage[tn.ID]), nonZero(used); !maps.Equal(got, want) {
			t.Errorf("tenant %s: replaying the ledger after %d gives %v, the store holds %v", tn.ID, seq, got, want)
		}
		if got, want := replay.Parents[tn.ID], tn.Parent; got != want {
			t.Errorf("tenant %s: replaying the ledger after %d gives parent %q, the store holds %q", tn.ID, seq, got, want)
		}
	}
	// Every level: the subtree usage the ledger records for each tenant is
	// the store's, and equals the sum of the replayed usage below it.
	records, err := st.LoadTenants(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	sums := replay.SumBelow()
	for _, r := range records {
		id := r.Tenant.ID
		if got, want := nonZero(replay.Below[id]), nonZero(r.Below); !maps.Equal(got, want) {
			t.Errorf("tenant %s: replaying the ledger after %d gives subtree usage %v, the store holds %v", id, seq, got, want)
		}
		if got, want := nonZero(sums[id]), nonZero(r.Below); !maps.Equal(got, want) {
			t.Errorf("tenant %s: the replayed usage below it adds up to %v, the store holds %v", id, got, want)
		}
	}
}

// testLedgerReplay runs random operation sequences and holds the ledger
// to the state: replaying it reproduces every tenant's usage.
func testLedgerReplay(t *testing.T, h *harness) {
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	tenants := []string{"a", "b", "c"}
	for _, id := range tenants {
		h.must(createTenant(id, []string{"", "free", "pro"}[rng.IntN(3)]))
	}
	states := []string{"running", "standby", "stopped"}
	for range 300 {
		tn := tenants[rng.IntN(len(tenants))]
		id := fmt.Sprint("c", rng.IntN(12))
		var ops []quota.Op
		for range 1 + rng.IntN(3) {
			switch rng.IntN(6) {
			case 0, 1:
				ops = append(ops, instance(tn, id+"i", states[rng.IntN(3)], int64(16+rng.IntN(600))))
			case 2:
				ops = append(ops, volume(tn, id+"v", int64(2+rng.IntN(300))))
			case 3:
				ops = append(ops, del(tn, id+"i"))
			case 4:
				ops = append(ops, setHard(tn, []string{"compute.instances", "compute.volumes", "compute.live_memory_mb"}[rng.IntN(3)], int64(rng.IntN(2000))))
			case 5:
				op := volume(tn, id+"r", int64(2+rng.IntN(100)))
				op.Spec.TTL = time.Duration(1+rng.IntN(5)) * time.Second
				ops = append(ops, op)
			}
		}
		h.doOn(h.engine, rng.IntN(8) == 0, ops...) // refusals are part of the test
		if rng.IntN(10) == 0 {
			h.clock.Advance(2 * time.Second)
			if _, err := h.engine.Sweep(h.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	CheckLedger(t, h.store)
}
