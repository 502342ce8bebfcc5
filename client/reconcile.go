// Reconciling a tenant's consumers with what really exists.

package client

import (
	"context"
	"net/url"
)

// Reconcile makes allot's consumers of inv.Kinds equal to what exists,
// regardless of quotas, and answers what changed.
func (c *Client) Reconcile(ctx context.Context, tenant string, inv Inventory, dryRun bool) (*Reconciliation, error) {
	var q url.Values
	if dryRun {
		q = url.Values{"dry_run": {"true"}}
	}
	return call[Reconciliation](ctx, c, "PUT", route("/tenants/{tenant id}/inventory", tenant), q, nil, inv)
}
