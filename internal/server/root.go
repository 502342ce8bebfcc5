package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/ledger"
	"github.com/allot-dev/allot/internal/postgres"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
	"github.com/allot-dev/allot/internal/ui"
	"github.com/allot-dev/allot/internal/version"
	"github.com/allot-dev/allot/internal/webhook"
)

// Config is everything a running allot is made of. `allot serve`, the
// benchmark's embedded server and the test server all start through Start
// with one of these, so a new dependency or background job is added here,
// once.
type Config struct {
	// Listener is served if set; otherwise Start listens on Listen.
	Listen   string
	Listener net.Listener
	// MetricsListen (or MetricsListener), if set, serves /metrics there
	// and not on the API's listener; Pprof adds /debug/pprof/ to it.
	MetricsListen   string
	MetricsListener net.Listener
	Pprof           bool
	// TLSCert and TLSKey, if set, are the PEM files of the certificate
	// (its chain after it) and key served over HTTPS; they are loaded
	// again by ReloadTLS and when they change, checked every TLSReload
	// (0: 5s).
	TLSCert, TLSKey string
	TLSReload       time.Duration

	// The store: Store if set (it is then closed with the server), else
	// Database ("" or "sqlite:PATH" for SQLite, "postgres://…") with
	// SQLite's file in Data.
	Store    quota.Store
	Database string
	Data     string
	Postgres postgres.Options
	// NoMigrate refuses to start when the database lacks migrations this
	// allot has, instead of applying them (for operators who migrate as a
	// separate step, with `allot migrate`).
	NoMigrate bool

	Region  string
	Catalog *quota.Catalog // nil: the embedded default
	// Sealer seals AK/SK and webhook secrets; nil: the key in
	// SecretKeyFile, or DATA/secret.key created at first start.
	Sealer        *auth.Sealer
	SecretKeyFile string
	// AdminToken is made a valid admin token (ALLOT_ADMIN_TOKEN); empty:
	// one is created at first start and returned in Running.AdminToken.
	AdminToken string

	Logger *slog.Logger     // required
	Now    func() time.Time // nil: time.Now
	// AccessLog, if set, gets one line per request (see accessLog).
	AccessLog *slog.Logger
	// Build is which allot this is; zero: version.Get().
	Build version.Info

	QueueSize, MaxBatch, MaxOps int
	// CacheConsumers bounds the consumers the committer keeps in memory;
	// 0: the engine's default (1,000,000).
	CacheConsumers int
	// TreeDepth is how many levels a tree of tenants may have; 0: the
	// engine's default (6).
	TreeDepth     int
	SweepInterval time.Duration // nil: 1s
	TenantMetrics bool
	Dashboard     bool

	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	MaxBodyBytes                                              int64
	// FailedAuthLimit is how many failed authentications a source address
	// may have per minute before it gets 429; 0 turns the limit off.
	FailedAuthLimit int
	// WebhookAllow opens chosen targets to webhooks (see webhook.Policy).
	WebhookAllow string
	// Ledger is the ledger's retention, snapshots and archive; its Store,
	// Logger and Now are filled in by Start.
	Ledger ledger.Config
	// DeliveryPoll and DeliveryBackoff tune webhook delivery; zero: the
	// deliverer's defaults. Tests shorten them.
	DeliveryPoll    time.Duration
	DeliveryBackoff func(n int) time.Duration
}

// DefaultConfig is the configuration `allot serve` starts from.
func DefaultConfig() Config {
	return Config{
		Listen: "127.0.0.1:8080", Data: "./allot-data", Region: "local", Dashboard: true,
		QueueSize: 8192, MaxBatch: 1024, MaxOps: quota.MaxOps,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 64 << 10, MaxBodyBytes: 1 << 20, FailedAuthLimit: 20,
	}
}

// Running is a started allot.
type Running struct {
	URL  string // http://host:port, or https://
	Addr net.Addr
	// MetricsURL is where /metrics is served, if on a listener of its own.
	MetricsURL string
	Store      quota.Store // the store as the server uses it (token lookups cached)
	Engine     *quota.Engine
	Metrics    *Metrics
	Sealer     *auth.Sealer
	// AdminToken is the admin token created at this start, to be shown once;
	// empty when none was created.
	AdminToken string

	log         *slog.Logger
	http        *http.Server
	metricsHTTP *http.Server
	certs       *certificates
	served      chan error
	closers     []func(context.Context) error // run last to first
	undo        []func()                      // run after the closers if Start fails
	once        sync.Once
	err         error
}

