// allot events: the ledger, a page at a time or followed as it grows.

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

func eventsCommand(r *remote) *cobra.Command {
	var q client.EventQuery
	var follow bool
	c := &cobra.Command{Use: "events", Short: "Read the ledger; --follow streams new events as they happen", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			if follow {
				return r.followEvents(c.Context(), q)
			}
			page, err := r.client().Events(c.Context(), q)
			if err != nil {
				return err
			}
			return r.show(page, func(w io.Writer) {
				t := newTable("SEQ", "TIME", "TYPE", "TENANT", "SUBJECT", "ACTOR")
				for _, e := range page.Events {
					t.row(strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(time.RFC3339), e.Type, dash(e.Tenant), dash(e.Subject), e.Actor+" ("+e.Role+")")
				}
				t.print(w)
			})
		})}
	c.Flags().StringVar(&q.Tenant, "tenant", "", "only this tenant's events")
	c.Flags().Int64Var(&q.After, "after", 0, "events after this sequence number")
	c.Flags().IntVar(&q.Limit, "limit", 0, "page size (server default 100)")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "after the events so far, print new ones as they happen, until interrupted")
	return c
}

// followEvents prints the events so far, then new ones as they happen,
// in columns wide enough for UUIDs and 32-hex project ids.
func (r *remote) followEvents(ctx context.Context, q client.EventQuery) error {
	typeWidth := 0
	for _, t := range quota.EventTypes {
		typeWidth = max(typeWidth, len(t))
	}
	t := newStreamTable(r.stdout, []string{"SEQ", "TIME", "TYPE", "TENANT", "SUBJECT", "ACTOR"}, []int{6, 20, typeWidth, 36, 36})
	err := r.client().StreamEvents(ctx, q.Tenant, q.After, func(e client.Event) error {
		if r.output == "json" {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(r.stdout, "%s\n", jsonSafe(b))
			return err
		}
		return t.row(strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(time.RFC3339), e.Type, dash(e.Tenant), dash(e.Subject),
			e.Actor+" ("+e.Role+")")
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) { // interrupted: done
		return nil
	}
	return err
}
