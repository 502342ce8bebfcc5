package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// The read methods use the read pool: committed data only, never blocked by
// the writer (WAL).

func (s *Store) Tenant(ctx context.Context, id string) (*quota.Tenant, error) {
	ts, err := loadTenants(ctx, s.reads, s.region, []string{id})
	return found(ts[id], err, "tenant", id)
}

func (s *Store) Tenants(ctx context.Context) ([]*quota.Tenant, error) {
	ts, err := loadTenants(ctx, s.reads, s.region, nil)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	return sortedTenants(ts), nil
}

func (s *Store) Usage(ctx context.Context, tenant string) (map[string]int64, error) {
	u, err := loadUsage(ctx, s.reads, s.region, []string{tenant})
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	if u[tenant] == nil {
		return map[string]int64{}, nil
	}
	return u[tenant], nil
}

func (s *Store) AllUsage(ctx context.Context) (map[string]map[string]int64, error) {
	return loaded(loadUsage(ctx, s.reads, s.region, nil))
}

func (s *Store) Consumer(ctx context.Context, tenant, id string) (*quota.Consumer, error) {
	cs, err := loadConsumers(ctx, s.reads, `SELECT `+consumerColumns+` FROM consumers WHERE region = ? AND tenant = ? AND id = ?`,
		s.region, tenant, id)
	return found(first(cs), err, "consumer", id)
}

func (s *Store) Consumers(ctx context.Context, f quota.ConsumerFilter) ([]*quota.Consumer, error) {
	return loaded(loadConsumers(ctx, s.reads, `SELECT `+consumerColumns+` FROM consumers
		WHERE region = ? AND tenant = ? AND id > ? AND (? = '' OR kind = ?) AND (? = '' OR state = ?)
		ORDER BY id LIMIT ?`,
		s.region, f.Tenant, f.After, f.Kind, f.Kind, f.State, f.State, f.Limit))
}

func (s *Store) Expired(ctx context.Context, now time.Time, limit int) ([]*quota.Consumer, error) {
	return loaded(loadConsumers(ctx, s.reads, `SELECT `+consumerColumns+` FROM consumers
		WHERE region = ? AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?`,
		s.region, nanos(now), limit))
}

func (s *Store) Token(ctx context.Context, name string) (*quota.Token, error) {
	ts, err := loadTokens(ctx, s.reads, `SELECT `+tokenColumns+` FROM tokens WHERE region = ? AND name = ?`, s.region, name)
	return found(first(ts), err, "token", name)
}

func (s *Store) Tokens(ctx context.Context) ([]*quota.Token, error) {
	return loaded(loadTokens(ctx, s.reads, `SELECT `+tokenColumns+` FROM tokens WHERE region = ? ORDER BY name`, s.region))
}

func (s *Store) Events(ctx context.Context, f quota.EventFilter) ([]*quota.Event, error) {
	var out []*quota.Event
	err := queryRows(ctx, s.reads, func(r *sql.Rows) error {
		row := eventRow{e: &quota.Event{}}
		if err := r.Scan(row.targets()...); err != nil {
			return err
		}
		row.done()
		out = append(out, row.e)
		return nil
	}, eventsQuery(f.Tenant != ""), eventsArgs(s.region, f)...)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: reading events: %w", err))
	}
	return out, nil
}

// Pin implements quota.Store.
func (s *Store) Pin(ctx context.Context, key, value string) (string, error) {
	var recorded string
	err := s.immediate(ctx, func() error {
		if _, err := s.conn.ExecContext(ctx, `INSERT INTO meta (region, key, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, s.region, key, value); err != nil {
			return err
		}
		return s.conn.QueryRowContext(ctx, `SELECT value FROM meta WHERE region = ? AND key = ?`, s.region, key).Scan(&recorded)
	})
	if err != nil {
		return "", quota.Unavailable(fmt.Errorf("sqlite: pinning %s: %w", key, err))
	}
	return recorded, nil
}

// eventsQuery is a ledger page's statement: each form matches an index
// ((region, tenant, seq), or the table itself in seq order), so a page
// costs its own rows, never a scan of the ledger. The ledger-wide form
// writes +region, which keeps the planner off the tenant index: through it,
// "region = ?" is every row, sorted.
func eventsQuery(byTenant bool) string {
	const cols = `SELECT ` + eventColumns + ` FROM events`
	if byTenant {
		return cols + ` WHERE region = ? AND tenant = ? AND seq > ? ORDER BY seq LIMIT ?`
	}
	return cols + ` WHERE +region = ? AND seq > ? ORDER BY seq LIMIT ?`
}

func eventsArgs(region string, f quota.EventFilter) []any {
	if f.Tenant != "" {
		return []any{region, f.Tenant, f.After, f.Limit}
	}
	return []any{region, f.After, f.Limit}
}

// LastSeq implements quota.Store.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	rows, err := s.reads.QueryContext(ctx, `SELECT max(seq) FROM (SELECT seq FROM events WHERE +region = ? ORDER BY seq DESC LIMIT 1)`, s.region)
	if err == nil {
		defer rows.Close()
		if rows.Next() {
			err = rows.Scan(&seq)
		}
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		return 0, quota.Unavailable(fmt.Errorf("sqlite: reading the ledger's end: %w", err))
	}
	return seq.Int64, nil
}

// loaded answers what a read loaded, or that the store could not answer.
// Each store has its own (its errors name it); a shared package for two
// small helpers would cost more than it saves.
func loaded[T any](v T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
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
