// allot limits: setting a tenant's per-object limits.

package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func limitsCommand(r *remote) *cobra.Command {
	set := &cobra.Command{Use: "set TENANT KIND LIMIT MIN MAX", Short: "Set a tenant's per-object limit", Args: args(cobra.ExactArgs(5)),
		RunE: run(func(c *cobra.Command, a []string) error {
			min, err := parseInt("MIN", a[3])
			if err != nil {
				return err
			}
			max, err := parseInt("MAX", a[4])
			if err != nil {
				return err
			}
			l, err := r.client().SetLimit(c.Context(), a[0], a[1], a[2], client.SetLimitRequest{Min: &min, Max: &max})
			if err != nil {
				return err
			}
			return r.show(l, func(w io.Writer) {
				fmt.Fprintf(w, "%s %s: %d-%d\n", printable(l.Kind), printable(l.Limit), l.Min, l.Max)
			})
		})}
	return group("limits", "Set per-object limits", set)
}
