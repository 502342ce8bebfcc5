package bench_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
)

// BenchmarkCommitterBatch measures one committed batch: N callers each Do
// one claim at once, and the iteration ends when the last is answered, that
// is, durably committed to SQLite (synchronous=FULL). Claims/s shows what
// batching buys over one commit per claim.
func BenchmarkCommitterBatch(b *testing.B) {
	for _, n := range []int{1, 16, 256, 1000} {
		b.Run(fmt.Sprintf("callers=%d", n), func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "allot.db"), "bench", slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog()})
			if err := e.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer e.Stop(ctx)
			admin := quota.Actor{Name: "bench", Role: quota.RoleAdmin}
			hard := int64(1 << 40)
			for _, op := range []quota.Op{
				&quota.CreateTenant{Tenant: "acme"},
				&quota.SetQuota{Tenant: "acme", Resource: "compute.instances", Quota: quota.QuotaOverride{Hard: &hard}},
			} {
				if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err != nil {
					b.Fatal(err)
				}
			}
			seq := 0
			start := time.Now()
			for b.Loop() {
				var wg sync.WaitGroup
				for range n {
					seq++
					id := fmt.Sprintf("c%d", seq)
					wg.Go(func() {
						_, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{&quota.PutConsumer{
							Tenant: "acme", Consumer: id,
							Spec: quota.Spec{Kind: "compute.instance", State: "stopped", Attributes: map[string]int64{"memory_mb": 16}},
						}}})
						if err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "claims/s")
		})
	}
}
