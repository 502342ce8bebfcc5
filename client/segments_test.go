package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
)

// countingServer answers 204 to everything and records what reached it, as
// the escaped path and the raw query.
type countingServer struct {
	url  string
	mu   sync.Mutex
	seen []string
}

func newCountingServer(t *testing.T) *countingServer {
	t.Helper()
	s := &countingServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		got := r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			got += "?" + r.URL.RawQuery
		}
		s.seen = append(s.seen, got)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *countingServer) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.seen
	s.seen = nil
	return out
}

// idCall is one argument of one client method that ends up in a URL: call
// passes v in that argument's place and "ok" in every other id's.
type idCall struct {
	name string // Method/argument
	// want is what reaches the server for v = "vm-1".
	want       string
	emptyMeans bool // "" is a valid value here (no filter, every tenant)
	what       string
	call       func(ctx context.Context, c *client.Client, v string) error
}

func idCalls() []idCall {
	hard := int64(1)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	errOf := func(_ any, err error) error { return err }
	return []idCall{
		{"Tenant/tenant", "/api/v1/tenants/vm-1", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error { return errOf(c.Tenant(ctx, v)) }},
		{"UpdateTenant/tenant", "/api/v1/tenants/vm-1", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.UpdateTenant(ctx, v, client.UpdateTenantRequest{}))
		}},
		{"DeleteTenant/tenant", "/api/v1/tenants/vm-1", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error { return c.DeleteTenant(ctx, v) }},
		{"Quotas/tenant", "/api/v1/tenants/vm-1/quotas", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error { return errOf(c.Quotas(ctx, v)) }},
		{"Tree/tenant", "/api/v1/tenants/vm-1/tree", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error { return errOf(c.Tree(ctx, v)) }},
		{"SetQuota/tenant", "/api/v1/tenants/vm-1/quotas/ok", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.SetQuota(ctx, v, "ok", client.SetQuotaRequest{Hard: &hard}))
		}},
		{"SetQuota/resource", "/api/v1/tenants/ok/quotas/vm-1", false, "resource", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.SetQuota(ctx, "ok", v, client.SetQuotaRequest{Hard: &hard}))
		}},
		{"SetLimit/tenant", "/api/v1/tenants/vm-1/limits/ok/ok", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.SetLimit(ctx, v, "ok", "ok", client.SetLimitRequest{}))
		}},
		{"SetLimit/kind", "/api/v1/tenants/ok/limits/vm-1/ok", false, "kind", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.SetLimit(ctx, "ok", v, "ok", client.SetLimitRequest{}))
		}},
		{"SetLimit/limit", "/api/v1/tenants/ok/limits/ok/vm-1", false, "limit", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.SetLimit(ctx, "ok", "ok", v, client.SetLimitRequest{}))
		}},
		{"PutConsumer/tenant", "/api/v1/tenants/vm-1/consumers/ok", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.PutConsumer(ctx, v, "ok", volume(4), client.PutOptions{}))
		}},
		{"PutConsumer/consumer", "/api/v1/tenants/ok/consumers/vm-1?dry_run=true", false, "consumer id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.PutConsumer(ctx, "ok", v, volume(4), client.PutOptions{DryRun: true}))
		}},
		{"DeleteConsumer/tenant", "/api/v1/tenants/vm-1/consumers/ok", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return c.DeleteConsumer(ctx, v, "ok", client.DeleteOptions{})
		}},
		{"DeleteConsumer/consumer", "/api/v1/tenants/ok/consumers/vm-1", false, "consumer id", func(ctx context.Context, c *client.Client, v string) error {
			return c.DeleteConsumer(ctx, "ok", v, client.DeleteOptions{})
		}},
		{"Consumer/tenant", "/api/v1/tenants/vm-1/consumers/ok", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error { return errOf(c.Consumer(ctx, v, "ok")) }},
		{"Consumer/consumer", "/api/v1/tenants/ok/consumers/vm-1", false, "consumer id", func(ctx context.Context, c *client.Client, v string) error { return errOf(c.Consumer(ctx, "ok", v)) }},
		{"Consumers/tenant", "/api/v1/tenants/vm-1/consumers?kind=a%2Fb", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.Consumers(ctx, v, client.ConsumerQuery{Kind: "a/b"}))
		}},
		{"RevokeToken/name", "/api/v1/tokens/vm-1", false, "token name", func(ctx context.Context, c *client.Client, v string) error { return c.RevokeToken(ctx, v) }},
		{"CreateCredential/tenant", "/api/v1/tenants/vm-1/credentials", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error { return errOf(c.CreateCredential(ctx, v)) }},
		{"Credentials/tenant", "/api/v1/tenants/vm-1/credentials", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error { return errOf(c.Credentials(ctx, v)) }},
		{"RevokeCredential/tenant", "/api/v1/tenants/vm-1/credentials/ok", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error { return c.RevokeCredential(ctx, v, "ok") }},
		{"RevokeCredential/accessKey", "/api/v1/tenants/ok/credentials/vm-1", false, "access key", func(ctx context.Context, c *client.Client, v string) error { return c.RevokeCredential(ctx, "ok", v) }},
		{"Events/tenant", "/api/v1/events?tenant=vm-1", true, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.Events(ctx, client.EventQuery{Tenant: v}))
		}},
		{"CreateRequest/tenant", "/api/v1/tenants/vm-1/requests", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.CreateRequest(ctx, v, client.CreateRequestRequest{}))
		}},
		{"Requests/tenant", "/api/v1/tenants/vm-1/requests?status=a%26b", true, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.Requests(ctx, v, "a&b"))
		}},
		{"Request/tenant", "/api/v1/tenants/vm-1/requests/ok", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error { return errOf(c.Request(ctx, v, "ok")) }},
		{"Request/id", "/api/v1/tenants/ok/requests/vm-1", false, "request id", func(ctx context.Context, c *client.Client, v string) error { return errOf(c.Request(ctx, "ok", v)) }},
		{"ApproveRequest/tenant", "/api/v1/tenants/vm-1/requests/ok/approve", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.ApproveRequest(ctx, v, "ok", ""))
		}},
		{"ApproveRequest/id", "/api/v1/tenants/ok/requests/vm-1/approve", false, "request id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.ApproveRequest(ctx, "ok", v, ""))
		}},
		{"DenyRequest/tenant", "/api/v1/tenants/vm-1/requests/ok/deny", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.DenyRequest(ctx, v, "ok", ""))
		}},
		{"DenyRequest/id", "/api/v1/tenants/ok/requests/vm-1/deny", false, "request id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.DenyRequest(ctx, "ok", v, ""))
		}},
		{"Reconcile/tenant", "/api/v1/tenants/vm-1/inventory", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.Reconcile(ctx, v, client.Inventory{}, false))
		}},
		{"UsageAt/tenant", "/api/v1/tenants/vm-1/usage?at=2030-01-02T03%3A04%3A05Z", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.UsageAt(ctx, v, at))
		}},
		{"UsageHistory/tenant", "/api/v1/tenants/vm-1/usage/history?from=2030-01-02T03%3A04%3A05Z&points=2&to=2030-01-02T03%3A04%3A05Z", false, "tenant id",
			func(ctx context.Context, c *client.Client, v string) error {
				return errOf(c.UsageHistory(ctx, v, at, at, 2))
			}},
		{"Thresholds/tenant", "/api/v1/tenants/vm-1/thresholds", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error { return errOf(c.Thresholds(ctx, v)) }},
		{"SetThresholds/tenant", "/api/v1/tenants/vm-1/thresholds", false, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			return errOf(c.SetThresholds(ctx, v, nil))
		}},
		{"DeleteWebhook/id", "/api/v1/webhooks/vm-1", false, "webhook id", func(ctx context.Context, c *client.Client, v string) error { return c.DeleteWebhook(ctx, v) }},
		{"StreamEvents/tenant", "/api/v1/events/stream?tenant=vm-1", true, "tenant id", func(ctx context.Context, c *client.Client, v string) error {
			err := c.StreamEvents(ctx, v, 0, func(client.Event) error { return nil })
			if client.IsCode(err, "http_204") { // the counting server's answer: the request went out
				return nil
			}
			return err
		}},
	}
}

