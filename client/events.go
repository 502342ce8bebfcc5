// The ledger: reading it a page at a time, or following it as a stream.

package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// EventQuery selects a page of the ledger.
type EventQuery struct {
	Tenant string
	After  int64
	Limit  int
}

// Events reads a page of the ledger; pass Next as After to read on.
func (c *Client) Events(ctx context.Context, q EventQuery) (*EventList, error) {
	v, err := eventsQuery(q.Tenant)
	if err != nil {
		return nil, err
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return call[EventList](ctx, c, "GET", route("/events"), v, nil, nil)
}

// eventsQuery is the tenant filter of the ledger; "" for all. A query value
// cannot escape its place, but a tenant id that could never be one is
// refused here as it is in a path.
func eventsQuery(tenant string) (url.Values, error) {
	v := url.Values{}
	if tenant == "" {
		return v, nil
	}
	if err := checkID("tenant id", tenant); err != nil {
		return nil, err
	}
	v.Set("tenant", tenant)
	return v, nil
}

// StreamEvents follows the ledger from after on (tenant "" for all the
// caller may see), calling fn for each event in order. When the connection
// drops it reconnects with Last-Event-ID, so fn sees every event exactly
// once. It returns when ctx ends, fn fails, or the server refuses.
// WithTimeout does not apply to the stream.
func (c *Client) StreamEvents(ctx context.Context, tenant string, after int64, fn func(Event) error) error {
	for {
		err := c.streamOnce(ctx, tenant, &after, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, refused := err.(*Error); refused || err != nil && !isStreamBreak(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// streamBreak marks a stream that ended for network reasons: reconnect.
type streamBreak struct{ err error }

func (e streamBreak) Error() string { return "allot: the event stream broke: " + e.err.Error() }
func (e streamBreak) Unwrap() error { return e.err }

func isStreamBreak(err error) bool { _, ok := err.(streamBreak); return ok }

func (c *Client) streamOnce(ctx context.Context, tenant string, after *int64, fn func(Event) error) error {
	q, err := eventsQuery(tenant)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+route("/events/stream").path+"?"+q.Encode(), nil)
	if err != nil {
		return fmt.Errorf("allot: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(*after, 10))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return streamBreak{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Problem) != nil || e.Problem.Code == "" {
			e.Problem = Problem{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Detail: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, snippet(data))}
		}
		return e
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				var e Event
				if err := json.Unmarshal([]byte(data), &e); err != nil {
					return fmt.Errorf("allot: an event of the stream does not decode: %w", err)
				}
				if e.Seq > *after { // never twice, whatever the server sends
					if err := fn(e); err != nil {
						return err
					}
					*after = e.Seq
				}
			}
			data = ""
		case strings.HasPrefix(line, "data: "):
			data += line[6:]
		}
	}
	if err := sc.Err(); err != nil {
		return streamBreak{err}
	}
	return streamBreak{io.ErrUnexpectedEOF}
}