// Start starts allot. It binds the listeners and loads the TLS pair first,
// so a start that cannot serve fails before it creates anything; then it
// opens the store, checks the secret key against it, starts the committer,
// the reservation sweeper, the ledger's keeper and webhook delivery,
// makes sure an admin can get in, and serves. A start that fails removes the data directory and
// the key file it created.
func Start(ctx context.Context, cfg Config) (_ *Running, err error) {
	if cfg.Logger == nil {
		return nil, errors.New("server: a logger is required")
	}
	if cfg.Catalog == nil {
		cfg.Catalog = quota.DefaultCatalog()
	}
	if cfg.Build == (version.Info{}) {
		cfg.Build = version.Get()
	}
	hooks, err := webhook.ParsePolicy(cfg.WebhookAllow)
	if err != nil {
		return nil, fmt.Errorf("webhook-allow: %w", err)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("tls-cert and tls-key: give both or neither")
	}
	separateMetrics := cfg.MetricsListen != "" || cfg.MetricsListener != nil
	if cfg.Pprof && !separateMetrics {
		return nil, errors.New("pprof: served only on the metrics listener; set metrics-listen too")
	}
	r := &Running{log: cfg.Logger, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			r.Close(context.Background())
			for _, undo := range r.undo {
				undo()
			}
		}
	}()

	ln, err := r.listen(cfg.Listener, cfg.Listen)
	if err != nil {
		return nil, err
	}
	var metricsLn net.Listener
	if separateMetrics {
		if metricsLn, err = r.listen(cfg.MetricsListener, cfg.MetricsListen); err != nil {
			return nil, err
		}
	}
	scheme := "http://"
	if cfg.TLSCert != "" {
		if r.certs, err = loadCertificates(cfg.TLSCert, cfg.TLSKey, cfg.Logger); err != nil {
			return nil, err
		}
		scheme = "https://"
		watchCtx, stopWatching := context.WithCancel(context.Background())
		watched := make(chan struct{})
		go func() { defer close(watched); r.certs.watch(watchCtx, cmp.Or(cfg.TLSReload, 5*time.Second)) }()
		r.closers = append(r.closers, func(context.Context) error { stopWatching(); <-watched; return nil })
	}
	r.Addr, r.URL = ln.Addr(), scheme+ln.Addr().String()
	if metricsLn != nil {
		r.MetricsURL = scheme + metricsLn.Addr().String()
	}

	r.undo = append(r.undo, removeIfCreated(cfg.Data))
	store := cfg.Store
	if store == nil {
		if store, err = openStore(ctx, cfg); err != nil {
			return nil, err
		}
	}
	r.closers = append(r.closers, func(context.Context) error { return store.Close() })
	if r.Sealer = cfg.Sealer; r.Sealer == nil {
		if cfg.SecretKeyFile == "" {
			r.undo = append(r.undo, removeIfCreated(filepath.Join(cfg.Data, "secret.key")))
		}
		if r.Sealer, err = loadSealer(cfg); err != nil {
			return nil, err
		}
	}
	if err := checkKey(ctx, store, r.Sealer, cfg); err != nil {
		return nil, err
	}
	store = auth.CacheTokens(store, time.Second, cfg.Now)
	r.Store = store

	r.Metrics = NewMetrics()
	r.Metrics.Build(cfg.Build)
	r.Engine = quota.NewEngine(quota.EngineConfig{Store: store, Catalog: cfg.Catalog, Logger: cfg.Logger, Now: cfg.Now,
		Observer: r.Metrics, QueueSize: cfg.QueueSize, MaxBatch: cfg.MaxBatch, MaxOps: cfg.MaxOps, SweepInterval: cfg.SweepInterval,
		CacheConsumers: cfg.CacheConsumers, MaxDepth: cfg.TreeDepth})
	if err := r.Engine.Start(ctx); err != nil {
		return nil, fmt.Errorf("loading the state: %w", err)
	}
	r.closers = append(r.closers, r.Engine.Stop)
	if cfg.TenantMetrics {
		r.Metrics.WatchTenants(r.Engine, cfg.Catalog)
	}

	lc := cfg.Ledger
	lc.Store, lc.Logger, lc.Now = store, cfg.Logger, cfg.Now
	keeper, err := ledger.New(lc)
	if err != nil {
		return nil, err
	}
	r.Metrics.WatchLedger(keeper)
	keepCtx, stopKeeping := context.WithCancel(context.Background())
	kept := make(chan struct{})
	go func() { defer close(kept); keeper.Run(keepCtx) }()
	r.closers = append(r.closers, func(context.Context) error { stopKeeping(); <-kept; return nil })

	r.Metrics.WatchWebhooks(store.WebhookHealth)
	deliverCtx, stopDelivering := context.WithCancel(context.Background())
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		(&webhook.Deliverer{Store: store, Sealer: r.Sealer, Log: cfg.Logger, Now: cfg.Now, Policy: hooks,
			Poll: cfg.DeliveryPoll, Backoff: cfg.DeliveryBackoff, Observer: r.Metrics}).Run(deliverCtx)
	}()
	r.closers = append(r.closers, func(context.Context) error { stopDelivering(); <-delivered; return nil })

	var dashboard func(http.Handler) http.Handler
	if cfg.Dashboard {
		dashboard = func(api http.Handler) http.Handler {
			return ui.New(ui.Config{API: api, Tokens: store, Catalog: cfg.Catalog, Logger: cfg.Logger, Now: cfg.Now})
		}
	}
	handler, endStreams, err := newHandler(deps{Engine: r.Engine, Store: store, Region: cfg.Region, Logger: cfg.Logger,
		Metrics: r.Metrics, Sealer: r.Sealer, Now: cfg.Now, Dashboard: dashboard, MaxBody: cfg.MaxBodyBytes,
		FailedAuthLimit: cfg.FailedAuthLimit, Webhooks: hooks, MetricsElsewhere: separateMetrics, AccessLog: cfg.AccessLog})
	if err != nil {
		return nil, err
	}

	// Last, once nothing else can fail: an admin token created by a start
	// that then failed would be shown to no one.
	if r.AdminToken, err = auth.Bootstrap(ctx, r.Engine, store, cfg.AdminToken); err != nil {
		return nil, fmt.Errorf("creating the admin token: %w", err)
	}

	r.http = r.server(cfg, handler)
	r.http.RegisterOnShutdown(endStreams)
	go func() { r.served <- r.serve(r.http, ln) }()
	if metricsLn != nil {
		r.metricsHTTP = r.server(cfg, metricsHandler(r.Metrics, cfg.Pprof))
		go func() {
			// Ending on its own ends the server; a shutdown is no news.
			if err := r.serve(r.metricsHTTP, metricsLn); !errors.Is(err, http.ErrServerClosed) {
				select {
				case r.served <- fmt.Errorf("serving metrics: %w", err):
				default:
				}
			}
		}()
	}
	attrs := []any{"addr", r.Addr.String(), "region", cfg.Region, "tls", r.certs != nil,
		"version", cfg.Build.Version, "commit", cfg.Build.Commit, "date", cfg.Build.Date, "go", cfg.Build.GoVersion}
	if metricsLn != nil {
		attrs = append(attrs, "metrics_addr", metricsLn.Addr().String())
	}
	cfg.Logger.Info("serving", attrs...)
	return r, nil
}

