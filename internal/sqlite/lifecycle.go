package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// nullList stores a list as JSON, nil as NULL.
func nullList(v []int64) any {
	if v == nil {
		return nil
	}
	return jsonList(v)
}

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

const webhookColumns = `id, url, events, tenant, sealed, created_at`

func scanWebhook(r interface{ Scan(...any) error }) (*quota.Webhook, error) {
	h := &quota.Webhook{}
	var events string
	var created int64
	if err := r.Scan(&h.ID, &h.URL, &events, &h.Tenant, &h.Sealed, &created); err != nil {
		return nil, err
	}
	h.CreatedAt = fromNanos(created)
	if err := json.Unmarshal([]byte(events), &h.Events); err != nil {
		return nil, fmt.Errorf("webhook %s: events: %w", h.ID, err)
	}
	return h, nil
}

func loadWebhooks(ctx context.Context, q querier, region string) ([]*quota.Webhook, error) {
	var out []*quota.Webhook
	err := queryRows(ctx, q, func(r *sql.Rows) error {
		h, err := scanWebhook(r)
		if err == nil {
			out = append(out, h)
		}
		return err
	}, `SELECT `+webhookColumns+` FROM webhooks WHERE region = ? ORDER BY id`, region)
	if err != nil {
		return nil, fmt.Errorf("reading webhooks: %w", err)
	}
	return out, nil
}

