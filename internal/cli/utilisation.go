// allot top and allot overquota: tenants by how much of their quotas they use.

package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func topCommand(r *remote) *cobra.Command {
	var search string
	var limit int
	c := &cobra.Command{Use: "top", Short: "Tenants by their highest utilisation, those over quota first", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			u, err := r.client().Utilisation(c.Context(), search, limit)
			if err != nil {
				return err
			}
			return r.show(u, func(w io.Writer) {
				t := newTable("", "TENANT", "RESOURCE", "USED/HARD", "USAGE", "%")
				for _, x := range u.Tenants {
					used, hard := x.Worst.Used, x.Worst.Hard
					mark, pct := "", percent(used, hard)
					if len(x.Over) > 0 {
						mark, pct = "!", pct+" OVER"
					}
					t.row(mark, x.Tenant.ID, dash(x.Worst.Resource), fmt.Sprintf("%d/%d", used, hard), bar(used, hard), pct)
				}
				t.print(w)
				if u.Total > len(u.Tenants) {
					fmt.Fprintf(w, "(%d more; --limit shows more)\n", u.Total-len(u.Tenants))
				}
			})
		})}
	c.Flags().StringVar(&search, "search", "", "only tenants whose id or name contains this")
	c.Flags().IntVar(&limit, "limit", 0, "at most this many tenants (server default 100)")
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
