package quota_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// gatedStore holds the first write until enough changes wait behind it,
// so that they are committed as one batch.
type gatedStore struct {
	quota.Store
	waiting func() int
	want    int
	once    sync.Once
	// poison makes the store refuse a batch holding an event with this reason.
	poison string
}

func (g *gatedStore) Begin(ctx context.Context, tenants []string) (quota.Tx, error) {
	g.once.Do(func() {
		if g.want == 0 {
			return
		}
		deadline := time.Now().Add(3 * time.Second)
		for g.waiting() < g.want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	})
	tx, err := g.Store.Begin(ctx, tenants)
	if err != nil {
		return nil, err
	}
	return &poisonTx{Tx: tx}, nil
}

func (g *gatedStore) Commit(ctx context.Context, txs []quota.Tx) (int, error) {
	inner := make([]quota.Tx, len(txs))
	for i, t := range txs {
		p := t.(*poisonTx)
		for _, w := range p.writes {
			for _, e := range w.Events {
				if g.poison != "" && e.Reason == g.poison {
					for _, t := range txs[i:] {
						t.Rollback()
					}
					n, err := g.Store.Commit(ctx, inner[:i])
					if err != nil {
						return n, err
					}
					return i, fmt.Errorf("injected: %w: invalid byte sequence", quota.ErrRejected)
				}
			}
		}
		inner[i] = p.Tx
	}
	return g.Store.Commit(ctx, inner)
}

// poisonTx notes what a batch writes.
type poisonTx struct {
	quota.Tx
	writes []*quota.Writes
}

func (p *poisonTx) Apply(w *quota.Writes) {
	p.writes = append(p.writes, w)
	p.Tx.Apply(w)
}

func openSQLite(t *testing.T) quota.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "allot.db"), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var admin = quota.Actor{Name: "test", Role: quota.RoleAdmin}

func volume(tenant, id string, size int64, ttl time.Duration) *quota.PutConsumer {
	return &quota.PutConsumer{Tenant: tenant, Consumer: id,
		Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": size}, TTL: ttl}}
}

func setHard(tenant, resource string, hard int64) quota.Op {
	return &quota.SetQuota{Tenant: tenant, Resource: resource, Quota: quota.QuotaOverride{Hard: &hard}}
}

// TestARejectedChangeFailsAlone: when the store refuses one change's data,
// the other changes of its batch are still committed.
func TestARejectedChangeFailsAlone(t *testing.T) {
	ctx := context.Background()
	g := &gatedStore{Store: openSQLite(t), poison: "poison"}
	e := quota.NewEngine(quota.EngineConfig{Store: g, Catalog: quota.DefaultCatalog()})
	g.waiting = e.QueueDepth
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(ctx)
	for _, op := range []quota.Op{&quota.CreateTenant{Tenant: "t"}, setHard("t", "compute.volumes", 100)} {
		if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err != nil {
			t.Fatal(err)
		}
	}
	g.once, g.want = sync.Once{}, 15 // gate the next batch
	var wg sync.WaitGroup
	errs := make([]error, 21)
	for i := range 21 {
		wg.Go(func() {
			reason := ""
			if i == 10 {
				reason = "poison"
			}
			_, errs[i] = e.Do(ctx, quota.Change{Actor: admin, Reason: reason, Ops: []quota.Op{volume("t", fmt.Sprint("v", i), 2, 0)}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case i == 10 && quota.ErrorCode(err) != quota.CodeInvalid:
			t.Errorf("the poisoned change: %v, want invalid_request", err)
		case i != 10 && err != nil:
			t.Errorf("change %d failed with the poisoned one: %v", i, err)
		}
	}
	u, err := g.Usage(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if u["compute.volumes"] != 20 {
		t.Fatalf("usage %v: want the 20 innocent volumes stored", u)
	}
}

// holdingStore holds the commit that carries the poison until released,
// and counts the batches begun meanwhile.
type holdingStore struct {
	*gatedStore
	once    sync.Once
	held    chan struct{} // closed once the poisoned commit is held
	release chan struct{}
	begun   atomic.Int64
}

func (h *holdingStore) Begin(ctx context.Context, tenants []string) (quota.Tx, error) {
	h.begun.Add(1)
	return h.gatedStore.Begin(ctx, tenants)
}

func (h *holdingStore) Commit(ctx context.Context, txs []quota.Tx) (int, error) {
	for _, t := range txs {
		for _, w := range t.(*poisonTx).writes {
			for _, e := range w.Events {
				if e.Reason == h.poison {
					h.once.Do(func() {
						close(h.held)
						<-h.release
					})
				}
			}
		}
	}
	return h.gatedStore.Commit(ctx, txs)
}

// TestChangesDecidedAfterARejectedOneAreDecidedAgain: batches the committer
// decided on the effects of a change the store then refused (the pipeline
// runs ahead of the writer) are decided again, not refused for another
// sender's bad data.
func TestChangesDecidedAfterARejectedOneAreDecidedAgain(t *testing.T) {
	ctx := context.Background()
	h := &holdingStore{gatedStore: &gatedStore{Store: openSQLite(t), poison: "poison"}, held: make(chan struct{}), release: make(chan struct{})}
	e := quota.NewEngine(quota.EngineConfig{Store: h, Catalog: quota.DefaultCatalog()})
	h.waiting = e.QueueDepth
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(ctx)
	for _, op := range []quota.Op{&quota.CreateTenant{Tenant: "t"}, &quota.CreateTenant{Tenant: "u"}, setHard("t", "compute.volumes", 100)} {
		if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err != nil {
			t.Fatal(err)
		}
	}
	var poisoned error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, poisoned = e.Do(ctx, quota.Change{Actor: admin, Reason: "poison", Ops: []quota.Op{volume("t", "bad", 2, 0)}})
	})
	<-h.held
	begun := h.begun.Load()
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{volume([]string{"t", "u"}[i%2], fmt.Sprint("v", i), 2, 0)}})
		})
	}
	for deadline := time.Now().Add(5 * time.Second); h.begun.Load() == begun; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no batch was decided while the poisoned one was committing: the test proves nothing")
		}
	}
	close(h.release)
	wg.Wait()
	if quota.ErrorCode(poisoned) != quota.CodeInvalid {
		t.Errorf("the poisoned change: %v, want invalid_request", poisoned)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("change %d, decided while the poisoned one committed: %v", i, err)
		}
	}
	for tenant, want := range map[string]int64{"t": 3, "u": 3} {
		u, err := h.Usage(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if u["compute.volumes"] != want {
			t.Errorf("%s: usage %v, want %d volumes", tenant, u, want)
		}
	}
}