// listen returns ln, or a listener on addr; either is closed with r.
func (r *Running) listen(ln net.Listener, addr string) (net.Listener, error) {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
	}
	r.closers = append(r.closers, func(context.Context) error { ln.Close(); return nil })
	return ln, nil
}

// server is an HTTP server with cfg's limits against slow clients.
func (r *Running) server(cfg Config, h http.Handler) *http.Server {
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	if r.certs != nil {
		s.TLSConfig = &tls.Config{GetCertificate: r.certs.get, MinVersion: tls.VersionTLS12}
	}
	return s
}

// serve serves ln over HTTPS if a TLS pair is loaded, else over HTTP.
func (r *Running) serve(s *http.Server, ln net.Listener) error {
	if r.certs != nil {
		return s.ServeTLS(ln, "", "")
	}
	return s.Serve(ln)
}

// ReloadTLS loads the TLS pair again from its files (on SIGHUP); if they
// do not load, the previous pair stays in use and the error says why.
// Without TLS it does nothing.
func (r *Running) ReloadTLS() error {
	if r.certs == nil {
		return nil
	}
	if err := r.certs.reload(); err != nil {
		r.log.Error("TLS certificate not reloaded; still serving the previous one", "err", err)
		return err
	}
	return nil
}

// removeIfCreated returns what undoes the creation of path by this start:
// nothing if it exists now, its removal (and of what is in it) otherwise.
func removeIfCreated(path string) func() {
	if _, err := os.Lstat(path); err == nil || path == "" {
		return func() {}
	}
	return func() { os.RemoveAll(path) }
}

