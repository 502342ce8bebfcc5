package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/server"
	"github.com/allot-dev/allot/internal/sqlite"
)

// ServeConfig is everything `allot serve` can be told.
type ServeConfig struct {
	Listen     string
	Data       string
	Database   string
	Region     string
	Catalog    string
	AdminToken string
	// SecretKeyFile holds the key that seals AK/SK secret keys; empty: a key
	// file created in the data directory on first start.
	SecretKeyFile string
	LogFormat     string
	// TenantMetrics adds per-tenant usage gauges to /metrics.
	TenantMetrics bool
	QueueSize     int
	MaxBatch      int
}

// DefaultServeConfig returns the defaults, each overridable by an ALLOT_*
// environment variable and then by a flag.
func DefaultServeConfig(getenv Env) ServeConfig {
	or := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	return ServeConfig{
		Listen:        or("ALLOT_LISTEN", "127.0.0.1:8080"),
		Data:          or("ALLOT_DATA", "./allot-data"),
		Database:      getenv("ALLOT_DATABASE"),
		Region:        or("ALLOT_REGION", "local"),
		Catalog:       getenv("ALLOT_CATALOG"),
		AdminToken:    getenv("ALLOT_ADMIN_TOKEN"),
		LogFormat:     or("ALLOT_LOG_FORMAT", "text"),
		TenantMetrics: getenv("ALLOT_METRICS_PER_TENANT") == "true",
		QueueSize:     8192,
		MaxBatch:      1024,
	}
}

func newServe(getenv Env, stdout, stderr io.Writer) *cobra.Command {
	cfg := DefaultServeConfig(getenv)
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the allot server",
		Long: `Run the allot server. With no flags it keeps its data in SQLite under
./allot-data and listens on 127.0.0.1:8080. Every flag can also be set by the
ALLOT_* environment variable named in its help.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return Serve(c.Context(), cfg, stdout, stderr)
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to listen on (ALLOT_LISTEN)")
	f.StringVar(&cfg.Data, "data", cfg.Data, "data directory (ALLOT_DATA)")
	f.StringVar(&cfg.Database, "database", cfg.Database, "database: empty for SQLite in the data directory (ALLOT_DATABASE)")
	f.StringVar(&cfg.Region, "region", cfg.Region, "the region this server serves (ALLOT_REGION)")
	f.StringVar(&cfg.SecretKeyFile, "secret-key-file", cfg.SecretKeyFile, "file with the 32-byte hex key that encrypts AK/SK secrets; default: DATA/secret.key, created at first start (ALLOT_SECRET_KEY_FILE)")
	f.StringVar(&cfg.Catalog, "catalog", cfg.Catalog, "catalog YAML file; empty for the embedded default (ALLOT_CATALOG)")
	f.BoolVar(&cfg.TenantMetrics, "metrics-per-tenant", cfg.TenantMetrics, "export per-tenant usage gauges; one series per tenant and resource (ALLOT_METRICS_PER_TENANT)")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json (ALLOT_LOG_FORMAT)")
	return c
}

// Serve runs allot until ctx ends, then shuts down gracefully: it stops
// accepting requests, lets in-flight requests and their commits finish, and
// closes the store.
func Serve(ctx context.Context, cfg ServeConfig, stdout, stderr io.Writer) error {
	log, err := newLogger(cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	if !quota.ValidID(cfg.Region) {
		return usageError{fmt.Sprintf("--region %q is not a valid identifier", cfg.Region)}
	}
	cat, err := loadCatalog(cfg.Catalog)
	if err != nil {
		return err
	}
	sealer, err := loadSealer(cfg)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()

	metrics := server.NewMetrics()
	if cfg.TenantMetrics {
		metrics.WatchTenants(store, cat)
	}
	engine := quota.NewEngine(quota.EngineConfig{
		Store: store, Catalog: cat, Logger: log, Observer: metrics, QueueSize: cfg.QueueSize, MaxBatch: cfg.MaxBatch,
	})
	engine.Start()
	defer engine.Stop(context.Background())

	token, err := auth.Bootstrap(ctx, engine, store, cfg.AdminToken)
	if err != nil {
		return fmt.Errorf("creating the admin token: %w", err)
	}
	if token != "" {
		fmt.Fprintf(stdout, "allot: created an admin token; it is shown only this once:\n\n    %s\n\n", token)
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           server.New(server.Deps{Engine: engine, Store: store, Region: cfg.Region, Logger: log, Metrics: metrics, Sealer: sealer}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "allot: serving region %s on http://%s\n", cfg.Region, ln.Addr())
	log.Info("serving", "addr", ln.Addr().String(), "region", cfg.Region)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Warn("in-flight requests did not finish in time", "err", err)
	}
	if err := engine.Stop(shutdown); err != nil {
		return fmt.Errorf("stopping the committer: %w", err)
	}
	return nil
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format must be text or json, not %q", format)}
}

// loadSealer reads the operator's key, or creates the default key file.
func loadSealer(cfg ServeConfig) (*auth.Sealer, error) {
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

func loadCatalog(path string) (*quota.Catalog, error) {
	if path == "" {
		return quota.DefaultCatalog(), nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	cat, err := quota.ParseCatalog(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cat, nil
}

func openStore(ctx context.Context, cfg ServeConfig, log *slog.Logger) (quota.Store, error) {
	db := cfg.Database
	switch {
	case db == "" || strings.HasPrefix(db, "sqlite:"):
		path := strings.TrimPrefix(db, "sqlite:")
		if path == "" {
			if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
				return nil, fmt.Errorf("creating the data directory: %w", err)
			}
			path = filepath.Join(cfg.Data, "allot.db")
		}
		return sqlite.Open(ctx, path, cfg.Region, log)
	}
	return nil, errors.New("--database must be empty (SQLite in the data directory), sqlite:PATH or postgres://…")
}
