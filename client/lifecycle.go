package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
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

// Reconcile makes allot's consumers of inv.Kinds equal to what exists,
// regardless of quotas, and answers what changed.
func (c *Client) Reconcile(ctx context.Context, tenant string, inv Inventory, dryRun bool) (*Reconciliation, error) {
	var q url.Values
	if dryRun {
		q = url.Values{"dry_run": {"true"}}
	}
	return call[Reconciliation](ctx, c, "PUT", route("/tenants/{tenant id}/inventory", tenant), q, nil, inv)
}

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

// CreateWebhook subscribes a URL to events.
func (c *Client) CreateWebhook(ctx context.Context, req CreateWebhookRequest) (*Webhook, error) {
	return call[Webhook](ctx, c, "POST", route("/webhooks"), nil, nil, req)
}

// Webhooks lists the subscriptions.
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	l, err := call[WebhookList](ctx, c, "GET", route("/webhooks"), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return l.Webhooks, nil
}

// DeleteWebhook removes a subscription and its pending deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", route("/webhooks/{webhook id}", id), nil, nil, nil, nil)
}

// StreamEvents follows the ledger from after on (tenant "" for all the
// caller may see), calling fn for each event in order. When the connection
// drops it reconnects with Last-Event-ID, so fn sees every event exactly
// once. It returns when ctx ends, fn fails, or the server refuses.
// WithTimeout does not apply to the stream.
func (c *Client) StreamEvents(ctx context.Context, tenant string, after int64, fn func(Event) error) error {
	for {
		err := c.streamOnce(ctx, tenant, &after, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, refused := err.(*Error); refused || err != nil && !isStreamBreak(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// streamBreak marks a stream that ended for network reasons: reconnect.
type streamBreak struct{ err error }

func (e streamBreak) Error() string { return "allot: the event stream broke: " + e.err.Error() }
func (e streamBreak) Unwrap() error { return e.err }

func isStreamBreak(err error) bool { _, ok := err.(streamBreak); return ok }

func (c *Client) streamOnce(ctx context.Context, tenant string, after *int64, fn func(Event) error) error {
	q, err := eventsQuery(tenant)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+route("/events/stream").path+"?"+q.Encode(), nil)
	if err != nil {
		return fmt.Errorf("allot: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(*after, 10))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return streamBreak{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Problem) != nil || e.Problem.Code == "" {
			e.Problem = Problem{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Detail: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, snippet(data))}
		}
		return e
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				var e Event
				if err := json.Unmarshal([]byte(data), &e); err != nil {
					return fmt.Errorf("allot: an event of the stream does not decode: %w", err)
				}
				if e.Seq > *after { // never twice, whatever the server sends
					if err := fn(e); err != nil {
						return err
					}
					*after = e.Seq
				}
			}
			data = ""
		case strings.HasPrefix(line, "data: "):
			data += line[6:]
		}
	}
	if err := sc.Err(); err != nil {
		return streamBreak{err}
	}
	return streamBreak{io.ErrUnexpectedEOF}
}