// countingHandler counts log records at or above a level.
type countingHandler struct {
	slog.Handler
	n atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}

// batchCounter counts failed batches.
type batchCounter struct{ failed atomic.Int64 }

func (b *batchCounter) Batch(_ int, _ time.Duration, err error) {
	if err != nil {
		b.failed.Add(1)
	}
}
func (b *batchCounter) Decided(quota.OpType, quota.Code) {}
func (b *batchCounter) Expired(int)                      {}

// brokenStore fails every commit once broken.
type brokenStore struct {
	quota.Store
	broken atomic.Bool
}

func (b *brokenStore) Commit(ctx context.Context, txs []quota.Tx) (int, error) {
	if !b.broken.Load() {
		return b.Store.Commit(ctx, txs)
	}
	for _, t := range txs {
		t.Rollback()
	}
	return 0, fmt.Errorf("injected: input/output error")
}

// TestAFailedCommitIsLoggedOnce: a batch that fails is one log line, and
// the answers carry no cause that would be logged again per request.
func TestAFailedCommitIsLoggedOnce(t *testing.T) {
	ctx := context.Background()
	h := &countingHandler{Handler: slog.DiscardHandler}
	broken := &brokenStore{Store: openSQLite(t)}
	g := &gatedStore{Store: broken}
	obs := &batchCounter{}
	e := quota.NewEngine(quota.EngineConfig{Store: g, Catalog: quota.DefaultCatalog(), Logger: slog.New(h), Observer: obs})
	g.waiting = e.QueueDepth
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(ctx)
	for _, op := range []quota.Op{&quota.CreateTenant{Tenant: "t"}, setHard("t", "compute.volumes", 100)} {
		if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err != nil {
			t.Fatal(err)
		}
	}
	broken.broken.Store(true)
	g.once, g.want = sync.Once{}, 40
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 50 {
		wg.Go(func() {
			_, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{volume("t", fmt.Sprint("v", i), 2, 0)}})
			qe, ok := err.(*quota.Error)
			if !ok || qe.Code != quota.CodeUnavailable || qe.Err != nil {
				t.Errorf("answer %#v: want unavailable without a cause to log", err)
			}
			failed.Add(1)
		})
	}
	wg.Wait()
	// Each failed commit is one line, whatever the number of its changes;
	// the batches after it are refused without one.
	if n, batches := h.n.Load(), obs.failed.Load(); n == 0 || n > batches || n > 5 {
		t.Fatalf("%d log lines for %d failed changes in %d batches, want one a batch", n, failed.Load(), batches)
	}
}

