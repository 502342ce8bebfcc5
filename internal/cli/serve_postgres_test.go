package cli_test

import (
	"strings"
	"testing"
)

// TestServeCheckShowsThePostgresPool: the pool and timeout settings come
// from flags, the environment or the config file, else from the URL's
// pool_max_conns and connect_timeout, else from the store's defaults; and
// --check shows what the store would run with.
func TestServeCheckShowsThePostgresPool(t *testing.T) {
	const db = "postgres://allot@h1:5432,h2:5432/allot?target_session_attrs=read-write"
	conf := writeFile(t, "allot.yaml", "database: "+db+"\ndatabase-max-conns: 6\ndatabase-lock-timeout: 2s\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"defaults", nil, []string{"--database", db},
			"pool     16 connections; statement timeout 10s, lock timeout 5s, connect timeout 2s"},
		{"the URL's", nil, []string{"--database", db + "&pool_max_conns=3&connect_timeout=7"},
			"pool     3 connections; statement timeout 10s, lock timeout 5s, connect timeout 7s"},
		{"flags over the URL's", nil, []string{"--database", db + "&pool_max_conns=3&connect_timeout=7",
			"--database-max-conns", "4", "--database-statement-timeout", "3s", "--database-lock-timeout", "750ms", "--database-connect-timeout", "1s"},
			"pool     4 connections; statement timeout 3s, lock timeout 750ms, connect timeout 1s"},
		{"environment", map[string]string{"ALLOT_DATABASE": db, "ALLOT_DATABASE_MAX_CONNS": "8", "ALLOT_DATABASE_CONNECT_TIMEOUT": "2500ms", "ALLOT_DATABASE_STATEMENT_TIMEOUT": "1m"}, nil,
			"pool     8 connections; statement timeout 1m0s, lock timeout 5s, connect timeout 2.5s"},
		{"config file", nil, []string{"--config", conf},
			"pool     6 connections; statement timeout 10s, lock timeout 2s, connect timeout 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := local(t, tc.env, append([]string{"serve", "--check"}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, r.stdout)
			}
		})
	}
	if r := local(t, nil, "serve", "--check"); r.code != 0 || strings.Contains(r.stdout, "pool") {
		t.Errorf("SQLite shows a PostgreSQL pool: exit %d\n%s", r.code, r.stdout)
	}
}

func TestServeCheckRefusesBadPostgresSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"negative pool", []string{"--database-max-conns", "-1"}, "database-max-conns: must not be negative"},
		{"pool not a number", []string{"--database-max-conns", "many"}, "database-max-conns"},
		{"negative statement timeout", []string{"--database-statement-timeout", "-1s"}, "database-statement-timeout: must be 0 (the default) or at least 1ms"},
		{"lock timeout under a millisecond", []string{"--database-lock-timeout", "500us"}, "database-lock-timeout: must be 0 (the default) or at least 1ms"},
		{"connect timeout without a unit", []string{"--database-connect-timeout", "5"}, "database-connect-timeout"},
		{"URL pgx cannot read", []string{"--database", "postgres://allot:s3cret@h1/allot?pool_max_conns=many"}, "database: postgres: cannot parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := local(t, nil, append([]string{"serve", "--check"}, tc.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 naming %q", r.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "s3cret") {
				t.Errorf("stderr shows the database password: %q", r.stderr)
			}
		})
	}
}
