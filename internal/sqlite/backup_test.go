package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/sqlite"
)

// Backup and restore name what is wrong in the operator's terms: which
// path, and why, never SQLite's "unable to open database file (14)".
func TestBackupAndRestoreErrorsNameThePath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "allot.db")
	open(t, db).Close()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("these are not the rows you are looking for\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missingDir := filepath.Join(dir, "backups")
	for _, tc := range []struct {
		name    string
		do      func() error
		want    []string
		notWant []string
	}{
		{"backup into a missing directory", func() error { return sqlite.Backup(ctx, db, filepath.Join(missingDir, "b.db")) },
			[]string{"the directory " + missingDir + " does not exist", "mkdir -p " + missingDir}, nil},
		{"backup into a path under a file", func() error { return sqlite.Backup(ctx, db, filepath.Join(text, "b.db")) },
			[]string{text + " is not a directory"}, nil},
		{"backup of a missing database", func() error { return sqlite.Backup(ctx, filepath.Join(dir, "none.db"), filepath.Join(dir, "b.db")) },
			[]string{"the database " + filepath.Join(dir, "none.db") + ": no such file"}, []string{"stat "}},
		{"backup over an existing file", func() error { return sqlite.Backup(ctx, db, text) },
			[]string{text + " exists already"}, nil},
		{"restore of a missing file", func() error { return sqlite.Restore(ctx, filepath.Join(dir, "gone.db"), db) },
			[]string{"the backup " + filepath.Join(dir, "gone.db") + ": no such file"}, []string{"SQLite"}},
		{"restore of a directory", func() error { return sqlite.Restore(ctx, dir, filepath.Join(t.TempDir(), "allot.db")) },
			[]string{dir + " is a directory"}, nil},
		{"restore of a file that is not SQLite", func() error { return sqlite.Restore(ctx, text, db) },
			[]string{text + ": not a backup made by allot backup: it is not a SQLite database"}, []string{"(26)", "file is not a database"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil {
				t.Fatal("succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
			for _, w := range append(tc.notWant, "(14)", "unable to open") {
				if strings.Contains(err.Error(), w) {
					t.Errorf("the error says %q:\n%v", w, err)
				}
			}
		})
	}
	// Nothing was left behind by the failures.
	if _, err := os.Stat(missingDir); !os.IsNotExist(err) {
		t.Errorf("%s was created", missingDir)
	}
}

// A restore onto a new machine creates the data directory.
func TestRestoreCreatesTheDataDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "allot.db")
	open(t, db).Close()
	backup := filepath.Join(dir, "b.db")
	if err := sqlite.Backup(ctx, db, backup); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "new", "allot-data", "allot.db")
	if err := sqlite.Restore(ctx, backup, target); err != nil {
		t.Fatal(err)
	}
	open(t, target).Close()
}
