package sqlite_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
	"github.com/allot-dev/allot/internal/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() quota.Store {
		path := filepath.Join(t.TempDir(), "allot.db")
		return func() quota.Store { return open(t, path) }
	})
}

// TestPragmas checks the settings durability depends on.
func TestPragmas(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "allot.db"))
	defer st.Close()
	mode, sync := st.Pragmas(context.Background())
	if mode != "wal" || sync != 2 {
		t.Fatalf("journal_mode=%s synchronous=%d, want wal and 2 (FULL)", mode, sync)
	}
}

func TestRegionsAreSeparate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allot.db")
	ctx := context.Background()
	for _, region := range []string{"fra0", "sfo0"} {
		st, err := sqlite.Open(ctx, path, region, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog()})
		e.Start()
		if _, err := e.Do(ctx, quota.Change{Ops: []quota.Op{{Type: quota.OpCreateTenant, Tenant: "t-" + region}}}); err != nil {
			t.Fatal(err)
		}
		ts, _ := st.Tenants(ctx)
		if len(ts) != 1 || ts[0].ID != "t-"+region {
			t.Fatalf("region %s sees %v", region, ts)
		}
		e.Stop(ctx)
		st.Close()
	}
}
