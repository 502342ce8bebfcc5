package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/allot-dev/allot/internal/quota"
)

// maxAttempts bounds how often Update runs a transaction that certainly
// did not commit; the caller's deadline bounds it too.
const maxAttempts = 8

// Update implements quota.Store; the package comment has the rules of what
// it reports. fn may run more than once, but only after the previous run's
// transaction is known not to have committed.
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx quota.Tx) error) error {
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		retry, err := s.attempt(ctx, fn)
		if lost, ok := errors.AsType[*lostCommit](err); ok {
			status, rerr := s.resolve(ctx, lost)
			switch status {
			case "committed":
				s.log.Warn("postgres: a commit's reply was lost; the transaction had committed", "xid", lost.xid, "err", lost.err)
				return nil
			case "aborted":
				s.log.Warn("postgres: a commit's reply was lost; the transaction had not committed", "xid", lost.xid, "err", lost.err)
				retry = ctx.Err() == nil
			default:
				return quota.OutcomeUnknown(fmt.Errorf("postgres: %w (looking up transaction %s: %w)", lost.err, lost.xid, rerr))
			}
		}
		if err == nil {
			return nil
		}
		if !retry || attempt == maxAttempts {
			if rejected(err) {
				return fmt.Errorf("postgres: %w: %w", quota.ErrRejected, err)
			}
			return fmt.Errorf("postgres: %w", err)
		}
		s.log.Debug("postgres: retrying a transaction that did not commit", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres: %w (then %w)", err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*4, 500*time.Millisecond)
	}
}

// lostCommit is an attempt whose COMMIT was, or may have been, sent, and
// whose answer never came: it may have committed.
type lostCommit struct {
	pid uint32 // the backend that ran it
	xid string // its transaction ID
	err error
}

func (e *lostCommit) Error() string { return fmt.Sprintf("committing: %v", e.err) }
func (e *lostCommit) Unwrap() error { return e.err }

// attempt runs fn in one transaction and commits it. It returns nil when
// the transaction committed or wrote nothing, *lostCommit when it may have
// committed, and otherwise an error of a transaction that certainly did
// not commit, with whether running it again may succeed.
func (s *Store) attempt(ctx context.Context, fn func(ctx context.Context, tx quota.Tx) error) (retry bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		// The database cannot be reached now: callers hear so at once
		// (503, retry later) rather than after a round of retries.
		return false, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Release()
	pt, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return retryable(ctx, conn.Conn(), err), fmt.Errorf("beginning: %w", err)
	}
	t := &tx{s: s, t: pt}
	if err := fn(ctx, t); err != nil {
		// Rolling back on a broken connection fails; pgx then closes it,
		// and the server aborts the transaction when it notices.
		_ = pt.Rollback(ctx)
		if _, ok := errors.AsType[*quota.Error](err); ok {
			return false, err
		}
		return retryable(ctx, conn.Conn(), err), err
	}
	// Nothing is sent when the deadline has passed or the connection is
	// gone; once COMMIT is on its way, only the server's answer counts.
	if err := ctx.Err(); err != nil {
		_ = pt.Rollback(ctx)
		return false, fmt.Errorf("committing: %w", err)
	}
	if conn.Conn().IsClosed() {
		return retryable(ctx, conn.Conn(), net.ErrClosed), fmt.Errorf("committing: %w", net.ErrClosed)
	}
	pid := conn.Conn().PgConn().PID()
	err = pt.Commit(ctx)
	switch {
	case err == nil:
		return false, nil
	case notCommitted(err):
		return retryable(ctx, conn.Conn(), err), fmt.Errorf("committing: %w", err)
	case t.xid == "":
		// It wrote nothing: committed or not, the database is the same,
		// and what fn decided from it stands.
		return false, nil
	default:
		return false, &lostCommit{pid: pid, xid: t.xid, err: err}
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
		return "", err
	}
	if status == nil {
		// Too old to be known any more; it cannot be ours.
		return "", fmt.Errorf("the status of transaction %s is no longer known", lost.xid)
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
