// Webhook subscriptions.

package client

import "context"

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
