// Reading rows into the domain's types. The loaders mirror postgres's, but
// are not shared: the two drivers scan NULLs, JSON and named types apart.

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// querier is what reads need: the read pool, or the writer connection inside
// a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryRows runs a query and calls scan for each row.
func queryRows(ctx context.Context, q querier, scan func(*sql.Rows) error, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// jsonList encodes ids for `IN (SELECT value FROM json_each(?))`: one
// statement for any number of keys.
func jsonList[T any](v []T) string {
	b, _ := json.Marshal(v) // strings and pairs of strings always marshal
	return string(b)
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullNanos(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromNullNanos(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

// loadTenants reads tenants with their overrides; ids nil means all. One
// statement reads all three tables, so a lookup is one read transaction:
// each statement outside a transaction takes SQLite's shared-memory locks
// anew, and that cost dominated reading a tenant.
func loadTenants(ctx context.Context, q querier, region string, ids []string) (map[string]*quota.Tenant, error) {
	idFilter, filter, args := "", "", []any{}
	switch {
	case len(ids) == 1: // the common case: a plain index lookup
		idFilter, filter, args = ` AND id = ?1`, ` AND tenant = ?1`, []any{ids[0]}
	case ids != nil:
		const in = ` IN (SELECT value FROM json_each(?1))`
		idFilter, filter, args = ` AND id`+in, ` AND tenant`+in, []any{jsonList(ids)}
	}
	// Rows: tenants first ('t'), then quota ('q') and limit ('l') overrides.
	query := `SELECT 't', id, name, plan, created_at, created_seq, NULL, thresholds, parent FROM tenants WHERE region = ?2` + idFilter + `
		UNION ALL SELECT 'q', tenant, resource, NULL, hard, req_min, req_max, NULL, NULL FROM quota_overrides WHERE region = ?2` + filter + `
		UNION ALL SELECT 'l', tenant, key, NULL, min, max, NULL, NULL, NULL FROM limit_overrides WHERE region = ?2` + filter
	if ids == nil {
		query = strings.ReplaceAll(query, "?2", "?1")
	}
	out := map[string]*quota.Tenant{}
	type pending struct {
		row     string
		tenant  string
		name    string
		a, b, c sql.NullInt64
	}
	var overrides []pending
	err := queryRows(ctx, q, func(r *sql.Rows) error {
		var row, tenant, name string
		var plan, thresholds, parent sql.NullString
		var a, b, c sql.NullInt64
		if err := r.Scan(&row, &tenant, &name, &plan, &a, &b, &c, &thresholds, &parent); err != nil {
			return err
		}
		if row != "t" {
			overrides = append(overrides, pending{row, tenant, name, a, b, c})
			return nil
		}
		t := &quota.Tenant{ID: tenant, Name: name, Plan: plan.String, CreatedAt: fromNanos(a.Int64), CreatedSeq: b.Int64, Parent: parent.String} // override maps only for tenants that have overrides: most have none
		if thresholds.Valid {
			if err := json.Unmarshal([]byte(thresholds.String), &t.Thresholds); err != nil {
				return fmt.Errorf("tenant %s: thresholds: %w", t.ID, err)
			}
		}
		out[t.ID] = t
		return nil
	}, query, append(args, region)...)
	if err != nil {
		return nil, fmt.Errorf("reading tenants: %w", err)
	}
	for _, o := range overrides {
		t := out[o.tenant]
		if t == nil {
			continue
		}
		if o.row == "l" {
			if t.Limits == nil {
				t.Limits = map[string]quota.Range{}
			}
			t.Limits[o.name] = quota.Range{Min: o.a.Int64, Max: o.b.Int64}
			continue
		}
		var qo quota.QuotaOverride
		if o.a.Valid {
			hard := o.a.Int64
			qo.Hard = &hard
		}
		if o.b.Valid && o.c.Valid {
			qo.Requestable = &quota.Range{Min: o.b.Int64, Max: o.c.Int64}
		}
		if t.Quotas == nil {
			t.Quotas = map[string]quota.QuotaOverride{}
		}
		t.Quotas[o.name] = qo
	}
	return out, nil
}

// loadUsage reads the usage of tenants; nil means every tenant's non-zero
// usage.
func loadUsage(ctx context.Context, q querier, region string, tenants []string) (map[string]map[string]int64, error) {
	return loadUsageOf(ctx, q, "usage", region, tenants)
}

// loadUsageOf reads a table of usage rows: usage (a tenant's own) or
// subtree_usage (its descendants').
func loadUsageOf(ctx context.Context, q querier, table, region string, tenants []string) (map[string]map[string]int64, error) {
	query, args := `SELECT tenant, resource, used FROM `+table+` WHERE region = ? AND used > 0`, []any{region}
	switch {
	case len(tenants) == 1:
		query, args = `SELECT tenant, resource, used FROM `+table+` WHERE region = ? AND tenant = ?`, []any{region, tenants[0]}
	case tenants != nil:
		query, args = `SELECT tenant, resource, used FROM `+table+` WHERE region = ? AND tenant IN (SELECT value FROM json_each(?))`, []any{region, jsonList(tenants)}
	}
	out := map[string]map[string]int64{}
	err := queryRows(ctx, q, func(r *sql.Rows) error {
		var tenant, res string
		var used int64
		if err := r.Scan(&tenant, &res, &used); err != nil {
			return err
		}
		if out[tenant] == nil {
			out[tenant] = map[string]int64{}
		}
		out[tenant][res] = used
		return nil
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading usage: %w", err)
	}
	return out, nil
}

const consumerColumns = `tenant, id, kind, state, attributes, generation, footprint, expires_at, created_at, updated_at`

func scanConsumer(r *sql.Rows) (*quota.Consumer, error) {
	c := &quota.Consumer{}
	var attrs, fp string
	var exp sql.NullInt64
	var created, updated int64
	if err := r.Scan(&c.Tenant, &c.ID, &c.Kind, &c.State, &attrs, &c.Generation, &fp, &exp, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(attrs), &c.Attributes); err != nil {
		return nil, fmt.Errorf("consumer %s/%s: attributes: %w", c.Tenant, c.ID, err)
	}
	if err := json.Unmarshal([]byte(fp), &c.Footprint); err != nil {
		return nil, fmt.Errorf("consumer %s/%s: footprint: %w", c.Tenant, c.ID, err)
	}
	c.ExpiresAt, c.CreatedAt, c.UpdatedAt = fromNullNanos(exp), fromNanos(created), fromNanos(updated)
	return c, nil
}

func loadConsumers(ctx context.Context, q querier, query string, args ...any) ([]*quota.Consumer, error) {
	var out []*quota.Consumer
	err := queryRows(ctx, q, func(r *sql.Rows) error {
		c, err := scanConsumer(r)
		if err == nil {
			out = append(out, c)
		}
		return err
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading consumers: %w", err)
	}
	return out, nil
}

const eventColumns = `seq, time, type, tenant, subject, actor, role, reason, before, after`

// eventRow reads eventColumns into e: Scan into targets, then call done.
// Events are read both as the ledger and as the outbox's deliveries.
type eventRow struct {
	e             *quota.Event
	at            int64
	before, after sql.NullString
}

func (r *eventRow) targets() []any {
	e := r.e
	return []any{&e.Seq, &r.at, &e.Type, &e.Tenant, &e.Subject, &e.Actor, &e.Role, &e.Reason, &r.before, &r.after}
}

func (r *eventRow) done() {
	r.e.Time = fromNanos(r.at)
	if r.before.Valid {
		r.e.Before = []byte(r.before.String)
	}
	if r.after.Valid {
		r.e.After = []byte(r.after.String)
	}
}

const tokenColumns = `name, role, tenant, hash, sealed, created_at, revoked_at`

func loadTokens(ctx context.Context, q querier, query string, args ...any) ([]*quota.Token, error) {
	var out []*quota.Token
	err := queryRows(ctx, q, func(r *sql.Rows) error {
		t := &quota.Token{}
		var created int64
		var revoked sql.NullInt64
		if err := r.Scan(&t.Name, &t.Role, &t.Tenant, &t.Hash, &t.Sealed, &created, &revoked); err != nil {
			return err
		}
		t.CreatedAt, t.RevokedAt = fromNanos(created), fromNullNanos(revoked)
		out = append(out, t)
		return nil
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading tokens: %w", err)
	}
	return out, nil
}

// first is the row a lookup by key loaded, nil if none.
func first[T any](rows []*T) *T {
	if len(rows) == 0 {
		return nil
	}
	return rows[0]
}

func sortedTenants(m map[string]*quota.Tenant) []*quota.Tenant {
	out := make([]*quota.Tenant, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *quota.Tenant) int { return strings.Compare(a.ID, b.ID) })
	return out
}