// applyLifecycle writes requests and webhooks.
func (t *tx) applyLifecycle(ctx context.Context, w *quota.Writes) error {
	r := t.s.region
	for _, x := range w.PutRequests {
		err := t.exec(ctx, `INSERT INTO requests (region, `+requestColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (region, id) DO UPDATE SET value = excluded.value, reason = excluded.reason, status = excluded.status,
				updated_at = excluded.updated_at, history = excluded.history`,
			r, x.ID, x.Tenant, x.Resource, x.Value, x.Reason, string(x.Status), x.RequestedBy, nanos(x.CreatedAt), nanos(x.UpdatedAt), jsonList(x.History))
		if err != nil {
			return fmt.Errorf("writing request: %w", err)
		}
	}
	for _, id := range w.DeleteWebhooks {
		for _, q := range []string{`DELETE FROM outbox WHERE region = ? AND webhook = ?`, `DELETE FROM webhooks WHERE region = ? AND id = ?`} {
			if err := t.exec(ctx, q, r, id); err != nil {
				return fmt.Errorf("deleting webhook: %w", err)
			}
		}
	}
	for _, h := range w.PutWebhooks {
		err := t.exec(ctx, `INSERT INTO webhooks (region, `+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (region, id) DO UPDATE SET url = excluded.url, events = excluded.events, tenant = excluded.tenant, sealed = excluded.sealed`,
			r, h.ID, h.URL, jsonList(h.Events), h.Tenant, h.Sealed, nanos(h.CreatedAt))
		if err != nil {
			return fmt.Errorf("writing webhook: %w", err)
		}
	}
	return nil
}

// queueDeliveries writes the outbox rows of the events just appended.
func (t *tx) queueDeliveries(ctx context.Context, w *quota.Writes) error {
	if len(w.Deliveries) == 0 {
		return nil
	}
	rows := make([][3]any, len(w.Deliveries))
	for i, d := range w.Deliveries {
		rows[i] = [3]any{d.Webhook, w.Events[d.Event].Seq, d.Tenant}
	}
	err := t.exec(ctx, `INSERT INTO outbox (region, webhook, seq, tenant, created_at)
		SELECT ?, value ->> 0, value ->> 1, value ->> 2, ? FROM json_each(?) ORDER BY key`,
		t.s.region, nanos(w.Events[0].Time), jsonList(rows))
	if err != nil {
		return fmt.Errorf("queueing webhook deliveries: %w", err)
	}
	return nil
}

func (s *Store) Requests(ctx context.Context, f quota.RequestFilter) ([]*quota.Request, error) {
	rs, err := loadRequests(ctx, s.reads, `SELECT `+requestColumns+` FROM requests
		WHERE region = ? AND (? = '' OR tenant = ?) AND (? = '' OR status = ?) ORDER BY created_at DESC, id LIMIT ?`,
		s.region, f.Tenant, f.Tenant, f.Status, f.Status, f.Limit)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	return rs, nil
}

func (s *Store) Request(ctx context.Context, tenant, id string) (*quota.Request, error) {
	rs, err := loadRequests(ctx, s.reads, `SELECT `+requestColumns+` FROM requests WHERE region = ? AND tenant = ? AND id = ?`, s.region, tenant, id)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	if len(rs) == 0 {
		return nil, notFound("request", id)
	}
	return rs[0], nil
}

func (s *Store) Webhooks(ctx context.Context) ([]*quota.Webhook, error) {
	hs, err := loadWebhooks(ctx, s.reads, s.region)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	return hs, nil
}

func (s *Store) AllUsage(ctx context.Context) (map[string]map[string]int64, error) {
	u, err := loadUsage(ctx, s.reads, s.region, nil)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	return u, nil
}

// LeaseDeliveries implements quota.Store. The IMMEDIATE transaction makes
// choosing and leasing one step for every process on the file.
func (s *Store) LeaseDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*quota.Delivery, error) {
	var out []*quota.Delivery
	err := s.immediate(ctx, func() error {
		out = nil
		err := queryRows(ctx, s.conn, func(r *sql.Rows) error {
			d := &quota.Delivery{Event: &quota.Event{}}
			var hookID, events string
			var hookCreated, at, created int64
			var before, after sql.NullString
			h := &quota.Webhook{}
			if err := r.Scan(&d.ID, &d.Attempts, &created, &hookID, &h.URL, &events, &h.Tenant, &h.Sealed, &hookCreated,
				&d.Event.Seq, &at, &d.Event.Type, &d.Event.Tenant, &d.Event.Subject, &d.Event.Actor, &d.Event.Role, &d.Event.Reason, &before, &after); err != nil {
				return err
			}
			h.ID, h.CreatedAt = hookID, fromNanos(hookCreated)
			if err := json.Unmarshal([]byte(events), &h.Events); err != nil {
				return err
			}
			d.Webhook, d.CreatedAt, d.Event.Time = h, fromNanos(created), fromNanos(at)
			if before.Valid {
				d.Event.Before = []byte(before.String)
			}
			if after.Valid {
				d.Event.After = []byte(after.String)
			}
			out = append(out, d)
			return nil
		}, `SELECT o.id, o.attempts, o.created_at, w.id, w.url, w.events, w.tenant, w.sealed, w.created_at,
				e.seq, e.time, e.type, e.tenant, e.subject, e.actor, e.role, e.reason, e.before, e.after
			FROM outbox o JOIN webhooks w ON w.region = o.region AND w.id = o.webhook JOIN events e ON e.seq = o.seq
			WHERE o.region = ? AND o.next_attempt <= ? AND o.lease_until <= ?
				AND o.id = (SELECT min(p.id) FROM outbox p WHERE p.region = o.region AND p.webhook = o.webhook AND p.tenant = o.tenant)
			ORDER BY o.id LIMIT ?`, s.region, nanos(now), nanos(now), limit)
		if err != nil || len(out) == 0 {
			return err
		}
		ids := make([]string, len(out))
		for i, d := range out {
			ids[i] = fmt.Sprint(d.ID)
		}
		_, err = s.conn.ExecContext(ctx, `UPDATE outbox SET lease_until = ? WHERE id IN (`+strings.Join(ids, ",")+`)`, nanos(now.Add(lease)))
		return err
	})
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: leasing deliveries: %w", err))
	}
	return out, nil
}

// FinishDelivery implements quota.Store.
func (s *Store) FinishDelivery(ctx context.Context, id int64, delivered bool, next time.Time, lastError string) error {
	err := s.immediate(ctx, func() error {
		var err error
		if delivered || next.IsZero() {
			_, err = s.conn.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, id)
		} else {
			_, err = s.conn.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, lease_until = 0, last_error = ? WHERE id = ?`,
				nanos(next), lastError, id)
		}
		return err
	})
	if err != nil {
		return quota.Unavailable(fmt.Errorf("sqlite: recording a delivery: %w", err))
	}
	return nil
}
