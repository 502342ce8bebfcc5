package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/ledger"
	"github.com/allot-dev/allot/internal/postgres"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/server"
	"github.com/allot-dev/allot/internal/webhook"
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
	// CacheConsumers bounds the consumers the committer keeps in memory.
	CacheConsumers int
	// Limits against slow or abusive clients.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	MaxBodyBytes                                              int64
	MaxBatchOps                                               int
	AuthFailureLimit                                          int
	// WebhookAllow opens non-public webhook targets (webhook.ParsePolicy).
	WebhookAllow string
	// The ledger over months: how long events are kept (0: for ever), where
	// they are archived before pruning, and how often tenants' snapshots
	// are taken.
	LedgerRetention, AuditRetention Retention
	LedgerArchive                   string
	SnapshotEvery                   int
	SnapshotInterval                time.Duration

	// PostgreSQL's pool and session bounds; zero: the URL's
	// pool_max_conns or connect_timeout, else postgres.DefaultOptions.
	DatabaseMaxConns                                                      int32
	DatabaseStatementTimeout, DatabaseLockTimeout, DatabaseConnectTimeout time.Duration
}

// DefaultServeConfig returns the built-in defaults; `allot serve` layers
// a config file, ALLOT_* variables and flags over them.
func DefaultServeConfig() ServeConfig {
	return ServeConfig{
		Listen:         "127.0.0.1:8080",
		Data:           "./allot-data",
		Region:         "local",
		LogFormat:      "text",
		QueueSize:      8192,
		MaxBatch:       1024,
		CacheConsumers: 1_000_000,

		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		MaxBodyBytes:      1 << 20,
		MaxBatchOps:       1000,
		AuthFailureLimit:  20,

		LedgerRetention:  Retention(90 * 24 * time.Hour),
		SnapshotEvery:    10_000,
		SnapshotInterval: 10 * time.Minute,
	}
}