// A caller's value becomes exactly one path segment or nothing is sent:
// "..", ".", "" and slashes, plain or percent-encoded, never reach a server,
// where they could name another resource (DELETE …/consumers/.. deleted the
// tenant).
func TestIDsThatAreNotOneSegmentAreRefusedBeforeSending(t *testing.T) {
	srv := newCountingServer(t)
	c := client.New(srv.url, client.WithToken("t"))
	bad := []string{"..", ".", "", "a/b", "/", "../acme", "a%2Fb", "a%2fb", "%2e%2e", `a\b`, "a%5Cb"}
	for _, tc := range idCalls() {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range bad {
				if v == "" && tc.emptyMeans {
					continue
				}
				err := tc.call(t.Context(), c, v)
				if got := srv.take(); len(got) != 0 {
					t.Errorf("%q: sent %q, want nothing sent", v, got)
				}
				want := tc.what + ` "` + v + `" is not valid`
				if v == `a\b` {
					want = tc.what + ` "a\\b" is not valid`
				}
				if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
					t.Errorf("%q: err = %v, want one line with %s", v, err, want)
				}
				if _, ok := err.(*client.InvalidIDError); !ok {
					t.Errorf("%q: err is %T, want *client.InvalidIDError", v, err)
				}
			}
			// A normal value goes out as exactly the path it names.
			if err := tc.call(t.Context(), c, "vm-1"); err != nil {
				t.Fatalf("vm-1: %v", err)
			}
			if got := srv.take(); len(got) != 1 || got[0] != tc.want {
				t.Fatalf("vm-1: sent %q, want [%s]", got, tc.want)
			}
			// Odd but harmless characters are escaped into one segment.
			if err := tc.call(t.Context(), c, "x y?z#;%"); err != nil {
				t.Fatalf("x y?z#;%%: %v", err)
			}
			got := srv.take()
			escaped := "x%20y%3Fz%23%3B%25"
			if strings.Contains(tc.want, "=vm-1") { // a query value
				escaped = "x+y%3Fz%23%3B%25"
			}
			if want := strings.Replace(tc.want, "vm-1", escaped, 1); len(got) != 1 || got[0] != want {
				t.Fatalf("x y?z#;%%: sent %q, want [%s]", got, want)
			}
		})
	}
}

// Every method that takes a string other than a body must be in idCalls, so a
// new method cannot skip the check unnoticed.
func TestIDCallsCoverEveryMethod(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range idCalls() {
		method, _, _ := strings.Cut(tc.name, "/")
		covered[method] = true
	}
	notIDs := map[string]bool{"Utilisation": true} // a search text, sent as a query value
	typ := reflect.TypeFor[*client.Client]()
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		for j := 1; j < m.Type.NumIn(); j++ {
			if m.Type.In(j).Kind() == reflect.String && !covered[m.Name] && !notIDs[m.Name] {
				t.Errorf("%s takes a string but is not in idCalls", m.Name)
				break
			}
		}
	}
}
