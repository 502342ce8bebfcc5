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
