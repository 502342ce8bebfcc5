package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func requestsCommand(r *remote) *cobra.Command {
	var reason string
	create := &cobra.Command{Use: "create TENANT RESOURCE VALUE", Short: "Ask for a new hard quota (applied at once where the policy is auto)",
		Args: args(cobra.ExactArgs(3)),
		RunE: run(func(c *cobra.Command, a []string) error {
			v, err := strconv.ParseInt(a[2], 10, 64)
			if err != nil {
				return usageError{fmt.Sprintf("VALUE must be an integer, not %q", a[2])}
			}
			x, err := r.client().CreateRequest(c.Context(), a[0], client.CreateRequestRequest{Resource: a[1], Value: &v, Reason: reason})
			if err != nil {
				return err
			}
			return r.show(x, func(w io.Writer) { requestTable(w, []client.Request{*x}) })
		})}
	create.Flags().StringVar(&reason, "reason", "", "why the tenant needs it")

	var status string
	list := &cobra.Command{Use: "list [TENANT]", Short: "List requests, newest first (every tenant's without TENANT)", Args: args(cobra.MaximumNArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			tenant := ""
			if len(a) == 1 {
				tenant = a[0]
			}
			rs, err := r.client().Requests(c.Context(), tenant, status)
			if err != nil {
				return err
			}
			return r.show(client.RequestList{Requests: rs}, func(w io.Writer) { requestTable(w, rs) })
		})}
	list.Flags().StringVar(&status, "status", "", "pending, approved, denied or superseded")

	decide := func(use, short string, approve bool) *cobra.Command {
		var comment string
		c := &cobra.Command{Use: use + " TENANT REQUEST", Short: short, Args: args(cobra.ExactArgs(2)),
			RunE: run(func(c *cobra.Command, a []string) error {
				f := r.client().DenyRequest
				if approve {
					f = r.client().ApproveRequest
				}
				x, err := f(c.Context(), a[0], a[1], comment)
				if err != nil {
					return err
				}
				return r.show(x, func(w io.Writer) { requestTable(w, []client.Request{*x}) })
			})}
		c.Flags().StringVar(&comment, "comment", "", "a note for the tenant")
		return c
	}
	return group("requests", "Quota change requests", create, list,
		decide("approve", "Approve a pending request and apply it", true),
		decide("deny", "Deny a pending request", false))
}

func requestTable(w io.Writer, rs []client.Request) {
	t := newTable("REQUEST", "TENANT", "RESOURCE", "VALUE", "STATUS", "BY", "UPDATED", "REASON")
	for _, x := range rs {
		t.row(x.ID, x.Tenant, x.Resource, strconv.FormatInt(x.Value, 10), x.Status, x.RequestedBy,
			x.UpdatedAt.UTC().Format(time.RFC3339), dash(x.Reason))
	}
	t.print(w)
}

func reconcileCommand(r *remote) *cobra.Command {
	var file string
	var dryRun bool
	c := &cobra.Command{Use: "reconcile TENANT -f INVENTORY", Short: "Make the tenant's consumers equal what really exists",
		Long: `Make the tenant's consumers of the inventory's kinds equal its list of what really
exists, regardless of quotas: creates, updates and deletes consumers and prints
the difference. The inventory is JSON or YAML:

  kinds: [compute.instance]
  consumers:
    - {consumer: vm-1, kind: compute.instance, state: running, attributes: {memory_mb: 256}}`,
		Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			var inv client.Inventory
			if err := r.readDocument(file, &inv); err != nil {
				return err
			}
			out, err := r.client().Reconcile(c.Context(), a[0], inv, dryRun)
			if err != nil {
				return err
			}
			return r.show(out, func(w io.Writer) {
				verb := "reconciled"
				if out.DryRun {
					verb = "would be reconciled (dry run)"
				}
				fmt.Fprintf(w, "%s %s: %d created, %d updated, %d deleted\n", printable(a[0]), verb, len(out.Created), len(out.Updated), len(out.Deleted))
				for _, l := range []struct {
					sign string
					ids  []string
				}{{"+", out.Created}, {"~", out.Updated}, {"-", out.Deleted}} {
					for _, id := range l.ids {
						fmt.Fprintf(w, "  %s %s\n", l.sign, printable(id))
					}
				}
			})
		})}
	c.Flags().StringVarP(&file, "file", "f", "", "the inventory, JSON or YAML; - for standard input")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the difference, change nothing")
	_ = c.MarkFlagRequired("file")
	return c
}

