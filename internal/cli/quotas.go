// allot quotas: a tenant's usage, quotas and limits, and setting a hard quota.

package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func quotasCommand(r *remote) *cobra.Command {
	get := &cobra.Command{Use: "get TENANT", Short: "Show a tenant's usage, quotas and limits", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			q, err := r.client().Quotas(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.show(q, func(w io.Writer) { quotasTable(w, q) })
		})}
	var min, max int64
	set := &cobra.Command{Use: "set TENANT RESOURCE HARD", Short: "Set a tenant's hard quota of a resource", Args: args(cobra.ExactArgs(3)),
		RunE: run(func(c *cobra.Command, a []string) error {
			hard, err := parseInt("HARD", a[2])
			if err != nil {
				return err
			}
			req := client.SetQuotaRequest{Hard: &hard}
			if c.Flags().Changed("min") || c.Flags().Changed("max") {
				if !c.Flags().Changed("min") || !c.Flags().Changed("max") {
					return usageError{"--min and --max go together"}
				}
				req.Requestable = &client.Range{Min: min, Max: max}
			}
			rq, err := r.client().SetQuota(c.Context(), a[0], a[1], req)
			if err != nil {
				return err
			}
			return r.show(rq, func(w io.Writer) {
				fmt.Fprintf(w, "%s: hard %d, used %d, requestable %d-%d\n", printable(rq.Resource), rq.Hard, rq.Used, rq.Requestable.Min, rq.Requestable.Max)
				if rq.OverQuota {
					fmt.Fprintf(w, "! %s is over quota: growth is refused until usage falls below %d\n", printable(a[0]), rq.Hard)
				}
			})
		})}
	set.Flags().Int64Var(&min, "min", 0, "lowest hard quota the tenant may request")
	set.Flags().Int64Var(&max, "max", 0, "highest hard quota the tenant may request")
	return group("quotas", "Read and set quotas", get, set)
}

func quotasTable(w io.Writer, q *client.Quotas) {
	service := ""
	var t *table
	flush := func() {
		if t != nil {
			t.print(w)
			fmt.Fprintln(w)
		}
	}
	for _, res := range q.Resources {
		svc, name, _ := strings.Cut(res.Resource, ".")
		if svc != service {
			flush()
			service = svc
			fmt.Fprintf(w, "%s (tenant %s, region %s)\n", printable(svc), printable(q.Tenant), printable(q.Region))
			t = newTable("", "RESOURCE", "USED/HARD", "USAGE", "%", "REQUESTABLE")
		}
		mark := ""
		if res.OverQuota {
			mark = "!"
		}
		used := fmt.Sprintf("%d/%d", res.Used, res.Hard)
		if res.Unit != "" {
			used += " " + res.Unit
		}
		pct := percent(res.Used, res.Hard)
		if res.OverQuota {
			pct += " OVER"
		}
		t.row(mark, name, used, bar(res.Used, res.Hard), pct, fmt.Sprintf("%d-%d", res.Requestable.Min, res.Requestable.Max))
	}
	flush()
	if len(q.Limits) > 0 {
		fmt.Fprintln(w, "limits")
		t := newTable("KIND", "LIMIT", "MIN", "MAX")
		for _, l := range q.Limits {
			t.row(l.Kind, l.Limit, strconv.FormatInt(l.Min, 10), strconv.FormatInt(l.Max, 10))
		}
		t.print(w)
	}
}
