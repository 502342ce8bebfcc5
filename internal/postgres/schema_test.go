package postgres_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/internal/pgtest"
	"github.com/allot-dev/allot/internal/postgres"
)

func exec(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

func TestANewerSchemaIsRefusedNamingBothVersions(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	known := latestMigration(t)
	open(t, dsn).Close()
	// A newer allot applied 099 and promised nothing about older ones.
	exec(t, dsn, `INSERT INTO schema_migrations (name) VALUES ('migrations/099_budgets.sql')`)
	wants := []string{"the database is at schema 99 (099_budgets.sql)", "this allot knows up to schema " + strings.TrimLeft(known[11:14], "0") + " (" + known[11:] + ")"}
	_, err := postgres.Open(ctx, dsn, "test", slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("served a database a newer allot migrated")
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
	st, err := postgres.Migrations(ctx, dsn)
	if err == nil || !strings.Contains(err.Error(), wants[0]) || len(st.Newer) != 1 {
		t.Errorf("dry run: %v, newer %v", err, st.Newer)
	}
	if _, err := postgres.OpenWithOptions(ctx, dsn, "test", slog.New(slog.DiscardHandler), postgres.Options{NoMigrate: true}); err == nil {
		t.Error("--no-migrate served it")
	}

	// The newer allot's 099 only adds, so it requires this allot's newest:
	// this allot may serve the database (a rolling upgrade, or its rollback).
	exec(t, dsn, `UPDATE schema_migrations SET requires = '`+known+`' WHERE name = 'migrations/099_budgets.sql'`)
	st2, err := postgres.Open(ctx, dsn, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("refused a newer schema that keeps this allot working: %v", err)
	}
	st2.Close()
}

// latestMigration is the newest migration this allot knows:
// "migrations/007_commit_marks.sql".
func latestMigration(t *testing.T) string {
	t.Helper()
	st, err := postgres.Migrations(context.Background(), pgtest.Schema(t))
	if err != nil || len(st.Pending) == 0 {
		t.Fatal(st, err)
	}
	return st.Pending[len(st.Pending)-1]
}

func TestMigrationsDryRunAndNoMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	st, err := postgres.Migrations(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Applied) != 0 || len(st.Pending) < 5 || st.Pending[4] != "migrations/005_versions.sql" {
		t.Fatalf("a fresh database: applied %v, pending %v", st.Applied, st.Pending)
	}
	_, err = postgres.OpenWithOptions(ctx, dsn, "test", slog.New(slog.DiscardHandler), postgres.Options{NoMigrate: true})
	if err == nil || !strings.Contains(err.Error(), "has no schema yet") || !strings.Contains(err.Error(), "allot migrate") {
		t.Fatalf("--no-migrate on a fresh database: %v", err)
	}
	if st, err := postgres.Migrations(ctx, dsn); err != nil || len(st.Applied) != 0 {
		t.Fatalf("--no-migrate wrote to the database: %v %v", st.Applied, err)
	}

	s := open(t, dsn)
	if got := s.Migrated(); !slices.Equal(got, st.Pending) {
		t.Errorf("applied %v, want %v", got, st.Pending)
	}
	s.Close()
	if st2, err := postgres.Migrations(ctx, dsn); err != nil || len(st2.Pending) != 0 || len(st2.Applied) != len(st.Pending) {
		t.Fatalf("after migrating: applied %v, pending %v, %v", st2.Applied, st2.Pending, err)
	}
	s, err = postgres.OpenWithOptions(ctx, dsn, "test", slog.New(slog.DiscardHandler), postgres.Options{NoMigrate: true})
	if err != nil {
		t.Fatalf("--no-migrate on a current database: %v", err)
	}
	if got := s.Migrated(); len(got) != 0 {
		t.Errorf("applied %v again", got)
	}
	s.Close()
}

// A database an allot before the guard migrated has no requires column;
// this allot reads it and adds the column.
func TestADatabaseFromBeforeTheGuardIsServed(t *testing.T) {
	dsn := pgtest.Schema(t)
	open(t, dsn).Close()
	exec(t, dsn, `ALTER TABLE schema_migrations DROP COLUMN requires`)
	if st, err := postgres.Migrations(context.Background(), dsn); err != nil || len(st.Pending) != 0 {
		t.Fatalf("dry run: pending %v, %v", st.Pending, err)
	}
	open(t, dsn).Close()
	exec(t, dsn, `SELECT requires FROM schema_migrations`)
}
