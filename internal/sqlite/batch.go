package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/allot-dev/allot/internal/quota"
)

// The engine's side of the store. One process owns the database, so the
// committer's memory is exact: a batch's transaction locks nothing and
// reads what is committed from the read pool (the committer overlays what
// it has not committed yet), and Commit writes several batches in one
// IMMEDIATE transaction with one fsync.

// Shared implements quota.Store: one process owns the database.
func (s *Store) Shared() bool { return false }

// LoadTenants implements quota.Store.
func (s *Store) LoadTenants(ctx context.Context, ids []string) ([]*quota.TenantRecord, error) {
	ts, err := loadTenants(ctx, s.reads, s.region, ids)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	usage, err := loadUsage(ctx, s.reads, s.region, ids)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	below, err := loadUsageOf(ctx, s.reads, "subtree_usage", s.region, ids)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	out := make([]*quota.TenantRecord, 0, len(ts))
	for _, t := range sortedTenants(ts) {
		out = append(out, &quota.TenantRecord{Tenant: t, Usage: usage[t.ID], Below: below[t.ID]})
	}
	return out, nil
}

// LoadWebhooks implements quota.Store.
func (s *Store) LoadWebhooks(ctx context.Context) ([]*quota.Webhook, int64, error) {
	hs, err := s.Webhooks(ctx)
	return hs, 0, err
}

// Watch implements quota.Store: no other process writes.
func (s *Store) Watch(context.Context, func([]string)) error { return nil }

// Begin implements quota.Store.
func (s *Store) Begin(context.Context, []string) (quota.Tx, error) { return &batchTx{s: s}, nil }

// Commit implements quota.Store: every batch in one transaction.
func (s *Store) Commit(ctx context.Context, txs []quota.Tx) (int, error) {
	err := s.immediate(ctx, func() error {
		w := &tx{s}
		for _, t := range txs {
			for _, writes := range t.(*batchTx).writes {
				if err := w.apply(ctx, writes); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, classify(err)
	}
	return len(txs), nil
}

// batchTx is one batch's transaction: reads of what is committed, and the
// writes Commit makes.
type batchTx struct {
	s      *Store
	writes []*quota.Writes
}

func (t *batchTx) Versions() (map[string]int64, int64) { return nil, 0 }

func (t *batchTx) Tenants(ctx context.Context, ids []string) ([]*quota.TenantRecord, error) {
	return t.s.LoadTenants(ctx, ids)
}

func (t *batchTx) Consumers(ctx context.Context, keys []quota.ConsumerKey) (map[quota.ConsumerKey]*quota.Consumer, error) {
	out := make(map[quota.ConsumerKey]*quota.Consumer, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.Tenant, k.ID}
	}
	// One statement for the batch: CROSS JOIN makes SQLite walk the key list
	// and probe the primary key for each (a plain JOIN lets it scan the
	// table instead), without a statement's overhead per key.
	cs, err := loadConsumers(ctx, t.s.reads, `SELECT `+prefixed("c.", consumerColumns)+` FROM json_each(?) AS k
		CROSS JOIN consumers AS c ON c.region = ? AND c.tenant = k.value ->> 0 AND c.id = k.value ->> 1`, jsonList(pairs), t.s.region)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	for _, c := range cs {
		out[c.Key()] = c
	}
	return out, nil
}

func (t *batchTx) TenantConsumers(ctx context.Context, tenant string, kinds []string, limit int) ([]*quota.Consumer, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	query, args := `SELECT `+consumerColumns+` FROM consumers WHERE region = ? AND tenant = ? ORDER BY id LIMIT ?`, []any{t.s.region, tenant, limit}
	if kinds != nil {
		query = `SELECT ` + consumerColumns + ` FROM consumers WHERE region = ? AND tenant = ? AND kind IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?`
		args = []any{t.s.region, tenant, jsonList(kinds), limit}
	}
	cs, err := loadConsumers(ctx, t.s.reads, query, args...)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	return cs, nil
}

func (t *batchTx) CountConsumers(ctx context.Context, tenant string) (int64, error) {
	var n int64
	err := t.s.read.QueryRowContext(ctx, `SELECT count(*) FROM consumers WHERE region = ? AND tenant = ?`, t.s.region, tenant).Scan(&n)
	if err != nil {
		return 0, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	return n, nil
}

// Subtree implements quota.Tx.
func (t *batchTx) Subtree(ctx context.Context, root string) (map[string]string, error) {
	out, err := subtree(ctx, t.s.read, t.s.region, root)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	return out, nil
}

// subtree maps each descendant of root to its parent.
func subtree(ctx context.Context, q querier, region, root string) (map[string]string, error) {
	out := map[string]string{}
	err := queryRows(ctx, q, func(r *sql.Rows) error {
		var id, parent string
		if err := r.Scan(&id, &parent); err != nil {
			return err
		}
		out[id] = parent
		return nil
	}, `WITH RECURSIVE below (id, parent, depth) AS (
			SELECT id, parent, 1 FROM tenants WHERE region = ?1 AND parent = ?2
			UNION ALL SELECT t.id, t.parent, b.depth + 1 FROM tenants AS t JOIN below AS b ON t.region = ?1 AND t.parent = b.id WHERE b.depth < 64)
		SELECT id, parent FROM below`, region, root)
	if err != nil {
		return nil, fmt.Errorf("reading the subtree of %s: %w", root, err)
	}
	return out, nil
}

func (t *batchTx) Tokens(ctx context.Context, names []string) (map[string]*quota.Token, error) {
	ts, err := loadTokens(ctx, t.s.reads, `SELECT `+tokenColumns+` FROM tokens
		WHERE region = ? AND name IN (SELECT value FROM json_each(?))`, t.s.region, jsonList(names))
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	out := make(map[string]*quota.Token, len(ts))
	for _, tok := range ts {
		out[tok.Name] = tok
	}
	return out, nil
}

func (t *batchTx) Requests(ctx context.Context, tenants, ids []string) (map[string]*quota.Request, error) {
	rs, err := loadRequests(ctx, t.s.reads, `SELECT `+requestColumns+` FROM requests WHERE region = ? AND
		(id IN (SELECT value FROM json_each(?)) OR (status = 'pending' AND tenant IN (SELECT value FROM json_each(?))))`,
		t.s.region, jsonList(ids), jsonList(tenants))
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("sqlite: %w", err))
	}
	out := make(map[string]*quota.Request, len(rs))
	for _, r := range rs {
		out[r.ID] = r
	}
	return out, nil
}

func (t *batchTx) Apply(w *quota.Writes) { t.writes = append(t.writes, w) }

func (t *batchTx) Rollback() { t.writes = nil }