func newServe(getenv Env, stdout, stderr io.Writer) *cobra.Command {
	cfg := DefaultServeConfig()
	var configFile string
	var check bool
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the allot server",
		Long: `Run the allot server. With no flags it keeps its data in SQLite under
./allot-data and listens on 127.0.0.1:8080.

Each setting comes from, in order of precedence: its flag, its ALLOT_*
environment variable (named in the flag's help), the config file (YAML, keys
named like the flags), the built-in default.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			file, err := layerSettings(c.Flags(), getenv, configFile)
			if err != nil {
				return err
			}
			if cfg.AdminToken == "" {
				cfg.AdminToken = file["admin-token"]
			}
			if check {
				return Check(cfg, stdout)
			}
			return Serve(c.Context(), cfg, stdout, stderr)
		},
	}
	f := c.Flags()
	f.StringVar(&configFile, "config", getenv("ALLOT_CONFIG"), "YAML config file (ALLOT_CONFIG)")
	f.BoolVar(&check, "check", false, "validate the configuration and the catalog, then exit")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to listen on (ALLOT_LISTEN)")
	f.StringVar(&cfg.Data, "data", cfg.Data, "data directory (ALLOT_DATA)")
	f.StringVar(&cfg.Database, "database", cfg.Database, "database: empty for SQLite in the data directory, sqlite:PATH or postgres://… (ALLOT_DATABASE)")
	pg := postgres.DefaultOptions()
	f.Int32Var(&cfg.DatabaseMaxConns, "database-max-conns", 0, fmt.Sprintf("PostgreSQL: most connections per process; 0: the URL's pool_max_conns, else %d (ALLOT_DATABASE_MAX_CONNS)", pg.MaxConns))
	f.DurationVar(&cfg.DatabaseStatementTimeout, "database-statement-timeout", 0, fmt.Sprintf("PostgreSQL: longest one statement, COMMIT included, may run; 0: %s (ALLOT_DATABASE_STATEMENT_TIMEOUT)", pg.StatementTimeout))
	f.DurationVar(&cfg.DatabaseLockTimeout, "database-lock-timeout", 0, fmt.Sprintf("PostgreSQL: longest one wait for a tenant's lock, retried within the request's time; 0: %s (ALLOT_DATABASE_LOCK_TIMEOUT)", pg.LockTimeout))
	f.DurationVar(&cfg.DatabaseConnectTimeout, "database-connect-timeout", 0, fmt.Sprintf("PostgreSQL: longest opening a connection may take, per host of the URL; 0: the URL's connect_timeout, else %s (ALLOT_DATABASE_CONNECT_TIMEOUT)", pg.ConnectTimeout))
	f.StringVar(&cfg.Region, "region", cfg.Region, "the region this server serves (ALLOT_REGION)")
	f.StringVar(&cfg.Catalog, "catalog", cfg.Catalog, "catalog YAML file; empty for the embedded default (ALLOT_CATALOG)")
	f.StringVar(&cfg.SecretKeyFile, "secret-key-file", cfg.SecretKeyFile, "file with the 32-byte hex key that encrypts AK/SK secrets; default: DATA/secret.key, created at first start (ALLOT_SECRET_KEY_FILE)")
	f.BoolVar(&cfg.TenantMetrics, "metrics-per-tenant", cfg.TenantMetrics, "export per-tenant usage gauges; one series per tenant and resource (ALLOT_METRICS_PER_TENANT)")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json (ALLOT_LOG_FORMAT)")
	f.IntVar(&cfg.QueueSize, "queue-size", cfg.QueueSize, "changes waiting for the committer before writes answer 503 (ALLOT_QUEUE_SIZE)")
	f.IntVar(&cfg.MaxBatch, "max-batch", cfg.MaxBatch, "most changes the committer puts in one transaction (ALLOT_MAX_BATCH)")
	f.IntVar(&cfg.CacheConsumers, "cache-consumers", cfg.CacheConsumers, "consumers the committer keeps in memory, about 250 bytes each; tenants and usage always are (ALLOT_CACHE_CONSUMERS)")
	f.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "time a client has to send its request headers (ALLOT_READ_HEADER_TIMEOUT)")
	f.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "time a client has to send a whole request (ALLOT_READ_TIMEOUT)")
	f.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "time to write an answer; event streams are exempt (ALLOT_WRITE_TIMEOUT)")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "how long an idle keep-alive connection stays open (ALLOT_IDLE_TIMEOUT)")
	f.IntVar(&cfg.MaxHeaderBytes, "max-header-bytes", cfg.MaxHeaderBytes, "largest request header block (ALLOT_MAX_HEADER_BYTES)")
	f.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest request body, at most 1 MiB (ALLOT_MAX_BODY_BYTES)")
	f.IntVar(&cfg.MaxBatchOps, "max-batch-ops", cfg.MaxBatchOps, "most operations in one POST /api/v1/claims, at most 1000 (ALLOT_MAX_BATCH_OPS)")
	f.IntVar(&cfg.AuthFailureLimit, "auth-failure-limit", cfg.AuthFailureLimit, "failed authentications per source address and minute before 429; 0 disables (ALLOT_AUTH_FAILURE_LIMIT)")
	f.StringVar(&cfg.WebhookAllow, "webhook-allow", cfg.WebhookAllow, "comma-separated CIDRs, addresses or host[:port] webhooks may reach beyond public addresses, e.g. 127.0.0.1 (ALLOT_WEBHOOK_ALLOW)")
	f.Var(&cfg.LedgerRetention, "ledger-retention", "how long consumer events and threshold crossings are kept, e.g. 90d or 12h; 0 keeps them for ever (ALLOT_LEDGER_RETENTION)")
	f.Var(&cfg.AuditRetention, "audit-retention", "how long audit events (quota, limit, plan, tenant, token, request and webhook changes) are kept; 0 keeps them for ever (ALLOT_AUDIT_RETENTION)")
	f.StringVar(&cfg.LedgerArchive, "ledger-archive", cfg.LedgerArchive, "directory where events are archived (gzipped NDJSON, one file an hour) before they are pruned (ALLOT_LEDGER_ARCHIVE)")
	f.IntVar(&cfg.SnapshotEvery, "snapshot-every", cfg.SnapshotEvery, "ledger events between two snapshots of the tenants they touched (ALLOT_SNAPSHOT_EVERY)")
	f.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", cfg.SnapshotInterval, "longest time between two snapshots, when there were events (ALLOT_SNAPSHOT_INTERVAL)")
	// The admin token is a secret: environment or config file only, never
	// a flag (it would show in ps).
	cfg.AdminToken = getenv("ALLOT_ADMIN_TOKEN")
	return c
}

// envName is the environment variable of a serve flag.
func envName(flag string) string {
	return "ALLOT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// layerSettings fills each flag not given on the command line from its
// environment variable, else from the config file. Errors name the variable
// or the file and key at fault.
func layerSettings(f *pflag.FlagSet, getenv Env, configFile string) (file map[string]string, err error) {
	file = map[string]string{}
	if configFile != "" {
		if file, err = readConfigFile(f, configFile); err != nil {
			return nil, err
		}
	}
	var errs []error
	f.VisitAll(func(fl *pflag.Flag) {
		if fl.Changed || fl.Name == "config" || fl.Name == "check" {
			return
		}
		if _, ok := file[fl.Name]; ok && getenv(envName(fl.Name)) == "" {
			if err := f.Set(fl.Name, file[fl.Name]); err != nil {
				errs = append(errs, usageError{fmt.Sprintf("%s: %s: %v", configFile, fl.Name, err)})
			}
			return
		}
		if v := getenv(envName(fl.Name)); v != "" {
			if err := f.Set(fl.Name, v); err != nil {
				errs = append(errs, usageError{fmt.Sprintf("%s=%q: %v", envName(fl.Name), v, err)})
			}
		}
	})
	return file, errors.Join(errs...)
}

// readConfigFile reads a YAML mapping of flag names to scalar values.
func readConfigFile(f *pflag.FlagSet, path string) (map[string]string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Sprintf("reading the config file: %v", err)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, usageError{fmt.Sprintf("%s: %v", path, err)}
	}
	out := map[string]string{}
	if len(doc.Content) == 0 {
		return out, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, usageError{fmt.Sprintf("%s: must be a mapping of settings", path)}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case k.Value == "admin-token":
			// Read below; not a flag.
		case k.Value == "config" || k.Value == "check" || f.Lookup(k.Value) == nil:
			return nil, usageError{fmt.Sprintf("%s:%d: unknown setting %q", path, k.Line, k.Value)}
		}
		if v.Kind != yaml.ScalarNode {
			return nil, usageError{fmt.Sprintf("%s:%d: %s must be a single value", path, v.Line, k.Value)}
		}
		if _, dup := out[k.Value]; dup {
			return nil, usageError{fmt.Sprintf("%s:%d: %s is set twice", path, k.Line, k.Value)}
		}
		out[k.Value] = v.Value
	}
	return out, nil
}

// Serve runs allot until ctx ends, then shuts down gracefully: it stops
// accepting requests, lets in-flight requests and their commits finish, and
// closes the store.
func Serve(ctx context.Context, cfg ServeConfig, stdout, stderr io.Writer) error {
	cat, err := validate(cfg)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	running, err := server.Start(ctx, cfg.server(cat, log))
	if err != nil {
		return err
	}
	if running.AdminToken != "" {
		fmt.Fprintf(stdout, "allot: created an admin token; it is shown only this once:\n\n    %s\n\n", running.AdminToken)
	}
	fmt.Fprintf(stdout, "allot: serving region %s on %s\n", cfg.Region, running.URL)
	var served error
	select {
	case served = <-running.Served():
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := running.Close(shutdown); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return served
}

// server is the running allot's configuration from the command's.
func (cfg ServeConfig) server(cat *quota.Catalog, log *slog.Logger) server.Config {
	c := server.DefaultConfig()
	c.Listen, c.Database, c.Data, c.Region, c.Catalog = cfg.Listen, cfg.Database, cfg.Data, cfg.Region, cat
	c.SecretKeyFile, c.AdminToken, c.Logger = cfg.SecretKeyFile, cfg.AdminToken, log
	c.QueueSize, c.MaxBatch, c.MaxOps, c.TenantMetrics = cfg.QueueSize, cfg.MaxBatch, cfg.MaxBatchOps, cfg.TenantMetrics
	c.CacheConsumers = cfg.CacheConsumers
	c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout = cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout
	c.MaxHeaderBytes, c.MaxBodyBytes, c.FailedAuthLimit, c.WebhookAllow = cfg.MaxHeaderBytes, cfg.MaxBodyBytes, cfg.AuthFailureLimit, cfg.WebhookAllow
	c.Ledger = ledger.Config{Retention: time.Duration(cfg.LedgerRetention), AuditRetention: time.Duration(cfg.AuditRetention),
		Archive: cfg.LedgerArchive, SnapshotEvery: cfg.SnapshotEvery, SnapshotInterval: cfg.SnapshotInterval}
	c.Postgres = cfg.postgresOptions()
	return c
}

// postgresOptions are the store's bounds from the command's; zero fields
// are the store's to fill.
func (cfg ServeConfig) postgresOptions() postgres.Options {
	return postgres.Options{MaxConns: cfg.DatabaseMaxConns, StatementTimeout: cfg.DatabaseStatementTimeout,
		LockTimeout: cfg.DatabaseLockTimeout, ConnectTimeout: cfg.DatabaseConnectTimeout}
}

// Check validates cfg and its catalog without opening the store or the
// listener, and says what would be served.
func Check(cfg ServeConfig, stdout io.Writer) error {
	cat, err := validate(cfg)
	if err != nil {
		return err
	}
	store := "sqlite:" + filepath.Join(cfg.Data, "allot.db")
	if cfg.Database != "" {
		store = redactDSN(cfg.Database)
	}
	catalog := "the embedded default"
	if cfg.Catalog != "" {
		catalog = cfg.Catalog
	}
	var pool string
	if kind, _ := storeKind(cfg.Database); kind == "postgres" {
		o, err := postgres.Effective(cfg.Database, cfg.postgresOptions())
		if err != nil {
			return usageError{fmt.Sprintf("database: %v", err)}
		}
		pool = fmt.Sprintf("  pool     %d connections; statement timeout %s, lock timeout %s, connect timeout %s\n",
			o.MaxConns, o.StatementTimeout, o.LockTimeout, o.ConnectTimeout)
	}
	fmt.Fprintf(stdout, "allot: configuration is valid\n  region   %s\n  listen   %s\n  store    %s\n  catalog  %s: %d services, %d resources, %d kinds, %d plans\n",
		cfg.Region, cfg.Listen, store, catalog, len(cat.Services), len(cat.Resources), len(cat.Kinds), len(cat.Plans))
	fmt.Fprint(stdout, pool)
	archive := "none"
	if cfg.LedgerArchive != "" {
		archive = cfg.LedgerArchive
	}
	fmt.Fprintf(stdout, "  ledger   consumer events kept %s, audit events kept %s; archive %s; snapshots every %d events or %s\n",
		cfg.LedgerRetention.Describe(), cfg.AuditRetention.Describe(), archive, cfg.SnapshotEvery, cfg.SnapshotInterval)
	return nil
}

// validate checks every setting, naming the one at fault, and loads the
// catalog.
func validate(cfg ServeConfig) (*quota.Catalog, error) {
	if _, err := newLogger(cfg.LogFormat, io.Discard); err != nil {
		return nil, err
	}
	if !quota.ValidID(cfg.Region) {
		return nil, usageError{fmt.Sprintf("region: %q is not a valid identifier", cfg.Region)}
	}
	if _, port, err := net.SplitHostPort(cfg.Listen); err != nil {
		return nil, usageError{fmt.Sprintf("listen: %q is not host:port: %v", cfg.Listen, err)}
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, usageError{fmt.Sprintf("listen: %q has no valid port", cfg.Listen)}
	}
	if cfg.QueueSize < 1 || cfg.MaxBatch < 1 {
		return nil, usageError{"queue-size and max-batch must be at least 1"}
	}
	if cfg.CacheConsumers < 100 {
		return nil, usageError{"cache-consumers: must be at least 100"}
	}
	for name, d := range map[string]time.Duration{"read-header-timeout": cfg.ReadHeaderTimeout, "read-timeout": cfg.ReadTimeout,
		"write-timeout": cfg.WriteTimeout, "idle-timeout": cfg.IdleTimeout} {
		if d <= 0 {
			return nil, usageError{fmt.Sprintf("%s: must be positive", name)}
		}
	}
	if cfg.MaxHeaderBytes < 4096 {
		return nil, usageError{"max-header-bytes: must be at least 4096"}
	}
	if cfg.MaxBodyBytes < 1024 || cfg.MaxBodyBytes > 1<<20 {
		return nil, usageError{"max-body-bytes: must be from 1024 to 1048576"}
	}
	if cfg.MaxBatchOps < 1 || cfg.MaxBatchOps > 1000 {
		return nil, usageError{"max-batch-ops: must be from 1 to 1000"}
	}
	if cfg.SnapshotEvery < 100 {
		return nil, usageError{"snapshot-every: must be at least 100"}
	}
	if cfg.SnapshotInterval < time.Second {
		return nil, usageError{"snapshot-interval: must be at least 1s"}
	}
	if cfg.AuthFailureLimit < 0 {
		return nil, usageError{"auth-failure-limit: must not be negative"}
	}
	if _, err := webhook.ParsePolicy(cfg.WebhookAllow); err != nil {
		return nil, usageError{fmt.Sprintf("webhook-allow: %v", err)}
	}
	if cfg.DatabaseMaxConns < 0 {
		return nil, usageError{"database-max-conns: must not be negative"}
	}
	for name, d := range map[string]time.Duration{"database-statement-timeout": cfg.DatabaseStatementTimeout,
		"database-lock-timeout": cfg.DatabaseLockTimeout, "database-connect-timeout": cfg.DatabaseConnectTimeout} {
		// PostgreSQL counts in milliseconds; less would read as "off".
		if d < 0 || (d > 0 && d < time.Millisecond) {
			return nil, usageError{fmt.Sprintf("%s: must be 0 (the default) or at least 1ms", name)}
		}
	}
	if _, err := storeKind(cfg.Database); err != nil {
		return nil, err
	}
	if cfg.SecretKeyFile != "" {
		if _, err := auth.LoadKey(cfg.SecretKeyFile, false); err != nil {
			return nil, usageError{fmt.Sprintf("secret-key-file: %v", err)}
		}
	}
	return loadCatalog(cfg.Catalog)
}

// storeKind says which store a --database value selects.
func storeKind(db string) (string, error) {
	switch {
	case db == "" || strings.HasPrefix(db, "sqlite:"):
		return "sqlite", nil
	case strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://"):
		if _, err := url.Parse(db); err != nil {
			return "", usageError{fmt.Sprintf("database: %v", err)}
		}
		return "postgres", nil
	}
	return "", usageError{"database: must be empty (SQLite in the data directory), sqlite:PATH or postgres://…"}
}

// redactDSN hides a password in a database URL.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return dsn
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, usageError{fmt.Sprintf("log-format: must be text or json, not %q", format)}
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
		return nil, fmt.Errorf("catalog: %s: %w", path, err)
	}
	return cat, nil
}

// Retention is how long the ledger keeps events: a Go duration or a number
// of days ("90d"); 0 (or "forever") keeps them for ever.
type Retention time.Duration

func (r *Retention) String() string {
	d := time.Duration(*r)
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// Set implements pflag.Value.
func (r *Retention) Set(s string) error {
	if s == "forever" || s == "0" {
		*r = 0
		return nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("%q: a number of days is a whole number, such as 90d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return fmt.Errorf("%q: a retention is like 90d or 12h, or 0 for ever", s)
		}
	}
	if d < 0 {
		return fmt.Errorf("%q: must not be negative", s)
	}
	*r = Retention(d)
	return nil
}

// Type implements pflag.Value.
func (r *Retention) Type() string { return "retention" }

// Describe says the retention in words, for --check.
func (r Retention) Describe() string {
	if r == 0 {
		return "for ever"
	}
	return "for " + r.String()
}
