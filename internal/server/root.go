package server

import (
	"context"
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
	"github.com/allot-dev/allot/internal/postgres"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
	"github.com/allot-dev/allot/internal/ui"
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

	// The store: Store if set (it is then closed with the server), else
	// Database ("" or "sqlite:PATH" for SQLite, "postgres://…") with
	// SQLite's file in Data.
	Store    quota.Store
	Database string
	Data     string
	Postgres postgres.Options

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

	QueueSize, MaxBatch, MaxOps int
	SweepInterval               time.Duration // nil: 1s
	TenantMetrics               bool
	Dashboard                   bool

	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	MaxBodyBytes                                              int64
	// FailedAuthLimit is how many failed authentications a source address
	// may have per minute before it gets 429; 0 turns the limit off.
	FailedAuthLimit int
	// WebhookAllow opens chosen targets to webhooks (see webhook.Policy).
	WebhookAllow string
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
	URL     string // http://host:port
	Addr    net.Addr
	Store   quota.Store // the store as the server uses it (token lookups cached)
	Engine  *quota.Engine
	Metrics *Metrics
	Sealer  *auth.Sealer
	// AdminToken is the admin token created at this start, to be shown once;
	// empty when none was created.
	AdminToken string

	log     *slog.Logger
	http    *http.Server
	served  chan error
	closers []func(context.Context) error // run last to first
	once    sync.Once
	err     error
}

// Start starts allot: it binds the listener first, so a start that cannot
// serve fails before it creates anything, then opens the store, checks the
// secret key against it, starts the committer, the reservation sweeper and
// webhook delivery, makes sure an admin can get in, and serves.
func Start(ctx context.Context, cfg Config) (_ *Running, err error) {
	if cfg.Logger == nil {
		return nil, errors.New("server: a logger is required")
	}
	if cfg.Catalog == nil {
		cfg.Catalog = quota.DefaultCatalog()
	}
	hooks, err := webhook.ParsePolicy(cfg.WebhookAllow)
	if err != nil {
		return nil, fmt.Errorf("webhook-allow: %w", err)
	}
	r := &Running{log: cfg.Logger, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			r.Close(context.Background())
		}
	}()

	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
		}
	}
	r.closers = append(r.closers, func(context.Context) error { ln.Close(); return nil })
	r.Addr, r.URL = ln.Addr(), "http://"+ln.Addr().String()

	store := cfg.Store
	if store == nil {
		if store, err = openStore(ctx, cfg); err != nil {
			return nil, err
		}
	}
	r.closers = append(r.closers, func(context.Context) error { return store.Close() })
	if r.Sealer = cfg.Sealer; r.Sealer == nil {
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
	r.Engine = quota.NewEngine(quota.EngineConfig{Store: store, Catalog: cfg.Catalog, Logger: cfg.Logger, Now: cfg.Now,
		Observer: r.Metrics, QueueSize: cfg.QueueSize, MaxBatch: cfg.MaxBatch, MaxOps: cfg.MaxOps, SweepInterval: cfg.SweepInterval})
	if err := r.Engine.Start(ctx); err != nil {
		return nil, fmt.Errorf("loading the state: %w", err)
	}
	r.closers = append(r.closers, r.Engine.Stop)
	if cfg.TenantMetrics {
		r.Metrics.WatchTenants(r.Engine, cfg.Catalog)
	}

	r.Metrics.WatchWebhooks(store.WebhookHealth)
	deliverCtx, stopDelivering := context.WithCancel(context.Background())
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		(&webhook.Deliverer{Store: store, Sealer: r.Sealer, Log: cfg.Logger, Now: cfg.Now, Policy: hooks,
			Poll: cfg.DeliveryPoll, Backoff: cfg.DeliveryBackoff, Observer: r.Metrics}).Run(deliverCtx)
	}()
	r.closers = append(r.closers, func(context.Context) error { stopDelivering(); <-delivered; return nil })

	if r.AdminToken, err = auth.Bootstrap(ctx, r.Engine, store, cfg.AdminToken); err != nil {
		return nil, fmt.Errorf("creating the admin token: %w", err)
	}

	var dashboard func(http.Handler) http.Handler
	if cfg.Dashboard {
		dashboard = func(api http.Handler) http.Handler {
			return ui.New(ui.Config{API: api, Tokens: store, Catalog: cfg.Catalog, Logger: cfg.Logger, Now: cfg.Now})
		}
	}
	handler, endStreams, err := newHandler(deps{Engine: r.Engine, Store: store, Region: cfg.Region, Logger: cfg.Logger,
		Metrics: r.Metrics, Sealer: r.Sealer, Now: cfg.Now, Dashboard: dashboard, MaxBody: cfg.MaxBodyBytes,
		FailedAuthLimit: cfg.FailedAuthLimit, Webhooks: hooks})
	if err != nil {
		return nil, err
	}
	r.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	r.http.RegisterOnShutdown(endStreams)
	go func() { r.served <- r.http.Serve(ln) }()
	cfg.Logger.Info("serving", "addr", r.Addr.String(), "region", cfg.Region)
	return r, nil
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
		return postgres.OpenWithOptions(ctx, cfg.Database, cfg.Region, cfg.Logger, cfg.Postgres)
	}
	path := strings.TrimPrefix(cfg.Database, "sqlite:")
	if path == "" {
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			return nil, fmt.Errorf("creating the data directory: %w", err)
		}
		path = filepath.Join(cfg.Data, "allot.db")
	}
	return sqlite.Open(ctx, path, cfg.Region, cfg.Logger)
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
