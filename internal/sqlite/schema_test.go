package sqlite_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/sqlite"
)

func execSQL(t *testing.T, path, query string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		t.Fatal(err)
	}
}

func TestANewerSchemaIsRefusedNamingBothVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allot.db")
	known := latestMigration(t)
	open(t, path).Close()
	// Even a migration that only adds is refused: one process serves a
	// SQLite file, so there is no rolling upgrade to allow for.
	execSQL(t, path, `INSERT INTO schema_migrations (name) VALUES ('migrations/099_budgets.sql')`)
	wants := []string{"the database is at schema 99 (099_budgets.sql)", "this allot knows up to schema " + known}
	for name, try := range map[string]func() error{
		"open": func() error {
			_, err := sqlite.Open(context.Background(), path, "test", slog.New(slog.DiscardHandler))
			return err
		},
		"no-migrate": func() error {
			_, err := sqlite.OpenWithOptions(context.Background(), path, "test", slog.New(slog.DiscardHandler), sqlite.Options{NoMigrate: true})
			return err
		},
		"dry run": func() error { _, err := sqlite.Migrations(context.Background(), path); return err },
	} {
		t.Run(name, func(t *testing.T) {
			err := try()
			if err == nil {
				t.Fatal("a database a newer allot migrated is accepted")
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

// latestMigration is the newest migration this allot knows, as the guard
// names it: "6 (006_ledger.sql)".
func latestMigration(t *testing.T) string {
	t.Helper()
	st, err := sqlite.Migrations(context.Background(), filepath.Join(t.TempDir(), "none.db"))
	if err != nil || len(st.Pending) == 0 {
		t.Fatal(st, err)
	}
	name := filepath.Base(st.Pending[len(st.Pending)-1])
	return strings.TrimLeft(name[:3], "0") + " (" + name + ")"
}

func TestMigrationsDryRunAndNoMigrate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "allot.db")
	st, err := sqlite.Migrations(ctx, path)
	if err != nil || len(st.Applied) != 0 || len(st.Pending) < 5 {
		t.Fatalf("a missing file: applied %v, pending %v, %v", st.Applied, st.Pending, err)
	}
	_, err = sqlite.OpenWithOptions(ctx, path, "test", slog.New(slog.DiscardHandler), sqlite.Options{NoMigrate: true})
	if err == nil || !strings.Contains(err.Error(), "has no schema yet") {
		t.Fatalf("--no-migrate on a missing file: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("--no-migrate left %v behind", entries)
	}

	// A database at schema 3 (as an older allot left it): the rest pending.
	all := st.Pending
	s := open(t, path)
	if got := s.Migrated(); !slices.Equal(got, all) {
		t.Errorf("applied %v, want %v", got, all)
	}
	s.Close()
	execSQL(t, path, `DELETE FROM schema_migrations WHERE name >= 'migrations/004'`)
	st, err = sqlite.Migrations(ctx, path)
	if err != nil || !slices.Equal(st.Pending, all[3:]) {
		t.Fatalf("pending %v, %v", st.Pending, err)
	}
	var names []string
	for _, p := range all[3:] {
		names = append(names, filepath.Base(p))
	}
	if _, err := sqlite.OpenWithOptions(ctx, path, "test", slog.New(slog.DiscardHandler), sqlite.Options{NoMigrate: true}); err == nil ||
		!strings.Contains(err.Error(), "is at schema 3 (003_meta.sql)") || !strings.Contains(err.Error(), strings.Join(names, ", ")) {
		t.Fatalf("--no-migrate with %d pending: %v", len(names), err)
	}
	if st, _ := sqlite.Migrations(ctx, path); len(st.Pending) != len(all)-3 {
		t.Fatalf("the dry run or --no-migrate applied something: pending %v", st.Pending)
	}
}
