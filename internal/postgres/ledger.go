package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/internal/quota"
)

// The ledger over months: snapshots, checkpoints and pruning, in small
// chunks of their own transactions. Pruning deletes by sequence ranges the
// primary key finds; PostgreSQL's autovacuum reuses the space.

// lockLead elects the one process that writes snapshots and prunes.
const lockLead int32 = lockOutbox + 1

const snapshotColumns = `tenant, seq, time, usage::text, hard::text, plan, parent, below::text`

func scanSnapshot(r pgx.Row) (*quota.Snapshot, error) {
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
	n := len(snaps)
	tenants, usage, hard, plans := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	parents, below := make([]string, n), make([]string, n)
	seqs, times := make([]int64, n), make([]int64, n)
	for i, sn := range snaps {
		u, err := json.Marshal(orEmpty(sn.Usage))
		if err != nil {
			return err
		}
		h, err := json.Marshal(orEmpty(sn.Hard))
		if err != nil {
			return err
		}
		b, err := json.Marshal(orEmpty(sn.Below))
		if err != nil {
			return err
		}
		tenants[i], seqs[i], times[i], usage[i], hard[i], plans[i] = sn.Tenant, sn.Seq, nanos(sn.Time), string(u), string(h), sn.Plan
		parents[i], below[i] = sn.Parent, string(b)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO snapshots (region, tenant, seq, time, usage, hard, plan, parent, below)
		SELECT $1, t, q, ti, u::jsonb, h::jsonb, p, pa, b::jsonb
		FROM unnest($2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) AS x (t, q, ti, u, h, p, pa, b)
		ON CONFLICT (region, tenant, seq) DO UPDATE SET time = excluded.time, usage = excluded.usage, hard = excluded.hard, plan = excluded.plan,
			parent = excluded.parent, below = excluded.below`,
		s.region, tenants, seqs, times, usage, hard, plans, parents, below)
	if err != nil {
		return quota.Unavailable(fmt.Errorf("postgres: writing snapshots: %w", err))
	}
	return nil
}

func orEmpty(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

// SnapshotsAt implements quota.Store: each moment's snapshot is one seek
// of snapshots_time backwards, its next one seek forwards. A tenant's
// snapshots are in time order as they are in position order.
func (s *Store) SnapshotsAt(ctx context.Context, tenant string, moments []time.Time) ([]quota.SnapshotAt, error) {
	out := make([]quota.SnapshotAt, len(moments))
	at := make([]int64, len(moments))
	for i, m := range moments {
		at[i] = nanos(m)
	}
	rows, err := s.pool.Query(ctx, `SELECT m.i - 1,
			(SELECT seq FROM snapshots WHERE region = $1 AND tenant = $2 AND time > m.at ORDER BY time, seq LIMIT 1),
			s.tenant, s.seq, s.time, s.usage::text, s.hard::text, s.plan, s.parent, s.below::text
		FROM unnest($3::int8[]) WITH ORDINALITY AS m (at, i)
		LEFT JOIN LATERAL (SELECT * FROM snapshots WHERE region = $1 AND tenant = $2 AND time <= m.at
			ORDER BY time DESC, seq DESC LIMIT 1) AS s ON true`, s.region, tenant, at)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: reading snapshots: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var next, seq, tm *int64
		var t, usage, hard, plan, parent, below *string
		if err := rows.Scan(&i, &next, &t, &seq, &tm, &usage, &hard, &plan, &parent, &below); err != nil {
			return nil, quota.Unavailable(fmt.Errorf("postgres: reading snapshots: %w", err))
		}
		if next != nil {
			out[i].Next = *next
		}
		if seq == nil {
			continue
		}
		sn := &quota.Snapshot{Tenant: *t, Seq: *seq, Time: fromNanos(*tm), Plan: *plan, Parent: *parent}
		if err := json.Unmarshal([]byte(*below), &sn.Below); err != nil {
			return nil, fmt.Errorf("snapshot of %s at %d: below: %w", sn.Tenant, sn.Seq, err)
		}
		if err := json.Unmarshal([]byte(*usage), &sn.Usage); err != nil {
			return nil, fmt.Errorf("snapshot of %s at %d: usage: %w", sn.Tenant, sn.Seq, err)
		}
		if err := json.Unmarshal([]byte(*hard), &sn.Hard); err != nil {
			return nil, fmt.Errorf("snapshot of %s at %d: hard: %w", sn.Tenant, sn.Seq, err)
		}
		out[i].Snapshot = sn
	}
	if err := rows.Err(); err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: reading snapshots: %w", err))
	}
	return out, nil
}

// EventRanges implements quota.Store: each range is one scan of the tenant
// index, and none reaches past the final position (final.go).
func (s *Store) EventRanges(ctx context.Context, tenant string, ranges []quota.SeqRange, limit int) ([]*quota.Event, error) {
	final, err := s.finalSeq(ctx)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	after, before, until := make([]int64, len(ranges)), make([]int64, len(ranges)), make([]int64, len(ranges))
	for i, r := range ranges {
		after[i], before[i], until[i] = r.After, r.Before, nanos(r.Until)
		if r.Before == 0 || r.Before > final {
			before[i] = final + 1
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT e.* FROM unnest($3::int8[], $4::int8[], $6::int8[]) AS r (lo, hi, until)
		JOIN LATERAL (SELECT `+eventColumns+` FROM events WHERE region = $1 AND tenant = $2 AND seq > r.lo AND seq < r.hi AND time <= r.until
			ORDER BY seq LIMIT $5) AS e ON true
		ORDER BY e.seq LIMIT $5`, s.region, tenant, after, before, limit, until)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: reading events: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*quota.Event, error) {
		row := eventRow{e: &quota.Event{}}
		if err := r.Scan(row.targets()...); err != nil {
			return nil, err
		}
		row.done()
		return row.e, nil
	})
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: reading events: %w", err))
	}
	return out, nil
}

