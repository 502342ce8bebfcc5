// Webhook subscriptions: reading them, and writing them in a batch.

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/allot-dev/allot/internal/quota"
)

const webhookColumns = `id, url, events, tenant, sealed, created_at`

// scanWebhook scans webhookColumns, then the extra columns that follow
// them into extra.
// It is the same as postgres's: not worth a package both would import.
func scanWebhook(r interface{ Scan(...any) error }, extra ...any) (*quota.Webhook, error) {
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

// writeWebhooks deletes the webhooks of a batch, with what they had
// pending in the outbox, then inserts or updates its new ones.
func (t *tx) writeWebhooks(ctx context.Context, w *quota.Writes) error {
	r := t.s.region
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

func (s *Store) Webhooks(ctx context.Context) ([]*quota.Webhook, error) {
	return loaded(loadWebhooks(ctx, s.reads, s.region))
}

// WebhookHealth implements quota.Store: each webhook's latest attempt, and
// what waits for it in the outbox. Its next attempt is the earliest of the
// first deliveries of its lines (one per tenant): those behind them wait
// their turn, whatever their own times.
func (s *Store) WebhookHealth(ctx context.Context) ([]*quota.WebhookHealth, error) {
	var out []*quota.WebhookHealth
	err := queryRows(ctx, s.reads, func(r *sql.Rows) error {
		h := &quota.WebhookHealth{}
		var last, next int64
		if err := r.Scan(&h.Webhook, &last, &h.LastStatus, &h.LastError, &h.Pending, &next); err != nil {
			return err
		}
		if last != 0 {
			h.LastAttempt = fromNanos(last)
		}
		if h.Pending > 0 {
			h.NextAttempt = fromNanos(next)
		}
		out = append(out, h)
		return nil
	}, `SELECT w.id, w.last_attempt_at, w.last_status, w.last_error, coalesce(p.n, 0), coalesce(p.next, 0)
		FROM webhooks w LEFT JOIN (
			SELECT l.webhook, sum(l.n) AS n, min(max(h.next_attempt, h.created_at)) AS next
			FROM (SELECT webhook, count(*) AS n, min(id) AS head FROM outbox WHERE region = ? GROUP BY webhook, tenant) l
			JOIN outbox h ON h.id = l.head
			GROUP BY l.webhook
		) p ON p.webhook = w.id
		WHERE w.region = ? ORDER BY w.id`, s.region, s.region)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: reading webhook health: %w", err))
	}
	return out, nil
}
