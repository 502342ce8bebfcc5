package sqlite_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
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
	}, storetest.Config{OneProcess: true})
}

// TestOneProcess: a second process on a database is refused at once,
// naming the holder, and changes nothing in the directory.
func TestOneProcess(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "allot.db")
	first := open(t, path)
	defer first.Close()
	before := listDir(t, dir)
	_, err := sqlite.Open(context.Background(), path, "test", slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("a second Open of the same database succeeded")
	}
	if want := fmt.Sprintf("in use by another allot (pid %d)", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	if after := listDir(t, dir); !maps.Equal(before, after) {
		t.Fatalf("the refused open changed the directory:\n before %v\n after  %v", before, after)
	}
	// Once the first closes, the database can be opened again.
	first.Close()
	open(t, path).Close()
}

// listDir maps each file of dir to its size and modification time.
func listDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fmt.Sprintf("%d %s", info.Size(), info.ModTime())
	}
	return out
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
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Do(ctx, quota.Change{Ops: []quota.Op{&quota.CreateTenant{Tenant: "t-" + region}}}); err != nil {
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
