package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/pgtest"
	"github.com/allot-dev/allot/internal/quota"
)

// TestTenantRecordsAreOneSnapshot: a tenant's record is read, as a process
// reads it to rebuild its memory, while another process commits to the
// tenant one claim a commit. The usage and the version must move together:
// a record with the old usage under the new version would pass the next
// batch's version check as fresh, and the batch would write usage that
// misses the other process's claim.
func TestTenantRecordsAreOneSnapshot(t *testing.T) {
	dsn := pgtest.Schema(t)
	ctx := context.Background()
	writer := open(t, dsn)
	e := quota.NewEngine(quota.EngineConfig{Store: writer, Catalog: quota.DefaultCatalog(), SweepInterval: time.Hour})
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(ctx); writer.Close() })
	admin := quota.Actor{Name: "test", Role: quota.RoleAdmin}
	hard := int64(1 << 40)
	for _, op := range []quota.Op{&quota.CreateTenant{Tenant: "t"},
		&quota.SetQuota{Tenant: "t", Resource: "compute.volumes", Quota: quota.QuotaOverride{Hard: &hard}},
		&quota.SetQuota{Tenant: "t", Resource: "compute.total_volume_mb", Quota: quota.QuotaOverride{Hard: &hard}}} {
		if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err != nil {
			t.Fatal(err)
		}
	}
	reader := open(t, dsn)
	t.Cleanup(func() { reader.Close() })
	record := func() *quota.TenantRecord {
		t.Helper()
		rs, err := reader.LoadTenants(ctx, []string{"t"})
		if err != nil || len(rs) != 1 {
			t.Fatalf("LoadTenants: %v %v", rs, err)
		}
		return rs[0]
	}
	r := record()
	offset := r.Version - r.Usage["compute.volumes"]

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var claims int
	wg.Go(func() {
		for ; ; claims++ {
			select {
			case <-stop:
				return
			default:
			}
			op := &quota.PutConsumer{Tenant: "t", Consumer: fmt.Sprint("v", claims),
				Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 100}}}
			if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{op}}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var moved int
	last := r.Version
	for range 3000 {
		r := record()
		if got := r.Version - r.Usage["compute.volumes"]; got != offset {
			close(stop)
			wg.Wait()
			t.Fatalf("version %d with %d volumes: one snapshot would give version − usage = %d, not %d",
				r.Version, r.Usage["compute.volumes"], offset, got)
		}
		if r.Version != last {
			moved, last = moved+1, r.Version
		}
	}
	close(stop)
	wg.Wait()
	if moved < 100 {
		t.Fatalf("the record changed between only %d of 3000 reads (%d claims): the reads did not race the commits", moved, claims)
	}
	t.Logf("%d claims; the record changed between %d of 3000 reads, always in one piece", claims, moved)
}
