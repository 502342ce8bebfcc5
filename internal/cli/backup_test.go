package cli_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/sqlite"
)

// allot backup names the flag to fix when it finds no database, and the
// directory to create when the backup's has none.
func TestBackupErrorsSayWhatToFix(t *testing.T) {
	empty, data := t.TempDir(), t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(data, "allot.db"), "local", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	missing := filepath.Join(t.TempDir(), "backups")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no database", []string{"backup", "--data", empty, filepath.Join(empty, "b.db")},
			"allot: backup: there is no database at " + filepath.Join(empty, "allot.db") + "; give backup the --data (or --database sqlite:PATH) that allot serve uses\n"},
		{"missing directory", []string{"backup", "--data", data, filepath.Join(missing, "b.db")},
			"allot: backup: the directory " + missing + " does not exist; create it first (mkdir -p " + missing + ")\n"},
		{"missing backup", []string{"restore", "--data", data, filepath.Join(missing, "b.db")},
			"allot: restore: the backup " + filepath.Join(missing, "b.db") + ": no such file\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runWith(t, context.Background(), map[string]string{}, tc.args...)
			if r.code != 1 || r.stderr != tc.want {
				t.Errorf("exit %d, stderr\n%q\nwant\n%q", r.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "(14)") {
				t.Errorf("SQLite's code reached the operator: %s", r.stderr)
			}
		})
	}
}
