// allot thresholds: a tenant's warning thresholds.

package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

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
