package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// The ledger over months: snapshots, checkpoints and pruning. Their writes
// take the writer connection for one small chunk at a time, so the
// committer waits for at most one chunk.

const snapshotColumns = `tenant, seq, time, usage, hard, plan, parent, below`

func scanSnapshot(r interface{ Scan(...any) error }) (*quota.Snapshot, error) {
	s := &quota.Snapshot{}
	var at int64
	var usage, hard, below string
	if err := r.Scan(&s.Tenant, &s.Seq, &at, &usage, &hard, &s.Plan, &s.Parent, &below); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(below), &s.Below); err != nil {
		return nil, fmt.Errorf("snapshot of %s at %d: below: %w", s.Tenant, s.Seq, err)
	}
	s.Time = fromNanos(at)
	if err := json.Unmarshal([]byte(usage), &s.Usage); err != nil {
		return nil, fmt.Errorf("snapshot of %s at %d: usage: %w", s.Tenant, s.Seq, err)
	}
	if err := json.Unmarshal([]byte(hard), &s.Hard); err != nil {
		return nil, fmt.Errorf("snapshot of %s at %d: hard: %w", s.Tenant, s.Seq, err)
	}
	return s, nil
}

// PutSnapshots implements quota.Store.
func (s *Store) PutSnapshots(ctx context.Context, snaps []*quota.Snapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	rows := make([][]any, len(snaps))
	for i, sn := range snaps {
		usage, err := json.Marshal(orEmpty(sn.Usage))
		if err != nil {
			return err
		}
		hard, err := json.Marshal(orEmpty(sn.Hard))
		if err != nil {
			return err
		}
		below, err := json.Marshal(orEmpty(sn.Below))
		if err != nil {
			return err
		}
		rows[i] = []any{s.region, sn.Tenant, sn.Seq, nanos(sn.Time), string(usage), string(hard), sn.Plan, sn.Parent, string(below)}
	}
	err := s.immediate(ctx, func() error {
		return (&tx{s}).insertRows(ctx, `INSERT INTO snapshots (region, `+snapshotColumns+`)`,
			` ON CONFLICT (region, tenant, seq) DO UPDATE SET time = excluded.time, usage = excluded.usage, hard = excluded.hard, plan = excluded.plan,
				parent = excluded.parent, below = excluded.below`,
			rows, nil)
	})
	if err != nil {
		return quota.Unavailable(fmt.Errorf("sqlite: writing snapshots: %w", err))
	}
	return nil
}

func orEmpty(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

// SnapshotsAt implements quota.Store: each moment's snapshot is one
// seek of snapshots_time backwards, its next one seek forwards. A tenant's
// snapshots are in time order as they are in position order.
func (s *Store) SnapshotsAt(ctx context.Context, tenant string, moments []time.Time) ([]quota.SnapshotAt, error) {
	out := make([]quota.SnapshotAt, len(moments))
	at := make([]int64, len(moments))
	for i, m := range moments {
		at[i] = nanos(m)
	}
	err := queryRows(ctx, s.reads, func(r *sql.Rows) error {
		var i int
		var next sql.NullInt64
		var seq sql.NullInt64
		var t, plan, parent sql.NullString
		var tm sql.NullInt64
		var usage, hard, below sql.NullString
		if err := r.Scan(&i, &next, &t, &seq, &tm, &usage, &hard, &plan, &parent, &below); err != nil {
			return err
		}
		out[i].Next = next.Int64
		if !seq.Valid {
			return nil
		}
		sn := &quota.Snapshot{Tenant: t.String, Seq: seq.Int64, Time: fromNanos(tm.Int64), Plan: plan.String, Parent: parent.String}
		if err := json.Unmarshal([]byte(below.String), &sn.Below); err != nil {
			return fmt.Errorf("snapshot of %s at %d: below: %w", sn.Tenant, sn.Seq, err)
		}
		if err := json.Unmarshal([]byte(usage.String), &sn.Usage); err != nil {
			return fmt.Errorf("snapshot of %s at %d: usage: %w", sn.Tenant, sn.Seq, err)
		}
		if err := json.Unmarshal([]byte(hard.String), &sn.Hard); err != nil {
			return fmt.Errorf("snapshot of %s at %d: hard: %w", sn.Tenant, sn.Seq, err)
		}
		out[i].Snapshot = sn
		return nil
	}, `SELECT m.key,
			(SELECT seq FROM snapshots INDEXED BY snapshots_time WHERE region = ?1 AND tenant = ?2 AND time > m.value ORDER BY time, seq LIMIT 1),
			`+prefixed("s.", snapshotColumns)+`
		FROM json_each(?3) AS m LEFT JOIN snapshots AS s ON s.region = ?1 AND s.tenant = ?2 AND s.seq =
			(SELECT seq FROM snapshots INDEXED BY snapshots_time WHERE region = ?1 AND tenant = ?2 AND time <= m.value ORDER BY time DESC, seq DESC LIMIT 1)`,
		s.region, tenant, jsonList(at))
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: reading snapshots: %w", err))
	}
	return out, nil
}

