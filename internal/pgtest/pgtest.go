// Package pgtest gives each test its own PostgreSQL schema in the database
// named by ALLOT_TEST_POSTGRES, so tests run in parallel and leave nothing
// behind. Its Proxy stands between a test's store and the database
// and breaks connections on cue (a lost COMMIT reply, a silent network).
// Its Cluster is a private primary with a synchronous standby, started
// from PostgreSQL's server programs, for tests that kill the primary and
// promote the standby; it never touches the server of ALLOT_TEST_POSTGRES.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env names the variable that holds the test database's URL.
const Env = "ALLOT_TEST_POSTGRES"

// BaseDSN returns the test database's URL. Without it the test is skipped,
// except under CI=true, where a missing database is a failure.
func BaseDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(Env)
	if dsn == "" {
		const how = Env + " is not set; to run the PostgreSQL tests: " +
			Env + "='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./..."
		if os.Getenv("CI") == "true" {
			t.Fatal(how)
		}
		t.Skip(how)
	}
	return dsn
}

// Schema creates a fresh schema, dropped when the test ends, and returns a
// URL whose connections use it.
func Schema(t testing.TB) string {
	t.Helper()
	base := BaseDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", Env, err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 6)
	rand.Read(b)
	schema := "allot_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: dropping %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: dropping %s: %v", schema, err)
		}
	})
	return WithSearchPath(t, base, schema)
}

// WithSearchPath returns dsn with its connections' search_path set.
func WithSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		t.Fatalf("pgtest: %s must be a postgres:// URL", Env)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
