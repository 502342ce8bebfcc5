// Package benchtest serves a fake allot that breaks its invariants, so
// tests can show that `allot bench` notices: it accepts every write and
// reports, for every tenant, compute.instances used 3 of a hard quota of 1
// while its two consumers use 2.
package benchtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/allot-dev/allot/client"
)

// OvershootPerTenant is what the bench must find in each tenant: 2 above
// the hard quota, and 1 more used than the consumers account for.
const OvershootPerTenant = 3

// Start starts the fake; it stops when the test ends.
func Start(t testing.TB) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/tenants/{tenant}/quotas", func(w http.ResponseWriter, r *http.Request) {
		write(w, client.Quotas{Tenant: r.PathValue("tenant"), Region: "fake", Resources: []client.ResourceQuota{
			{Resource: "compute.instances", Used: 3, Hard: 1, OverQuota: true},
			{Resource: "compute.volumes", Used: 0, Hard: 10},
		}})
	})
	// Two pages of one consumer each, so the checker must follow the cursor.
	mux.HandleFunc("GET /api/v1/tenants/{tenant}/consumers", func(w http.ResponseWriter, r *http.Request) {
		page := client.ConsumerList{NextCursor: "second"}
		id := "first"
		if r.URL.Query().Get("cursor") == "second" {
			page.NextCursor, id = "", "second"
		}
		page.Consumers = []client.Consumer{{Tenant: r.PathValue("tenant"), Consumer: id, Kind: "compute.instance",
			State: "stopped", Footprint: map[string]int64{"compute.instances": 1}}}
		write(w, page)
	})
	// Every other request succeeds, with an answer the client can decode.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		write(w, map[string]any{"id": "fake", "resource": "compute.instances", "name": "fake", "token": "fake-token", "results": []any{}})
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func write(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
