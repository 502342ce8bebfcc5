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
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/schema"
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
	// lockLedger is no longer taken (the ledger has no lock: final.go);
	// it keeps its number so the classes after it keep theirs across
	// versions.
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
	// seqName is the ledger's sequence, and fin how far the ledger is
	// final (final.go).
	seqName string
	fin     finality
	// stopMarks ends the goroutine that deletes old commit marks.
	stopMarks, marksDone chan struct{}
	closing              sync.Once
	// migrated is the migrations this Open applied.
	migrated []string
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
	cfg, opts, err := parse(dsn, opts)
	if err != nil {
		return nil, err
	}
	// Durable before acknowledged, whatever the server's default.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "allot"
	}
	for k, v := range opts.runtimeParams() {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	cfg.MaxConns = opts.MaxConns
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
	if err := pool.QueryRow(ctx, `SELECT pg_get_serial_sequence('events', 'seq')`).Scan(&s.seqName); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: finding the ledger's sequence: %w", err)
	}
	s.stopMarks, s.marksDone = make(chan struct{}), make(chan struct{})
	go s.pruneMarks()
	return s, nil
}

// Effective returns the options a store opened on dsn with opts runs
// with: a zero field takes the DSN's pool_max_conns or connect_timeout if
// it has one, else its default. It connects to nothing.
func Effective(dsn string, opts Options) (Options, error) {
	_, opts, err := parse(dsn, opts)
	return opts, err
}

func parse(dsn string, opts Options) (*pgxpool.Config, Options, error) {
	if err := opts.Validate(); err != nil {
		return nil, Options{}, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, Options{}, fmt.Errorf("postgres: %w", err)
	}
	if opts.MaxConns == 0 && strings.Contains(dsn, "pool_max_conns") {
		opts.MaxConns = cfg.MaxConns
	}
	return cfg, opts.withDefaults(cfg.ConnConfig.ConnectTimeout), nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.closing.Do(func() {
		close(s.stopMarks)
		<-s.marksDone
		s.pool.Close()
	})
	return nil
}

// pruneMarks deletes, once a minute, the commit marks older than ten
// minutes: a lost commit is looked up within seconds.
func (s *Store) pruneMarks() {
	defer close(s.marksDone)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stopMarks:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, err := s.pool.Exec(ctx, `DELETE FROM commit_marks WHERE at < $1`, time.Now().Add(-10*time.Minute).UnixNano()); err != nil {
				s.log.Warn("postgres: deleting old commit marks failed", "err", err)
			}
			cancel()
		}
	}
}

// lockKey maps a name to its advisory lock key within a class.
func (s *Store) lockKey(name string) int32 {
	h := fnv.New32a()
	h.Write([]byte(s.salt + "\x00" + s.region + "\x00" + name))
	return int32(h.Sum32())
}

// known is the migrations this allot has, in order.
func known() []string {
	names, _ := fs.Glob(migrations, "migrations/*.sql") // the pattern is valid
	slices.Sort(names)
	return names
}

// requires is what schema_migrations records for a migration this allot
// applies: the newest migration an allot must know to serve the database
// afterwards. A migration keeps the previous version working unless it is
// marked incompatible (TestMigrationsKeepThePreviousVersionWorking holds
// the others to schema.Additive), so it requires the one before it.
func requires(name string) (string, error) {
	src, err := migrations.ReadFile(name)
	if err != nil {
		return "", err
	}
	all := known()
	i := slices.Index(all, name)
	if i <= 0 || schema.Incompatible(string(src)) != "" {
		return name, nil
	}
	return all[i-1], nil
}

// Migrations says, changing nothing, which migrations the database dsn
// names has and which this allot would apply. The error, with the status,
// refuses a database a newer allot migrated in a way this one cannot serve.
func Migrations(ctx context.Context, dsn string) (schema.Status, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return schema.Status{}, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(context.Background())
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return schema.Status{}, err
	}
	st := schema.Compare(known(), applied)
	return st, st.Check()
}

// appliedMigrations reads schema_migrations, which may not exist yet, or
// lack the requires column (an allot before it wrote none).
func appliedMigrations(ctx context.Context, conn *pgx.Conn) ([]schema.Applied, error) {
	var table, column bool
	if err := conn.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'),
		EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'schema_migrations' AND column_name = 'requires')`,
	).Scan(&table, &column); err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	if !table {
		return nil, nil
	}
	q := `SELECT name, '' FROM schema_migrations`
	if column {
		q = `SELECT name, requires FROM schema_migrations`
	}
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (schema.Applied, error) {
		var a schema.Applied
		err := row.Scan(&a.Name, &a.Requires)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	return out, nil
}

// Migrated is the migrations this Open applied, in order.
func (s *Store) Migrated() []string { return slices.Clone(s.migrated) }

// migrate applies the embedded migrations not yet applied, holding a
// session advisory lock so that processes starting together take turns.
// It runs on a connection of its own: a migration may rightly take longer
// than the pool's statement and lock timeouts, and waiting for another
// process's migration is bounded by ctx instead. That process cannot hold
// the lock forever either: idle_session_timeout ends its session if it
// stops between two migrations, idle_in_transaction_session_timeout if it
// stops inside one.
//
// A database a newer allot migrated is served only if what that allot
// applied requires no migration this one lacks (see requires): version N
// runs on N+1's schema during a rolling upgrade or after a rollback, and is
// refused on one it was not promised to fit.
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
	if s.opts.NoMigrate {
		applied, err := appliedMigrations(ctx, conn)
		if err != nil {
			return err
		}
		st := schema.Compare(known(), applied)
		if err := st.Check(); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if err := st.Current(); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		s.newer(st)
		return nil
	}
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
	// The schema is the database's, whatever region a process serves: the
	// key is the schema's alone.
	h := fnv.New32a()
	h.Write([]byte(s.salt + "\x00migrations"))
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockMigrate, int32(h.Sum32())); err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	// Closing the connection (deferred above) releases the lock, even
	// when the connection is broken and an unlock could not be sent.
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
		ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS requires text NOT NULL DEFAULT ''`); err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return err
	}
	st := schema.Compare(known(), applied)
	if err := st.Check(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	s.newer(st)
	for _, name := range st.Pending {
		src, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		req, err := requires(name)
		if err != nil {
			return err
		}
		var ran bool
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&done); err != nil || done {
				return err
			}
			if _, err := tx.Exec(ctx, string(src)); err != nil {
				return err
			}
			ran = true
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name, requires) VALUES ($1, $2)`, name, req)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", name, err)
		}
		if ran {
			s.migrated = append(s.migrated, name)
		}
	}
	return nil
}

// newer warns that a newer allot migrated the database, in a way this one
// may serve: the rolling upgrade should go on, or has been rolled back.
func (s *Store) newer(st schema.Status) {
	if len(st.Newer) > 0 {
		s.log.Warn("postgres: the database was migrated by a newer allot, compatibly with this one; serving",
			"database", schema.Describe(st.Newest()), "this_allot", schema.Describe(st.KnownNewest()))
	}
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
