// allot claims: batches of puts and deletes, all or none.

package cli

import (
	"fmt"
	"io"
	"strconv"

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
				claimsTable(w, req.Operations, out.Results)
			})
		})}
	apply.Flags().StringVarP(&file, "file", "f", "", "batch as JSON or YAML ({operations: [...]}); - for standard input")
	apply.Flags().BoolVar(&dryRun, "dry-run", false, "answer what would happen, change nothing")
	_ = apply.MarkFlagRequired("file")
	return group("claims", "Apply batches of claims", apply)
}

// claimsTable shows what each operation did: a deleted consumer is marked
// deleted, not listed as if it were still there.
func claimsTable(w io.Writer, ops []client.Operation, results []client.Consumer) {
	t := newTable("RESULT", "TENANT", "CONSUMER", "KIND", "STATE", "ATTRIBUTES", "GEN", "EXPIRES")
	for i, c := range results {
		result := "updated"
		switch {
		case i < len(ops) && ops[i].Op == "delete":
			result = "deleted"
		case c.Created:
			result = "created"
		}
		t.row(result, c.Tenant, c.Consumer, c.Kind, dash(c.State), attrList(c.Attributes), strconv.FormatInt(c.Generation, 10), stamp(c.ExpiresAt))
	}
	t.print(w)
}