// Snapshots implements quota.Store.
func (s *Store) Snapshots(ctx context.Context, tenants []string, seq int64) (map[string]*quota.Snapshot, error) {
	out := map[string]*quota.Snapshot{}
	if len(tenants) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (tenant) `+snapshotColumns+` FROM snapshots
		WHERE region = $1 AND tenant = ANY($2) AND seq <= $3 ORDER BY tenant, seq DESC`, s.region, tenants, seq)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: reading snapshots: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		sn, err := scanSnapshot(rows)
		if err != nil {
			return nil, quota.Unavailable(fmt.Errorf("postgres: reading snapshots: %w", err))
		}
		out[sn.Tenant] = sn
	}
	if err := rows.Err(); err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: reading snapshots: %w", err))
	}
	return out, nil
}

// Checkpoint implements quota.Store.
func (s *Store) Checkpoint(ctx context.Context, seq int64, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO checkpoints (region, seq, time) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		s.region, seq, nanos(at)); err != nil {
		return quota.Unavailable(fmt.Errorf("postgres: writing a checkpoint: %w", err))
	}
	return nil
}

// Checkpoints implements quota.Store.
func (s *Store) Checkpoints(ctx context.Context) ([]quota.Checkpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, time FROM checkpoints WHERE region = $1 ORDER BY seq`, s.region)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: reading checkpoints: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (quota.Checkpoint, error) {
		var c quota.Checkpoint
		var at int64
		err := r.Scan(&c.Seq, &at)
		c.Time = fromNanos(at)
		return c, err
	})
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: reading checkpoints: %w", err))
	}
	return out, nil
}

// Horizon implements quota.Store.
func (s *Store) Horizon(ctx context.Context) (quota.Horizon, error) {
	vals, err := s.metaValues(ctx, s.pool, "horizon_seq", "horizon_time", "audit_pruned_to")
	if err != nil {
		return quota.Horizon{}, quota.Unavailable(fmt.Errorf("postgres: reading the horizon: %w", err))
	}
	return quota.Horizon{Seq: vals[0], Time: fromNanos(vals[1]), AuditSeq: vals[2]}, nil
}

