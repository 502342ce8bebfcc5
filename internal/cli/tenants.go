// allot tenants: create, list, get, update and delete tenants, and show
// an organisation's tree.

package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func tenantsCommand(r *remote) *cobra.Command {
	var name, plan, parent string
	create := &cobra.Command{Use: "create ID", Short: "Create a tenant", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			t, err := r.client().CreateTenant(c.Context(), client.CreateTenantRequest{ID: a[0], Name: name, Plan: plan, Parent: parent})
			if err != nil {
				return err
			}
			return r.show(t, func(w io.Writer) { tenantTable(w, []client.Tenant{*t}) })
		})}
	create.Flags().StringVar(&name, "name", "", "display name (default: the id)")
	create.Flags().StringVar(&plan, "plan", "", "plan the tenant starts from")
	create.Flags().StringVar(&parent, "parent", "", "tenant to create it under (its quotas cap this one's too)")
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
	var newName, newPlan, newParent string
	update := &cobra.Command{Use: "update ID [--name NAME] [--plan PLAN] [--parent PARENT]",
		Short: "Rename a tenant, move it to another plan (--plan '' for none) or under another parent (--parent '' detaches it)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			var req client.UpdateTenantRequest
			if c.Flags().Changed("name") {
				req.Name = &newName
			}
			if c.Flags().Changed("plan") {
				req.Plan = &newPlan
			}
			if c.Flags().Changed("parent") {
				req.Parent = client.MoveTo(newParent)
			}
			if req.Name == nil && req.Plan == nil && !req.Parent.Set {
				return usageError{"nothing to change: give --name, --plan or --parent"}
			}
			t, err := r.client().UpdateTenant(c.Context(), a[0], req)
			if err != nil {
				return err
			}
			return r.show(t, func(w io.Writer) { tenantTable(w, []client.Tenant{*t}) })
		})}
	update.Flags().StringVar(&newName, "name", "", "new display name")
	update.Flags().StringVar(&newPlan, "plan", "", "new plan; empty for none")
	update.Flags().StringVar(&newParent, "parent", "", "new parent; empty to detach (a root)")
	var resource string
	tree := &cobra.Command{Use: "tree ID [--resource RESOURCE]", Short: "Show a tenant and every tenant below it, with how its allowance is split",
		Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			tr, err := r.client().Tree(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.show(tr, func(w io.Writer) { treeTable(w, tr, resource) })
		})}
	tree.Flags().StringVar(&resource, "resource", "", "show only this resource (default: those in use or set somewhere in the tree)")
	return group("tenants", "Manage tenants", create, list, get, update, del, tree)
}

func tenantTable(w io.Writer, ts []client.Tenant) {
	t := newTable("TENANT", "NAME", "PLAN", "PARENT")
	for _, x := range ts {
		t.row(x.ID, x.Name, dash(x.Plan), dash(x.Parent))
	}
	t.print(w)
}

// treeTable shows a tree, one row per tenant and resource: its own usage,
// its tree's, and the hard quota (set: it caps the tree; otherwise the
// tenant's own default, shown in brackets).
func treeTable(w io.Writer, tr *client.Tree, resource string) {
	show := map[string]bool{}
	for _, n := range tr.Nodes {
		for _, res := range n.Resources {
			if resource == "" && (res.Tree > 0 || res.Set) || res.Resource == resource {
				show[res.Resource] = true
			}
		}
	}
	t := newTable("", "TENANT", "RESOURCE", "OWN", "TREE", "HARD", "USE")
	for _, n := range tr.Nodes {
		label := strings.Repeat("  ", n.Depth) + printable(n.ID)
		first := true
		for _, res := range n.Resources {
			if !show[res.Resource] {
				continue
			}
			mark, hard, use := "", fmt.Sprintf("(%d)", res.Hard), "-"
			if res.OverQuota {
				mark = "!"
			}
			if res.Set {
				hard, use = fmt.Sprint(res.Hard), bar(res.Tree, res.Hard)
			}
			name := label
			if !first {
				name = ""
			}
			first = false
			t.row(mark, name, res.Resource, fmt.Sprint(res.Used), fmt.Sprint(res.Tree), hard, use)
		}
		if first {
			t.row("", label, "-", "", "", "", "")
		}
	}
	t.print(w)
}
