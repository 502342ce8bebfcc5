// allot claims: batches of puts and deletes, all or none.

package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func claimsCommand(r *remote) *cobra.Command {
	var file string
	var dryRun bool
	apply := &cobra.Command{Use: "apply -f FILE", Short: "Apply a batch of puts and deletes, all or none", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			var req client.ClaimsRequest
			if err := r.readDocument(file, &req); err != nil {
				return err
			}
			req.DryRun = req.DryRun || dryRun
			out, err := r.client().Claims(c.Context(), req)
			if err != nil {
				return err
			}
			return r.show(out, func(w io.Writer) {
				verb := "applied"
				if out.DryRun {
					verb = "would be applied (dry run)"
				}
				fmt.Fprintf(w, "%d operations %s\n", len(out.Results), verb)
				consumerTable(w, out.Results)
			})
		})}
	apply.Flags().StringVarP(&file, "file", "f", "", "batch as JSON or YAML ({operations: [...]}); - for standard input")
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "answer what would happen, change nothing")
	_ = apply.MarkFlagRequired("file")
	return group("claims", "Apply batches of claims", apply)
}
