// allot credentials: AK/SK access keys.

package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

func credentialsCommand(r *remote) *cobra.Command {
	create := &cobra.Command{Use: "create TENANT", Short: "Create an AK/SK pair (the secret key is shown once)", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			k, err := r.client().CreateCredential(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.show(k, func(w io.Writer) {
				fmt.Fprintf(w, "access key: %s\nsecret key: %s\n(the secret key is shown only this once)\n", printable(k.AccessKey), printable(k.SecretKey))
			})
		})}
	list := &cobra.Command{Use: "list TENANT", Short: "List a tenant's access keys", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			ks, err := r.client().Credentials(c.Context(), a[0])
			if err != nil {
				return err
			}
			return r.show(ks, func(w io.Writer) {
				t := newTable("ACCESS KEY", "CREATED", "REVOKED")
				for _, k := range ks {
					t.row(k.AccessKey, k.CreatedAt.UTC().Format(time.RFC3339), stamp(k.RevokedAt))
				}
				t.print(w)
			})
		})}
	revoke := &cobra.Command{Use: "revoke TENANT ACCESS_KEY", Short: "Revoke an access key", Args: args(cobra.ExactArgs(2)),
		RunE: run(func(c *cobra.Command, a []string) error {
			if err := r.client().RevokeCredential(c.Context(), a[0], a[1]); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "access key %s revoked\n", printable(a[1]))
			return nil
		})}
	return group("credentials", "Manage AK/SK access keys", create, list, revoke)
}
