// Package testserver starts a real allot in-process for tests, through the
// same composition root as `allot serve`: SQLite in a temporary directory,
// the engine, webhook delivery, the dashboard and the whole HTTP surface,
// on a free port of the loopback interface.
package testserver

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/server"
	"github.com/allot-dev/allot/internal/sqlite"
)

// AdminToken is the admin token every test server accepts.
const AdminToken = "admin-token-for-tests"

// Server is a running allot.
type Server struct {
	URL        string
	AdminToken string
	Engine     *quota.Engine
	Store      quota.Store
	Metrics    *server.Metrics
	Sealer     *auth.Sealer
}

// Options adjust a test server.
type Options struct {
	Catalog *quota.Catalog   // default: the embedded catalog
	Now     func() time.Time // default: time.Now
	Logger  *slog.Logger     // default: discard
	// FailedAuthLimit is server.Config's; 0 (the default here) turns the
	// limit off, so tests may fail to authenticate as often as they like.
	FailedAuthLimit int
	// Store to serve from; default: SQLite in a temporary directory. The
	// server closes it when the test ends.
	Store quota.Store
	// Wrap, if set, wraps the store before the server uses it (a store
	// that fails or counts, for fault tests).
	Wrap func(quota.Store) quota.Store
}

// Start starts a server that stops when the test ends.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx := context.Background()
	st := o.Store
	if st == nil {
		var err error
		if st, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "allot.db"), "local", o.Logger); err != nil {
			t.Fatal(err)
		}
	}
	if o.Wrap != nil {
		st = o.Wrap(st)
	}
	sealer, err := auth.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.DefaultConfig()
	cfg.Listen, cfg.Store, cfg.Region, cfg.Catalog, cfg.Sealer = "127.0.0.1:0", st, "local", o.Catalog, sealer
	cfg.AdminToken, cfg.Logger, cfg.Now, cfg.FailedAuthLimit = AdminToken, o.Logger, o.Now, o.FailedAuthLimit
	cfg.WebhookAllow = "127.0.0.1" // receivers in tests listen on the loopback interface
	cfg.DeliveryPoll = 20 * time.Millisecond
	cfg.DeliveryBackoff = func(n int) time.Duration { return min(10*time.Millisecond<<n, 200*time.Millisecond) }
	running, err := server.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		running.Close(ctx)
	})
	return &Server{URL: running.URL, AdminToken: AdminToken, Engine: running.Engine, Store: running.Store,
		Metrics: running.Metrics, Sealer: running.Sealer}
}