// EventRanges implements quota.Store: each range is one scan of the tenant
// index.
func (s *Store) EventRanges(ctx context.Context, tenant string, ranges []quota.SeqRange, limit int) ([]*quota.Event, error) {
	rs := make([][3]int64, len(ranges))
	for i, r := range ranges {
		rs[i] = [3]int64{r.After, r.Before, nanos(r.Until)}
		if r.Before == 0 {
			rs[i][1] = math.MaxInt64
		}
	}
	var out []*quota.Event
	err := queryRows(ctx, s.reads, func(r *sql.Rows) error {
		row := eventRow{e: &quota.Event{}}
		if err := r.Scan(row.targets()...); err != nil {
			return err
		}
		row.done()
		out = append(out, row.e)
		return nil
	}, `SELECT `+prefixed("e.", eventColumns)+` FROM json_each(?) AS r CROSS JOIN events AS e
		ON e.region = ? AND e.tenant = ? AND e.seq > r.value ->> 0 AND e.seq < r.value ->> 1 AND e.time <= r.value ->> 2
		ORDER BY e.seq LIMIT ?`, jsonList(rs), s.region, tenant, limit)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: reading events: %w", err))
	}
	return out, nil
}

// Snapshots implements quota.Store.
func (s *Store) Snapshots(ctx context.Context, tenants []string, seq int64) (map[string]*quota.Snapshot, error) {
	out := map[string]*quota.Snapshot{}
	if len(tenants) == 0 {
		return out, nil
	}
	err := queryRows(ctx, s.reads, func(r *sql.Rows) error {
		sn, err := scanSnapshot(r)
		if err == nil {
			out[sn.Tenant] = sn
		}
		return err
	}, `SELECT `+prefixed("s.", snapshotColumns)+` FROM json_each(?) AS k CROSS JOIN snapshots AS s
		ON s.region = ? AND s.tenant = k.value
		AND s.seq = (SELECT max(seq) FROM snapshots WHERE region = s.region AND tenant = k.value AND seq <= ?)`,
		jsonList(tenants), s.region, seq)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: reading snapshots: %w", err))
	}
	return out, nil
}

