package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/allot-dev/allot/internal/quota"
)

// tx is one IMMEDIATE transaction on the writer connection.
type tx struct{ s *Store }

// LockTenants implements quota.Tx. The IMMEDIATE transaction already holds
// the database's write lock, which is the lock on every tenant at once.
func (t *tx) LockTenants(ctx context.Context, ids []string) (map[string]*quota.Tenant, error) {
	return loadTenants(ctx, t.s.conn, t.s.region, ids)
}

func (t *tx) Usage(ctx context.Context, tenants []string) (map[string]map[string]int64, error) {
	return loadUsage(ctx, t.s.conn, t.s.region, tenants)
}

func (t *tx) Consumers(ctx context.Context, keys []quota.ConsumerKey) (map[quota.ConsumerKey]*quota.Consumer, error) {
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.Tenant, k.ID}
	}
	// json_each drives the join, so each key is one primary-key lookup.
	cs, err := loadConsumers(ctx, t.s.conn, `SELECT c.tenant, c.id, c.kind, c.state, c.attributes, c.generation, c.footprint, c.expires_at, c.created_at, c.updated_at
		FROM json_each(?) AS k JOIN consumers AS c
		ON c.region = ? AND c.tenant = k.value ->> 0 AND c.id = k.value ->> 1`, jsonList(pairs), t.s.region)
	if err != nil {
		return nil, err
	}
	out := make(map[quota.ConsumerKey]*quota.Consumer, len(cs))
	for _, c := range cs {
		out[c.Key()] = c
	}
	return out, nil
}

func (t *tx) CountConsumers(ctx context.Context, tenant string) (int64, error) {
	var n int64
	err := t.s.conn.QueryRowContext(ctx, `SELECT count(*) FROM consumers WHERE region = ? AND tenant = ?`, t.s.region, tenant).Scan(&n)
	return n, err
}

func (t *tx) Tokens(ctx context.Context, names []string) (map[string]*quota.Token, error) {
	ts, err := loadTokens(ctx, t.s.conn, `SELECT `+tokenColumns+` FROM tokens
		WHERE region = ? AND name IN (SELECT value FROM json_each(?))`, t.s.region, jsonList(names))
	if err != nil {
		return nil, err
	}
	out := make(map[string]*quota.Token, len(ts))
	for _, tok := range ts {
		out[tok.Name] = tok
	}
	return out, nil
}

// exec runs a prepared statement of the writer connection.
func (t *tx) exec(ctx context.Context, query string, args ...any) error {
	st, err := t.s.stmt(ctx, query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

// Apply implements quota.Tx.
func (t *tx) Apply(ctx context.Context, w *quota.Writes) error {
	r := t.s.region
	for _, id := range w.DeleteTenants {
		for _, table := range []string{"quota_overrides", "limit_overrides", "usage", "tokens"} {
			if err := t.exec(ctx, `DELETE FROM `+table+` WHERE region = ? AND tenant = ?`, r, id); err != nil {
				return fmt.Errorf("deleting tenant %s: %w", id, err)
			}
		}
		if err := t.exec(ctx, `DELETE FROM tenants WHERE region = ? AND id = ?`, r, id); err != nil {
			return fmt.Errorf("deleting tenant %s: %w", id, err)
		}
	}
	for _, tn := range w.CreateTenants {
		err := t.exec(ctx, `INSERT INTO tenants (region, id, name, plan, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (region, id) DO UPDATE SET name = excluded.name, plan = excluded.plan`,
			r, tn.ID, tn.Name, tn.Plan, nanos(tn.CreatedAt))
		if err != nil {
			return fmt.Errorf("writing tenant %s: %w", tn.ID, err)
		}
	}
	for _, q := range w.Quotas {
		var min, max *int64
		if q.Requestable != nil {
			min, max = &q.Requestable.Min, &q.Requestable.Max
		}
		err := t.exec(ctx, `INSERT INTO quota_overrides (region, tenant, resource, hard, req_min, req_max) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (region, tenant, resource) DO UPDATE SET hard = excluded.hard, req_min = excluded.req_min, req_max = excluded.req_max`,
			r, q.Tenant, q.Resource, q.Hard, min, max)
		if err != nil {
			return fmt.Errorf("writing quota override: %w", err)
		}
	}
	for _, l := range w.Limits {
		err := t.exec(ctx, `INSERT INTO limit_overrides (region, tenant, key, min, max) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (region, tenant, key) DO UPDATE SET min = excluded.min, max = excluded.max`,
			r, l.Tenant, l.Key, l.Min, l.Max)
		if err != nil {
			return fmt.Errorf("writing limit override: %w", err)
		}
	}
	for _, k := range w.DeleteConsumers {
		if err := t.exec(ctx, `DELETE FROM consumers WHERE region = ? AND tenant = ? AND id = ?`, r, k.Tenant, k.ID); err != nil {
			return fmt.Errorf("deleting consumer: %w", err)
		}
	}
	for _, c := range w.PutConsumers {
		attrs, err := json.Marshal(c.Attributes)
		if err != nil {
			return err
		}
		fp, err := json.Marshal(c.Footprint)
		if err != nil {
			return err
		}
		err = t.exec(ctx, `INSERT INTO consumers (region, tenant, id, kind, state, attributes, generation, footprint, expires_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (region, tenant, id) DO UPDATE SET kind = excluded.kind, state = excluded.state,
				attributes = excluded.attributes, generation = excluded.generation, footprint = excluded.footprint,
				expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
			r, c.Tenant, c.ID, c.Kind, c.State, string(attrs), c.Generation, string(fp),
			nullNanos(c.ExpiresAt), nanos(c.CreatedAt), nanos(c.UpdatedAt))
		if err != nil {
			return fmt.Errorf("writing consumer: %w", err)
		}
	}
	for _, u := range w.Usage {
		err := t.exec(ctx, `INSERT INTO usage (region, tenant, resource, used) VALUES (?, ?, ?, ?)
			ON CONFLICT (region, tenant, resource) DO UPDATE SET used = excluded.used`, r, u.Tenant, u.Resource, u.Used)
		if err != nil {
			return fmt.Errorf("writing usage: %w", err)
		}
	}
	for _, tok := range w.PutTokens {
		err := t.exec(ctx, `INSERT INTO tokens (region, name, role, tenant, hash, sealed, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (region, name) DO UPDATE SET role = excluded.role, tenant = excluded.tenant, hash = excluded.hash,
				sealed = excluded.sealed, created_at = excluded.created_at, revoked_at = excluded.revoked_at`,
			r, tok.Name, string(tok.Role), tok.Tenant, tok.Hash, tok.Sealed, nanos(tok.CreatedAt), nullNanos(tok.RevokedAt))
		if err != nil {
			return fmt.Errorf("writing token: %w", err)
		}
	}
	if len(w.Events) > 0 {
		st, err := t.s.stmt(ctx, `INSERT INTO events (region, time, type, tenant, subject, actor, role, reason, before, after)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		for _, e := range w.Events {
			res, err := st.ExecContext(ctx, r, nanos(e.Time), e.Type, e.Tenant, e.Subject, e.Actor, string(e.Role), e.Reason,
				nullJSON(e.Before), nullJSON(e.After))
			if err != nil {
				return fmt.Errorf("writing event: %w", err)
			}
			if e.Seq, err = res.LastInsertId(); err != nil {
				return err
			}
		}
	}
	return nil
}

func nullJSON(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return string(b)
}
