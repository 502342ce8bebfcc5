package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// The engine keeps its state in memory and pipelines commits: these tests
// hold it to what that must not change.

// faultyStore fails chosen commits and can hold commits back.
type faultyStore struct {
	quota.Store
	commits atomic.Int64
	failAt  int64         // the commit call that fails (1-based); 0: none
	hold    chan struct{} // non-nil: each commit waits until it is closed
	first   chan struct{} // non-nil: the first commit waits until it is closed
}

func (f *faultyStore) Commit(ctx context.Context, txs []quota.Tx) (int, error) {
	n := f.commits.Add(1)
	if f.hold != nil {
		<-f.hold
	}
	if n == 1 && f.first != nil {
		<-f.first
	}
	if n == f.failAt {
		for _, t := range txs {
			t.Rollback()
		}
		return 0, errors.New("injected: the disk failed")
	}
	return f.Store.Commit(ctx, txs)
}

// startOn starts an engine over st, stopped with the test.
func (h *harness) startOn(st quota.Store, cfg quota.EngineConfig) *quota.Engine {
	h.t.Helper()
	cfg.Store, cfg.Catalog, cfg.Now, cfg.SweepInterval = st, quota.DefaultCatalog(), h.clock.Now, time.Hour
	e := quota.NewEngine(cfg)
	if err := e.Start(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { e.Stop(context.Background()) })
	return e
}

// testPipelineFailure: a commit that fails in the middle of a pipeline
// acknowledges nothing of its own batch or of any batch decided after it,
// every acknowledged change is stored, and afterwards the engine's memory
// equals the store.
func testPipelineFailure(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.instances", 1000))
	// The engine under test runs on this process's store, so that its
	// memory and the store it is compared with are one database.
	h.engine.Stop(h.ctx)
	// The first commit is held while small batches pile up behind it in the
	// pipeline; the second fails.
	f := &faultyStore{Store: h.store, failAt: 2, first: make(chan struct{})}
	e := h.startOn(f, quota.EngineConfig{MaxBatch: 8})
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for e.QueueDepth() < 100 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		close(f.first)
	}()
	var wg sync.WaitGroup
	answers := make([]error, 200)
	for i := range answers {
		wg.Go(func() {
			_, answers[i] = e.Do(h.ctx, quota.Change{Actor: admin, Ops: []quota.Op{instance("t", fmt.Sprint("vm-", i), "stopped", 16)}})
		})
	}
	wg.Wait()
	acked, refused := 0, 0
	for i, err := range answers {
		_, missing := h.store.Consumer(h.ctx, "t", fmt.Sprint("vm-", i))
		switch {
		case err == nil:
			acked++
			if missing != nil {
				t.Fatalf("vm-%d was acknowledged but is not stored: %v", i, missing)
			}
		case quota.ErrorCode(err) == quota.CodeUnavailable:
			refused++
			if quota.ErrorCode(missing) != quota.CodeNotFound {
				t.Fatalf("vm-%d was answered %v, yet it is stored (%v)", i, err, missing)
			}
		default:
			t.Fatalf("vm-%d: %v", i, err)
		}
	}
	if refused == 0 || acked == 0 || f.commits.Load() < 3 {
		t.Fatalf("the injected failure struck no change (%d commits)", f.commits.Load())
	}
	// Memory equals the store: the next decisions are made on the truth.
	v, err := e.View(h.ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if stored := h.usage("t"); !maps.Equal(nonZero(v.Usage), nonZero(stored)) || stored["compute.instances"] != int64(acked) {
		t.Fatalf("after the failure: the engine's view %v, the store %v, %d acknowledged", v.Usage, stored, acked)
	}
	for i, err := range answers {
		if err != nil { // refused before: the same claim now succeeds, once
			if _, err := e.Do(h.ctx, quota.Change{Actor: admin, Ops: []quota.Op{instance("t", fmt.Sprint("vm-", i), "stopped", 16)}}); err != nil {
				t.Fatalf("retrying vm-%d: %v", i, err)
			}
		}
	}
	if u := h.usage("t"); u["compute.instances"] != 200 {
		t.Fatalf("after the retries: %v, want 200 instances", u)
	}
	CheckInvariants(t, h.store, "t")
}

