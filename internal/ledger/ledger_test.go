package ledger_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/ledger"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixture is a SQLite store with an engine, on a clock the test moves.
func fixture(t *testing.T) (quota.Store, *quota.Engine, *clock) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "allot.db"), "local", discard)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog(), Now: clk.Now, SweepInterval: time.Hour})
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background()); st.Close() })
	return st, e, clk
}

func do(t *testing.T, e *quota.Engine, ops ...quota.Op) {
	t.Helper()
	if _, err := e.Do(t.Context(), quota.Change{Actor: quota.Actor{Name: "test", Role: quota.RoleAdmin}, Ops: ops}); err != nil {
		t.Fatal(err)
	}
}

func volume(tenant, id string, size int64) quota.Op {
	return &quota.PutConsumer{Tenant: tenant, Consumer: id, Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": size}}}
}

func allEvents(t *testing.T, st quota.Store) []*quota.Event {
	t.Helper()
	var out []*quota.Event
	for after := int64(0); ; {
		es, err := st.Events(t.Context(), quota.EventFilter{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, es...)
		if len(es) < 1000 {
			return out
		}
		after = es[len(es)-1].Seq
	}
}

// TestArchiveHoldsWhatWasPruned writes events over three hours, prunes
// with an archive, and reads the archive back: it holds exactly the events
// pruned, in order, in one file per hour, and every checksum verifies; a
// file changed afterwards is caught.
func TestArchiveHoldsWhatWasPruned(t *testing.T) {
	st, e, clk := fixture(t)
	hard := int64(1000)
	do(t, e, &quota.CreateTenant{Tenant: "acme"})
	do(t, e, &quota.SetQuota{Tenant: "acme", Resource: "compute.volumes", Quota: quota.QuotaOverride{Hard: &hard}})
	do(t, e, &quota.CreateTenant{Tenant: "beta"})
	do(t, e, &quota.SetQuota{Tenant: "beta", Resource: "compute.volumes", Quota: quota.QuotaOverride{Hard: &hard}})
	dir := filepath.Join(t.TempDir(), "archive")
	k, err := ledger.New(ledger.Config{Store: st, Logger: discard, Now: clk.Now, Retention: time.Hour, Archive: dir, Chunk: 13, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 90 {
		do(t, e, volume("acme", fmt.Sprint("v", i%20), int64(2+i%7)))
		if i%3 == 0 {
			do(t, e, volume("beta", fmt.Sprint("w", i%4), 2))
		}
		if i%10 == 9 {
			if _, err := k.Checkpoint(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		clk.Add(2 * time.Minute) // 3 hours in all
	}
	before := allEvents(t, st)
	for range 100 {
		if err := k.Step(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	after := allEvents(t, st)
	h, err := st.Horizon(t.Context())
	if err != nil || h.Seq == 0 {
		t.Fatalf("horizon %+v %v: nothing pruned", h, err)
	}
	var pruned []int64
	for _, ev := range before {
		if !slices.ContainsFunc(after, func(a *quota.Event) bool { return a.Seq == ev.Seq }) {
			pruned = append(pruned, ev.Seq)
		}
	}
	if len(pruned) == 0 {
		t.Fatal("nothing was pruned")
	}
	var archived []int64
	if err := ledger.Read(dir, ledger.Filter{}, func(ev *quota.Event) error {
		archived = append(archived, ev.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The archive holds every event up to the horizon (audit events too,
	// which stay in the ledger as well); every pruned event is in it.
	for i := 1; i < len(archived); i++ {
		if archived[i] <= archived[i-1] {
			t.Fatalf("archive out of order at %d: %d after %d", i, archived[i], archived[i-1])
		}
	}
	var upToHorizon []int64
	for _, ev := range before {
		if ev.Seq <= h.Seq {
			upToHorizon = append(upToHorizon, ev.Seq)
		}
	}
	if !slices.Equal(archived[:min(len(archived), len(upToHorizon))], upToHorizon) {
		t.Fatalf("archive holds %v…, the ledger up to the horizon was %v…", archived[:min(5, len(archived))], upToHorizon[:min(5, len(upToHorizon))])
	}
	for _, seq := range pruned {
		if _, ok := slices.BinarySearch(archived, seq); !ok {
			t.Fatalf("pruned event %d is not in the archive", seq)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "events-*.ndjson.gz"))
	if len(files) < 2 {
		t.Fatalf("archive files: %v, want one per hour", files)
	}
	// Filters: one tenant, a time range.
	from, to := before[0].Time.Add(30*time.Minute), before[0].Time.Add(90*time.Minute)
	if err := ledger.Read(dir, ledger.Filter{Tenant: "beta", From: from, To: to}, func(ev *quota.Event) error {
		if ev.Tenant != "beta" || ev.Time.Before(from) || ev.Time.After(to) {
			return fmt.Errorf("filter let through event %d of %s at %s", ev.Seq, ev.Tenant, ev.Time)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A changed file fails its checksum.
	b, _ := os.ReadFile(files[0])
	b[len(b)/2] ^= 0xff
	os.WriteFile(files[0], b, 0o600)
	err = ledger.Read(dir, ledger.Filter{}, func(*quota.Event) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("reading a corrupted archive: %v", err)
	}
}

// TestArchiveRepairsACrash: a file longer than its manifest entry (a
// crash between writing it and the manifest) is cut back on opening, so no
// event is archived twice.
func TestArchiveRepairsACrash(t *testing.T) {
	st, e, clk := fixture(t)
	do(t, e, &quota.CreateTenant{Tenant: "acme"})
	hard := int64(100)
	do(t, e, &quota.SetQuota{Tenant: "acme", Resource: "compute.volumes", Quota: quota.QuotaOverride{Hard: &hard}})
	for i := range 20 {
		do(t, e, volume("acme", fmt.Sprint("v", i%5), 2))
	}
	head, _ := st.LastSeq(t.Context())
	dir := t.TempDir()
	a, err := ledger.OpenArchive(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(t.Context(), st, head/2, 1000); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "events-*"))
	f, _ := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("half a gzip member"))
	f.Close()
	_ = clk
	a, err = ledger.OpenArchive(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(t.Context(), st, head, 1000); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	if err := ledger.Read(dir, ledger.Filter{}, func(ev *quota.Event) error { seqs = append(seqs, ev.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if int64(len(seqs)) != head || seqs[0] != 1 || seqs[len(seqs)-1] != head {
		t.Fatalf("archive after a repaired crash: %d events (%v…), want 1..%d once each", len(seqs), seqs[:min(3, len(seqs))], head)
	}
}
