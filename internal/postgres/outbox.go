// The outbox: webhook deliveries queued with their events, leased by the
// delivery workers of every process.

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/internal/quota"
)

// lockOutbox serializes leasing deliveries across processes.
const lockOutbox int32 = lockLedger + 1

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
			ev := eventRow{e: d.Event}
			var created int64
			h, err := scanWebhook(r, append([]any{&d.ID, &d.Attempts, &created}, ev.targets()...)...)
			if err != nil {
				return nil, err
			}
			ev.done()
			d.Webhook, d.CreatedAt = h, fromNanos(created)
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
// attempt is counted again. The webhook's latest outcome is written only
// if no later attempt (of another process) is recorded.
func (s *Store) FinishDelivery(ctx context.Context, a quota.Attempt) error {
	args := []any{a.Delivery, s.region, a.Webhook, nanos(a.At), a.Error, a.Status}
	outbox := `DELETE FROM outbox WHERE id = $1`
	if !a.Delivered && !a.Next.IsZero() {
		outbox = `UPDATE outbox SET attempts = attempts + 1, next_attempt = $7, lease_until = 0, last_error = $5 WHERE id = $1`
		args = append(args, nanos(a.Next))
	}
	_, err := s.pool.Exec(ctx, `WITH done AS (`+outbox+`)
		UPDATE webhooks SET last_attempt_at = $4, last_status = $6, last_error = $5
		WHERE region = $2 AND id = $3 AND last_attempt_at <= $4`, args...)
	if err != nil {
		return quota.Unavailable(fmt.Errorf("postgres: recording a delivery: %w", err))
	}
	return nil
}
