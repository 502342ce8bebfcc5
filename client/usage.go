// Usage reports: utilisation across tenants, tenants over quota, usage over time.

package client

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// Utilisation lists tenants by their highest utilisation, those over a hard
// quota first; query filters by id or name (case-insensitive), limit <= 0
// for the server's default.
func (c *Client) Utilisation(ctx context.Context, query string, limit int) (*Utilisation, error) {
	q := url.Values{}
	if query != "" {
		q.Set("q", query)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return call[Utilisation](ctx, c, "GET", route("/utilisation"), q, nil, nil)
}

// OverQuota lists the tenants whose usage exceeds a hard quota.
func (c *Client) OverQuota(ctx context.Context) ([]OverQuotaTenant, error) {
	l, err := call[OverQuotaList](ctx, c, "GET", route("/overquota"), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return l.Tenants, nil
}

// UsageAt answers a tenant's usage and hard quotas as they were at a moment.
func (c *Client) UsageAt(ctx context.Context, tenant string, at time.Time) (*UsageAt, error) {
	q := url.Values{"at": {at.UTC().Format(time.RFC3339Nano)}}
	return call[UsageAt](ctx, c, "GET", route("/tenants/{tenant id}/usage", tenant), q, nil, nil)
}

// UsageHistory answers a tenant's usage and hard quotas at points moments
// evenly spaced from from to to (both included), from one pass over the
// ledger.
func (c *Client) UsageHistory(ctx context.Context, tenant string, from, to time.Time, points int) (*UsageHistory, error) {
	q := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}, "points": {strconv.Itoa(points)}}
	return call[UsageHistory](ctx, c, "GET", route("/tenants/{tenant id}/usage/history", tenant), q, nil, nil)
}
