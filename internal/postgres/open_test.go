package postgres_test

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/pgtest"
	"github.com/allot-dev/allot/internal/postgres"
)

// A URL whose search_path names a schema that does not exist fails at
// start with a message that names the schema and what to do, not the
// driver's complaint about scanning NULL.
func TestOpenNamesAMissingSchema(t *testing.T) {
	base := pgtest.BaseDSN(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.WithSearchPath(t, base, "allot_no_such_schema")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, dsn, "local", slog.New(slog.DiscardHandler))
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded without a schema to use")
	}
	msg := err.Error()
	for _, want := range []string{`search_path "allot_no_such_schema"`, "CREATE SCHEMA", `database "` + strings.TrimPrefix(u.Path, "/") + `"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %s:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "scan") || strings.Contains(msg, "dest[") {
		t.Errorf("the error names the driver's internals:\n%s", msg)
	}
}