// Checkpoint implements quota.Store.
func (s *Store) Checkpoint(ctx context.Context, seq int64, at time.Time) error {
	err := s.immediate(ctx, func() error {
		_, err := s.conn.ExecContext(ctx, `INSERT INTO checkpoints (region, seq, time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			s.region, seq, nanos(at))
		return err
	})
	if err != nil {
		return quota.Unavailable(fmt.Errorf("sqlite: writing a checkpoint: %w", err))
	}
	return nil
}

// Checkpoints implements quota.Store.
func (s *Store) Checkpoints(ctx context.Context) ([]quota.Checkpoint, error) {
	var out []quota.Checkpoint
	err := queryRows(ctx, s.reads, func(r *sql.Rows) error {
		var c quota.Checkpoint
		var at int64
		err := r.Scan(&c.Seq, &at)
		c.Time = fromNanos(at)
		out = append(out, c)
		return err
	}, `SELECT seq, time FROM checkpoints WHERE region = ? ORDER BY seq`, s.region)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: reading checkpoints: %w", err))
	}
	return out, nil
}

// Horizon implements quota.Store.
func (s *Store) Horizon(ctx context.Context) (quota.Horizon, error) {
	vals, err := s.metaValues(ctx, s.reads, "horizon_seq", "horizon_time", "audit_pruned_to")
	if err != nil {
		return quota.Horizon{}, quota.Unavailable(fmt.Errorf("sqlite: reading the horizon: %w", err))
	}
	return quota.Horizon{Seq: vals[0], Time: fromNanos(vals[1]), AuditSeq: vals[2]}, nil
}

// metaValues reads integer settings from meta; an absent one is 0.
func (s *Store) metaValues(ctx context.Context, q querier, keys ...string) ([]int64, error) {
	out := make([]int64, len(keys))
	found := map[string]int64{}
	err := queryRows(ctx, q, func(r *sql.Rows) error {
		var k, v string
		if err := r.Scan(&k, &v); err != nil {
			return err
		}
		n, err := strconv.ParseInt(v, 10, 64)
		found[k] = n
		return err
	}, `SELECT key, value FROM meta WHERE region = ? AND key IN (SELECT value FROM json_each(?))`, s.region, jsonList(keys))
	for i, k := range keys {
		out[i] = found[k]
	}
	return out, err
}

// Prune implements quota.Store: one chunk, in one transaction. The horizon
// is recorded first, so that readers refuse what may be gone before it
// goes. Events still owed to a webhook are kept.
func (s *Store) Prune(ctx context.Context, p quota.Prune) (quota.Pruned, error) {
	var out quota.Pruned
	limit := max(p.Limit, 1)
	auditDone := true
	err := s.immediate(ctx, func() error {
		w := &tx{s}
		r := s.region
		for _, kv := range [][2]string{{"horizon_seq", strconv.FormatInt(p.Horizon.Seq, 10)}, {"horizon_time", strconv.FormatInt(nanos(p.Horizon.Time), 10)}} {
			if err := w.exec(ctx, `INSERT INTO meta (region, key, value) VALUES (?, ?, ?)
				ON CONFLICT (region, key) DO UPDATE SET value = excluded.value WHERE CAST(value AS INTEGER) < CAST(excluded.value AS INTEGER)`, r, kv[0], kv[1]); err != nil {
				return err
			}
		}
		from, err := s.metaValues(ctx, writerQuerier{s}, "pruned_to")
		if err != nil {
			return err
		}
		upTo := p.Horizon.Seq
		var owed sql.NullInt64
		if err := s.conn.QueryRowContext(ctx, `SELECT min(seq) FROM outbox WHERE region = ?`, r).Scan(&owed); err != nil {
			return err
		}
		if owed.Valid {
			upTo = min(upTo, owed.Int64-1)
		}
		// The next chunk: events after the last examined, up to the
		// horizon, in order; audit events stay for the pass below.
		// The chunk's end, then one range delete over the table's own
		// order: no list of rows to carry.
		last := from[0]
		var end sql.NullInt64
		if err := s.conn.QueryRowContext(ctx, `SELECT max(seq) FROM (SELECT seq FROM events WHERE +region = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?)`,
			r, from[0], upTo, limit).Scan(&end); err != nil {
			return err
		}
		if end.Valid {
			last = end.Int64
			res, err := s.conn.ExecContext(ctx, `DELETE FROM events WHERE +region = ? AND seq > ? AND seq <= ?
				AND type NOT IN (SELECT value FROM json_each(?))`, r, from[0], last, jsonList(auditNames()))
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			out.Events = int(n)
		}
		if last > from[0] {
			if err := w.exec(ctx, `INSERT INTO meta (region, key, value) VALUES (?, 'pruned_to', ?)
				ON CONFLICT (region, key) DO UPDATE SET value = excluded.value`, r, strconv.FormatInt(last, 10)); err != nil {
				return err
			}
		}
		// Audit events below the horizon that have aged out too, oldest
		// first, stopping at the first that has not.
		if !p.AuditBefore.IsZero() {
			prunedTo := max(last, from[0])
			auditFrom, err := s.metaValues(ctx, writerQuerier{s}, "audit_pruned_to")
			if err != nil {
				return err
			}
			var aged []int64
			stop := false
			err = queryRows(ctx, writerQuerier{s}, func(rows *sql.Rows) error {
				var seq, at int64
				if err := rows.Scan(&seq, &at); err != nil {
					return err
				}
				if stop = stop || at >= nanos(p.AuditBefore); !stop {
					aged = append(aged, seq)
				}
				return nil
			}, `SELECT seq, time FROM events WHERE +region = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, r, auditFrom[0], prunedTo, limit)
			if err != nil {
				return err
			}
			if len(aged) > 0 {
				if _, err := s.conn.ExecContext(ctx, `DELETE FROM events WHERE seq IN (SELECT value FROM json_each(?))`, jsonList(aged)); err != nil {
					return err
				}
				if err := w.exec(ctx, `INSERT INTO meta (region, key, value) VALUES (?, 'audit_pruned_to', ?)
					ON CONFLICT (region, key) DO UPDATE SET value = excluded.value`, r, strconv.FormatInt(aged[len(aged)-1], 10)); err != nil {
					return err
				}
			}
			out.Events += len(aged)
			auditDone = len(aged) < limit
		}
		// Snapshots no time after the horizon needs: each tenant keeps its
		// newest at or before it.
		res, err := s.conn.ExecContext(ctx, `DELETE FROM snapshots WHERE region = ? AND (tenant, seq) IN (
			SELECT tenant, seq FROM snapshots AS o WHERE o.region = ? AND o.seq < ?
				AND EXISTS (SELECT 1 FROM snapshots AS n WHERE n.region = o.region AND n.tenant = o.tenant AND n.seq > o.seq AND n.seq <= ?)
			LIMIT ?)`, r, r, p.Horizon.Seq, p.Horizon.Seq, limit)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		out.Snapshots = int(n)
		if _, err := s.conn.ExecContext(ctx, `DELETE FROM checkpoints WHERE region = ? AND seq < ?`, r, p.Horizon.Seq); err != nil {
			return err
		}
		// Pruning waits where an undelivered event stands; it is done when
		// it examined everything up to the horizon.
		out.Done = last >= upTo && out.Snapshots < limit && auditDone
		return nil
	})
	if err != nil {
		return out, quota.Unavailable(fmt.Errorf("sqlite: pruning: %w", err))
	}
	// Give back the pages the chunk freed, a few at a time.
	if out.Events+out.Snapshots > 0 {
		s.mu.Lock()
		_, err := s.conn.ExecContext(ctx, `PRAGMA incremental_vacuum(256)`)
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("sqlite: incremental vacuum failed", "err", err)
		}
	}
	return out, nil
}

