package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/internal/sqlite"
)

// sqlitePath is the SQLite file serve would use with these settings.
func sqlitePath(data, database string) (string, error) {
	kind, err := storeKind(database)
	if err != nil {
		return "", err
	}
	if kind != "sqlite" {
		return "", usageError{"backup and restore are for the SQLite store; for PostgreSQL use pg_dump or base backups with WAL archiving (see the README)"}
	}
	if p := strings.TrimPrefix(database, "sqlite:"); p != "" {
		return p, nil
	}
	return filepath.Join(data, "allot.db"), nil
}

func backupCommands(getenv Env, stdout io.Writer) []*cobra.Command {
	flags := func(c *cobra.Command, data, database *string) {
		*data, *database = getenv("ALLOT_DATA"), getenv("ALLOT_DATABASE")
		if *data == "" {
			*data = "./allot-data"
		}
		c.Flags().StringVar(data, "data", *data, "data directory (ALLOT_DATA)")
		c.Flags().StringVar(database, "database", *database, "sqlite:PATH, if not in the data directory (ALLOT_DATABASE)")
	}
	var data, database string
	backup := &cobra.Command{Use: "backup FILE", Short: "Copy the SQLite store to FILE, consistently, while allot serves",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			path, err := sqlitePath(data, database)
			if err != nil {
				return err
			}
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("backup: there is no database at %s; give backup the --data (or --database sqlite:PATH) that allot serve uses", path)
			}
			if err := sqlite.Backup(c.Context(), path, a[0]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "allot: backed up %s to %s\n", path, a[0])
			return nil
		}}
	flags(backup, &data, &database)
	var rdata, rdatabase string
	restore := &cobra.Command{Use: "restore FILE", Short: "Replace the SQLite store with a backup (stop allot first)",
		Long: `Replace the SQLite store with a backup made by 'allot backup'. The backup is
checked first; the store must not be in use; the replaced store is kept next
to it as allot.db.before-restore. Keep the same --secret-key-file: the
backup's AK/SK and webhook secrets are sealed with it.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			path, err := sqlitePath(rdata, rdatabase)
			if err != nil {
				return err
			}
			if err := sqlite.Restore(c.Context(), a[0], path); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "allot: restored %s from %s\n", path, a[0])
			return nil
		}}
	flags(restore, &rdata, &rdatabase)
	return []*cobra.Command{backup, restore}
}