// testViewsAfterCommit: readers never see a batch that has not committed.
func testViewsAfterCommit(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.engine.Stop(h.ctx)
	hold := make(chan struct{})
	f := &faultyStore{Store: h.store, hold: hold}
	e := h.startOn(f, quota.EngineConfig{})
	done := make(chan error, 1)
	go func() {
		_, err := e.Do(h.ctx, quota.Change{Actor: admin, Ops: []quota.Op{volume("t", "v1", 10)}})
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for f.commits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if f.commits.Load() == 0 {
		t.Fatal("the change never reached its commit")
	}
	// The batch is decided and on its way to the store, not committed.
	if v, _ := e.View(h.ctx, "t"); v.Usage["compute.volumes"] != 0 {
		t.Fatalf("a reader sees %v before the batch committed", v.Usage)
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, _ := e.View(h.ctx, "t"); v.Usage["compute.volumes"] != 1 {
		t.Fatalf("after the commit a reader sees %v, want the volume", v.Usage)
	}
}

// testSmallCache: with room for 100 consumers and thousands of them, every
// decision stays exact; consumers are evicted and read again.
func testSmallCache(t *testing.T, h *harness) {
	h.engine.Stop(h.ctx)
	e := h.startOn(h.store, quota.EngineConfig{CacheConsumers: 100})
	do := func(ops ...quota.Op) error {
		_, err := e.Do(h.ctx, quota.Change{Actor: admin, Ops: ops})
		return err
	}
	const tenants, per = 5, 600
	for i := range tenants {
		id := fmt.Sprint("t", i)
		h.mu.Lock()
		h.seen[id] = true
		h.mu.Unlock()
		if err := do(createTenant(id, "")); err != nil {
			t.Fatal(err)
		}
		if err := do(setHard(id, "compute.volumes", per)); err != nil {
			t.Fatal(err)
		}
		if err := do(setHard(id, "compute.total_volume_mb", 1<<30)); err != nil {
			t.Fatal(err)
		}
	}
	for j := range per {
		for i := range tenants {
			if err := do(volume(fmt.Sprint("t", i), fmt.Sprint("v", j), int64(2+j%10))); err != nil {
				t.Fatalf("volume %d of t%d: %v", j, i, err)
			}
		}
	}
	// Every tenant is full: one more is refused, though most of its
	// consumers were evicted long ago.
	for i := range tenants {
		if err := do(volume(fmt.Sprint("t", i), "one-more", 2)); quota.ErrorCode(err) != quota.CodeQuotaExceeded {
			t.Fatalf("t%d over its quota: %v", i, err)
		}
	}
	// Changes to evicted consumers are decided on their stored state:
	// generations, footprints and deletions.
	for i := range tenants {
		tn := fmt.Sprint("t", i)
		grow := volume(tn, "v0", 900)
		grow.IfMatch = 1
		if err := do(grow); err != nil {
			t.Fatalf("growing evicted v0 of %s: %v", tn, err)
		}
		if err := do(del(tn, "v1")); err != nil {
			t.Fatalf("deleting evicted v1 of %s: %v", tn, err)
		}
		if err := do(del(tn, "v1")); quota.ErrorCode(err) != quota.CodeNotFound {
			t.Fatalf("deleting v1 of %s again: %v", tn, err)
		}
		if err := do(volume(tn, "back", 2)); err != nil {
			t.Fatalf("a volume in the room v1 left in %s: %v", tn, err)
		}
		CheckInvariants(t, h.store, tn)
		want := map[string]int64{"compute.volumes": per, "compute.total_volume_mb": 0}
		for j := range per {
			want["compute.total_volume_mb"] += int64(2 + j%10)
		}
		want["compute.total_volume_mb"] += 900 - 2 - 3 + 2 // v0 grew from 2 to 900; v1 (3) left; back (2) came
		if got := h.usage(tn); !maps.Equal(nonZero(got), want) {
			t.Fatalf("%s: usage %v, want %v", tn, got, want)
		}
	}
	if ev := e.CacheEvictions(); ev == 0 {
		t.Fatal("nothing was evicted from a cache of 100 holding 3000 consumers")
	}
}

// testViewsOfOtherProcesses: a process's readers see another process's
// commits within a bounded time, without a write of their own.
func testViewsOfOtherProcesses(t *testing.T, h *harness) {
	if h.cfg.OneProcess {
		t.Skip("the store serves one process")
	}
	h.must(createTenant("t", ""))
	_, other := h.start()
	if _, err := other.View(h.ctx, "t"); err != nil {
		t.Fatal(err)
	}
	h.must(volume("t", "v1", 10))
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := other.View(h.ctx, "t")
		if err == nil && v.Usage["compute.volumes"] == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("another process's reader still sees %v, %v after 10 s", v, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testAlternatingProcesses: two processes take turns on one tenant, and
// each one's next decision sees what the other just did.
func testAlternatingProcesses(t *testing.T, h *harness) {
	if h.cfg.OneProcess {
		t.Skip("the store serves one process")
	}
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.volumes", 10))
	_, other := h.start()
	engines := []*quota.Engine{h.engine, other}
	for i := range 10 {
		if _, err := h.doOn(engines[i%2], false, volume("t", fmt.Sprint("v", i), 2)); err != nil {
			t.Fatalf("volume %d on process %d: %v", i, i%2, err)
		}
	}
	// Both are full now, whichever asks.
	for i, e := range engines {
		if _, err := h.doOn(e, false, volume("t", "v-extra", 2)); quota.ErrorCode(err) != quota.CodeQuotaExceeded {
			t.Fatalf("process %d, over the quota: %v", i, err)
		}
	}
	// A consumer made by one is changed and deleted by the other.
	grow := volume("t", "v0", 4)
	grow.IfMatch = 1
	if _, err := h.doOn(other, false, grow); err != nil {
		t.Fatal(err)
	}
	if _, err := h.doOn(h.engine, false, del("t", "v0")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.doOn(other, false, del("t", "v0")); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatalf("deleting v0 again from the other process: %v", err)
	}
	if u := h.usage("t"); u["compute.volumes"] != 9 || u["compute.total_volume_mb"] != 18 {
		t.Fatalf("usage %v", u)
	}
}