func (s *Store) metaValues(ctx context.Context, q querier, keys ...string) ([]int64, error) {
	rows, err := q.Query(ctx, `SELECT key, value FROM meta WHERE region = $1 AND key = ANY($2)`, s.region, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := map[string]int64{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		if found[k], err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, err
		}
	}
	out := make([]int64, len(keys))
	for i, k := range keys {
		out[i] = found[k]
	}
	return out, rows.Err()
}

// Prune implements quota.Store: one chunk, in one transaction. The horizon
// is recorded first, so that readers refuse what may be gone before it
// goes. Events still owed to a webhook are kept.
func (s *Store) Prune(ctx context.Context, p quota.Prune) (quota.Pruned, error) {
	var out quota.Pruned
	limit := max(p.Limit, 1)
	auditDone := true
	r := s.region
	err := pgx.BeginFunc(ctx, s.pool, func(t pgx.Tx) error {
		for _, kv := range [][2]string{{"horizon_seq", strconv.FormatInt(p.Horizon.Seq, 10)}, {"horizon_time", strconv.FormatInt(nanos(p.Horizon.Time), 10)}} {
			if _, err := t.Exec(ctx, `INSERT INTO meta (region, key, value) VALUES ($1, $2, $3)
				ON CONFLICT (region, key) DO UPDATE SET value = excluded.value WHERE meta.value::bigint < excluded.value::bigint`, r, kv[0], kv[1]); err != nil {
				return err
			}
		}
		from, err := s.metaValues(ctx, t, "pruned_to")
		if err != nil {
			return err
		}
		upTo := p.Horizon.Seq
		var owed *int64
		if err := t.QueryRow(ctx, `SELECT min(seq) FROM outbox WHERE region = $1`, r).Scan(&owed); err != nil {
			return err
		}
		if owed != nil {
			upTo = min(upTo, *owed-1)
		}
		var last int64
		if err := t.QueryRow(ctx, `SELECT coalesce(max(seq), $2) FROM (SELECT seq FROM events WHERE region = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4) AS chunk`,
			r, from[0], upTo, limit).Scan(&last); err != nil {
			return err
		}
		audit := make([]string, 0)
		for _, a := range quota.AuditTypes() {
			audit = append(audit, string(a))
		}
		tag, err := t.Exec(ctx, `DELETE FROM events WHERE region = $1 AND seq > $2 AND seq <= $3 AND type <> ALL($4)`,
			r, from[0], last, audit)
		if err != nil {
			return err
		}
		out.Events = int(tag.RowsAffected())
		if last > from[0] {
			if _, err := t.Exec(ctx, `INSERT INTO meta (region, key, value) VALUES ($1, 'pruned_to', $2)
				ON CONFLICT (region, key) DO UPDATE SET value = excluded.value`, r, strconv.FormatInt(last, 10)); err != nil {
				return err
			}
		}
		// Audit events below the horizon that have aged out too, oldest
		// first, stopping at the first that has not.
		if !p.AuditBefore.IsZero() {
			auditFrom, err := s.metaValues(ctx, t, "audit_pruned_to")
			if err != nil {
				return err
			}
			var aged []int64
			rows, err := t.Query(ctx, `SELECT seq, time FROM events WHERE region = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4`,
				r, auditFrom[0], max(last, from[0]), limit)
			if err != nil {
				return err
			}
			for rows.Next() {
				var seq, at int64
				if err := rows.Scan(&seq, &at); err != nil {
					rows.Close()
					return err
				}
				if at >= nanos(p.AuditBefore) {
					break
				}
				aged = append(aged, seq)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(aged) > 0 {
				if _, err := t.Exec(ctx, `DELETE FROM events WHERE region = $1 AND seq = ANY($2)`, r, aged); err != nil {
					return err
				}
				if _, err := t.Exec(ctx, `INSERT INTO meta (region, key, value) VALUES ($1, 'audit_pruned_to', $2)
					ON CONFLICT (region, key) DO UPDATE SET value = excluded.value`, r, strconv.FormatInt(aged[len(aged)-1], 10)); err != nil {
					return err
				}
			}
			out.Events += len(aged)
			auditDone = len(aged) < limit
		}
		tag, err = t.Exec(ctx, `DELETE FROM snapshots WHERE (region, tenant, seq) IN (
			SELECT region, tenant, seq FROM snapshots AS o WHERE o.region = $1 AND o.seq < $2
				AND EXISTS (SELECT 1 FROM snapshots AS n WHERE n.region = o.region AND n.tenant = o.tenant AND n.seq > o.seq AND n.seq <= $2)
			LIMIT $3)`, r, p.Horizon.Seq, limit)
		if err != nil {
			return err
		}
		out.Snapshots = int(tag.RowsAffected())
		if _, err := t.Exec(ctx, `DELETE FROM checkpoints WHERE region = $1 AND seq < $2`, r, p.Horizon.Seq); err != nil {
			return err
		}
		out.Done = last >= upTo && out.Snapshots < limit && auditDone
		return nil
	})
	if err != nil {
		return out, quota.Unavailable(fmt.Errorf("postgres: pruning: %w", err))
	}
	return out, nil
}

// LedgerSize implements quota.Store: the planner's estimate of the rows
// (a count would read them all) and the table's bytes with its indexes.
func (s *Store) LedgerSize(ctx context.Context) (rows, bytes int64, err error) {
	var est float64
	err = s.pool.QueryRow(ctx, `SELECT greatest(reltuples, 0)::float8, pg_total_relation_size(oid) FROM pg_class
		WHERE oid = to_regclass('events')`).Scan(&est, &bytes)
	if err != nil {
		return 0, 0, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	return int64(est), bytes, nil
}

// TryLead implements quota.Store with a session advisory lock, held on one
// of the pool's connections until release.
func (s *Store) TryLead(ctx context.Context, job string) (func(), bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	key := s.lockKey("lead " + job)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockLead, key).Scan(&ok); err != nil || !ok {
		conn.Release()
		if err != nil {
			return nil, false, quota.Unavailable(fmt.Errorf("postgres: %w", err))
		}
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, lockLead, key); err != nil {
			conn.Conn().Close(ctx) // the session ends, and the lock with it
		}
		conn.Release()
	}, true, nil
}