// LedgerSize implements quota.Store: the ledger's rows, and the database's
// bytes in use (the ledger is most of them).
func (s *Store) LedgerSize(ctx context.Context) (rows, bytes int64, err error) {
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE region = ?`, s.region).Scan(&rows); err != nil {
		return 0, 0, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	var pages, free, size int64
	if err := s.read.QueryRowContext(ctx, `SELECT (SELECT page_count FROM pragma_page_count()), (SELECT freelist_count FROM pragma_freelist_count()), (SELECT page_size FROM pragma_page_size())`).Scan(&pages, &free, &size); err != nil {
		return 0, 0, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	return rows, (pages - free) * size, nil
}

// writerQuerier reads on the writer connection, inside its transaction,
// with its prepared statements. Callers hold s.mu.
type writerQuerier struct{ s *Store }

func (q writerQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// TryLead implements quota.Store: one process owns the database.
func (s *Store) TryLead(context.Context, string) (func(), bool, error) { return func() {}, true, nil }

// bulkView is the consumer a generated event puts and deletes.
const bulkView = `{"kind":"compute.volume","attributes":{"size_mb":2},"generation":1,"footprint":{"compute.total_volume_mb":2,"compute.volumes":1}}`

// GenerateEvents appends n events to the ledger in bulk, for benchmarks and
// load tests: a put of the tenant's consumer "bulk" and its delete, in
// turn, one every step from at on, so that the ledger still replays to the
// state (the tenant must have no consumer of that name, and n be even). It
// writes 100,000 rows a transaction.
func (s *Store) GenerateEvents(ctx context.Context, tenant string, n int, at time.Time, step time.Duration) error {
	for done := 0; done < n; {
		k := min(n-done, 100_000)
		err := s.immediate(ctx, func() error {
			_, err := s.conn.ExecContext(ctx, `WITH RECURSIVE g(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?)
				INSERT INTO events (region, time, type, tenant, subject, actor, role, reason, before, after)
				SELECT ?, ? + i * ?, CASE i % 2 WHEN 0 THEN 'consumer.put' ELSE 'consumer.delete' END, ?, 'bulk', 'bulk', 'admin', '',
					CASE i % 2 WHEN 0 THEN NULL ELSE ? END, CASE i % 2 WHEN 0 THEN ? ELSE NULL END FROM g`,
				done, done+k, s.region, nanos(at), int64(step), tenant, bulkView, bulkView)
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: generating events: %w", err)
		}
		done += k
	}
	return nil
}

// auditNames are the audit event types, which pruning keeps longer.
func auditNames() []string {
	var out []string
	for _, t := range quota.AuditTypes() {
		out = append(out, string(t))
	}
	return out
}
