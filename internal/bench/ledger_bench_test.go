package bench_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/ledger"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
	"github.com/allot-dev/allot/internal/testserver"
)

// The ledger over months, measured (see README "The ledger over months"):
//
//	go test ./internal/bench -run '^$' -bench Ledger -benchtime 1x
//
// Each benchmark runs its scenario once and reports figures; none asserts
// a time.

// virtualClock runs speed times faster than the wall clock, from start.
type virtualClock struct {
	start, wall time.Time
	speed       float64
}

func (c virtualClock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.wall)) * c.speed))
}

var benchAdmin = quota.Actor{Name: "bench", Role: quota.RoleAdmin}

// benchEngine is a SQLite store and an engine on it, with tenants t0…t99
// whose instance quota is out of reach.
func benchEngine(b *testing.B, dir string, now func() time.Time) (*sqlite.Store, *quota.Engine, []string) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "allot.db"), "bench", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog(), Now: now})
	if err := e.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Stop(ctx); st.Close() })
	hard := int64(1 << 40)
	tenants := make([]string, 100)
	for i := range tenants {
		tenants[i] = fmt.Sprint("t", i)
		for _, op := range []quota.Op{&quota.CreateTenant{Tenant: tenants[i]},
			&quota.SetQuota{Tenant: tenants[i], Resource: "compute.instances", Quota: quota.QuotaOverride{Hard: &hard}}} {
			if _, err := e.Do(ctx, quota.Change{Actor: benchAdmin, Ops: []quota.Op{op}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return st, e, tenants
}

// claimLoad runs 64 callers creating and deleting instances until stop
// closes, and returns the claims made and their latencies.
func claimLoad(e *quota.Engine, tenants []string, stop <-chan struct{}) (claims int64, latencies []time.Duration) {
	var n atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := range 64 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var held quota.ConsumerKey
			var mine []time.Duration
			defer func() { mu.Lock(); latencies = append(latencies, mine...); mu.Unlock() }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := quota.ConsumerKey{Tenant: tenants[rng.IntN(len(tenants))], ID: fmt.Sprint("c", next.Add(1))}
				began := time.Now()
				if _, err := e.Do(context.Background(), quota.Change{Actor: benchAdmin, Ops: []quota.Op{&quota.PutConsumer{Tenant: k.Tenant, Consumer: k.ID,
					Spec: quota.Spec{Kind: "compute.instance", State: "stopped", Attributes: map[string]int64{"memory_mb": 16}}}}}); err != nil {
					return
				}
				mine = append(mine, time.Since(began))
				if held.ID != "" {
					began = time.Now()
					if _, err := e.Do(context.Background(), quota.Change{Actor: benchAdmin, Ops: []quota.Op{&quota.DeleteConsumer{Tenant: held.Tenant, Consumer: held.ID}}}); err != nil {
						return
					}
					mine = append(mine, time.Since(began))
				}
				held = k
				n.Add(2)
			}
		})
	}
	wg.Wait()
	return n.Load(), latencies
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)*99/100]
}

// fileBytes is the size of a file, 0 if it is not there.
func fileBytes(path string) int64 {
	if fi, err := os.Stat(path); err == nil {
		return fi.Size()
	}
	return 0
}

// BenchmarkLedgerBoundedSize runs a steady claim load for four retention
// periods of one (virtual) minute, the clock running ten times faster than
// the wall's, with an archive, and reports the database's and the WAL's
// size after 1, 2 and 4 periods: with pruning they level off once the
// first period has passed.
func BenchmarkLedgerBoundedSize(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		clk := virtualClock{start: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), wall: time.Now(), speed: 10}
		st, e, tenants := benchEngine(b, dir, clk.Now)
		archive := filepath.Join(dir, "archive")
		k, err := ledger.New(ledger.Config{Store: st, Logger: slog.New(slog.DiscardHandler), Now: clk.Now, Retention: time.Minute,
			SnapshotInterval: 10 * time.Second, Tick: 100 * time.Millisecond, Archive: archive})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		kept := make(chan struct{})
		go func() { defer close(kept); k.Run(ctx) }()
		stop := make(chan struct{})
		done := make(chan int64)
		go func() { n, _ := claimLoad(e, tenants, stop); done <- n }()
		period := time.Duration(float64(time.Minute) / clk.speed)
		sizes, wal, rows := map[int]int64{}, map[int]int64{}, map[int]int64{}
		for p := 1; p <= 4; p++ {
			time.Sleep(period)
			if p == 1 || p == 2 || p == 4 {
				sizes[p], wal[p] = fileBytes(filepath.Join(dir, "allot.db")), fileBytes(filepath.Join(dir, "allot.db-wal"))
				rows[p], _, _ = st.LedgerSize(context.Background())
			}
		}
		close(stop)
		claims := <-done
		cancel()
		<-kept
		for _, p := range []int{1, 2, 4} {
			b.ReportMetric(float64(sizes[p])/1e6, fmt.Sprintf("db-MB@%dperiods", p))
			b.ReportMetric(float64(wal[p])/1e6, fmt.Sprintf("wal-MB@%dperiods", p))
			b.ReportMetric(float64(rows[p]), fmt.Sprintf("events@%dperiods", p))
		}
		b.ReportMetric(float64(claims)/(4*period).Seconds(), "claims/s")
		b.ReportMetric(float64(k.Stats().Pruned), "pruned")
		var archived int64
		files, _ := filepath.Glob(filepath.Join(archive, "*.gz"))
		for _, f := range files {
			archived += fileBytes(f)
		}
		b.ReportMetric(float64(archived)/float64(max(1, k.Stats().Archived)), "archive-B/event")
		b.ReportMetric(float64(sizes[4])/float64(max(1, rows[4])), "db-B/event@4periods")
	}
}

