package sqlite_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
)

// BenchmarkCommitterClaims measures durable single-consumer claims through
// the engine: 64 concurrent callers, each PUT its own change, answered only
// after the batch holding it is committed with synchronous=FULL.
func BenchmarkCommitterClaims(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "allot.db"), "bench", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog()})
	e.Start()
	defer e.Stop(ctx)
	admin := quota.Actor{Name: "bench", Role: quota.RoleAdmin}
	const tenants = 100
	for i := range tenants {
		id := fmt.Sprintf("t%03d", i)
		do := func(op quota.Op) {
			if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err != nil {
				b.Fatal(err)
			}
		}
		do(quota.Op{Type: quota.OpCreateTenant, Tenant: id})
		for _, res := range []string{"compute.instances", "compute.live_instances", "compute.live_vcpus", "compute.live_memory_mb"} {
			hard := int64(1 << 40)
			do(quota.Op{Type: quota.OpSetQuota, Tenant: id, Resource: res, Quota: quota.QuotaOverride{Hard: &hard}})
		}
	}
	var n atomic.Int64
	b.SetParallelism(64 / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			_, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{{
				Type: quota.OpPutConsumer, Tenant: fmt.Sprintf("t%03d", i%tenants), Consumer: fmt.Sprintf("c%d", i),
				Spec: quota.Spec{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 16}},
			}}})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "claims/s")
}
