package postgres

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/allot-dev/allot/internal/quota"
)

// tx is the transaction of one batch: it holds its tenants' locks from
// Begin until Commit or Rollback.
type tx struct {
	s    *Store
	conn *pgxpool.Conn
	t    pgx.Tx
	// versions are the batch's tenants' versions and the webhooks' as read
	// under the locks.
	versions map[string]int64
	webhooks int64
	writes   []*quota.Writes
	// xid is the transaction's ID once it writes: what Commit looks up
	// when the reply to its COMMIT is lost.
	xid string
	// mark is the token of the row it leaves in commit_marks, which
	// proves that it committed when its ID alone cannot (commit.go).
	mark string
	// pid is the server process that runs it.
	pid uint32
}

// lock takes the transaction-scoped advisory locks of names in one class,
// in ascending key order; every transaction takes classes in the same
// order, so none waits in a cycle.
func (t *tx) lock(ctx context.Context, class int32, names []string) error {
	keys := make([]int32, len(names))
	for i, n := range names {
		keys[i] = t.s.lockKey(n)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	// The subquery's ORDER BY is kept: locks are taken row by row, in order.
	_, err := t.t.Exec(ctx, `SELECT pg_advisory_xact_lock($1, k) FROM (SELECT k FROM unnest($2::int4[]) AS k ORDER BY k) AS ordered`, class, keys)
	return err
}

// Versions implements quota.Tx.
func (t *tx) Versions() (map[string]int64, int64) { return t.versions, t.webhooks }

// Tenants implements quota.Tx.
func (t *tx) Tenants(ctx context.Context, ids []string) ([]*quota.TenantRecord, error) {
	return loadRecords(ctx, t.t, t.s.region, ids)
}

// Apply implements quota.Tx: Commit writes it.
func (t *tx) Apply(w *quota.Writes) { t.writes = append(t.writes, w) }

// Rollback implements quota.Tx.
func (t *tx) Rollback() {
	if t.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.t.Rollback(ctx)
	t.conn.Release()
	t.conn = nil
}

func (t *tx) Consumers(ctx context.Context, keys []quota.ConsumerKey) (map[quota.ConsumerKey]*quota.Consumer, error) {
	tenants, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		tenants[i], ids[i] = k.Tenant, k.ID
	}
	cs, err := loadConsumers(ctx, t.t, `SELECT `+consumerColumns+` FROM consumers
		WHERE region = $1 AND (tenant, id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`, t.s.region, tenants, ids)
	return keyed(cs, err, (*quota.Consumer).Key)
}

func (t *tx) CountConsumers(ctx context.Context, tenant string) (int64, error) {
	var n int64
	err := t.t.QueryRow(ctx, `SELECT count(*) FROM consumers WHERE region = $1 AND tenant = $2`, t.s.region, tenant).Scan(&n)
	return n, err
}

// TenantConsumers implements quota.Tx; reconciling compares them with an
// inventory.
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

// Subtree implements quota.Tx.
func (t *tx) Subtree(ctx context.Context, root string) (map[string]string, error) {
	rows, err := t.t.Query(ctx, `WITH RECURSIVE below (id, parent, depth) AS (
			SELECT id, parent, 1 FROM tenants WHERE region = $1 AND parent = $2
			UNION ALL SELECT c.id, c.parent, b.depth + 1 FROM tenants AS c JOIN below AS b ON c.region = $1 AND c.parent = b.id WHERE b.depth < 64)
		SELECT id, parent FROM below`, t.s.region, root)
	if err != nil {
		return nil, fmt.Errorf("reading the subtree of %s: %w", root, err)
	}
	out := map[string]string{}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var id, parent string
		if err := r.Scan(&id, &parent); err != nil {
			return struct{}{}, err
		}
		out[id] = parent
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the subtree of %s: %w", root, err)
	}
	return out, nil
}

// Tokens implements quota.Tx; it locks the names, so two processes
// creating one token name serialize.
func (t *tx) Tokens(ctx context.Context, names []string) (map[string]*quota.Token, error) {
	if err := t.lock(ctx, lockToken, names); err != nil {
		return nil, fmt.Errorf("locking tokens: %w", err)
	}
	ts, err := loadTokens(ctx, t.t, `SELECT `+tokenColumns+` FROM tokens WHERE region = $1 AND name = ANY($2)`, t.s.region, names)
	return keyed(ts, err, func(tok *quota.Token) string { return tok.Name })
}

