package bench_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
)

// BenchmarkEngineClaims drives the engine alone (no HTTP) the way the
// claim workload does: 64 callers, each creating an instance in one of 100
// tenants, then deleting the one it created before, every change durable
// before its answer. It reports claims/s and the process's CPU time per
// claim (user and system, every goroutine: the committer, the writer, and
// the callers).
func BenchmarkEngineClaims(b *testing.B) {
	for _, callers := range []int{64, 256} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "allot.db"), "bench", slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog()})
			if err := e.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer e.Stop(ctx)
			admin := quota.Actor{Name: "bench", Role: quota.RoleAdmin}
			hard := int64(1 << 40)
			tenants := make([]string, 100)
			for i := range tenants {
				tenants[i] = fmt.Sprint("t", i)
				for _, op := range []quota.Op{&quota.CreateTenant{Tenant: tenants[i]},
					&quota.SetQuota{Tenant: tenants[i], Resource: "compute.instances", Quota: quota.QuotaOverride{Hard: &hard}}} {
					if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err != nil {
						b.Fatal(err)
					}
				}
			}
			var claims atomic.Int64
			var next atomic.Int64
			cpu0, wall0 := cpuTime(), time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := max(1, b.N/callers)
			for w := range callers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					var held quota.ConsumerKey
					for range per {
						k := quota.ConsumerKey{Tenant: tenants[rng.IntN(len(tenants))], ID: fmt.Sprint("c", next.Add(1))}
						if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{&quota.PutConsumer{Tenant: k.Tenant, Consumer: k.ID,
							Spec: quota.Spec{Kind: "compute.instance", State: "stopped", Attributes: map[string]int64{"memory_mb": 16}}}}}); err != nil {
							b.Error(err)
							return
						}
						if held.ID != "" {
							if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{&quota.DeleteConsumer{Tenant: held.Tenant, Consumer: held.ID}}}); err != nil {
								b.Error(err)
								return
							}
						}
						held = k
						claims.Add(2)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			wall, cpu := time.Since(wall0), cpuTime()-cpu0
			b.ReportMetric(float64(claims.Load())/wall.Seconds(), "claims/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(claims.Load()), "cpu-µs/claim")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
