// Webhook subscriptions: reading them, and writing them in a batch.

package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/internal/quota"
)

const webhookColumns = `id, url, events::text, tenant, sealed, created_at`

// scanWebhook scans webhookColumns, then the extra columns that follow
// them into extra.
// It is the same as sqlite's: not worth a package both would import.
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

// queueWebhooks adds to b the deletes of a batch's webhooks, with what
// they had pending in the outbox, then the writes of its new ones.
func (t *tx) queueWebhooks(b *pgx.Batch, w *quota.Writes) {
	r := t.s.region
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

func (s *Store) Webhooks(ctx context.Context) ([]*quota.Webhook, error) {
	return loaded(loadWebhooks(ctx, s.pool, s.region))
}

// WebhookHealth implements quota.Store: each webhook's latest attempt, and
// what waits for it in the outbox. Its next attempt is the earliest of the
// first deliveries of its lines (one per tenant): those behind them wait
// their turn, whatever their own times.
func (s *Store) WebhookHealth(ctx context.Context) ([]*quota.WebhookHealth, error) {
	rows, err := s.pool.Query(ctx, `SELECT w.id, w.last_attempt_at, w.last_status, w.last_error, coalesce(p.n, 0), coalesce(p.next, 0)
		FROM webhooks w LEFT JOIN (
			SELECT l.webhook, sum(l.n)::bigint AS n, min(greatest(h.next_attempt, h.created_at)) AS next
			FROM (SELECT webhook, count(*) AS n, min(id) AS head FROM outbox WHERE region = $1 GROUP BY webhook, tenant) l
			JOIN outbox h ON h.id = l.head
			GROUP BY l.webhook
		) p ON p.webhook = w.id
		WHERE w.region = $1 ORDER BY w.id COLLATE "C"`, s.region)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: reading webhook health: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*quota.WebhookHealth, error) {
		h := &quota.WebhookHealth{}
		var last, next int64
		if err := r.Scan(&h.Webhook, &last, &h.LastStatus, &h.LastError, &h.Pending, &next); err != nil {
			return nil, err
		}
		if last != 0 {
			h.LastAttempt = fromNanos(last)
		}
		if h.Pending > 0 {
			h.NextAttempt = fromNanos(next)
		}
		return h, nil
	})
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: reading webhook health: %w", err))
	}
	return out, nil
}
