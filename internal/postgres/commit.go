package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/allot-dev/allot/internal/quota"
)

// maxAttempts bounds how often Begin tries to start a batch's
// transaction; the caller's deadline bounds it too.
const maxAttempts = 8

// Shared implements quota.Store: any number of processes share the
// database.
func (s *Store) Shared() bool { return true }

// Begin implements quota.Store: it starts a transaction, takes the
// tenants' locks and reads their versions, in one round trip. A lock wait
// that times out (a stalled holder, whose session the server ends after
// idle_in_transaction_session_timeout) or a broken connection is tried
// again within the deadline.
func (s *Store) Begin(ctx context.Context, tenants []string) (quota.Tx, error) {
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		t, retry, err := s.begin(ctx, tenants)
		if err == nil {
			return t, nil
		}
		if !retry || attempt == maxAttempts {
			return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
		}
		select {
		case <-ctx.Done():
			return nil, quota.Unavailable(fmt.Errorf("postgres: %w (then %w)", err, ctx.Err()))
		case <-time.After(backoff):
		}
		backoff = min(backoff*4, 500*time.Millisecond)
	}
}

func (s *Store) begin(ctx context.Context, tenants []string) (_ *tx, retry bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		// The database cannot be reached now: callers hear so at once
		// (503, retry later) rather than after a round of retries.
		return nil, false, fmt.Errorf("connecting: %w", err)
	}
	pt, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		retry := retryable(ctx, conn.Conn(), err)
		conn.Release()
		return nil, retry, fmt.Errorf("beginning: %w", err)
	}
	t := &tx{s: s, conn: conn, t: pt, versions: map[string]int64{}, pid: conn.Conn().PgConn().PID()}
	keys := make([]int32, len(tenants))
	for i, n := range tenants {
		keys[i] = s.lockKey(n)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	b := &pgx.Batch{}
	// The subquery's ORDER BY is kept: locks are taken row by row, in order.
	b.Queue(`SELECT pg_advisory_xact_lock($1, k) FROM (SELECT k FROM unnest($2::int4[]) AS k ORDER BY k) AS ordered`, lockTenant, keys)
	b.Queue(`SELECT id, version FROM tenants WHERE region = $1 AND id = ANY($2)`, s.region, tenants).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var v int64
			if err := rows.Scan(&id, &v); err != nil {
				return err
			}
			t.versions[id] = v
		}
		return rows.Err()
	})
	b.Queue(`SELECT coalesce((SELECT value::bigint FROM meta WHERE region = $1 AND key = 'webhooks_version'), 0)`, s.region).
		QueryRow(func(row pgx.Row) error { return row.Scan(&t.webhooks) })
	if err := pt.SendBatch(ctx, b).Close(); err != nil {
		retry := retryable(ctx, conn.Conn(), err)
		t.Rollback()
		return nil, retry, fmt.Errorf("locking tenants: %w", err)
	}
	return t, false, nil
}

// Commit implements quota.Store: each transaction is written and committed
// in turn; the package comment has the rules of what it reports.
func (s *Store) Commit(ctx context.Context, txs []quota.Tx) (int, error) {
	for i, qt := range txs {
		if err := s.commit(ctx, qt.(*tx)); err != nil {
			for _, rest := range txs[i+1:] {
				rest.Rollback()
			}
			return i, err
		}
	}
	return len(txs), nil
}

// commit writes and commits one transaction. A reply to COMMIT that is lost
// is looked up: committed is success, aborted a plain failure, and neither
// within the lookup's time is CodeOutcomeUnknown.
func (s *Store) commit(ctx context.Context, t *tx) error {
	defer t.Rollback() // releases the connection; a no-op once committed
	for _, w := range t.writes {
		if err := t.write(ctx, w); err != nil {
			if rejected(err) {
				return fmt.Errorf("postgres: %w: %w", quota.ErrRejected, err)
			}
			return quota.Unavailable(fmt.Errorf("postgres: %w", err))
		}
	}
	if s.fin.beforeCommit != nil {
		s.fin.beforeCommit()
	}
	err := s.sendCommit(ctx, t)
	if lost, ok := errors.AsType[*lostCommit](err); ok {
		status, rerr := s.resolve(ctx, lost)
		switch status {
		case "committed":
			s.log.Warn("postgres: a commit's reply was lost; the transaction had committed", "xid", lost.xid, "err", lost.err)
			return nil
		case "aborted":
			s.log.Warn("postgres: a commit's reply was lost; the transaction had not committed", "xid", lost.xid, "err", lost.err)
			return quota.Unavailable(fmt.Errorf("postgres: %w", lost.err))
		default:
			return quota.OutcomeUnknown(fmt.Errorf("postgres: %w (looking up transaction %s: %w)", lost.err, lost.xid, rerr))
		}
	}
	if err != nil {
		if rejected(err) {
			return fmt.Errorf("postgres: %w: %w", quota.ErrRejected, err)
		}
		return quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	return nil
}

// lostCommit is an attempt whose COMMIT was, or may have been, sent, and
// whose answer never came: it may have committed.
type lostCommit struct {
	pid  uint32 // the backend that ran it
	xid  string // its transaction ID
	mark string // the token of its row in commit_marks
	err  error
}

func (e *lostCommit) Error() string { return fmt.Sprintf("committing: %v", e.err) }
func (e *lostCommit) Unwrap() error { return e.err }

// sendCommit sends COMMIT. It returns nil when the transaction committed
// or wrote nothing, *lostCommit when it may have committed, and otherwise
// the error of a transaction that certainly did not commit.
func (s *Store) sendCommit(ctx context.Context, t *tx) error {
	// Nothing is sent when the deadline has passed or the connection is
	// gone; once COMMIT is on its way, only the server's answer counts.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	if t.conn.Conn().IsClosed() {
		return fmt.Errorf("committing: %w", net.ErrClosed)
	}
	err := t.t.Commit(ctx)
	switch {
	case err == nil:
		t.conn.Release()
		t.conn = nil
		return nil
	case notCommitted(err):
		return fmt.Errorf("committing: %w", err)
	case t.xid == "":
		// It wrote nothing: committed or not, the database is the same.
		return nil
	default:
		return &lostCommit{pid: t.pid, xid: t.xid, mark: t.mark, err: err}
	}
}

