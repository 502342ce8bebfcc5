package api

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

// FuzzDecode feeds arbitrary bodies to the request decoder for every body
// type the API reads. It must never panic; it must answer a coded error
// or a value that encodes back to JSON.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"kind":"compute.instance","state":"running","attributes":{"memory_mb":256},"ttl_seconds":30}`,
		`{"operations":[{"op":"put","tenant":"a","consumer":"b","kind":"compute.volume","attributes":{"size_mb":2}}],"dry_run":true}`,
		`{"id":"acme","name":"Acme","plan":"free"}`, `{"hard":10,"requestable":{"min":1,"max":9}}`, `{"min":1,"max":2}`,
		`{"role":"tenant","tenant":"acme","name":"x"}`, `{"resource":"compute.instances","value":3,"reason":"r"}`,
		`{"kinds":["compute.instance"],"consumers":[{"consumer":"a","kind":"compute.instance","attributes":{"memory_mb":16}}]}`,
		`{"url":"https://x/y","secret":"0123456789abcdef","events":["*"]}`, `{"thresholds":[80,100]}`,
		`{"a":1,"a":2}`, `[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]`, `{"hard":1e400}`, `{"hard":-0}`, "{\"name\":\"\xff\"}",
		`{} {}`, ``, `null`, `{"attributes":{"memory_mb":9223372036854775808}}`,
	} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return new(client.PutConsumerRequest) }, func() any { return new(client.ClaimsRequest) },
		func() any { return new(client.CreateTenantRequest) }, func() any { return new(client.SetQuotaRequest) },
		func() any { return new(client.SetLimitRequest) }, func() any { return new(client.CreateTokenRequest) },
		func() any { return new(client.CreateRequestRequest) }, func() any { return new(client.Inventory) },
		func() any { return new(client.CreateWebhookRequest) }, func() any { return new(client.Thresholds) },
		func() any { return new(client.DecideRequest) },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, target := range targets {
			v := target()
			err := decode(httptest.NewRequest("POST", "/", bytes.NewReader(body)), v)
			if err != nil {
				if quota.ErrorCode(err) == quota.CodeInternal {
					t.Fatalf("%T: an uncoded error for %q: %v", v, body, err)
				}
				continue
			}
			if _, err := json.Marshal(v); err != nil {
				t.Fatalf("%T decoded from %q does not encode: %v", v, body, err)
			}
		}
	})
}
