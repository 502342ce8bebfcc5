package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/internal/quota"
)

// lockOutbox serializes leasing deliveries across processes.
const lockOutbox int32 = lockLedger + 1

// nullList stores a list as JSON, nil as NULL.
func nullList(v []int64) *string {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	s := string(b)
	return &s
}

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

const webhookColumns = `id, url, events::text, tenant, sealed, created_at`

func scanWebhook(r pgx.Row, extra ...any) (*quota.Webhook, error) {
	h := &quota.Webhook{}
	var events string
	var created int64
	if err := r.Scan(append([]any{&h.ID, &h.URL, &events, &h.Tenant, &h.Sealed, &created}, extra...)...); err != nil {
		return nil, err
	}
	h.CreatedAt = fromNanos(created)
	if err := json.Unmarshal([]byte(events), &h.Events); err != nil {
		return nil, fmt.Errorf("webhook %s: events: %w", h.ID, err)
	}
	return h, nil
}

func loadWebhooks(ctx context.Context, q querier, region string) ([]*quota.Webhook, error) {
	rows, err := q.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE region = $1 ORDER BY id COLLATE "C"`, region)
	if err != nil {
		return nil, fmt.Errorf("reading webhooks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*quota.Webhook, error) { return scanWebhook(r) })
	if err != nil {
		return nil, fmt.Errorf("reading webhooks: %w", err)
	}
	return out, nil
}

func (t *tx) Requests(ctx context.Context, tenants, ids []string) (map[string]*quota.Request, error) {
	rs, err := loadRequests(ctx, t.t, `SELECT `+requestColumns+` FROM requests WHERE region = $1 AND
		(id = ANY($2) OR (status = 'pending' AND tenant = ANY($3)))`, t.s.region, ids, tenants)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*quota.Request, len(rs))
	for _, r := range rs {
		out[r.ID] = r
	}
	return out, nil
}

func (t *tx) TenantConsumers(ctx context.Context, tenant string, kinds []string, limit int) ([]*quota.Consumer, error) {
	query, args := `SELECT `+consumerColumns+` FROM consumers WHERE region = $1 AND tenant = $2 ORDER BY id COLLATE "C"`, []any{t.s.region, tenant}
	if kinds != nil {
		query = `SELECT ` + consumerColumns + ` FROM consumers WHERE region = $1 AND tenant = $2 AND kind = ANY($3) ORDER BY id COLLATE "C"`
		args = append(args, kinds)
	}
	if limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", limit)
	}
	return loadConsumers(ctx, t.t, query, args...)
}

func (t *tx) queueLifecycle(b *pgx.Batch, w *quota.Writes) {
	r := t.s.region
	for _, x := range w.PutRequests {
		history, _ := json.Marshal(x.History)
		b.Queue(`INSERT INTO requests (region, id, tenant, resource, value, reason, status, requested_by, created_at, updated_at, history)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
			ON CONFLICT (region, id) DO UPDATE SET value = excluded.value, reason = excluded.reason, status = excluded.status,
				updated_at = excluded.updated_at, history = excluded.history`,
			r, x.ID, x.Tenant, x.Resource, x.Value, x.Reason, string(x.Status), x.RequestedBy, nanos(x.CreatedAt), nanos(x.UpdatedAt), string(history))
	}
	for _, id := range w.DeleteWebhooks {
		b.Queue(`DELETE FROM outbox WHERE region = $1 AND webhook = $2`, r, id)
		b.Queue(`DELETE FROM webhooks WHERE region = $1 AND id = $2`, r, id)
	}
	for _, h := range w.PutWebhooks {
		events, _ := json.Marshal(h.Events)
		b.Queue(`INSERT INTO webhooks (region, id, url, events, tenant, sealed, created_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)
			ON CONFLICT (region, id) DO UPDATE SET url = excluded.url, events = excluded.events, tenant = excluded.tenant, sealed = excluded.sealed`,
			r, h.ID, h.URL, string(events), h.Tenant, h.Sealed, nanos(h.CreatedAt))
	}
}

// queueDeliveries writes the outbox rows of the events just appended.
func (t *tx) queueDeliveries(ctx context.Context, w *quota.Writes) error {
	n := len(w.Deliveries)
	if n == 0 {
		return nil
	}
	hooks, tenants, seqs := make([]string, n), make([]string, n), make([]int64, n)
	for i, d := range w.Deliveries {
		hooks[i], tenants[i], seqs[i] = d.Webhook, d.Tenant, w.Events[d.Event].Seq
	}
	_, err := t.t.Exec(ctx, `INSERT INTO outbox (region, webhook, seq, tenant, created_at)
		SELECT $1, webhook, seq, tenant, $5 FROM unnest($2::text[], $3::int8[], $4::text[]) WITH ORDINALITY AS u (webhook, seq, tenant, n)
		ORDER BY n`, t.s.region, hooks, seqs, tenants, nanos(w.Events[0].Time))
	if err != nil {
		return fmt.Errorf("queueing webhook deliveries: %w", err)
	}
	return nil
}

func (s *Store) Requests(ctx context.Context, f quota.RequestFilter) ([]*quota.Request, error) {
	rs, err := loadRequests(ctx, s.pool, `SELECT `+requestColumns+` FROM requests
		WHERE region = $1 AND ($2 = '' OR tenant = $2) AND ($3 = '' OR status = $3) ORDER BY created_at DESC, id COLLATE "C" LIMIT $4`,
		s.region, f.Tenant, f.Status, f.Limit)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	return rs, nil
}

func (s *Store) Request(ctx context.Context, tenant, id string) (*quota.Request, error) {
	rs, err := loadRequests(ctx, s.pool, `SELECT `+requestColumns+` FROM requests WHERE region = $1 AND tenant = $2 AND id = $3`, s.region, tenant, id)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	if len(rs) == 0 {
		return nil, notFound("request", id)
	}
	return rs[0], nil
}

func (s *Store) Webhooks(ctx context.Context) ([]*quota.Webhook, error) {
	hs, err := loadWebhooks(ctx, s.pool, s.region)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	return hs, nil
}

func (s *Store) AllUsage(ctx context.Context) (map[string]map[string]int64, error) {
	u, err := loadUsage(ctx, s.pool, s.region, nil)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	return u, nil
}

// LeaseDeliveries implements quota.Store; an advisory lock makes choosing
// and leasing one step across processes. It is not retried here: when its
// COMMIT reply is lost, the leases it took may stand, and those deliveries
// are leased again once the lease runs out. Delivery is at least once
// anyway (a receiver may answer after the lease ended), so a late or
// repeated delivery is within the contract; a lost one is not possible.
func (s *Store) LeaseDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*quota.Delivery, error) {
	var out []*quota.Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(t pgx.Tx) error {
		out = nil
		if _, err := t.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockOutbox, s.lockKey("outbox")); err != nil {
			return err
		}
		rows, err := t.Query(ctx, `SELECT w.id, w.url, w.events::text, w.tenant, w.sealed, w.created_at,
				o.id, o.attempts, o.created_at,
				e.seq, e.time, e.type, e.tenant, e.subject, e.actor, e.role, e.reason, e.before::text, e.after::text
			FROM outbox o JOIN webhooks w ON w.region = o.region AND w.id = o.webhook JOIN events e ON e.seq = o.seq
			WHERE o.region = $1 AND o.next_attempt <= $2 AND o.lease_until <= $2
				AND o.id = (SELECT min(p.id) FROM outbox p WHERE p.region = o.region AND p.webhook = o.webhook AND p.tenant = o.tenant)
			ORDER BY o.id LIMIT $3`, s.region, nanos(now), limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*quota.Delivery, error) {
			d := &quota.Delivery{Event: &quota.Event{}}
			var created, at int64
			var role string
			var before, after *string
			h, err := scanWebhook(r, &d.ID, &d.Attempts, &created,
				&d.Event.Seq, &at, &d.Event.Type, &d.Event.Tenant, &d.Event.Subject, &d.Event.Actor, &role, &d.Event.Reason, &before, &after)
			if err != nil {
				return nil, err
			}
			d.Webhook, d.CreatedAt, d.Event.Time, d.Event.Role = h, fromNanos(created), fromNanos(at), quota.Role(role)
			if before != nil {
				d.Event.Before = json.RawMessage(*before)
			}
			if after != nil {
				d.Event.After = json.RawMessage(*after)
			}
			return d, nil
		})
		if err != nil || len(out) == 0 {
			return err
		}
		ids := make([]int64, len(out))
		for i, d := range out {
			ids[i] = d.ID
		}
		_, err = t.Exec(ctx, `UPDATE outbox SET lease_until = $1 WHERE id = ANY($2)`, nanos(now.Add(lease)), ids)
		return err
	})
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: leasing deliveries: %w", err))
	}
	return out, nil
}

// FinishDelivery implements quota.Store. One statement, not retried here:
// when its reply is lost the error says "unavailable" although the record
// may have been made. That is safe for deliveries, which are at least
// once: at worst the delivery is sent again after its lease, or its
// attempt is counted again.
func (s *Store) FinishDelivery(ctx context.Context, id int64, delivered bool, next time.Time, lastError string) error {
	var err error
	if delivered || next.IsZero() {
		_, err = s.pool.Exec(ctx, `DELETE FROM outbox WHERE id = $1`, id)
	} else {
		_, err = s.pool.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt = $1, lease_until = 0, last_error = $2 WHERE id = $3`,
			nanos(next), lastError, id)
	}
	if err != nil {
		return quota.Unavailable(fmt.Errorf("postgres: recording a delivery: %w", err))
	}
	return nil
}
