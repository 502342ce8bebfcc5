package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/internal/quota"
)

// querier is what reads need: the pool, or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *Store) Tenant(ctx context.Context, id string) (*quota.Tenant, error) {
	ts, err := loadTenants(ctx, s.pool, s.region, []string{id})
	return found(ts[id], err, "tenant", id)
}

func (s *Store) Tenants(ctx context.Context) ([]*quota.Tenant, error) {
	ts, err := loadTenants(ctx, s.pool, s.region, nil)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	out := make([]*quota.Tenant, 0, len(ts))
	for _, t := range ts {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *quota.Tenant) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (s *Store) Usage(ctx context.Context, tenant string) (map[string]int64, error) {
	u, err := loadUsage(ctx, s.pool, s.region, []string{tenant})
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	if u[tenant] == nil {
		return map[string]int64{}, nil
	}
	return u[tenant], nil
}

func (s *Store) AllUsage(ctx context.Context) (map[string]map[string]int64, error) {
	return loaded(loadUsage(ctx, s.pool, s.region, nil))
}

func (s *Store) Consumer(ctx context.Context, tenant, id string) (*quota.Consumer, error) {
	cs, err := loadConsumers(ctx, s.pool, `SELECT `+consumerColumns+` FROM consumers WHERE region = $1 AND tenant = $2 AND id = $3`,
		s.region, tenant, id)
	return found(first(cs), err, "consumer", id)
}

func (s *Store) Consumers(ctx context.Context, f quota.ConsumerFilter) ([]*quota.Consumer, error) {
	// COLLATE "C": the same byte order as SQLite and Go, whatever the
	// database's collation, so pages never skip or repeat.
	return loaded(loadConsumers(ctx, s.pool, `SELECT `+consumerColumns+` FROM consumers
		WHERE region = $1 AND tenant = $2 AND id COLLATE "C" > $3 AND ($4 = '' OR kind = $4) AND ($5 = '' OR state = $5)
		ORDER BY id COLLATE "C" LIMIT $6`,
		s.region, f.Tenant, f.After, f.Kind, f.State, f.Limit))
}

func (s *Store) Expired(ctx context.Context, now time.Time, limit int) ([]*quota.Consumer, error) {
	return loaded(loadConsumers(ctx, s.pool, `SELECT `+consumerColumns+` FROM consumers
		WHERE region = $1 AND expires_at IS NOT NULL AND expires_at <= $2 ORDER BY expires_at LIMIT $3`,
		s.region, nanos(now), limit))
}

func (s *Store) Token(ctx context.Context, name string) (*quota.Token, error) {
	ts, err := loadTokens(ctx, s.pool, `SELECT `+tokenColumns+` FROM tokens WHERE region = $1 AND name = $2`, s.region, name)
	return found(first(ts), err, "token", name)
}

func (s *Store) Tokens(ctx context.Context) ([]*quota.Token, error) {
	return loaded(loadTokens(ctx, s.pool, `SELECT `+tokenColumns+` FROM tokens WHERE region = $1 ORDER BY name COLLATE "C"`, s.region))
}

func (s *Store) Events(ctx context.Context, f quota.EventFilter) ([]*quota.Event, error) {
	// Only up to the final position: past it, a transaction in progress
	// may still hold a number (final.go).
	final, err := s.finalSeq(ctx)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	// Each form matches an index ((region, tenant, seq) or seq), so a page
	// costs its own rows, never a scan of the ledger.
	const cols = `SELECT ` + eventColumns + ` FROM events`
	query, args := cols+` WHERE region = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4`, []any{s.region, f.After, final, f.Limit}
	if f.Tenant != "" {
		query, args = cols+` WHERE region = $1 AND tenant = $2 AND seq > $3 AND seq <= $4 ORDER BY seq LIMIT $5`, []any{s.region, f.Tenant, f.After, final, f.Limit}
	}
	rows, err := s.pool.Query(ctx, query, args...)
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

// loaded answers what a read loaded, or that the store could not answer.
// Each store has its own (its errors name it); a shared package for two
// small helpers would cost more than it saves.
func loaded[T any](v T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	return v, nil
}

// found answers what a lookup by key loaded, CodeNotFound if nothing.
func found[T any](v *T, err error, what, id string) (*T, error) {
	if err == nil && v == nil {
		return nil, quota.Errorf(quota.CodeNotFound, "%s %q not found", what, id)
	}
	return loaded(v, err)
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullNanos(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	n := t.UnixNano()
	return &n
}

func fromNullNanos(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := fromNanos(*n)
	return &t
}

// The loaders mirror sqlite's, but are not shared: the two drivers scan
// NULLs, JSON and named types apart.

// loadTenants reads tenants with their overrides; ids nil means all.
func loadTenants(ctx context.Context, q querier, region string, ids []string) (map[string]*quota.Tenant, error) {
	idFilter, filter, args := "", "", []any{region}
	if ids != nil {
		idFilter, filter, args = ` AND id = ANY($2)`, ` AND tenant = ANY($2)`, append(args, ids)
	}
	out := map[string]*quota.Tenant{}
	rows, err := q.Query(ctx, `SELECT id, name, plan, created_at, created_seq, thresholds::text, coalesce(parent, '') FROM tenants WHERE region = $1`+idFilter, args...)
	if err != nil {
		return nil, fmt.Errorf("reading tenants: %w", err)
	}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		t := &quota.Tenant{} // override maps only for tenants that have overrides: most have none
		var created int64
		var thresholds *string
		if err := r.Scan(&t.ID, &t.Name, &t.Plan, &created, &t.CreatedSeq, &thresholds, &t.Parent); err != nil {
			return struct{}{}, err
		}
		t.CreatedAt = fromNanos(created)
		if thresholds != nil {
			if err := json.Unmarshal([]byte(*thresholds), &t.Thresholds); err != nil {
				return struct{}{}, fmt.Errorf("tenant %s: thresholds: %w", t.ID, err)
			}
		}
		out[t.ID] = t
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading tenants: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT tenant, resource, hard, req_min, req_max FROM quota_overrides WHERE region = $1`+filter, args...)
	if err != nil {
		return nil, fmt.Errorf("reading quota overrides: %w", err)
	}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var tenant, res string
		var hard, min, max *int64
		if err := r.Scan(&tenant, &res, &hard, &min, &max); err != nil {
			return struct{}{}, err
		}
		if t := out[tenant]; t != nil {
			o := quota.QuotaOverride{Hard: hard}
			if min != nil && max != nil {
				o.Requestable = &quota.Range{Min: *min, Max: *max}
			}
			if t.Quotas == nil {
				t.Quotas = map[string]quota.QuotaOverride{}
			}
			t.Quotas[res] = o
		}
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading quota overrides: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT tenant, key, min, max FROM limit_overrides WHERE region = $1`+filter, args...)
	if err != nil {
		return nil, fmt.Errorf("reading limit overrides: %w", err)
	}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var tenant, key string
		var rg quota.Range
		if err := r.Scan(&tenant, &key, &rg.Min, &rg.Max); err != nil {
			return struct{}{}, err
		}
		if t := out[tenant]; t != nil {
			if t.Limits == nil {
				t.Limits = map[string]quota.Range{}
			}
			t.Limits[key] = rg
		}
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading limit overrides: %w", err)
	}
	return out, nil
}

func loadUsage(ctx context.Context, q querier, region string, tenants []string) (map[string]map[string]int64, error) {
	return loadUsageOf(ctx, q, "usage", region, tenants)
}

// loadUsageOf reads a table of usage rows: usage (a tenant's own) or
// subtree_usage (its descendants').
func loadUsageOf(ctx context.Context, q querier, table, region string, tenants []string) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	query, args := `SELECT tenant, resource, used FROM `+table+` WHERE region = $1 AND used > 0`, []any{region}
	if tenants != nil { // nil: every tenant's non-zero usage
		query, args = `SELECT tenant, resource, used FROM `+table+` WHERE region = $1 AND tenant = ANY($2)`, []any{region, tenants}
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading usage: %w", err)
	}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var tenant, res string
		var used int64
		if err := r.Scan(&tenant, &res, &used); err != nil {
			return struct{}{}, err
		}
		if out[tenant] == nil {
			out[tenant] = map[string]int64{}
		}
		out[tenant][res] = used
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading usage: %w", err)
	}
	return out, nil
}

