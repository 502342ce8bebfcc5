// A tenant's warning thresholds.

package client

import "context"

// Thresholds reads a tenant's effective warning thresholds.
func (c *Client) Thresholds(ctx context.Context, tenant string) ([]int64, error) {
	t, err := call[Thresholds](ctx, c, "GET", route("/tenants/{tenant id}/thresholds", tenant), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return t.Thresholds, nil
}

// SetThresholds sets a tenant's warning thresholds; nil returns it to its
// plan's.
func (c *Client) SetThresholds(ctx context.Context, tenant string, thresholds []int64) ([]int64, error) {
	t, err := call[Thresholds](ctx, c, "PUT", route("/tenants/{tenant id}/thresholds", tenant), nil, nil, Thresholds{Thresholds: thresholds})
	if err != nil {
		return nil, err
	}
	return t.Thresholds, nil
}
