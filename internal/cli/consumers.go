// allot consumers: claim, read, list and release consumers.

package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
)

func consumersCommand(r *remote) *cobra.Command {
	var kind, state string
	var attrs []string
	var dryRun bool
	var ttl time.Duration
	var ifMatch int64
	put := &cobra.Command{Use: "put TENANT CONSUMER", Short: "Create or update a consumer (claim what it uses)", Args: args(cobra.ExactArgs(2)),
		RunE: run(func(c *cobra.Command, a []string) error {
			req := client.PutConsumerRequest{Kind: kind, State: state, Attributes: map[string]int64{}, TTLSeconds: int64(ttl / time.Second)}
			for _, kv := range attrs {
				k, v, ok := strings.Cut(kv, "=")
				n, err := strconv.ParseInt(v, 10, 64)
				if !ok || err != nil {
					return usageError{fmt.Sprintf("--attr takes NAME=INTEGER, not %q", kv)}
				}
				req.Attributes[k] = n
			}
			if ttl%time.Second != 0 || ttl < 0 {
				return usageError{"--ttl must be a whole number of seconds, e.g. 30s or 5m"}
			}
			out, err := r.client().PutConsumer(c.Context(), a[0], a[1], req, client.PutOptions{DryRun: dryRun, IfMatch: ifMatch})
			if err != nil {
				return err
			}
			return r.show(out, func(w io.Writer) {
				verb := map[bool]string{true: "created", false: "updated"}[out.Created]
				if dryRun {
					verb = "would be " + verb + " (dry run)"
				}
				fmt.Fprintf(w, "consumer %s %s, generation %d\n", printable(out.Consumer), verb, out.Generation)
				consumerTable(w, []client.Consumer{*out})
			})
		})}
	f := put.Flags()
	f.StringVar(&kind, "kind", "", "kind of the consumer, e.g. compute.instance (required)")
	f.StringVar(&state, "state", "", "state, for kinds that have states")
	f.StringArrayVar(&attrs, "attr", nil, "attribute NAME=VALUE (repeatable)")
	f.BoolVar(&dryRun, "dry-run", false, "answer what would happen, change nothing")
	f.DurationVar(&ttl, "ttl", 0, "hold as a reservation for this long, e.g. 30s")
	f.Int64Var(&ifMatch, "if-match", 0, "only if the consumer is at this generation")
	_ = put.MarkFlagRequired("kind")

	get := &cobra.Command{Use: "get TENANT CONSUMER", Short: "Show a consumer", Args: args(cobra.ExactArgs(2)),
		RunE: run(func(c *cobra.Command, a []string) error {
			out, err := r.client().Consumer(c.Context(), a[0], a[1])
			if err != nil {
				return err
			}
			return r.show(out, func(w io.Writer) { consumerTable(w, []client.Consumer{*out}) })
		})}

	var q client.ConsumerQuery
	var all bool
	list := &cobra.Command{Use: "list TENANT", Short: "List a tenant's consumers", Args: args(cobra.ExactArgs(1)),
		RunE: run(func(c *cobra.Command, a []string) error {
			var cs []client.Consumer
			query := q
			for {
				page, err := r.client().Consumers(c.Context(), a[0], query)
				if err != nil {
					return err
				}
				cs = append(cs, page.Consumers...)
				if !all || page.NextCursor == "" {
					break
				}
				query.Cursor = page.NextCursor
			}
			return r.show(cs, func(w io.Writer) { consumerTable(w, cs) })
		})}
	list.Flags().StringVar(&q.Kind, "kind", "", "only this kind")
	list.Flags().StringVar(&q.State, "state", "", "only this state")
	list.Flags().IntVar(&q.Limit, "limit", 0, "page size (server default 100, at most 1000)")
	list.Flags().BoolVar(&all, "all", false, "follow the pages to the end")

	var delOpts client.DeleteOptions
	del := &cobra.Command{Use: "delete TENANT CONSUMER", Short: "Delete a consumer, releasing what it uses", Args: args(cobra.ExactArgs(2)),
		RunE: run(func(c *cobra.Command, a []string) error {
			if err := r.client().DeleteConsumer(c.Context(), a[0], a[1], delOpts); err != nil {
				return err
			}
			if delOpts.DryRun {
				fmt.Fprintf(r.stdout, "consumer %s would be deleted (dry run)\n", printable(a[1]))
			} else {
				fmt.Fprintf(r.stdout, "consumer %s deleted\n", printable(a[1]))
			}
			return nil
		})}
	del.Flags().BoolVar(&delOpts.DryRun, "dry-run", false, "answer what would happen, change nothing")
	del.Flags().Int64Var(&delOpts.IfMatch, "if-match", 0, "only if the consumer is at this generation")
	return group("consumers", "Claim, read and release consumers", put, get, list, del)
}

func consumerTable(w io.Writer, cs []client.Consumer) {
	t := newTable("CONSUMER", "KIND", "STATE", "ATTRIBUTES", "GEN", "EXPIRES")
	for _, c := range cs {
		t.row(c.Consumer, c.Kind, dash(c.State), attrList(c.Attributes), strconv.FormatInt(c.Generation, 10), stamp(c.ExpiresAt))
	}
	t.print(w)
}

// attrList is attributes as name=value, by name, comma-separated.
func attrList(m map[string]int64) string {
	var attrs []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		attrs = append(attrs, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(attrs, ",")
}
