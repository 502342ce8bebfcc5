// allot webhooks: webhook subscriptions.

package cli

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func webhooksCommand(r *remote) *cobra.Command {
	var req client.CreateWebhookRequest
	create := &cobra.Command{Use: "create URL --secret SECRET", Short: "Subscribe a URL to notifications or events", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			req.URL = a[0]
			h, err := r.client().CreateWebhook(c.Context(), req)
			if err != nil {
				return err
			}
			return r.show(h, func(w io.Writer) { webhookTable(w, []client.Webhook{*h}) })
		})}
	create.Flags().StringVar(&req.Secret, "secret", "", "the key deliveries are signed with (16 to 256 bytes)")
	create.Flags().StringSliceVar(&req.Events, "events", nil, "event types, or * for all (default quota.threshold)")
	create.Flags().StringVar(&req.Tenant, "tenant", "", "only this tenant's events")
	_ = create.MarkFlagRequired("secret")
	list := &cobra.Command{Use: "list", Short: "List subscriptions and how their deliveries go", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			hs, err := r.client().Webhooks(c.Context())
			if err != nil {
				return err
			}
			return r.show(client.WebhookList{Webhooks: hs}, func(w io.Writer) { webhookTable(w, hs) })
		})}
	del := &cobra.Command{Use: "delete ID", Short: "Delete a subscription and its pending deliveries", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error { return r.client().DeleteWebhook(c.Context(), a[0]) })}
	return group("webhooks", "Webhook subscriptions", create, list, del)
}

// webhookTable shows each subscription with how its deliveries go: what
// waits, when it is tried next, and the latest attempt's result.
func webhookTable(w io.Writer, hs []client.Webhook) {
	t := newTable("WEBHOOK", "URL", "EVENTS", "TENANT", "CREATED", "PENDING", "NEXT ATTEMPT", "LAST ATTEMPT", "LAST RESULT")
	for _, h := range hs {
		result := "-"
		switch {
		case h.LastAttemptAt == nil:
		case h.Failing:
			result = "failing: " + h.LastError
		default:
			result = "ok (" + strconv.Itoa(h.LastStatus) + ")"
		}
		t.row(h.ID, h.URL, strings.Join(h.Events, ","), dash(h.Tenant), h.CreatedAt.UTC().Format(time.RFC3339),
			strconv.FormatInt(h.Pending, 10), stamp(h.NextAttemptAt), stamp(h.LastAttemptAt), result)
	}
	t.print(w)
}
