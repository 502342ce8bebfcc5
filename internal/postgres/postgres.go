// Package postgres is allot's scale-out store: any number of allot
// processes over one PostgreSQL database. Each batch of changes is one
// READ COMMITTED transaction that first takes transaction-scoped advisory
// locks on the tenants it touches, in a fixed order, so racing batches from
// different processes serialize per tenant and cannot deadlock.
//
// Outcomes. Update reports an outcome only when it knows it:
//
//   - nil: the transaction committed (or it wrote nothing, so whether its
//     COMMIT arrived does not matter).
//   - an error: it certainly did not commit. A transaction that failed
//     before its COMMIT was sent, that the server answered with an error,
//     or whose lost commit was looked up and found aborted, is run again
//     while attempts and the deadline allow; what is left is returned.
//     Errors that blame a value (SQLSTATE classes 22, 23, 54) wrap
//     quota.ErrRejected, so the engine can set the change that carried it
//     apart from the others.
//   - quota.OutcomeUnknown: the connection broke after COMMIT was sent and
//     the lookup could not finish. It is never retried and never reported
//     as a refusal or as "nothing was stored".
//
// The lookup: every transaction that writes records its transaction ID
// (pg_current_xact_id) in the same round trip as its first writes. After a
// lost COMMIT reply, a fresh connection asks pg_xact_status for that ID;
// while the old backend still runs the transaction (the server has not
// noticed the broken connection yet), the lookup terminates that backend,
// which makes the outcome final, and asks again.
//
// Progress. No process can hold the others' progress hostage: every
// connection carries lock, statement and idle-in-transaction timeouts and
// TCP keepalives on both ends (see Options), so a paused or partitioned
// process loses its session, and its locks, within seconds, and every wait
// is bounded by the caller's deadline.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/allot-dev/allot/internal/quota"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock classes: the first key of pg_advisory_xact_lock(int, int).
// A transaction takes them in this order, and within a class in ascending
// key order.
const (
	lockMigrate int32 = 1 + iota
	lockTenant
	lockToken
	lockLedger
)

// Store is the PostgreSQL implementation of quota.Store.
type Store struct {
	region string
	log    *slog.Logger
	pool   *pgxpool.Pool
	opts   Options
	// connCfg opens connections outside the pool: for migrations, and to
	// look up a lost commit when the pool's connections may all be dead.
	connCfg *pgx.ConnConfig
	// salt keeps the advisory locks of two schemas (two deployments, or
	// two tests) in one database apart.
	salt string
	// channel carries the ids of the tenants each commit changed.
	channel string
}

var _ quota.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string) with DefaultOptions and migrates it.
func Open(ctx context.Context, dsn, region string, log *slog.Logger) (*Store, error) {
	return OpenWithOptions(ctx, dsn, region, log, Options{})
}

// OpenWithOptions is Open with the bounds of opts; its zero fields take
// their defaults. The session settings it controls are set on every
// connection and take precedence over the same settings in the DSN.
func OpenWithOptions(ctx context.Context, dsn, region string, log *slog.Logger, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	opts = opts.withDefaults(cfg.ConnConfig.ConnectTimeout)
	// Durable before acknowledged, whatever the server's default.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "allot"
	}
	for k, v := range opts.runtimeParams() {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.ConnConfig.DialFunc = opts.dialer().DialContext
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{region: region, log: log, pool: pool, opts: opts, connCfg: cfg.ConnConfig.Copy()}
	// current_schema() is NULL when no schema of the search_path exists:
	// say which search_path, not that NULL does not scan into a string.
	var schema *string
	var searchPath string
	if err := pool.QueryRow(ctx, `SELECT current_schema(), current_setting('search_path')`).Scan(&schema, &searchPath); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	if schema == nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: no schema to create allot's tables in: none of the search_path %q exists in database %q; "+
			"create it (CREATE SCHEMA ...) or change search_path in the URL", searchPath, cfg.ConnConfig.Database)
	}
	s.salt = *schema
	s.channel = channelName(s.lockKey("tenants"))
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// lockKey maps a name to its advisory lock key within a class.
func (s *Store) lockKey(name string) int32 {
	h := fnv.New32a()
	h.Write([]byte(s.salt + "\x00" + s.region + "\x00" + name))
	return int32(h.Sum32())
}

// migrate applies the embedded migrations not yet applied, holding a
// session advisory lock so that processes starting together take turns.
// It runs on a connection of its own: a migration may rightly take longer
// than the pool's statement and lock timeouts, and waiting for another
// process's migration is bounded by ctx instead. That process cannot hold
// the lock forever either: idle_session_timeout ends its session if it
// stops between two migrations, idle_in_transaction_session_timeout if it
// stops inside one.
//
// A migration whose COMMIT reply is lost fails Open; it is not retried
// here. The next start looks in schema_migrations, under the lock, and so
// applies it again only if it did not commit.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SET lock_timeout = 0; SET statement_timeout = 0`); err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	// PostgreSQL 13 has no idle_session_timeout; there the keepalives
	// remain the bound.
	if _, err := conn.Exec(ctx, fmt.Sprintf(`SET idle_session_timeout = %d`, s.opts.IdleInTransactionTimeout.Milliseconds())); err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "42704" {
			return fmt.Errorf("postgres: migrations: %w", err)
		}
	}
	key := s.lockKey("migrations")
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockMigrate, key); err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	// Closing the connection (deferred above) releases the lock, even
	// when the connection is broken and an unlock could not be sent.
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		src, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&done); err != nil || done {
				return err
			}
			if _, err := tx.Exec(ctx, string(src)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, name)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", name, err)
		}
	}
	return nil
}

// Ping implements quota.Store: the database answers and is migrated.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if n == 0 {
		return errors.New("postgres: not migrated")
	}
	return nil
}
