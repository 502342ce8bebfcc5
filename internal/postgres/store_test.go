package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/allot-dev/allot/internal/pgtest"
	"github.com/allot-dev/allot/internal/postgres"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/storetest"
)

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), dsn, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() quota.Store {
		dsn := pgtest.Schema(t)
		return func() quota.Store { return open(t, dsn) }
	})
}
