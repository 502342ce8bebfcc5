// Quota change requests: asking for a new hard quota, and deciding.

package client

import (
	"context"
	"net/url"
)

// CreateRequest asks for a tenant's hard quota of a resource to become a
// value. A resource whose policy is auto is changed at once (the request
// answers approved); otherwise the request is pending until an admin
// decides. Asking again for the same value returns the open request.
func (c *Client) CreateRequest(ctx context.Context, tenant string, req CreateRequestRequest) (*Request, error) {
	return call[Request](ctx, c, "POST", route("/tenants/{tenant id}/requests", tenant), nil, nil, req)
}

// Requests lists a tenant's requests, newest first; status "" for all.
// tenant "" lists the requests of every tenant (operators only).
func (c *Client) Requests(ctx context.Context, tenant, status string) ([]Request, error) {
	to := route("/requests")
	if tenant != "" {
		to = route("/tenants/{tenant id}/requests", tenant)
	}
	var q url.Values
	if status != "" {
		q = url.Values{"status": {status}}
	}
	l, err := call[RequestList](ctx, c, "GET", to, q, nil, nil)
	if err != nil {
		return nil, err
	}
	return l.Requests, nil
}

// Request reads one request with its history.
func (c *Client) Request(ctx context.Context, tenant, id string) (*Request, error) {
	return call[Request](ctx, c, "GET", route("/tenants/{tenant id}/requests/{request id}", tenant, id), nil, nil, nil)
}

// ApproveRequest approves a pending request and applies its value.
func (c *Client) ApproveRequest(ctx context.Context, tenant, id, comment string) (*Request, error) {
	return call[Request](ctx, c, "POST", route("/tenants/{tenant id}/requests/{request id}/approve", tenant, id), nil, nil, DecideRequest{Comment: comment})
}

// DenyRequest denies a pending request.
func (c *Client) DenyRequest(ctx context.Context, tenant, id, comment string) (*Request, error) {
	return call[Request](ctx, c, "POST", route("/tenants/{tenant id}/requests/{request id}/deny", tenant, id), nil, nil, DecideRequest{Comment: comment})
}