// TestTheSweeperKeepsUpWithASmallQueue: expiring reservations never waits
// behind, or is refused by, a full client queue.
func TestTheSweeperKeepsUpWithASmallQueue(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	st := openSQLite(t)
	e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog(), Now: clock.Now,
		QueueSize: 16, SweepInterval: time.Hour})
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(ctx)
	must := func(ops ...quota.Op) {
		t.Helper()
		if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: ops}); err != nil {
			t.Fatal(err)
		}
	}
	must(&quota.CreateTenant{Tenant: "t"})
	must(setHard("t", "compute.volumes", 1000), setHard("t", "compute.total_volume_mb", 1<<20))
	for i := range 600 {
		must(volume("t", fmt.Sprint("r", i), 2, time.Minute))
	}
	clock.Advance(2 * time.Minute)

	// Keep the client queue full while the sweep runs.
	stop := make(chan struct{})
	var flood sync.WaitGroup
	for w := range 32 {
		flood.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{volume("t", fmt.Sprintf("f%d-%d", w, i%3), 2, 0)}})
			}
		})
	}
	released, err := e.Sweep(ctx)
	close(stop)
	flood.Wait()
	if err != nil || released != 600 {
		t.Fatalf("one sweep released %d of 600 expired reservations (err %v)", released, err)
	}
}

// TestExpiryIsDecidedByTime: a reservation whose time ran out cannot be
// confirmed, renewed or deleted as if it still held, whether or not the
// sweeper has run.
func TestExpiryIsDecidedByTime(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	st := openSQLite(t)
	e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog(), Now: clock.Now, SweepInterval: time.Hour})
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(ctx)
	do := func(ops ...quota.Op) (*quota.Result, error) {
		return e.Do(ctx, quota.Change{Actor: admin, Ops: ops})
	}
	if _, err := do(&quota.CreateTenant{Tenant: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := do(setHard("t", "compute.volumes", 2)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := do(volume("t", "res-"+id, 2, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(11 * time.Second)

	// Confirming with If-Match: the reservation is gone, so its generation
	// no longer matches.
	confirm := volume("t", "res-a", 2, 0)
	confirm.IfMatch = 1
	if _, err := do(confirm); quota.ErrorCode(err) != quota.CodeGenerationMismatch {
		t.Fatalf("confirming an expired reservation with If-Match: %v, want generation_mismatch", err)
	}
	// Without If-Match the PUT creates a new consumer: it is claimed afresh.
	res, err := do(volume("t", "res-a", 2, 0))
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Ops[0]; !o.Created || o.Consumer.Generation != 1 || o.Consumer.ExpiresAt != nil {
		t.Fatalf("PUT after expiry: created=%v generation=%d expires=%v; want a new consumer", o.Created, o.Consumer.Generation, o.Consumer.ExpiresAt)
	}
	evs, err := st.Events(ctx, quota.EventFilter{Tenant: "t", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-2:]
	if last[0].Type != "consumer.expired" || last[0].Subject != "res-a" || last[1].Type != "consumer.put" {
		t.Fatalf("the ledger ends %s %s, %s %s; want the expiry recorded before the new claim",
			last[0].Type, last[0].Subject, last[1].Type, last[1].Subject)
	}
	// Deleting an expired reservation finds nothing to delete.
	if _, err := do(&quota.DeleteConsumer{Tenant: "t", Consumer: "res-b"}); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatalf("deleting an expired reservation: %v, want not_found", err)
	}
	if n, err := e.Sweep(ctx); n != 1 || err != nil {
		t.Fatalf("the sweep released %d (err %v), want res-b alone", n, err)
	}
	if u, _ := st.Usage(ctx, "t"); u["compute.volumes"] != 1 {
		t.Fatalf("usage %v, want the one new volume", u)
	}
}
