package main_test

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to play a newer allot's migration
)

// A start that cannot serve, because its port is taken, fails before it
// creates anything: no data directory, no key file, and no admin token
// printed that would then never work.
func TestAStartOnATakenPortLeavesNothingBehind(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"the API's port", []string{"--listen", taken.Addr().String()}},
		{"the metrics port", []string{"--listen", "127.0.0.1:0", "--metrics-listen", taken.Addr().String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			cmd := exec.Command(binary, append([]string{"serve", "--data", data}, tc.args...)...)
			cmd.Env = os.Environ()
			out, err := runFor(cmd, 20*time.Second)
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
				t.Fatalf("exit %v, want a failure:\n%s", err, out)
			}
			if !strings.Contains(out, taken.Addr().String()) {
				t.Errorf("the error does not name the address:\n%s", out)
			}
			if strings.Contains(out, "admin token") {
				t.Errorf("a token was printed by a start that failed:\n%s", out)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				entries, _ := os.ReadDir(data)
				t.Errorf("the data directory was left behind, with %v", entries)
			}
		})
	}
}

func TestTheAdminTokenGoesToItsFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "admin-token")
	p := start(t, dir, "ALLOT_ADMIN_TOKEN_FILE="+file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("the token file has mode %v", fi.Mode().Perm())
	}
	if strings.Contains(p.stderr.String(), token) || !strings.Contains(p.stderr.String(), "it is in "+file) {
		t.Errorf("stderr shows the token, or not where it is:\n%s", p.stderr)
	}
	if code, body := p.req(t, "GET", "/api/v1/tenants", token, ""); code != 200 {
		t.Fatalf("the token in the file does not work: %d %s", code, body)
	}
}

// run runs the binary to its end and returns its output and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = os.Environ()
	out, err := runFor(cmd, 30*time.Second)
	if ee, ok := err.(*exec.ExitError); ok {
		return out, ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out, 0
}

func TestMigrateDryRunMigrateAndNoMigrate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	// The newest migration this allot knows, as the guard names it.
	files, _ := filepath.Glob("../../internal/sqlite/migrations/*.sql")
	n := len(files)
	latest := fmt.Sprintf("schema %d (%s)", n, filepath.Base(files[n-1]))
	out, code := run(t, "migrate", "--dry-run", "--data", data)
	if code != 0 || strings.Count(out, "would apply") != n || !strings.Contains(out, "would apply  001_init.sql") ||
		!strings.Contains(out, "has no schema yet; this allot knows up to "+latest) {
		t.Fatalf("migrate --dry-run: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatal("migrate --dry-run created the data directory")
	}
	out, code = run(t, "serve", "--no-migrate", "--listen", "127.0.0.1:0", "--data", data)
	if code == 0 || !strings.Contains(out, "has no schema yet") || !strings.Contains(out, "allot migrate") {
		t.Fatalf("serve --no-migrate on a new directory: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatal("serve --no-migrate left the data directory behind")
	}

	out, code = run(t, "migrate", "--data", data)
	if code != 0 || strings.Count(out, "allot: applied") != n || !strings.Contains(out, "the database is at "+latest) {
		t.Fatalf("migrate: exit %d\n%s", code, out)
	}
	out, code = run(t, "migrate", "--dry-run", "--data", data)
	if code != 0 || !strings.Contains(out, "nothing to apply") {
		t.Fatalf("migrate --dry-run after migrate: exit %d\n%s", code, out)
	}
	p := start(t, data, "ALLOT_NO_MIGRATE=true", "ALLOT_ADMIN_TOKEN="+adminToken)
	if code, body := p.req(t, "GET", "/api/v1/tenants", adminToken, ""); code != 200 {
		t.Fatalf("serve --no-migrate on a migrated database: %d %s", code, body)
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()

	// A newer allot migrated the database further: serve and migrate
	// refuse it, naming both versions.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "allot.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (name) VALUES ('migrations/099_budgets.sql')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, args := range [][]string{
		{"serve", "--listen", "127.0.0.1:0", "--data", data},
		{"migrate", "--data", data},
		{"migrate", "--dry-run", "--data", data},
	} {
		out, code := run(t, args...)
		if code == 0 || !strings.Contains(out, "the database is at schema 99 (099_budgets.sql)") ||
			!strings.Contains(out, "this allot knows up to "+latest) {
			t.Errorf("allot %s on a newer database: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
}