// bulkView is the consumer a generated event puts and deletes.
const bulkView = `{"kind":"compute.volume","attributes":{"size_mb":2},"generation":1,"footprint":{"compute.total_volume_mb":2,"compute.volumes":1}}`

// GenerateEvents appends n events to the ledger in bulk, for benchmarks and
// load tests: a put of the tenant's consumer "bulk" and its delete, in
// turn, one every step from at on, so that the ledger still replays to the
// state (the tenant must have no consumer of that name, and n be even). It
// writes a million rows a statement.
func (s *Store) GenerateEvents(ctx context.Context, tenant string, n int, at time.Time, step time.Duration) error {
	for done := 0; done < n; {
		k := min(n-done, 1_000_000)
		// The transaction's ID first, as every writer's (final.go).
		err := pgx.BeginFunc(ctx, s.pool, func(t pgx.Tx) error {
			if _, err := t.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
				return err
			}
			_, err := t.Exec(ctx, `INSERT INTO events (region, time, type, tenant, subject, actor, role, reason, before, after)
				SELECT $1, $2 + i * $3, CASE i % 2 WHEN 0 THEN 'consumer.put' ELSE 'consumer.delete' END, $4, 'bulk', 'bulk', 'admin', '',
					CASE i % 2 WHEN 0 THEN NULL ELSE $5::json END, CASE i % 2 WHEN 0 THEN $5::json ELSE NULL END
				FROM generate_series($6::bigint, $7::bigint) AS i`,
				s.region, nanos(at), int64(step), tenant, bulkView, done, done+k-1)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: generating events: %w", err)
		}
		done += k
	}
	return nil
}
