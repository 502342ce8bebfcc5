package postgres_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/pgtest"
	"github.com/allot-dev/allot/internal/postgres"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/testserver"
)

// TestLedgerOrderUnderConcurrentWriters: three processes (stores with
// pools of their own) write distinct tenants as fast as they can, commits
// held open a little to widen the window, while one reader follows
// after= pages and another the event stream. Neither skips or repeats an
// event, and replaying what the pager read gives the stored usage. The
// same readers without the final-position rule do skip: the rule is what
// makes it hold.
func TestLedgerOrderUnderConcurrentWriters(t *testing.T) {
	t.Run("final position", func(t *testing.T) {
		if missed := ledgerOrder(t, false); missed != 0 {
			t.Fatalf("the readers missed %d events", missed)
		}
	})
	t.Run("naive, to show the rule is needed", func(t *testing.T) {
		for attempt := range 5 {
			if missed := ledgerOrder(t, true); missed > 0 {
				t.Logf("attempt %d: the naive readers missed %d events, as expected", attempt, missed)
				return
			}
		}
		t.Fatal("readers without the final-position rule missed nothing in 5 attempts: the test does not exercise the race")
	})
}

// ledgerOrder runs the scenario once and returns how many events a reader
// missed; it fails t on anything else wrong (a repeat, disorder, a replay
// that disagrees).
func ledgerOrder(t *testing.T, naive bool) int {
	dsn := pgtest.Schema(t)
	ctx := context.Background()
	admin := quota.Actor{Name: "test", Role: quota.RoleAdmin}
	hard := int64(1 << 40)
	var engines []*quota.Engine
	var tenants [][]string
	for p := range 3 {
		st := open(t, dsn)
		postgres.BeforeCommit(st, func() { time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond) })
		e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog(), SweepInterval: time.Hour})
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Stop(ctx); st.Close() })
		var mine []string
		for i := range 4 {
			id := fmt.Sprintf("p%d-t%d", p, i)
			mine = append(mine, id)
			for _, op := range []quota.Op{&quota.CreateTenant{Tenant: id},
				&quota.SetQuota{Tenant: id, Resource: "compute.volumes", Quota: quota.QuotaOverride{Hard: &hard}}} {
				if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		engines, tenants = append(engines, e), append(tenants, mine)
	}

	// The pager, on a store of its own.
	pager := open(t, dsn)
	t.Cleanup(func() { pager.Close() })
	// The stream, through a server on another.
	streamStore := open(t, dsn)
	if naive {
		postgres.ReadNaively(pager)
		postgres.ReadNaively(streamStore)
	}
	srv := testserver.Start(t, testserver.Options{Store: streamStore})

	stop := make(chan struct{})
	var writers sync.WaitGroup
	var written atomic.Int64
	for p, e := range engines {
		for w := range 4 {
			writers.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(p), uint64(w)))
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					tn := tenants[p][rng.IntN(len(tenants[p]))]
					id := fmt.Sprintf("w%d-%d", w, rng.IntN(30))
					var op quota.Op = &quota.PutConsumer{Tenant: tn, Consumer: id,
						Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": int64(2 + rng.IntN(50))}}}
					if rng.IntN(3) == 0 {
						op = &quota.DeleteConsumer{Tenant: tn, Consumer: id}
					}
					if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err == nil {
						written.Add(1)
					}
				}
			})
		}
	}

	// The pager follows as closely as it can.
	var paged []*quota.Event
	pagerDone := make(chan error, 1)
	go func() {
		after := int64(0)
		idle := 0
		for {
			es, err := pager.Events(ctx, quota.EventFilter{After: after, Limit: 200})
			if err != nil {
				pagerDone <- err
				return
			}
			for _, e := range es {
				if e.Seq <= after {
					pagerDone <- fmt.Errorf("event %d after %d: out of order or repeated", e.Seq, after)
					return
				}
				after = e.Seq
			}
			paged = append(paged, es...)
			select {
			case <-stop:
				if len(es) == 0 {
					if idle++; idle > 20 {
						pagerDone <- nil
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			default:
			}
		}
	}()
	// The stream follows from the start.
	var streamed []int64
	var smu sync.Mutex
	sctx, cancelStream := context.WithCancel(ctx)
	streamDone := make(chan error, 1)
	go func() {
		c := client.New(srv.URL, client.WithToken(srv.AdminToken))
		streamDone <- c.StreamEvents(sctx, "", 0, func(e client.Event) error {
			smu.Lock()
			streamed = append(streamed, e.Seq)
			smu.Unlock()
			return nil
		})
	}()

	time.Sleep(2 * time.Second)
	close(stop)
	writers.Wait()
	if err := <-pagerDone; err != nil {
		t.Fatal(err)
	}
	// Everything the ledger holds, read after every writer has stopped.
	var all []int64
	for after := int64(0); ; {
		es, err := pager.Events(ctx, quota.EventFilter{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			all = append(all, e.Seq)
			after = e.Seq
		}
		if len(es) < 1000 {
			break
		}
	}
	// Let the stream catch up to the end, then stop it.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		smu.Lock()
		caught := len(streamed) > 0 && streamed[len(streamed)-1] >= all[len(all)-1]
		smu.Unlock()
		if caught {
			break
		}
	}
	cancelStream()
	<-streamDone
	if written.Load() < 100 {
		t.Fatalf("only %d changes were written: the writers did not race", written.Load())
	}

	missed := 0
	pagedSeqs := make([]int64, len(paged))
	for i, e := range paged {
		pagedSeqs[i] = e.Seq
	}
	for name, got := range map[string][]int64{"pager": pagedSeqs, "stream": streamed} {
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("%s: event %d after %d: out of order or repeated", name, got[i], got[i-1])
			}
		}
		n := 0
		for _, seq := range all {
			if _, ok := slices.BinarySearch(got, seq); !ok {
				n++
			}
		}
		if n > 0 {
			var first []int64
			for _, seq := range all {
				if _, ok := slices.BinarySearch(got, seq); !ok && len(first) < 8 {
					first = append(first, seq)
				}
			}
			t.Logf("%s missed %d of %d events, first %v; read %d, up to %d", name, n, len(all), first, len(got), got[len(got)-1])
		}
		missed += n
	}
	if missed > 0 {
		return missed
	}
	// What the pager read replays to the stored usage.
	replay := quota.NewReplay()
	for _, e := range paged {
		if err := replay.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, mine := range tenants {
		for _, tn := range mine {
			used, err := pager.Usage(ctx, tn)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := nonZero(replay.Usage[tn]), nonZero(used); !maps.Equal(got, want) {
				t.Fatalf("%s: the events read replay to %v, the store holds %v", tn, got, want)
			}
		}
	}
	t.Logf("%d changes written by 3 processes; %d events, each read once and in order by the pager and the stream", written.Load(), len(all))
	return 0
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