// Served delivers the error that ended serving, if it ends on its own.
func (r *Running) Served() <-chan error { return r.served }

// Close shuts down gracefully: no new requests, in-flight requests and
// the committed changes they wait for are finished (until ctx ends), then
// the background jobs stop and the store closes.
func (r *Running) Close(ctx context.Context) error {
	r.once.Do(func() {
		var errs []error
		if r.http != nil {
			if err := r.http.Shutdown(ctx); err != nil {
				r.log.Warn("in-flight requests did not finish in time", "err", err)
			}
		}
		if r.metricsHTTP != nil {
			_ = r.metricsHTTP.Shutdown(ctx)
		}
		for i := len(r.closers) - 1; i >= 0; i-- {
			if err := r.closers[i](ctx); err != nil {
				errs = append(errs, err)
			}
		}
		r.err = errors.Join(errs...)
	})
	return r.err
}

// StoreKind says which store a database setting selects: "sqlite" or
// "postgres".
func StoreKind(db string) (string, error) {
	switch {
	case db == "" || strings.HasPrefix(db, "sqlite:"):
		return "sqlite", nil
	case strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://"):
		return "postgres", nil
	}
	return "", errors.New("must be empty (SQLite in the data directory), sqlite:PATH or postgres://…")
}

func openStore(ctx context.Context, cfg Config) (quota.Store, error) {
	kind, err := StoreKind(cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if kind == "postgres" {
		opts := cfg.Postgres
		opts.NoMigrate = cfg.NoMigrate
		return postgres.OpenWithOptions(ctx, cfg.Database, cfg.Region, cfg.Logger, opts)
	}
	path := strings.TrimPrefix(cfg.Database, "sqlite:")
	if path == "" {
		path = filepath.Join(cfg.Data, "allot.db")
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			return nil, fmt.Errorf("creating the data directory: %w", err)
		}
	}
	return sqlite.OpenWithOptions(ctx, path, cfg.Region, cfg.Logger, sqlite.Options{NoMigrate: cfg.NoMigrate})
}

// loadSealer reads the operator's key, or creates the default key file.
func loadSealer(cfg Config) (*auth.Sealer, error) {
	path, create := cfg.SecretKeyFile, false
	if path == "" {
		path, create = filepath.Join(cfg.Data, "secret.key"), true
	}
	key, err := auth.LoadKey(path, create)
	if err != nil {
		return nil, err
	}
	return auth.NewSealer(key)
}

// checkKey refuses to serve with a key other than the one the database's
// sealed secrets were sealed with: AK/SK requests would fail with it.
func checkKey(ctx context.Context, store quota.Store, sealer *auth.Sealer, cfg Config) error {
	recorded, err := store.Pin(ctx, "secret_key_fingerprint", sealer.Fingerprint())
	if err != nil {
		return fmt.Errorf("reading the secret key's fingerprint from the store: %w", err)
	}
	if recorded != sealer.Fingerprint() {
		file := cfg.SecretKeyFile
		if file == "" {
			file = filepath.Join(cfg.Data, "secret.key")
		}
		return fmt.Errorf("the secret key in %s (fingerprint %s) is not the key this database's secrets are sealed with (fingerprint %s): "+
			"start with the --secret-key-file every other allot on this database uses", file, sealer.Fingerprint(), recorded)
	}
	return nil
}
