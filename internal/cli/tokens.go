// allot tokens: API tokens.

package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func tokensCommand(r *remote) *cobra.Command {
	var req client.CreateTokenRequest
	create := &cobra.Command{Use: "create --role ROLE --name NAME [--tenant TENANT]", Short: "Create an API token (shown once)", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			t, err := r.client().CreateToken(c.Context(), req)
			if err != nil {
				return err
			}
			return r.show(t, func(w io.Writer) {
				fmt.Fprintf(w, "token %s (%s) created; it is shown only this once:\n%s\n", printable(t.Name), printable(t.Role), printable(t.Secret))
			})
		})}
	create.Flags().StringVar(&req.Role, "role", "", "admin, service or tenant")
	create.Flags().StringVar(&req.Tenant, "tenant", "", "the tenant of a tenant token")
	create.Flags().StringVar(&req.Name, "name", "", "a name for the token")
	_ = create.MarkFlagRequired("role")
	_ = create.MarkFlagRequired("name")
	list := &cobra.Command{Use: "list", Short: "List tokens (never their secrets)", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			ts, err := r.client().Tokens(c.Context())
			if err != nil {
				return err
			}
			return r.show(ts, func(w io.Writer) {
				t := newTable("NAME", "ROLE", "TENANT", "REVOKED")
				for _, x := range ts {
					t.row(x.Name, x.Role, dash(x.Tenant), stamp(x.RevokedAt))
				}
				t.print(w)
			})
		})}
	revoke := &cobra.Command{Use: "revoke NAME", Short: "Revoke a token", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			if err := r.client().RevokeToken(c.Context(), a[0]); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "token %s revoked\n", printable(a[0]))
			return nil
		})}
	return group("tokens", "Manage API tokens", create, list, revoke)
}
