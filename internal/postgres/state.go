package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/internal/quota"
)

// What each process's engine keeps in memory, and how it learns what other
// processes changed: tenants carry versions, the webhooks' version is in
// meta, and each commit that changes tenants notifies their ids.

// LoadTenants implements quota.Store. Its reads share one snapshot: read
// one by one, a commit of another process between the usage and the
// version would give memory the old usage under the new version, which
// the next batch's version check would then take for fresh.
func (s *Store) LoadTenants(ctx context.Context, ids []string) ([]*quota.TenantRecord, error) {
	// It reads only, so it ends with a rollback: a COMMIT is what a
	// change sends, once.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rs, err := loadRecords(ctx, tx, s.region, ids)
	if err != nil {
		return nil, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	return rs, nil
}

// loadRecords reads tenants (nil: all) with their usage and versions.
func loadRecords(ctx context.Context, q querier, region string, ids []string) ([]*quota.TenantRecord, error) {
	ts, err := loadTenants(ctx, q, region, ids)
	if err != nil {
		return nil, err
	}
	usage, err := loadUsage(ctx, q, region, ids)
	if err != nil {
		return nil, err
	}
	below, err := loadUsageOf(ctx, q, "subtree_usage", region, ids)
	if err != nil {
		return nil, err
	}
	query, args := `SELECT id, version FROM tenants WHERE region = $1`, []any{region}
	if ids != nil {
		query, args = query+` AND id = ANY($2)`, append(args, ids)
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("reading versions: %w", err)
	}
	versions := map[string]int64{}
	defer rows.Close()
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("reading versions: %w", err)
		}
		versions[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading versions: %w", err)
	}
	out := make([]*quota.TenantRecord, 0, len(ts))
	for _, id := range slices.Sorted(maps.Keys(ts)) {
		out = append(out, &quota.TenantRecord{Tenant: ts[id], Usage: usage[id], Below: below[id], Version: versions[id]})
	}
	return out, nil
}

// LoadWebhooks implements quota.Store.
func (s *Store) LoadWebhooks(ctx context.Context) ([]*quota.Webhook, int64, error) {
	var version int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT value::bigint FROM meta WHERE region = $1 AND key = 'webhooks_version'), 0)`, s.region).Scan(&version)
	if err != nil {
		return nil, 0, quota.Unavailable(fmt.Errorf("postgres: %w", err))
	}
	hs, err := s.Webhooks(ctx)
	return hs, version, err
}

// Watch implements quota.Store: it listens for the tenants each commit
// changes. After (re)connecting it reports nil (all), since notifications
// sent meanwhile are lost.
func (s *Store) Watch(ctx context.Context, changed func(tenants []string)) error {
	conn, err := pgx.ConnectConfig(ctx, s.connCfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	changed(nil)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload == "*" {
			changed(nil)
			continue
		}
		changed(strings.Split(n.Payload, ","))
	}
}

// channelName is the notification channel of a schema and region.
func channelName(key int32) string {
	return "allot_tenants_" + strconv.FormatUint(uint64(uint32(key)), 16)
}
