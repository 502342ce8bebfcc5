package postgres

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The ledger without a global lock. Processes commit in parallel, and an
// event takes its sequence number when it is inserted, before its
// transaction commits: a reader that sees event 12 may not see event 11
// yet, because a transaction still in progress holds it, and a reader that
// moved on past 12 would never read 11. So readers read only up to the
// ledger's final position: one every transaction that could hold a number
// at or below it has finished.
//
// The rule. Every writer takes its transaction ID (pg_current_xact_id)
// before it takes any sequence number (tx.write asks for the ID first).
// A sample reads the sequence's last value L, then takes a transaction ID
// X of its own: every transaction that took a number at or below L had
// its ID before that, so its ID is below X. (The snapshot's xmax would not
// do: it is one past the newest transaction to finish, and transactions
// newer than that may be running.) Once the oldest transaction in
// progress (a later snapshot's xmin) is at or past X, all of them have
// finished, and every event up to L that will ever exist is visible. The
// sample's own transaction commits without waiting for the disk
// (synchronous_commit off): it wrote nothing that matters.
//
// The order readers see is sequence order; two transactions that touch one
// tenant take its lock in turn, so the later one takes its numbers after
// the first committed, and transactions that overlap touch different
// tenants: the order is a valid commit order. A transaction held open
// anywhere on the server holds the ledger's readers back (never claims)
// until it ends; allot's own are bounded by its timeouts.

// finalWait bounds how long a read waits for the transactions in progress
// when it started to finish; past it, the read answers from the last
// final position known, which is behind but never skips.
const finalWait = 250 * time.Millisecond

type finality struct {
	mu      sync.Mutex
	final   int64    // the ledger is final up to here
	pending []sample // oldest first
	// Tests only: naive reads whatever is visible, to show the rule is
	// needed; beforeCommit runs between a batch's writes and its COMMIT,
	// to widen the window the rule covers.
	naive        bool
	beforeCommit func()
}

// sample is a sequence value L and a transaction ID X above every one
// that could hold a number up to L: the ledger up to L is final once xmin
// reaches X.
type sample struct {
	seq  int64
	xmax uint64
}

// resolve records what xmin settles and returns the final position.
func (f *finality) resolve(xmin uint64) int64 {
	i := 0
	for ; i < len(f.pending) && f.pending[i].xmax <= xmin; i++ {
		f.final = max(f.final, f.pending[i].seq)
	}
	f.pending = f.pending[i:]
	return f.final
}

// finalSeq returns the ledger's final position, waiting (up to finalWait)
// for the transactions in progress now to finish, so that a read sees
// every change acknowledged before it began.
func (s *Store) finalSeq(ctx context.Context) (int64, error) {
	f := &s.fin
	var last int64
	var called bool
	var own, xmin string
	err := pgx.BeginFunc(ctx, s.pool, func(t pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SET LOCAL synchronous_commit TO off`)
		b.Queue(`SELECT last_value, is_called FROM ` + s.seqName).QueryRow(func(r pgx.Row) error { return r.Scan(&last, &called) })
		b.Queue(`SELECT pg_current_xact_id()::text`).QueryRow(func(r pgx.Row) error { return r.Scan(&own) })
		return t.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, fmt.Errorf("reading the ledger's final position: %w", err)
	}
	if !called {
		last = 0
	}
	if f.naive {
		return last, nil
	}
	x, err := strconv.ParseUint(own, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading the ledger's final position: transaction ID %q", own)
	}
	f.mu.Lock()
	if len(f.pending) == 0 || f.pending[len(f.pending)-1].seq < last {
		f.pending = append(f.pending, sample{seq: last, xmax: x + 1})
	}
	final := f.final
	f.mu.Unlock()
	deadline := time.Now().Add(finalWait)
	for delay := time.Duration(0); final < last && time.Now().Before(deadline); delay = max(200*time.Microsecond, min(2*delay, 5*time.Millisecond)) {
		select {
		case <-ctx.Done():
			return final, nil
		case <-time.After(delay):
		}
		if err := s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&xmin); err != nil {
			return 0, fmt.Errorf("reading the ledger's final position: %w", err)
		}
		n, err := strconv.ParseUint(xmin, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading the ledger's final position: xmin %q", xmin)
		}
		f.mu.Lock()
		final = f.resolve(n)
		f.mu.Unlock()
	}
	return final, nil
}
