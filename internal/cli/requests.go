// allot requests: quota change requests and their decisions.

package cli

import (
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func requestsCommand(r *remote) *cobra.Command {
	var reason string
	create := &cobra.Command{Use: "create TENANT RESOURCE VALUE", Short: "Ask for a new hard quota (applied at once where the policy is auto)",
		Args: args(cobra.ExactArgs(3)),
		RunE: run(func(c *cobra.Command, a []string) error {
			v, err := parseInt("VALUE", a[2])
			if err != nil {
				return err
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
