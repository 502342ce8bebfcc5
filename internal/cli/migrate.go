package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/internal/postgres"
	"github.com/allot-dev/allot/internal/schema"
	"github.com/allot-dev/allot/internal/sqlite"
)

// migrateCommand applies the store's pending migrations, or lists them,
// for operators who migrate as a step of their own before starting allot
// with --no-migrate.
func migrateCommand(getenv Env, stdout, stderr io.Writer) *cobra.Command {
	data, database := getenv("ALLOT_DATA"), getenv("ALLOT_DATABASE")
	if data == "" {
		data = "./allot-data"
	}
	var dryRun bool
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations this allot has, or list them with --dry-run",
		Long: `Apply the migrations this allot has and the database lacks, then exit; with
--dry-run, list them and change nothing. Takes the same --data and --database
as serve. A database that a newer allot migrated is refused, naming both
versions. On SQLite, stop allot first; on PostgreSQL, processes may serve
meanwhile (see "Upgrading" in the README).`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			kind, err := storeKind(database)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			return migrate(c.Context(), kind, data, database, dryRun, log, stdout)
		},
	}
	c.Flags().StringVar(&data, "data", data, "data directory (ALLOT_DATA)")
	c.Flags().StringVar(&database, "database", database, "database: empty for SQLite in the data directory, sqlite:PATH or postgres://… (ALLOT_DATABASE)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "list the pending migrations; change nothing")
	return c
}

func migrate(ctx context.Context, kind, data, database string, dryRun bool, log *slog.Logger, stdout io.Writer) error {
	file := strings.TrimPrefix(database, "sqlite:")
	if kind == "sqlite" && file == "" {
		file = filepath.Join(data, "allot.db")
	}
	status := func() (schema.Status, error) {
		if kind == "postgres" {
			return postgres.Migrations(ctx, database)
		}
		return sqlite.Migrations(ctx, file)
	}
	st, err := status()
	if err != nil {
		return err
	}
	if dryRun {
		at := "has no schema yet"
		if st.Newest() != "" {
			at = "is at " + schema.Describe(st.Newest())
		}
		fmt.Fprintf(stdout, "allot: the database %s; this allot knows up to %s\n", at, schema.Describe(st.KnownNewest()))
		if len(st.Pending) == 0 {
			fmt.Fprintln(stdout, "  nothing to apply")
		}
		for _, p := range st.Pending {
			fmt.Fprintf(stdout, "  would apply  %s\n", path.Base(p))
		}
		for _, n := range st.Newer {
			fmt.Fprintf(stdout, "  newer        %s (applied by a newer allot that keeps this one working)\n", path.Base(n.Name))
		}
		return nil
	}
	var applied []string
	if kind == "postgres" {
		s, err := postgres.Open(ctx, database, "local", log)
		if err != nil {
			return err
		}
		applied = s.Migrated()
		s.Close()
	} else {
		if database == "" {
			if err := os.MkdirAll(data, 0o700); err != nil {
				return fmt.Errorf("creating the data directory: %w", err)
			}
		}
		s, err := sqlite.Open(ctx, file, "local", log)
		if err != nil {
			return err
		}
		applied = s.Migrated()
		s.Close()
	}
	for _, a := range applied {
		fmt.Fprintf(stdout, "allot: applied %s\n", path.Base(a))
	}
	if st, err = status(); err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "allot: nothing to apply; the database is at %s\n", schema.Describe(st.Newest()))
	} else {
		fmt.Fprintf(stdout, "allot: the database is at %s\n", schema.Describe(st.Newest()))
	}
	return nil
}
