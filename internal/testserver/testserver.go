// Package testserver starts a real allot server in-process for tests: the
// SQLite store in a temporary directory, the engine, and the whole HTTP
// surface behind httptest.
package testserver

import (
	"cmp"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/server"
	"github.com/allot-dev/allot/internal/sqlite"
	"github.com/allot-dev/allot/internal/webhook"
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
	// AuthFailures is server.Deps.AuthFailures; 0 disables the limit, so
	// tests may fail to authenticate as often as they like.
	AuthFailures int
	// Store to serve from; default: SQLite in a temporary directory. The
	// server closes it when the test ends.
	Store quota.Store
}

// Start starts a server that stops when the test ends.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Catalog == nil {
		o.Catalog = quota.DefaultCatalog()
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
	st = auth.CacheTokens(st, time.Second)
	metrics := server.NewMetrics()
	engine := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: o.Catalog, Logger: o.Logger, Now: o.Now, Observer: metrics})
	engine.Start()
	if _, err := auth.Bootstrap(ctx, engine, st, AdminToken); err != nil {
		t.Fatal(err)
	}
	sealer, err := auth.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	// Receivers in tests listen on 127.0.0.1.
	hooks, err := webhook.ParsePolicy("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	deliverCtx, stopDelivering := context.WithCancel(context.Background())
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		(&webhook.Deliverer{Store: st, Sealer: sealer, Log: o.Logger, Now: o.Now, Poll: 20 * time.Millisecond, Policy: hooks,
			Backoff: func(n int) time.Duration { return min(10*time.Millisecond<<n, 200*time.Millisecond) }}).Run(deliverCtx)
	}()
	handler, endStreams, err := server.New(server.Deps{
		Engine: engine, Store: st, Region: "local", Logger: o.Logger, Metrics: metrics, Sealer: sealer, Now: o.Now,
		AuthFailures: cmp.Or(o.AuthFailures, -1), Webhooks: hooks,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(handler)
	t.Cleanup(func() {
		endStreams()
		stopDelivering()
		<-delivered
		hs.Close()
		engine.Stop(context.Background())
		st.Close()
	})
	return &Server{URL: hs.URL, AdminToken: AdminToken, Engine: engine, Store: st, Metrics: metrics, Sealer: sealer}
}
