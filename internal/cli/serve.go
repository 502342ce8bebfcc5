package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/ledger"
	"github.com/allot-dev/allot/internal/postgres"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/server"
	"github.com/allot-dev/allot/internal/version"
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
	LogLevel      string
	// AccessLog logs one line per request.
	AccessLog bool
	// AdminTokenFile receives the admin token created at first start,
	// instead of standard error.
	AdminTokenFile string
	// TenantMetrics adds per-tenant usage gauges to /metrics.
	TenantMetrics bool
	// MetricsListen serves /metrics (and pprof with Pprof) on an address
	// of its own instead of the API's.
	MetricsListen string
	Pprof         bool
	// TLSCert and TLSKey serve HTTPS.
	TLSCert, TLSKey string
	// NoMigrate refuses to start while migrations are pending.
	NoMigrate bool
	QueueSize int
	MaxBatch  int
	// CacheConsumers bounds the consumers the committer keeps in memory.
	CacheConsumers int
	// TreeDepth is how many levels a tree of tenants may have.
	TreeDepth int
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
		LogLevel:       "info",
		QueueSize:      8192,
		MaxBatch:       1024,
		CacheConsumers: 1_000_000,
		TreeDepth:      quota.DefaultMaxDepth,

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
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error (ALLOT_LOG_LEVEL)")
	f.BoolVar(&cfg.AccessLog, "access-log", cfg.AccessLog, "log one line per request: id, method, route, status, duration, bytes, tenant, actor (ALLOT_ACCESS_LOG)")
	f.StringVar(&cfg.AdminTokenFile, "admin-token-file", cfg.AdminTokenFile, "write the admin token created at first start to this file (mode 0600) instead of standard error (ALLOT_ADMIN_TOKEN_FILE)")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", cfg.MetricsListen, "serve /metrics on this address instead of the API's (ALLOT_METRICS_LISTEN)")
	f.BoolVar(&cfg.Pprof, "pprof", cfg.Pprof, "serve Go's profiles under /debug/pprof/ on --metrics-listen (ALLOT_PPROF)")
	f.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "PEM certificate (chain) to serve HTTPS with; reloaded on SIGHUP and when it changes (ALLOT_TLS_CERT)")
	f.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "PEM private key of --tls-cert (ALLOT_TLS_KEY)")
	f.BoolVar(&cfg.NoMigrate, "no-migrate", cfg.NoMigrate, "refuse to start while the database lacks migrations, instead of applying them (ALLOT_NO_MIGRATE)")
	f.IntVar(&cfg.QueueSize, "queue-size", cfg.QueueSize, "changes waiting for the committer before writes answer 503 (ALLOT_QUEUE_SIZE)")
	f.IntVar(&cfg.MaxBatch, "max-batch", cfg.MaxBatch, "most changes the committer puts in one transaction (ALLOT_MAX_BATCH)")
	f.IntVar(&cfg.TreeDepth, "tree-depth", cfg.TreeDepth, "levels a tree of tenants may have, its root included (ALLOT_TREE_DEPTH)")
	f.IntVar(&cfg.CacheConsumers, "cache-consumers", cfg.CacheConsumers, "consumers the committer keeps in memory, about 160 bytes each live; tenants and usage always are (ALLOT_CACHE_CONSUMERS)")
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
// closes the store. What it says at start (the admin token created, where
// it serves) goes to stderr, apart from the log lines; the token never
// goes to the log.
func Serve(ctx context.Context, cfg ServeConfig, _, stderr io.Writer) error {
	cat, err := validate(cfg)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	sc := cfg.server(cat, log)
	if cfg.AccessLog {
		// Asked for, so written whatever the log level.
		sc.AccessLog, _ = newLogger(cfg.LogFormat, "info", stderr)
	}
	running, err := server.Start(ctx, sc)
	if err != nil {
		return err
	}
	if running.AdminToken != "" {
		showAdminToken(running.AdminToken, cfg.AdminTokenFile, stderr)
	}
	fmt.Fprintf(stderr, "allot: serving region %s on %s\n", cfg.Region, running.URL)
	if running.MetricsURL != "" {
		fmt.Fprintf(stderr, "allot: metrics on %s/metrics\n", running.MetricsURL)
	}
	var hup chan os.Signal
	if cfg.TLSCert != "" {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	var served error
wait:
	for {
		select {
		case served = <-running.Served():
			break wait
		case <-ctx.Done():
			break wait
		case <-hup:
			_ = running.ReloadTLS() // logged; the previous pair stays
		}
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := running.Close(shutdown); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return served
}

// showAdminToken hands over the admin token created at first start: into
// file if one is named, else on stderr. If the file cannot be written the
// token goes to stderr after all: it exists now, and a token no one was
// shown would lock the operator out.
func showAdminToken(token, file string, stderr io.Writer) {
	if file != "" {
		err := writeSecret(file, token+"\n")
		if err == nil {
			fmt.Fprintf(stderr, "allot: created an admin token; it is in %s, shown only there\n", file)
			return
		}
		fmt.Fprintf(stderr, "allot: could not write the admin token to %s: %v\n", file, err)
	}
	fmt.Fprintf(stderr, "allot: created an admin token; it is shown only this once:\n\n    %s\n\n", token)
}

// writeSecret writes a file only its owner may read, whole or not at all.
func writeSecret(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// server is the running allot's configuration from the command's.
func (cfg ServeConfig) server(cat *quota.Catalog, log *slog.Logger) server.Config {
	c := server.DefaultConfig()
	c.Listen, c.Database, c.Data, c.Region, c.Catalog = cfg.Listen, cfg.Database, cfg.Data, cfg.Region, cat
	c.SecretKeyFile, c.AdminToken, c.Logger = cfg.SecretKeyFile, cfg.AdminToken, log
	c.QueueSize, c.MaxBatch, c.MaxOps, c.TenantMetrics = cfg.QueueSize, cfg.MaxBatch, cfg.MaxBatchOps, cfg.TenantMetrics
	c.CacheConsumers, c.TreeDepth = cfg.CacheConsumers, cfg.TreeDepth
	c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout = cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout
	c.MaxHeaderBytes, c.MaxBodyBytes, c.FailedAuthLimit, c.WebhookAllow = cfg.MaxHeaderBytes, cfg.MaxBodyBytes, cfg.AuthFailureLimit, cfg.WebhookAllow
	c.Ledger = ledger.Config{Retention: time.Duration(cfg.LedgerRetention), AuditRetention: time.Duration(cfg.AuditRetention),
		Archive: cfg.LedgerArchive, SnapshotEvery: cfg.SnapshotEvery, SnapshotInterval: cfg.SnapshotInterval}
	c.Postgres = cfg.postgresOptions()
	c.MetricsListen, c.Pprof, c.TLSCert, c.TLSKey, c.NoMigrate = cfg.MetricsListen, cfg.Pprof, cfg.TLSCert, cfg.TLSKey, cfg.NoMigrate
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
	v := version.Get()
	fmt.Fprintf(stdout, "allot: configuration is valid\n  region   %s\n  listen   %s\n  store    %s\n  catalog  %s: %d services, %d resources, %d kinds, %d plans\n",
		cfg.Region, cfg.Listen, store, catalog, len(cat.Services), len(cat.Resources), len(cat.Kinds), len(cat.Plans))
	if cfg.TLSCert != "" {
		fmt.Fprintf(stdout, "  tls      %s, %s\n", cfg.TLSCert, cfg.TLSKey)
	}
	if cfg.MetricsListen != "" {
		fmt.Fprintf(stdout, "  metrics  %s\n", cfg.MetricsListen)
	}
	fmt.Fprint(stdout, pool)
	archive := "none"
	if cfg.LedgerArchive != "" {
		archive = cfg.LedgerArchive
	}
	fmt.Fprintf(stdout, "  ledger   consumer events kept %s, audit events kept %s; archive %s; snapshots every %d events or %s\n",
		cfg.LedgerRetention.Describe(), cfg.AuditRetention.Describe(), archive, cfg.SnapshotEvery, cfg.SnapshotInterval)
	fmt.Fprintf(stdout, "  version  %s (commit %s, %s, %s)\n", v.Version, v.Commit, v.Date, v.GoVersion)
	return nil
}

// validate checks every setting, naming the one at fault, and loads the
// catalog.
func validate(cfg ServeConfig) (*quota.Catalog, error) {
	if _, err := newLogger(cfg.LogFormat, cfg.LogLevel, io.Discard); err != nil {
		return nil, err
	}
	if !quota.ValidID(cfg.Region) {
		return nil, usageError{fmt.Sprintf("region: %q is not a valid identifier", cfg.Region)}
	}
	if err := checkAddr("listen", cfg.Listen); err != nil {
		return nil, err
	}
	if cfg.MetricsListen != "" {
		if err := checkAddr("metrics-listen", cfg.MetricsListen); err != nil {
			return nil, err
		}
	} else if cfg.Pprof {
		return nil, usageError{"pprof: profiles are served only on --metrics-listen, never on the API's address; set it too"}
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, usageError{"tls-cert and tls-key: give both or neither"}
	}
	if cfg.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, usageError{fmt.Sprintf("tls-cert, tls-key: %v", err)}
		}
	}
	if cfg.AdminTokenFile != "" {
		if fi, err := os.Stat(filepath.Dir(cfg.AdminTokenFile)); err != nil || !fi.IsDir() {
			return nil, usageError{fmt.Sprintf("admin-token-file: the directory of %s does not exist", cfg.AdminTokenFile)}
		}
	}
	if cfg.QueueSize < 1 || cfg.MaxBatch < 1 {
		return nil, usageError{"queue-size and max-batch must be at least 1"}
	}
	if cfg.CacheConsumers < 100 {
		return nil, usageError{"cache-consumers: must be at least 100"}
	}
	if cfg.TreeDepth < 1 || cfg.TreeDepth > 32 {
		return nil, usageError{"tree-depth: must be from 1 to 32"}
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

// checkAddr refuses an address that is not host:port.
func checkAddr(name, addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil {
		return usageError{fmt.Sprintf("%s: %q is not host:port: %v", name, addr, err)}
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return usageError{fmt.Sprintf("%s: %q has no valid port", name, addr)}
	}
	return nil
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var opts slog.HandlerOptions
	switch level {
	case "debug":
		opts.Level = slog.LevelDebug
	case "info":
		opts.Level = slog.LevelInfo
	case "warn":
		opts.Level = slog.LevelWarn
	case "error":
		opts.Level = slog.LevelError
	default:
		return nil, usageError{fmt.Sprintf("log-level: must be debug, info, warn or error, not %q", level)}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, &opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, &opts)), nil
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
