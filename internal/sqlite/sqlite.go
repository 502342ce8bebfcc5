// Package sqlite is allot's embedded store: one SQLite file, owned by one
// process (a second is refused), written by one connection in BEGIN
// IMMEDIATE transactions, read by a separate pool.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	sqlite3 "modernc.org/sqlite" // registers the "sqlite" driver; pure Go, no cgo

	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/schema"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite implementation of quota.Store.
type Store struct {
	region string
	log    *slog.Logger
	write  *sql.DB // one connection: SQLite has one writer anyway
	read   *sql.DB
	reads  *stmtCache // the read pool's prepared statements

	inUse *os.File // the exclusive lock that makes this process the only user

	migrated []string // the migrations this Open applied

	ckpt               *sql.DB // checkpoints the WAL
	wal                string  // the WAL's path
	stopCkpt, ckptDone chan struct{}

	mu    sync.Mutex // serializes Update on the writer connection
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

var _ quota.Store = (*Store)(nil)

// busyTimeout is how long a connection waits for another process's write
// lock before giving up.
const busyTimeout = 10000 // ms

// Options adjust OpenWithOptions.
type Options struct {
	// NoMigrate refuses a database that lacks migrations this allot has,
	// instead of applying them; nothing is created then.
	NoMigrate bool
}

// Open opens (creating if need be) the database at path and migrates it.
func Open(ctx context.Context, path, region string, log *slog.Logger) (*Store, error) {
	return OpenWithOptions(ctx, path, region, log, Options{})
}

// OpenWithOptions is Open, adjusted by opts. Either refuses a database
// that a newer allot has migrated.
func OpenWithOptions(ctx context.Context, path, region string, log *slog.Logger, opts Options) (*Store, error) {
	if opts.NoMigrate {
		st, err := Migrations(ctx, path)
		if err == nil {
			err = st.Current()
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	dsn := func(pragmas ...string) string {
		q := url.Values{}
		for _, p := range append([]string{fmt.Sprintf("busy_timeout(%d)", busyTimeout), "foreign_keys(1)"}, pragmas...) {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode()
	}
	inUse, err := own(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// The writer never checkpoints (wal_autocheckpoint 0): copying the WAL
	// into the database would stall commits. checkpoints does it instead,
	// on a connection of its own.
	write, err := sql.Open("sqlite", dsn("journal_mode(WAL)", "synchronous(FULL)", "wal_autocheckpoint(0)"))
	if err != nil {
		inUse.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	s := &Store{region: region, log: log, write: write, stmts: map[string]*sql.Stmt{}, inUse: inUse, wal: path + "-wal"}
	if s.conn, err = write.Conn(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// Readers keep 16 MB of pages each (SQLite's default is 2 MB): a
	// history over a long ledger touches a page per point, and at the
	// default they evict one another on every request.
	s.read, err = sql.Open("sqlite", dsn("query_only(1)", "cache_size(-16384)"))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s.read.SetMaxOpenConns(max(4, 2*runtime.NumCPU()))
	s.read.SetMaxIdleConns(max(4, 2*runtime.NumCPU()))
	s.reads = &stmtCache{db: s.read, stmts: map[string]*sql.Stmt{}}
	if s.ckpt, err = sql.Open("sqlite", dsn("synchronous(FULL)")); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s.ckpt.SetMaxOpenConns(1)
	s.stopCkpt, s.ckptDone = make(chan struct{}), make(chan struct{})
	go s.checkpoints()
	return s, nil
}

// walLimit is the WAL size at which the checkpointer stops the writer for
// a moment to empty it.
const walLimit = 128 << 20

// checkpoints copies the WAL into the database in the background, so that
// commits never wait for it: a PASSIVE checkpoint never blocks the writer.
// Under a steady load the writer never finds the WAL wholly copied, so it
// never starts it again from the beginning, and the file would grow
// without end; past walLimit the checkpointer holds the writer back while
// it copies the little PASSIVE left and truncates the file.
func (s *Store) checkpoints() {
	defer close(s.ckptDone)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stopCkpt:
			return
		case <-t.C:
			if _, err := s.ckpt.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
				s.log.Warn("sqlite: checkpoint failed", "err", err)
				continue
			}
			if fi, err := os.Stat(s.wal); err != nil || fi.Size() < walLimit {
				continue
			}
			s.mu.Lock()
			_, err := s.ckpt.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
			s.mu.Unlock()
			if err != nil {
				s.log.Warn("sqlite: checkpoint failed", "err", err)
			}
		}
	}
}

// stmtCache prepares each read query once for the pool: parsing and
// planning a statement costs more than running a point lookup.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c.mu.Lock()
	st, ok := c.stmts[query]
	c.mu.Unlock()
	if !ok {
		var err error
		if st, err = c.db.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if prev, raced := c.stmts[query]; raced {
			st.Close()
			st = prev
		} else {
			c.stmts[query] = st
		}
		c.mu.Unlock()
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// Close closes both pools.
func (s *Store) Close() error {
	var errs []error
	if s.ckpt != nil {
		close(s.stopCkpt)
		<-s.ckptDone
		errs = append(errs, s.ckpt.Close())
		s.ckpt = nil
	}
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	if s.conn != nil {
		errs = append(errs, s.conn.Close())
	}
	errs = append(errs, s.write.Close())
	if s.read != nil {
		errs = append(errs, s.reads.close(), s.read.Close())
	}
	errs = append(errs, s.inUse.Close())
	return errors.Join(errs...)
}

// known is the migrations this allot has, in order.
func known() []string {
	names, _ := fs.Glob(migrations, "migrations/*.sql") // the pattern is valid
	slices.Sort(names)
	return names
}

// Migrations says, changing nothing, which migrations the database at
// path has and which this allot would apply; a missing file has none. The
// error, with the status, refuses a database a newer allot migrated.
func Migrations(ctx context.Context, path string) (schema.Status, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return schema.Compare(known(), nil), nil
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout))
	q.Add("mode", "ro")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return schema.Status{}, fmt.Errorf("sqlite: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return schema.Status{}, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	defer conn.Close()
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return schema.Status{}, err
	}
	st := schema.Compare(known(), applied)
	return st, st.Check()
}

// appliedMigrations reads schema_migrations; a database without it has
// none applied.
func appliedMigrations(ctx context.Context, conn *sql.Conn) ([]schema.Applied, error) {
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	rows, err := conn.QueryContext(ctx, `SELECT name FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	defer rows.Close()
	var out []schema.Applied
	for rows.Next() {
		var a schema.Applied
		if err := rows.Scan(&a.Name); err != nil {
			return nil, fmt.Errorf("sqlite: migrations: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Migrated is the migrations this Open applied, in order.
func (s *Store) Migrated() []string { return slices.Clone(s.migrated) }

// migrate applies the embedded migrations not yet applied, each in its own
// IMMEDIATE transaction, so two processes opening a new file at once do not
// both apply one. A database that a newer allot migrated is refused, with
// both versions named: this allot's queries may not fit its schema, and
// it would write rows the newer one does not expect. (One process serves a
// SQLite file, so there is no rolling upgrade to allow for.)
func (s *Store) migrate(ctx context.Context) error {
	// A new database reclaims the pages pruning frees, a little at a time
	// (an existing one reuses them, and its file stops growing). This only
	// takes effect before the first table is created.
	if _, err := s.conn.ExecContext(ctx, `PRAGMA auto_vacuum = INCREMENTAL`); err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := s.conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY)`); err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	applied, err := appliedMigrations(ctx, s.conn)
	if err != nil {
		return err
	}
	st := schema.Compare(known(), applied)
	if err := st.Check(); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	for _, name := range st.Pending {
		src, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		var ran bool
		err = s.immediate(ctx, func() error {
			var n int
			if err := s.conn.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := s.conn.ExecContext(ctx, string(src)); err != nil {
				return err
			}
			ran = true
			_, err := s.conn.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES (?)`, name)
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", name, err)
		}
		if ran {
			s.migrated = append(s.migrated, name)
		}
	}
	return nil
}

// immediate runs fn between BEGIN IMMEDIATE and COMMIT on the writer
// connection. IMMEDIATE takes the write lock at the start, so the reads fn
// makes cannot be invalidated by another process before it commits.
//
// A failed COMMIT is followed by a ROLLBACK: if that succeeds, nothing was
// committed; if SQLite says no transaction is left, it ended the
// transaction itself and whether it committed is not known.
func (s *Store) immediate(ctx context.Context, fn func() error) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	committing := false
	defer func() {
		if err == nil {
			return
		}
		if _, rbErr := s.conn.ExecContext(context.Background(), "ROLLBACK"); rbErr != nil {
			if committing {
				err = quota.OutcomeUnknown(fmt.Errorf("sqlite: %w (and the rollback after it: %v)", err, rbErr))
				return
			}
			s.log.Error("sqlite: rollback failed", "err", rbErr)
		}
	}()
	if err := fn(); err != nil {
		return err
	}
	committing = true
	if _, err := s.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// classify marks an error that blames a value of the batch (a constraint,
// a value too big) as quota.ErrRejected.
func classify(err error) error {
	var se *sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 18, 19, 20: // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH
			return fmt.Errorf("sqlite: %w: %w", quota.ErrRejected, err)
		}
	}
	if _, ok := errors.AsType[*quota.Error](err); ok {
		return err
	}
	return fmt.Errorf("sqlite: %w", err)
}

// stmt returns the prepared statement for query on the writer connection.
// Callers hold s.mu (they run inside immediate).
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("preparing %q: %w", strings.Fields(query)[0], err)
	}
	s.stmts[query] = st
	return st, nil
}

// Ping implements quota.Store.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if n == 0 {
		return errors.New("sqlite: not migrated")
	}
	return nil
}

// Pragmas reports the writer connection's journal mode and synchronous
// level, for tests and diagnostics.
func (s *Store) Pragmas(ctx context.Context) (journalMode string, synchronous int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journalMode)
	_ = s.conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&synchronous)
	return journalMode, synchronous
}
