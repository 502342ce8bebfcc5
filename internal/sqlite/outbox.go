// The outbox: webhook deliveries queued with their events, leased by the
// delivery workers of every process on the file.

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

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

// LeaseDeliveries implements quota.Store. The IMMEDIATE transaction makes
// choosing and leasing one step for every process on the file.
func (s *Store) LeaseDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*quota.Delivery, error) {
	var out []*quota.Delivery
	err := s.immediate(ctx, func() error {
		out = nil
		err := queryRows(ctx, s.conn, func(r *sql.Rows) error {
			d := &quota.Delivery{Event: &quota.Event{}}
			ev := eventRow{e: d.Event}
			var created int64
			h, err := scanWebhook(r, append([]any{&d.ID, &d.Attempts, &created}, ev.targets()...)...)
			if err != nil {
				return err
			}
			ev.done()
			d.Webhook, d.CreatedAt = h, fromNanos(created)
			out = append(out, d)
			return nil
		}, `SELECT w.id, w.url, w.events, w.tenant, w.sealed, w.created_at, o.id, o.attempts, o.created_at,
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
func (s *Store) FinishDelivery(ctx context.Context, a quota.Attempt) error {
	err := s.immediate(ctx, func() error {
		var err error
		if a.Delivered || a.Next.IsZero() {
			_, err = s.conn.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, a.Delivery)
		} else {
			_, err = s.conn.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, lease_until = 0, last_error = ? WHERE id = ?`,
				nanos(a.Next), a.Error, a.Delivery)
		}
		if err != nil {
			return err
		}
		_, err = s.conn.ExecContext(ctx, `UPDATE webhooks SET last_attempt_at = ?, last_status = ?, last_error = ?
			WHERE region = ? AND id = ? AND last_attempt_at <= ?`, nanos(a.At), a.Status, a.Error, s.region, a.Webhook, nanos(a.At))
		return err
	})
	if err != nil {
		return quota.Unavailable(fmt.Errorf("sqlite: recording a delivery: %w", err))
	}
	return nil
}
