// allot reconcile: making a tenant's consumers equal what really exists.

package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

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
