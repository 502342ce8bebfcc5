// Quota change requests: reading them, and writing them in a batch.

package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/internal/quota"
)

const requestColumns = `id, tenant, resource, value, reason, status, requested_by, created_at, updated_at, history::text`

func loadRequests(ctx context.Context, q querier, query string, args ...any) ([]*quota.Request, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*quota.Request, error) {
		x := &quota.Request{}
		var status, history string
		var created, updated int64
		if err := r.Scan(&x.ID, &x.Tenant, &x.Resource, &x.Value, &x.Reason, &status, &x.RequestedBy, &created, &updated, &history); err != nil {
			return nil, err
		}
		x.Status, x.CreatedAt, x.UpdatedAt = quota.RequestStatus(status), fromNanos(created), fromNanos(updated)
		if err := json.Unmarshal([]byte(history), &x.History); err != nil {
			return nil, fmt.Errorf("request %s: history: %w", x.ID, err)
		}
		return x, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading requests: %w", err)
	}
	return out, nil
}

func (t *tx) Requests(ctx context.Context, tenants, ids []string) (map[string]*quota.Request, error) {
	rs, err := loadRequests(ctx, t.t, `SELECT `+requestColumns+` FROM requests WHERE region = $1 AND
		(id = ANY($2) OR (status = 'pending' AND tenant = ANY($3)))`, t.s.region, ids, tenants)
	return keyed(rs, err, func(r *quota.Request) string { return r.ID })
}

// queueRequests adds the writes of a batch's requests to b.
func (t *tx) queueRequests(b *pgx.Batch, rs []*quota.Request) {
	for _, x := range rs {
		history, _ := json.Marshal(x.History)
		b.Queue(`INSERT INTO requests (region, id, tenant, resource, value, reason, status, requested_by, created_at, updated_at, history)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
			ON CONFLICT (region, id) DO UPDATE SET value = excluded.value, reason = excluded.reason, status = excluded.status,
				updated_at = excluded.updated_at, history = excluded.history`,
			t.s.region, x.ID, x.Tenant, x.Resource, x.Value, x.Reason, string(x.Status), x.RequestedBy, nanos(x.CreatedAt), nanos(x.UpdatedAt), string(history))
	}
}

func (s *Store) Requests(ctx context.Context, f quota.RequestFilter) ([]*quota.Request, error) {
	return loaded(loadRequests(ctx, s.pool, `SELECT `+requestColumns+` FROM requests
		WHERE region = $1 AND ($2 = '' OR tenant = $2) AND ($3 = '' OR status = $3) ORDER BY created_at DESC, id COLLATE "C" LIMIT $4`,
		s.region, f.Tenant, f.Status, f.Limit))
}

func (s *Store) Request(ctx context.Context, tenant, id string) (*quota.Request, error) {
	rs, err := loadRequests(ctx, s.pool, `SELECT `+requestColumns+` FROM requests WHERE region = $1 AND tenant = $2 AND id = $3`, s.region, tenant, id)
	return found(first(rs), err, "request", id)
}
