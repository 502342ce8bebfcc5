// Quotas near their limit, across tenants.

package client

import (
	"context"
	"net/url"
	"strconv"
)

// NearLimit lists every tenant and resource at or above a utilisation
// (admin and service tokens).
func (c *Client) NearLimit(ctx context.Context, q NearLimitQuery) (*NearLimit, error) {
	v := url.Values{}
	if q.Min != nil {
		v.Set("min", strconv.FormatInt(*q.Min, 10))
	}
	for name, s := range map[string]string{"service": q.Service, "resource": q.Resource, "plan": q.Plan, "sort": q.Sort} {
		if s != "" {
			v.Set(name, s)
		}
	}
	if q.Offset > 0 {
		v.Set("offset", strconv.Itoa(q.Offset))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return call[NearLimit](ctx, c, "GET", route("/near-limit"), v, nil, nil)
}
