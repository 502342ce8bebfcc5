package api_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/api"
	"github.com/allot-dev/allot/internal/testserver"
)

// FuzzQuery sends arbitrary query strings to every read route, as every
// identity's worst case (an admin): the answer is never a 5xx, and a 4xx
// always carries a code.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10", "after=5&limit=1", "tenant=acme", "at=2026-01-01T00:00:00Z",
		"from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z&points=500", "points=99999999999999999999",
		"state=%00", "q=%ff", "kind=compute.instance&state=running&cursor=YQ", "cursor=%zz", "limit=-1",
		"after=9223372036854775807", "dry_run=maybe", "a=1&a=2", "status=pending&limit=1000", ";;;", "%",
	} {
		for i := range 3 {
			f.Add(uint8(i*7), s)
		}
	}
	srv := testserver.Start(f)
	admin := client.New(srv.URL, client.WithToken(srv.AdminToken))
	if _, err := admin.CreateTenant(f.Context(), client.CreateTenantRequest{ID: "acme"}); err != nil {
		f.Fatal(err)
	}
	if _, err := admin.PutConsumer(f.Context(), "acme", "c", client.PutConsumerRequest{Kind: "compute.volume",
		Attributes: map[string]int64{"size_mb": 2}}, client.PutOptions{}); err != nil {
		f.Fatal(err)
	}
	native, err := api.New(api.Config{Engine: srv.Engine, Store: srv.Store, Sealer: srv.Sealer, Region: "local", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	h := native.Handler()
	var reads []string
	for pattern := range intended {
		if method, path, _ := strings.Cut(pattern, " "); method == "GET" && path != "/api/v1/events/stream" {
			reads = append(reads, strings.NewReplacer("{tenant}", "acme", "{consumer}", "c", "{id}", "r").Replace(path))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, query string) {
		path := reads[int(route)%len(reads)]
		req, err := http.NewRequest("GET", "http://allot"+path+"?"+query, nil)
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET %s?%q: %d %s", path, query, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"code"`) {
			t.Fatalf("GET %s?%q: %d without a code: %s", path, query, rec.Code, rec.Body)
		}
	})
}