// BenchmarkLedgerPruningVsClaims generates a 10-million-event ledger with
// the store's bulk path, takes its snapshots, then measures claims at 64
// callers for ten seconds without pruning and ten seconds while those
// events are pruned, and reports the ratios.
func BenchmarkLedgerPruningVsClaims(b *testing.B) {
	const events = 10_000_000
	const window = 10 * time.Second
	for b.Loop() {
		dir := b.TempDir()
		start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		var offset atomic.Int64 // the clock: start, then the wall once the load begins
		now := func() time.Time { return start.Add(time.Duration(offset.Load())) }
		st, e, tenants := benchEngine(b, dir, now)
		offset.Store(int64(time.Second))
		began := time.Now()
		if err := st.GenerateEvents(context.Background(), "t0", events, now(), time.Microsecond); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(events)/time.Since(began).Seconds(), "generated-events/s")
		offset.Store(int64(2 * time.Hour))
		k, err := ledger.New(ledger.Config{Store: st, Logger: slog.New(slog.DiscardHandler), Now: now, Retention: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		began = time.Now()
		for {
			took, err := k.Checkpoint(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if !took {
				break
			}
		}
		b.ReportMetric(time.Since(began).Seconds(), "snapshot-s")
		wall := time.Now()
		offset.Store(int64(2*time.Hour) + int64(time.Since(wall)))
		ticking := make(chan struct{})
		defer close(ticking)
		go func() {
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ticking:
					return
				case <-t.C:
					offset.Store(int64(2*time.Hour) + int64(time.Since(wall)))
				}
			}
		}()
		measure := func(pruning bool) (float64, time.Duration) {
			ctx, cancel := context.WithCancel(context.Background())
			kept := make(chan struct{})
			if pruning {
				go func() { defer close(kept); k.Run(ctx) }()
			} else {
				close(kept)
			}
			stop := make(chan struct{})
			time.AfterFunc(window, func() { close(stop) })
			n, lat := claimLoad(e, tenants, stop)
			cancel()
			<-kept
			return float64(n) / window.Seconds(), p99(lat)
		}
		base, baseP99 := measure(false)
		before := k.Stats().Pruned
		with, withP99 := measure(true)
		b.ReportMetric(base, "claims/s-alone")
		b.ReportMetric(with, "claims/s-pruning")
		b.ReportMetric(with/base, "throughput-ratio")
		b.ReportMetric(float64(baseP99.Microseconds())/1000, "p99-ms-alone")
		b.ReportMetric(float64(withP99.Microseconds())/1000, "p99-ms-pruning")
		b.ReportMetric(float64(withP99)/float64(baseP99), "p99-ratio")
		b.ReportMetric(float64(k.Stats().Pruned-before)/window.Seconds(), "pruned-events/s")
	}
}

// BenchmarkLedgerReads compares usage?at= and a 100-point history over the
// last hour on a tenant with 10 million events to the same on a tenant
// with a thousand, through the HTTP API.
func BenchmarkLedgerReads(b *testing.B) {
	events := 10_000_000
	if n, err := strconv.Atoi(os.Getenv("ALLOT_BENCH_EVENTS")); err == nil {
		events = n
	}
	for b.Loop() {
		start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		var offset atomic.Int64
		now := func() time.Time { return start.Add(time.Duration(offset.Load())) }
		dir := b.TempDir()
		st, err := sqlite.Open(context.Background(), filepath.Join(dir, "allot.db"), "local", slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		srv := testserver.Start(b, testserver.Options{Store: st, Now: now})
		c := client.New(srv.URL, client.WithToken(srv.AdminToken))
		ctx := context.Background()
		for _, id := range []string{"big", "small"} {
			if _, err := c.CreateTenant(ctx, client.CreateTenantRequest{ID: id}); err != nil {
				b.Fatal(err)
			}
		}
		// Ten million events for big over ten hours, a thousand for small.
		offset.Store(int64(time.Second))
		if err := st.GenerateEvents(ctx, "big", events, now(), 10*time.Hour/time.Duration(events)); err != nil {
			b.Fatal(err)
		}
		if err := st.GenerateEvents(ctx, "small", 1000, now(), 10*time.Hour/1000); err != nil {
			b.Fatal(err)
		}
		offset.Store(int64(10*time.Hour + time.Minute))
		k, err := ledger.New(ledger.Config{Store: st, Logger: slog.New(slog.DiscardHandler), Now: now})
		if err != nil {
			b.Fatal(err)
		}
		for {
			took, err := k.Checkpoint(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if !took {
				break
			}
		}
		timeIt := func(path string) time.Duration {
			best := time.Duration(1 << 62)
			for range 20 {
				began := time.Now()
				req, _ := http.NewRequest("GET", srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("GET %s: %v %v", path, resp.Status, err)
				}
				resp.Body.Close()
				best = min(best, time.Since(began))
			}
			return best
		}
		at := url.QueryEscape(now().Add(-90 * time.Minute).Format(time.RFC3339Nano))
		from := url.QueryEscape(now().Add(-61 * time.Minute).Format(time.RFC3339Nano))
		to := url.QueryEscape(now().Add(-time.Minute).Format(time.RFC3339Nano))
		for _, tn := range []string{"big", "small"} {
			usage := timeIt("/api/v1/tenants/" + tn + "/usage?at=" + at)
			history := timeIt("/api/v1/tenants/" + tn + "/usage/history?points=100&from=" + from + "&to=" + to)
			b.ReportMetric(float64(usage.Microseconds())/1000, "usage-at-ms-"+tn)
			b.ReportMetric(float64(history.Microseconds())/1000, "history100-ms-"+tn)
		}
	}
}
