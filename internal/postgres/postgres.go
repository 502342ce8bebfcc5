// Package postgres is allot's scale-out store: any number of allot
// processes over one PostgreSQL database. Each batch of changes is one
// READ COMMITTED transaction that first takes transaction-scoped advisory
// locks on the tenants it touches, in a fixed order, so racing batches from
// different processes serialize per tenant and cannot deadlock.
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
	"time"

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
	// salt keeps the advisory locks of two schemas (two deployments, or
	// two tests) in one database apart.
	salt string
}

var _ quota.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string) and migrates it.
func Open(ctx context.Context, dsn, region string, log *slog.Logger) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// Durable before acknowledged, whatever the server's default.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "allot"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{region: region, log: log, pool: pool}
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&s.salt); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
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
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	defer conn.Release()
	key := s.lockKey("migrations")
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockMigrate, key); err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1, $2)`, lockMigrate, key)
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

// maxAttempts bounds how often Update runs a transaction that failed in a
// way that is safe to retry.
const maxAttempts = 5

// Update implements quota.Store. A transaction that lost a serialization
// or deadlock race, or that could not start because a connection broke
// before anything was sent, is run again from the start (fn is built to be
// re-run). A failure whose outcome is unknown, such as a connection lost
// during COMMIT, is returned, and nobody is told the change was made.
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx quota.Tx) error) error {
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(t pgx.Tx) error {
			return fn(ctx, &tx{s: s, t: t})
		})
		if err == nil {
			return nil
		}
		if _, ok := errors.AsType[*quota.Error](err); ok || attempt == maxAttempts || !retryable(err) {
			return fmt.Errorf("postgres: %w", err)
		}
		s.log.Debug("postgres: retrying a transaction", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres: %w (then %w)", err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff *= 4
	}
}

// retryable reports whether a failed transaction certainly did not commit
// and may be run again.
func retryable(err error) bool {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err)
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
