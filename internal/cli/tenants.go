// allot tenants: create, list, get, update and delete tenants.

package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func tenantsCommand(r *remote) *cobra.Command {
	var name, plan string
	create := &cobra.Command{Use: "create ID", Short: "Create a tenant", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			t, err := r.client().CreateTenant(c.Context(), client.CreateTenantRequest{ID: a[0], Name: name, Plan: plan})
			if err != nil {
				return err
			}
			return r.show(t, func(w io.Writer) { tenantTable(w, []client.Tenant{*t}) })
		})}
	create.Flags().StringVar(&name, "name", "", "display name (default: the id)")
	create.Flags().StringVar(&plan, "plan", "", "plan the tenant starts from")
	list := &cobra.Command{Use: "list", Short: "List tenants", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			ts, err := r.client().Tenants(c.Context())
			if err != nil {
				return err
			}
			return r.show(ts, func(w io.Writer) { tenantTable(w, ts) })
		})}
	get := &cobra.Command{Use: "get ID", Short: "Show a tenant", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			t, err := r.client().Tenant(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.show(t, func(w io.Writer) { tenantTable(w, []client.Tenant{*t}) })
		})}
	del := &cobra.Command{Use: "delete ID", Short: "Delete a tenant that owns nothing", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			if err := r.client().DeleteTenant(c.Context(), a[0]); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "tenant %s deleted\n", printable(a[0]))
			return nil
		})}
	var newName, newPlan string
	update := &cobra.Command{Use: "update ID [--name NAME] [--plan PLAN]", Short: "Rename a tenant or move it to another plan (--plan '' for none)",
		Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			var req client.UpdateTenantRequest
			if c.Flags().Changed("name") {
				req.Name = &newName
			}
			if c.Flags().Changed("plan") {
				req.Plan = &newPlan
			}
			if req.Name == nil && req.Plan == nil {
				return usageError{"nothing to change: give --name or --plan"}
			}
			t, err := r.client().UpdateTenant(c.Context(), a[0], req)
			if err != nil {
				return err
			}
			return r.show(t, func(w io.Writer) { tenantTable(w, []client.Tenant{*t}) })
		})}
	update.Flags().StringVar(&newName, "name", "", "new display name")
	update.Flags().StringVar(&newPlan, "plan", "", "new plan; empty for none")
	return group("tenants", "Manage tenants", create, list, get, update, del)
}

func tenantTable(w io.Writer, ts []client.Tenant) {
	t := newTable("TENANT", "NAME", "PLAN")
	for _, x := range ts {
		t.row(x.ID, x.Name, dash(x.Plan))
	}
	t.print(w)
}
