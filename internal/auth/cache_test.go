package auth_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/pgtest"
	"github.com/allot-dev/allot/internal/postgres"
	"github.com/allot-dev/allot/internal/quota"
)

// TestCachedTokensAndRevocation needs two processes on one database: the
// PostgreSQL store (SQLite serves one process).
func TestCachedTokensAndRevocation(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	open := func() quota.Store {
		t.Helper()
		st, err := postgres.Open(ctx, dsn, "local", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	here := auth.CacheTokens(open(), 200*time.Millisecond, nil)
	e := quota.NewEngine(quota.EngineConfig{Store: here, Catalog: quota.DefaultCatalog()})
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(ctx)
	other := quota.NewEngine(quota.EngineConfig{Store: open(), Catalog: quota.DefaultCatalog()}) // another process
	if err := other.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer other.Stop(ctx)
	admin := quota.Actor{Name: "test", Role: quota.RoleAdmin}
	mint := func(name string) string {
		t.Helper()
		token, hash, err := auth.New(name)
		if err != nil {
			t.Fatal(err)
		}
		tok := &quota.Token{Name: name, Role: quota.RoleService, Hash: hash}
		if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{&quota.PutToken{Token: tok}}}); err != nil {
			t.Fatal(err)
		}
		return token
	}
	revoke := func(on *quota.Engine, name string) {
		t.Helper()
		if _, err := on.Do(ctx, quota.Change{Actor: admin, Ops: []quota.Op{&quota.RevokeToken{Name: name}}}); err != nil {
			t.Fatal(err)
		}
	}
	works := func(token string) bool {
		_, err := auth.Authenticate(ctx, here, token)
		return err == nil
	}

	local := mint("local")
	if !works(local) {
		t.Fatal("a new token does not work")
	}
	revoke(e, "local")
	if works(local) {
		t.Fatal("a token revoked through this process still works")
	}

	remote := mint("remote")
	if !works(remote) { // now cached
		t.Fatal("a new token does not work")
	}
	revoke(other, "remote")
	deadline := time.Now().Add(2 * time.Second)
	for works(remote) {
		if time.Now().After(deadline) {
			t.Fatal("a token revoked by another process still works after the cache's time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