const consumerColumns = `tenant, id, kind, state, attributes::text, generation, footprint::text, expires_at, created_at, updated_at`

func loadConsumers(ctx context.Context, q querier, query string, args ...any) ([]*quota.Consumer, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading consumers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*quota.Consumer, error) {
		c := &quota.Consumer{}
		var attrs, fp string
		var exp *int64
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
	})
	if err != nil {
		return nil, fmt.Errorf("reading consumers: %w", err)
	}
	return out, nil
}

const eventColumns = `seq, time, type, tenant, subject, actor, role, reason, before::text, after::text`

// eventRow reads eventColumns into e: Scan into targets, then call done.
// Events are read both as the ledger and as the outbox's deliveries.
type eventRow struct {
	e             *quota.Event
	at            int64
	role          string
	before, after *string
}

func (r *eventRow) targets() []any {
	e := r.e
	return []any{&e.Seq, &r.at, &e.Type, &e.Tenant, &e.Subject, &e.Actor, &r.role, &e.Reason, &r.before, &r.after}
}

func (r *eventRow) done() {
	r.e.Time, r.e.Role = fromNanos(r.at), quota.Role(r.role)
	if r.before != nil {
		r.e.Before = json.RawMessage(*r.before)
	}
	if r.after != nil {
		r.e.After = json.RawMessage(*r.after)
	}
}

const tokenColumns = `name, role, tenant, hash, sealed, created_at, revoked_at`

func loadTokens(ctx context.Context, q querier, query string, args ...any) ([]*quota.Token, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*quota.Token, error) {
		t := &quota.Token{}
		var role string
		var created int64
		var revoked *int64
		if err := r.Scan(&t.Name, &role, &t.Tenant, &t.Hash, &t.Sealed, &created, &revoked); err != nil {
			return nil, err
		}
		t.Role, t.CreatedAt, t.RevokedAt = quota.Role(role), fromNanos(created), fromNullNanos(revoked)
		return t, nil
	})
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

// Pin implements quota.Store. It is one idempotent statement: when its
// reply is lost, the caller's retry returns the value recorded, whether
// the lost attempt recorded it or another process did, so no lookup is
// needed.
func (s *Store) Pin(ctx context.Context, key, value string) (string, error) {
	var recorded string
	err := s.pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO meta (region, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING value)
		SELECT value FROM ins UNION ALL SELECT value FROM meta WHERE region = $1 AND key = $2 LIMIT 1`, s.region, key, value).Scan(&recorded)
	if err != nil {
		return "", quota.Unavailable(fmt.Errorf("postgres: pinning %s: %w", key, err))
	}
	return recorded, nil
}

// LastSeq implements quota.Store.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	final, err := s.finalSeq(ctx)
	if err != nil {
		return 0, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	var seq *int64
	if err := s.pool.QueryRow(ctx, `SELECT max(seq) FROM events WHERE region = $1 AND seq <= $2`, s.region, final).Scan(&seq); err != nil {
		return 0, quota.Unavailable(fmt.Errorf("postgres: reading the ledger's end: %w", err))
	}
	if seq == nil {
		return 0, nil
	}
	return *seq, nil
}
