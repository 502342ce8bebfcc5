package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/allot-dev/allot/internal/quota"
)

// tx writes within one IMMEDIATE transaction on the writer connection.
type tx struct{ s *Store }

// prefixed qualifies a column list with a table alias.
func prefixed(alias, columns string) string {
	return alias + strings.ReplaceAll(columns, ", ", ", "+alias)
}

// exec runs a prepared statement of the writer connection.
func (t *tx) exec(ctx context.Context, query string, args ...any) error {
	st, err := t.s.stmt(ctx, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

// apply writes one batch's changes.
func (t *tx) apply(ctx context.Context, w *quota.Writes) error {
	r := t.s.region
	for _, id := range w.DeleteTenants {
		if err := t.exec(ctx, `DELETE FROM outbox WHERE region = ? AND webhook IN (SELECT id FROM webhooks WHERE region = ? AND tenant = ?)`, r, r, id); err != nil {
			return fmt.Errorf("deleting tenant %s: %w", id, err)
		}
		for _, table := range []string{"quota_overrides", "limit_overrides", "usage", "subtree_usage", "tokens", "requests", "webhooks", "snapshots"} {
			if err := t.exec(ctx, `DELETE FROM `+table+` WHERE region = ? AND tenant = ?`, r, id); err != nil {
				return fmt.Errorf("deleting tenant %s: %w", id, err)
			}
		}
		if err := t.exec(ctx, `DELETE FROM tenants WHERE region = ? AND id = ?`, r, id); err != nil {
			return fmt.Errorf("deleting tenant %s: %w", id, err)
		}
	}
	for _, tn := range w.CreateTenants {
		err := t.exec(ctx, `INSERT INTO tenants (region, id, name, plan, created_at, thresholds, parent) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (region, id) DO UPDATE SET name = excluded.name, plan = excluded.plan, thresholds = excluded.thresholds, parent = excluded.parent`,
			r, tn.ID, tn.Name, tn.Plan, nanos(tn.CreatedAt), nullList(tn.Thresholds), nullString(tn.Parent))
		if err != nil {
			return fmt.Errorf("writing tenant %s: %w", tn.ID, err)
		}
	}
	for _, q := range w.Quotas {
		var min, max *int64
		if q.Requestable != nil {
			min, max = &q.Requestable.Min, &q.Requestable.Max
		}
		err := t.exec(ctx, `INSERT INTO quota_overrides (region, tenant, resource, hard, req_min, req_max) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (region, tenant, resource) DO UPDATE SET hard = excluded.hard, req_min = excluded.req_min, req_max = excluded.req_max`,
			r, q.Tenant, q.Resource, q.Hard, min, max)
		if err != nil {
			return fmt.Errorf("writing quota override: %w", err)
		}
	}
	for _, l := range w.Limits {
		err := t.exec(ctx, `INSERT INTO limit_overrides (region, tenant, key, min, max) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (region, tenant, key) DO UPDATE SET min = excluded.min, max = excluded.max`,
			r, l.Tenant, l.Key, l.Min, l.Max)
		if err != nil {
			return fmt.Errorf("writing limit override: %w", err)
		}
	}
	if len(w.DeleteConsumers) > 0 {
		rows := make([][]any, len(w.DeleteConsumers))
		for i, k := range w.DeleteConsumers {
			rows[i] = []any{k.Tenant, k.ID}
		}
		err := t.insertRows(ctx, `DELETE FROM consumers WHERE region = '`+sqlString(r)+`' AND (tenant, id) IN (`, `)`, rows, nil)
		if err != nil {
			return fmt.Errorf("deleting consumers: %w", err)
		}
	}
	// The rows a batch writes most (consumers, usage, events) go in one
	// statement per table, expanded from JSON by SQLite itself.
	if len(w.PutConsumers) > 0 {
		rows := make([][]any, len(w.PutConsumers))
		for i, c := range w.PutConsumers {
			attrs, err := json.Marshal(c.Attributes)
			if err != nil {
				return err
			}
			fp, err := json.Marshal(c.Footprint)
			if err != nil {
				return err
			}
			var exp *int64 // NULL when not a reservation
			if c.ExpiresAt != nil {
				n := nanos(*c.ExpiresAt)
				exp = &n
			}
			rows[i] = []any{r, c.Tenant, c.ID, c.Kind, c.State, string(attrs), c.Generation, string(fp), exp, nanos(c.CreatedAt), nanos(c.UpdatedAt)}
		}
		err := t.insertRows(ctx, `INSERT INTO consumers (region, tenant, id, kind, state, attributes, generation, footprint, expires_at, created_at, updated_at)`,
			` ON CONFLICT (region, tenant, id) DO UPDATE SET kind = excluded.kind, state = excluded.state,
				attributes = excluded.attributes, generation = excluded.generation, footprint = excluded.footprint,
				expires_at = excluded.expires_at, updated_at = excluded.updated_at`, rows, nil)
		if err != nil {
			return fmt.Errorf("writing consumers: %w", err)
		}
	}
	if err := t.writeUsage(ctx, "usage", w.Usage); err != nil {
		return err
	}
	if err := t.writeUsage(ctx, "subtree_usage", w.Below); err != nil {
		return err
	}
	for _, tok := range w.PutTokens {
		err := t.exec(ctx, `INSERT INTO tokens (region, name, role, tenant, hash, sealed, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (region, name) DO UPDATE SET role = excluded.role, tenant = excluded.tenant, hash = excluded.hash,
				sealed = excluded.sealed, created_at = excluded.created_at, revoked_at = excluded.revoked_at`,
			r, tok.Name, string(tok.Role), tok.Tenant, tok.Hash, tok.Sealed, nanos(tok.CreatedAt), nullNanos(tok.RevokedAt))
		if err != nil {
			return fmt.Errorf("writing token: %w", err)
		}
	}
	if err := t.writeRequests(ctx, w.PutRequests); err != nil {
		return err
	}
	if err := t.writeWebhooks(ctx, w); err != nil {
		return err
	}
	if err := t.appendEvents(ctx, w.Events); err != nil {
		return err
	}
	for _, e := range w.Events {
		if e.Type == quota.EventTenantCreate {
			if err := t.exec(ctx, `UPDATE tenants SET created_seq = ? WHERE region = ? AND id = ?`, e.Seq, r, e.Tenant); err != nil {
				return fmt.Errorf("writing tenant %s: %w", e.Tenant, err)
			}
		}
	}
	return t.queueDeliveries(ctx, w)
}

// writeUsage upserts usage rows into table: usage (a tenant's own) or
// subtree_usage (what its descendants use), which have one shape.
func (t *tx) writeUsage(ctx context.Context, table string, usage []quota.UsageRow) error {
	if len(usage) == 0 {
		return nil
	}
	rows := make([][]any, len(usage))
	for i, u := range usage {
		rows[i] = []any{t.s.region, u.Tenant, u.Resource, u.Used}
	}
	err := t.insertRows(ctx, `INSERT INTO `+table+` (region, tenant, resource, used)`,
		` ON CONFLICT (region, tenant, resource) DO UPDATE SET used = excluded.used`, rows, nil)
	if err != nil {
		return fmt.Errorf("writing %s: %w", table, err)
	}
	return nil
}

// appendEvents inserts the events and gives each its sequence number.
// Holding the write lock, the AUTOINCREMENT values of one statement are
// consecutive, ending at its last insert rowid.
func (t *tx) appendEvents(ctx context.Context, events []*quota.Event) error {
	rows := make([][]any, len(events))
	for i, e := range events {
		rows[i] = []any{t.s.region, nanos(e.Time), e.Type, e.Tenant, e.Subject, e.Actor, string(e.Role), e.Reason, nullJSON(e.Before), nullJSON(e.After)}
	}
	i := 0
	return t.insertRows(ctx, `INSERT INTO events (region, time, type, tenant, subject, actor, role, reason, before, after)`, "", rows,
		func(res sql.Result, n int) error {
			last, err := res.LastInsertId()
			if err != nil {
				return err
			}
			for j := range n {
				events[i+j].Seq = last - int64(n-1-j)
			}
			i += n
			return nil
		})
}

// chunkSizes are the row counts of the multi-row INSERT statements
// insertRows prepares: any batch is a sum of them, and there are few
// distinct statements to cache.
var chunkSizes = []int{256, 64, 16, 8, 4, 2, 1}

// insertRows inserts rows with multi-row VALUES statements, in order,
// calling done after each statement with how many rows it inserted. Plain
// placeholders cost SQLite far less than parsing the rows out of JSON.
func (t *tx) insertRows(ctx context.Context, head, tail string, rows [][]any, done func(sql.Result, int) error) error {
	for len(rows) > 0 {
		n := chunkSizes[len(chunkSizes)-1]
		for _, c := range chunkSizes {
			if c <= len(rows) {
				n = c
				break
			}
		}
		st, err := t.s.stmt(ctx, head+valuesClause(n, len(rows[0]))+tail)
		if err != nil {
			return err
		}
		args := make([]any, 0, n*len(rows[0]))
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		if done != nil {
			if err := done(res, n); err != nil {
				return err
			}
		}
		rows = rows[n:]
	}
	return nil
}

// sqlString quotes s as an SQL string literal's content. Regions are
// identifiers (no quotes), so this only guards the form.
func sqlString(s string) string { return strings.ReplaceAll(s, "'", "''") }

// valuesClause is " VALUES (?, …), …" for n rows of cols columns.
func valuesClause(n, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return " VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

func nullJSON(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// nullList stores a list as JSON, nil as NULL.
func nullList(v []int64) any {
	if v == nil {
		return nil
	}
	return jsonList(v)
}

// keyed maps the rows a transaction loaded by their key. The other store
// has the same few lines: not worth a package both would import.
func keyed[K comparable, T any](rows []T, err error, key func(T) K) (map[K]T, error) {
	if err != nil {
		return nil, err
	}
	out := make(map[K]T, len(rows))
	for _, r := range rows {
		out[key(r)] = r
	}
	return out, nil
}

// nullString is NULL for "", else s: a root's parent.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