func overquotaCommand(r *remote) *cobra.Command {
	return &cobra.Command{Use: "overquota", Short: "Tenants whose usage exceeds a hard quota, most over first", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			ts, err := r.client().OverQuota(c.Context())
			if err != nil {
				return err
			}
			return r.show(client.OverQuotaList{Tenants: ts}, func(w io.Writer) {
				t := newTable("TENANT", "RESOURCE", "USED", "HARD", "OVER")
				for _, tn := range ts {
					for _, res := range tn.Resources {
						t.row(tn.Tenant, res.Resource, strconv.FormatInt(res.Used, 10), strconv.FormatInt(res.Hard, 10), strconv.FormatInt(res.Over, 10))
					}
				}
				t.print(w)
			})
		})}
}

func thresholdsCommand(r *remote) *cobra.Command {
	show := func(w io.Writer, ths []int64) {
		parts := make([]string, len(ths))
		for i, v := range ths {
			parts[i] = strconv.FormatInt(v, 10) + "%"
		}
		fmt.Fprintln(w, strings.Join(parts, " "))
	}
	get := &cobra.Command{Use: "get TENANT", Short: "Print a tenant's warning thresholds", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			ths, err := r.client().Thresholds(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.show(client.Thresholds{Thresholds: ths}, func(w io.Writer) { show(w, ths) })
		})}
	set := &cobra.Command{Use: "set TENANT [PERCENT...]", Short: "Set a tenant's warning thresholds; none returns it to its plan's",
		Args: args(cobra.MinimumNArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			var ths []int64
			for _, s := range a[1:] {
				v, err := strconv.ParseInt(strings.TrimSuffix(s, "%"), 10, 64)
				if err != nil {
					return usageError{fmt.Sprintf("PERCENT must be an integer, not %q", s)}
				}
				ths = append(ths, v)
			}
			got, err := r.client().SetThresholds(c.Context(), a[0], ths)
			if err != nil {
				return err
			}
			return r.show(client.Thresholds{Thresholds: got}, func(w io.Writer) { show(w, got) })
		})}
	return group("thresholds", "Warning thresholds (percentages of each hard quota)", get, set)
}

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
	list := &cobra.Command{Use: "list", Short: "List subscriptions", Args: args(cobra.NoArgs),
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

func webhookTable(w io.Writer, hs []client.Webhook) {
	t := newTable("WEBHOOK", "URL", "EVENTS", "TENANT", "CREATED")
	for _, h := range hs {
		t.row(h.ID, h.URL, strings.Join(h.Events, ","), dash(h.Tenant), h.CreatedAt.UTC().Format(time.RFC3339))
	}
	t.print(w)
}

// followEvents prints the events so far, then new ones as they happen.
func (r *remote) followEvents(ctx context.Context, q client.EventQuery) error {
	printed := false
	err := r.client().StreamEvents(ctx, q.Tenant, q.After, func(e client.Event) error {
		if r.output == "json" {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(r.stdout, "%s\n", jsonSafe(b))
			return err
		}
		if !printed {
			fmt.Fprintln(r.stdout, "SEQ  TIME  TYPE  TENANT  SUBJECT  ACTOR")
			printed = true
		}
		_, err := fmt.Fprintf(r.stdout, "%d  %s  %s  %s  %s  %s (%s)\n", e.Seq, e.Time.UTC().Format(time.RFC3339), printable(e.Type),
			printable(dash(e.Tenant)), printable(dash(e.Subject)), printable(e.Actor), printable(e.Role))
		return err
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) { // interrupted: done
		return nil
	}
	return err
}