// write sends one batch's writes. They go in one round trip; the tables a
// batch writes most (consumers, usage, events) take one statement each.
func (t *tx) write(ctx context.Context, w *quota.Writes) error {
	r := t.s.region
	b := &pgx.Batch{}
	// First, in the same round trip as the writes: the transaction's ID,
	// which assigns it one now if no write has yet.
	b.Queue(`SELECT pg_current_xact_id()::text`).QueryRow(func(row pgx.Row) error { return row.Scan(&t.xid) })
	if t.mark == "" {
		t.mark = rand.Text()
		b.Queue(`INSERT INTO commit_marks (token, at) VALUES ($1, $2)`, t.mark, time.Now().UnixNano())
	}
	for _, id := range w.DeleteTenants {
		b.Queue(`DELETE FROM outbox WHERE region = $1 AND webhook IN (SELECT id FROM webhooks WHERE region = $1 AND tenant = $2)`, r, id)
		for _, table := range []string{"quota_overrides", "limit_overrides", "usage", "subtree_usage", "tokens", "requests", "webhooks", "snapshots"} {
			b.Queue(`DELETE FROM `+table+` WHERE region = $1 AND tenant = $2`, r, id)
		}
		b.Queue(`DELETE FROM tenants WHERE region = $1 AND id = $2`, r, id)
	}
	for _, tn := range w.CreateTenants {
		var parent *string
		if tn.Parent != "" {
			parent = &tn.Parent
		}
		b.Queue(`INSERT INTO tenants (region, id, name, plan, created_at, thresholds, parent) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
			ON CONFLICT (region, id) DO UPDATE SET name = excluded.name, plan = excluded.plan, thresholds = excluded.thresholds, parent = excluded.parent`,
			r, tn.ID, tn.Name, tn.Plan, nanos(tn.CreatedAt), nullList(tn.Thresholds), parent)
	}
	for _, q := range w.Quotas {
		var min, max *int64
		if q.Requestable != nil {
			min, max = &q.Requestable.Min, &q.Requestable.Max
		}
		b.Queue(`INSERT INTO quota_overrides (region, tenant, resource, hard, req_min, req_max) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (region, tenant, resource) DO UPDATE SET hard = excluded.hard, req_min = excluded.req_min, req_max = excluded.req_max`,
			r, q.Tenant, q.Resource, q.Hard, min, max)
	}
	for _, l := range w.Limits {
		b.Queue(`INSERT INTO limit_overrides (region, tenant, key, min, max) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (region, tenant, key) DO UPDATE SET min = excluded.min, max = excluded.max`,
			r, l.Tenant, l.Key, l.Min, l.Max)
	}
	if n := len(w.DeleteConsumers); n > 0 {
		tenants, ids := make([]string, n), make([]string, n)
		for i, k := range w.DeleteConsumers {
			tenants[i], ids[i] = k.Tenant, k.ID
		}
		b.Queue(`DELETE FROM consumers WHERE region = $1 AND (tenant, id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`, r, tenants, ids)
	}
	if n := len(w.PutConsumers); n > 0 {
		var c consumerColumnsOf
		for _, x := range w.PutConsumers {
			if err := c.add(x); err != nil {
				return err
			}
		}
		b.Queue(`INSERT INTO consumers (region, tenant, id, kind, state, attributes, generation, footprint, expires_at, created_at, updated_at)
			SELECT $1, tenant, id, kind, state, attributes::jsonb, generation, footprint::jsonb, expires_at, created_at, updated_at
			FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[], $9::int8[], $10::int8[], $11::int8[])
				AS u (tenant, id, kind, state, attributes, generation, footprint, expires_at, created_at, updated_at)
			ON CONFLICT (region, tenant, id) DO UPDATE SET kind = excluded.kind, state = excluded.state,
				attributes = excluded.attributes, generation = excluded.generation, footprint = excluded.footprint,
				expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
			r, c.tenant, c.id, c.kind, c.state, c.attributes, c.generation, c.footprint, c.expires, c.created, c.updated)
	}
	queueUsage(b, "usage", r, w.Usage)
	queueUsage(b, "subtree_usage", r, w.Below)
	for _, tok := range w.PutTokens {
		b.Queue(`INSERT INTO tokens (region, name, role, tenant, hash, sealed, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (region, name) DO UPDATE SET role = excluded.role, tenant = excluded.tenant, hash = excluded.hash,
				sealed = excluded.sealed, created_at = excluded.created_at, revoked_at = excluded.revoked_at`,
			r, tok.Name, string(tok.Role), tok.Tenant, tok.Hash, tok.Sealed, nanos(tok.CreatedAt), nullNanos(tok.RevokedAt))
	}
	t.queueRequests(b, w.PutRequests)
	t.queueWebhooks(b, w)
	if n := len(w.Versions); n > 0 {
		ids, versions := make([]string, 0, n), make([]int64, 0, n)
		for id, v := range w.Versions {
			ids, versions = append(ids, id), append(versions, v)
		}
		b.Queue(`UPDATE tenants SET version = u.v FROM unnest($2::text[], $3::int8[]) AS u (id, v)
			WHERE tenants.region = $1 AND tenants.id = u.id`, r, ids, versions)
		// Other processes' readers learn which tenants changed when this
		// commits.
		b.Queue(`SELECT pg_notify($1, $2)`, t.s.channel, notifyPayload(ids))
	}
	if w.WebhooksVersion != 0 {
		b.Queue(`INSERT INTO meta (region, key, value) VALUES ($1, 'webhooks_version', $2)
			ON CONFLICT (region, key) DO UPDATE SET value = excluded.value`, r, strconv.FormatInt(w.WebhooksVersion, 10))
	}
	if err := t.t.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if err := t.appendEvents(ctx, w.Events); err != nil {
		return err
	}
	var created []string
	var createdSeqs []int64
	for _, e := range w.Events {
		if e.Type == quota.EventTenantCreate {
			created, createdSeqs = append(created, e.Tenant), append(createdSeqs, e.Seq)
		}
	}
	if len(created) > 0 {
		if _, err := t.t.Exec(ctx, `UPDATE tenants SET created_seq = u.seq FROM unnest($2::text[], $3::int8[]) AS u (id, seq)
			WHERE tenants.region = $1 AND tenants.id = u.id`, r, created, createdSeqs); err != nil {
			return fmt.Errorf("writing tenants' creation: %w", err)
		}
	}
	return t.queueDeliveries(ctx, w)
}

// consumerColumnsOf holds consumers column by column, for unnest.
type consumerColumnsOf struct {
	tenant, id, kind, state, attributes, footprint []string
	generation, created, updated                   []int64
	expires                                        []*int64
}

func (c *consumerColumnsOf) add(x *quota.Consumer) error {
	attrs, err := json.Marshal(x.Attributes)
	if err != nil {
		return err
	}
	fp, err := json.Marshal(x.Footprint)
	if err != nil {
		return err
	}
	var exp *int64
	if x.ExpiresAt != nil {
		n := nanos(*x.ExpiresAt)
		exp = &n
	}
	c.tenant, c.id, c.kind, c.state = append(c.tenant, x.Tenant), append(c.id, x.ID), append(c.kind, x.Kind), append(c.state, x.State)
	c.attributes, c.footprint = append(c.attributes, string(attrs)), append(c.footprint, string(fp))
	c.generation, c.expires = append(c.generation, x.Generation), append(c.expires, exp)
	c.created, c.updated = append(c.created, nanos(x.CreatedAt)), append(c.updated, nanos(x.UpdatedAt))
	return nil
}

// appendEvents inserts the events in one statement. It takes no lock:
// the transaction's ID was taken first (write), which is what lets readers
// find how far the ledger is final (final.go).
func (t *tx) appendEvents(ctx context.Context, events []*quota.Event) error {
	if len(events) == 0 {
		return nil
	}
	n := len(events)
	times := make([]int64, n)
	types, tenants, subjects, actors, roles, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	before, after := make([]*string, n), make([]*string, n)
	for i, e := range events {
		times[i], types[i], tenants[i], subjects[i] = nanos(e.Time), string(e.Type), e.Tenant, e.Subject
		actors[i], roles[i], reasons[i] = e.Actor, string(e.Role), e.Reason
		before[i], after[i] = nullJSON(e.Before), nullJSON(e.After)
	}
	// Rows are inserted in ordinality order, each taking the next seq, so
	// the returned numbers sorted are the events' numbers in order.
	rows, err := t.t.Query(ctx, `INSERT INTO events (region, time, type, tenant, subject, actor, role, reason, before, after)
		SELECT $1, time, type, tenant, subject, actor, role, reason, before::json, after::json
		FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
			WITH ORDINALITY AS u (time, type, tenant, subject, actor, role, reason, before, after, n)
		ORDER BY n
		RETURNING seq`, t.s.region, times, types, tenants, subjects, actors, roles, reasons, before, after)
	if err != nil {
		return fmt.Errorf("writing events: %w", err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("writing events: %w", err)
	}
	if len(seqs) != n {
		return fmt.Errorf("writing events: %d sequence numbers for %d events", len(seqs), n)
	}
	slices.Sort(seqs)
	for i, e := range events {
		e.Seq = seqs[i]
	}
	return nil
}

func nullJSON(b json.RawMessage) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

// notifyPayload names changed tenants within NOTIFY's limit; "*" when they
// do not fit: every tenant is then read again.
func notifyPayload(ids []string) string {
	p := strings.Join(ids, ",")
	if len(p) > 7000 {
		return "*"
	}
	return p
}

// nullList stores a list as JSON, nil as NULL.
func nullList(v []int64) *string {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	s := string(b)
	return &s
}

// keyed maps the rows a transaction loaded by their key. The other store
// has the same few lines: not worth a package both would import.
func keyed[K comparable, T any](rows []T, err error, key func(T) K) (map[K]T, error) {
	if err != nil {
		return nil, err
	}
	out := make(map[K]T, len(rows))
	for _, r := range rows {
		out[key(r)] = r
	}
	return out, nil
}

// queueUsage upserts usage rows into table: usage (a tenant's own) or
// subtree_usage (what its descendants use), which have one shape.
func queueUsage(b *pgx.Batch, table, region string, usage []quota.UsageRow) {
	n := len(usage)
	if n == 0 {
		return
	}
	tenants, resources, used := make([]string, n), make([]string, n), make([]int64, n)
	for i, u := range usage {
		tenants[i], resources[i], used[i] = u.Tenant, u.Resource, u.Used
	}
	b.Queue(`INSERT INTO `+table+` (region, tenant, resource, used)
		SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int8[])
		ON CONFLICT (region, tenant, resource) DO UPDATE SET used = excluded.used`, region, tenants, resources, used)
}
