package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/golden"
	"github.com/allot-dev/allot/internal/testserver"
)

// The answers clients depend on most, pinned byte for byte (after the
// normalisation below). A change here is a change of the wire contract: run
// the test with -update only when that change is meant, and say so.

// goldenAt is the server's clock in these tests, so times in answers are
// stable.
var goldenAt = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// wireHeaders are the headers of an answer that a client reads.
var wireHeaders = []string{"Content-Type", "ETag", "Location", "Retry-After"}

// wire renders an answer as a golden document: the status, the headers a
// client reads, then the body as indented JSON. The request id is random, so
// it is replaced by a placeholder wherever it appears.
func wire(t *testing.T, a answer) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d %s\n", a.status, http.StatusText(a.status))
	for _, h := range wireHeaders {
		if v := a.header.Get(h); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", h, v)
		}
	}
	b.WriteByte('\n')
	body := a.body
	if id := a.header.Get("X-Request-Id"); id != "" {
		body = bytes.ReplaceAll(body, []byte(id), []byte("REQUEST-ID"))
	}
	if err := json.Indent(&b, body, "", "  "); err != nil {
		t.Fatalf("answer is not JSON (%v): %s", err, a.body)
	}
	return append(bytes.TrimRight(b.Bytes(), "\n"), '\n')
}

func TestWireGolden(t *testing.T) {
	srv := testserver.Start(t, testserver.Options{Now: func() time.Time { return goldenAt }})
	c := caller{t, srv.URL}
	admin := srv.AdminToken
	c.must(201, nil, "POST", "/api/v1/tenants", admin, client.CreateTenantRequest{ID: "acme", Name: "Acme Corp"})
	c.must(200, nil, "PUT", "/api/v1/tenants/acme/quotas/compute.live_memory_mb", admin, `{"hard":512}`)

	created := c.must(201, nil, "PUT", "/api/v1/tenants/acme/consumers/web-1", admin, instance(384, "running"))
	refused := c.do("PUT", "/api/v1/tenants/acme/consumers/web-2", admin, instance(256, "running"))
	quotas := c.must(200, nil, "GET", "/api/v1/tenants/acme/quotas", admin, nil)

	for _, tc := range []struct {
		name string
		a    answer
	}{
		{"consumer_put_created", created},
		{"consumer_put_quota_exceeded", refused},
		{"tenant_quotas", quotas},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden.Assert(t, "testdata/"+tc.name+".golden", wire(t, tc.a))
		})
	}
}
