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
	"github.com/allot-dev/allot/internal/ledger"
	"github.com/allot-dev/allot/internal/quota"
)

func eventsCommand(r *remote) *cobra.Command {
	var q client.EventQuery
	var follow bool
	var archive, from, to string
	c := &cobra.Command{Use: "events", Short: "Read the ledger; --follow streams new events as they happen; --archive reads an archive", Args: args(cobra.NoArgs),
		RunE: run(func(c *cobra.Command, a []string) error {
			if archive != "" {
				return r.archivedEvents(archive, q.Tenant, from, to)
			}
			if from != "" || to != "" {
				return usageError{"--from and --to read an archive: give --archive DIR"}
			}
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
	c.Flags().StringVar(&archive, "archive", "", "read the events archived in this directory (see serve --ledger-archive) instead of the server's")
	c.Flags().StringVar(&from, "from", "", "with --archive: events at or after this RFC 3339 time")
	c.Flags().StringVar(&to, "to", "", "with --archive: events at or before this RFC 3339 time")
	return c
}

// archivedEvents prints the events of an archive directory that the
// filter selects, after checking every file against its checksum.
func (r *remote) archivedEvents(dir, tenant, from, to string) error {
	f := ledger.Filter{Tenant: quota.CanonicalTenant(tenant)}
	for _, t := range []struct {
		flag, value string
		into        *time.Time
	}{{"from", from, &f.From}, {"to", to, &f.To}} {
		if t.value == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.value)
		if err != nil {
			return usageError{fmt.Sprintf("--%s: %q is not an RFC 3339 time, such as 2026-11-24T09:30:00Z", t.flag, t.value)}
		}
		*t.into = v
	}
	var events []client.Event
	err := ledger.Read(dir, f, func(e *quota.Event) error {
		ev := client.Event{Seq: e.Seq, Time: e.Time.UTC(), Type: string(e.Type), Tenant: e.Tenant, Subject: e.Subject,
			Actor: e.Actor, Role: string(e.Role), Reason: e.Reason, Before: e.Before, After: e.After}
		if r.output != "json" {
			events = append(events, ev)
			return nil
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(r.stdout, "%s\n", jsonSafe(b))
		return err
	})
	if err != nil {
		return err
	}
	if r.output == "json" {
		return nil
	}
	t := newTable("SEQ", "TIME", "TYPE", "TENANT", "SUBJECT", "ACTOR")
	for _, e := range events {
		t.row(strconv.FormatInt(e.Seq, 10), e.Time.Format(time.RFC3339), e.Type, dash(e.Tenant), dash(e.Subject), e.Actor+" ("+e.Role+")")
	}
	t.print(r.stdout)
	return nil
}

// followEvents prints the events so far, then new ones as they happen.
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
