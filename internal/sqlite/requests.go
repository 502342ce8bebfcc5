// Quota change requests: reading them, and writing them in a batch.

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/allot-dev/allot/internal/quota"
)

const requestColumns = `id, tenant, resource, value, reason, status, requested_by, created_at, updated_at, history`

func loadRequests(ctx context.Context, q querier, query string, args ...any) ([]*quota.Request, error) {
	var out []*quota.Request
	err := queryRows(ctx, q, func(r *sql.Rows) error {
		x := &quota.Request{}
		var created, updated int64
		var history string
		if err := r.Scan(&x.ID, &x.Tenant, &x.Resource, &x.Value, &x.Reason, &x.Status, &x.RequestedBy, &created, &updated, &history); err != nil {
			return err
		}
		x.CreatedAt, x.UpdatedAt = fromNanos(created), fromNanos(updated)
		if err := json.Unmarshal([]byte(history), &x.History); err != nil {
			return fmt.Errorf("request %s: history: %w", x.ID, err)
		}
		out = append(out, x)
		return nil
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading requests: %w", err)
	}
	return out, nil
}

// writeRequests inserts or updates the requests of a batch.
func (t *tx) writeRequests(ctx context.Context, rs []*quota.Request) error {
	for _, x := range rs {
		err := t.exec(ctx, `INSERT INTO requests (region, `+requestColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (region, id) DO UPDATE SET value = excluded.value, reason = excluded.reason, status = excluded.status,
				updated_at = excluded.updated_at, history = excluded.history`,
			t.s.region, x.ID, x.Tenant, x.Resource, x.Value, x.Reason, string(x.Status), x.RequestedBy, nanos(x.CreatedAt), nanos(x.UpdatedAt), jsonList(x.History))
		if err != nil {
			return fmt.Errorf("writing request: %w", err)
		}
	}
	return nil
}

func (s *Store) Requests(ctx context.Context, f quota.RequestFilter) ([]*quota.Request, error) {
	return loaded(loadRequests(ctx, s.reads, `SELECT `+requestColumns+` FROM requests
		WHERE region = ? AND (? = '' OR tenant = ?) AND (? = '' OR status = ?) ORDER BY created_at DESC, id LIMIT ?`,
		s.region, f.Tenant, f.Tenant, f.Status, f.Status, f.Limit))
}

func (s *Store) Request(ctx context.Context, tenant, id string) (*quota.Request, error) {
	rs, err := loadRequests(ctx, s.reads, `SELECT `+requestColumns+` FROM requests WHERE region = ? AND tenant = ? AND id = ?`, s.region, tenant, id)
	return found(first(rs), err, "request", id)
}