// notCommitted reports whether a COMMIT that was sent and failed certainly
// did not commit: the server answered it with an error (not a FATAL one,
// which can follow a commit that has already been made), or with ROLLBACK.
// The client's own errors prove nothing: pgx reports a reply lost after
// COMMIT was sent as "conn closed", and that error even claims to be safe
// to retry (pgconn.SafeToRetry).
func notCommitted(err error) bool {
	if errors.Is(err, pgx.ErrTxCommitRollback) {
		return true
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return severity(pgErr) == "ERROR"
	}
	return false
}

// severity is the error's severity in English, whatever lc_messages says.
func severity(e *pgconn.PgError) string {
	if e.SeverityUnlocalized != "" {
		return e.SeverityUnlocalized
	}
	return e.Severity
}

// retryable reports whether a transaction that certainly did not commit
// may succeed if run again: it lost a serialization or deadlock race, a
// lock wait timed out (the holder is stalled; the server ends its session
// after idle_in_transaction_session_timeout), or its connection broke.
func retryable(ctx context.Context, conn *pgx.Conn, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case "40001", "40P01", "55P03": // serialization_failure, deadlock_detected, lock_not_available
			return true
		}
		if sev := severity(pgErr); sev != "FATAL" && sev != "PANIC" {
			return false
		}
	}
	// The connection is gone (its session was ended, the network broke, or
	// the pool held one the server had closed): another one may work, and
	// if the database cannot be reached at all, connecting says so.
	return conn.IsClosed() || pgconn.SafeToRetry(err)
}

// rejected reports whether the database refused a value the transaction
// tried to store: a data exception (22, such as 22021, invalid byte
// sequence, for a NUL in text), an integrity violation (23) or a program
// limit (54, such as a value too large for an index). The change that
// carried it is at fault, not the store or the rest of the batch.
func rejected(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if !ok || len(pgErr.Code) != 5 {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// resolve finds out whether the transaction of a lost commit committed:
// "committed", "aborted", or "" when it cannot tell within
// Options.ResolveTimeout, with the reason. It uses fresh connections, not
// the pool, whose other connections may have broken with the one lost.
func (s *Store) resolve(ctx context.Context, lost *lostCommit) (string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ResolveTimeout)
	defer cancel()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	lastErr := lost.err
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		status, err := s.lookup(ctx, &conn, lost)
		switch {
		case err != nil:
			lastErr = err
			// The server's own errors leave the connection usable.
			if _, ok := errors.AsType[*pgconn.PgError](err); !ok && conn != nil {
				conn.Close(context.Background())
				conn = nil
			}
		case status == "committed" || status == "aborted":
			return status, nil
		}
		select {
		case <-ctx.Done():
			return "", lastErr
		case <-time.After(delay):
		}
	}
}

// lookup asks for the status of lost's transaction once, connecting first
// if *conn is nil. While the transaction is still in progress, its client
// is gone (the reply was lost), so it terminates the backend: once that
// has exited, the transaction has either committed or aborted for good.
func (s *Store) lookup(ctx context.Context, conn **pgx.Conn, lost *lostCommit) (string, error) {
	if *conn == nil {
		c, err := pgx.ConnectConfig(ctx, s.connCfg)
		if err != nil {
			return "", err
		}
		*conn = c
	}
	var status *string
	if err := (*conn).QueryRow(ctx, `SELECT pg_xact_status($1::text::xid8)`, lost.xid).Scan(&status); err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "22023" {
			// "in the future": this server (a promoted standby) never saw
			// the transaction.
			return "aborted", nil
		}
		return "", err
	}
	if status == nil {
		// Too old to be known any more; it cannot be ours.
		return "", fmt.Errorf("the status of transaction %s is no longer known", lost.xid)
	}
	if *status == "committed" {
		// A promoted standby may have given the ID to a transaction of its
		// own: ours committed only if its mark is there.
		var ours bool
		if err := (*conn).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM commit_marks WHERE token = $1)`, lost.mark).Scan(&ours); err != nil {
			return "", err
		}
		if !ours {
			return "aborted", nil
		}
	}
	if *status == "in progress" {
		// The xid check keeps a recycled process ID safe.
		if _, err := (*conn).Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE pid = $1 AND backend_xid = $2::text::xid8::xid`, int64(lost.pid), lost.xid); err != nil {
			return "", err
		}
	}
	return *status, nil
}
