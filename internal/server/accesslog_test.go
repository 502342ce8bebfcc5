package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/dcs"
	"github.com/allot-dev/allot/internal/server"
)

// The access log has a line per request with who asked for what and how
// it went, and none of the secrets the requests and answers carry:
// bearer tokens, AK/SK signatures and secret keys, webhook secrets.
func TestAccessLogLinesHoldNoSecrets(t *testing.T) {
	var log syncBuffer
	r := start(t, func(c *server.Config) {
		c.AccessLog = slog.New(slog.NewJSONHandler(&log, nil))
		c.WebhookAllow = "127.0.0.1"
	})
	ctx := context.Background()
	const project = "0123456789abcdef0123456789abcdef"
	const hookSecret = "whsec-do-not-log-me-4f1c9a"
	admin := client.New(r.URL, client.WithToken(adminToken))
	if _, err := admin.CreateTenant(ctx, client.CreateTenantRequest{ID: project, Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, client.CreateTokenRequest{Role: "tenant", Tenant: project, Name: "acme-console"})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := admin.CreateCredential(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateWebhook(ctx, client.CreateWebhookRequest{URL: "http://127.0.0.1:9/hook", Secret: hookSecret}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(r.URL, client.WithToken(tok.Secret)).Quotas(ctx, project); err != nil {
		t.Fatal(err)
	}
	// AK/SK, as the DCS SDK signs.
	req, _ := http.NewRequest("GET", r.URL+"/v2/"+project+"/quota", nil)
	req.Header.Set("X-Project-Id", project)
	dcs.Sign(req, nil, cred.AccessKey, cred.SecretKey, time.Now(), nil)
	signature := req.Header.Get("Authorization")[strings.LastIndex(req.Header.Get("Authorization"), "=")+1:]
	do(t, req, 200)
	// A token in the query string, and a wrong one in the header.
	req, _ = http.NewRequest("GET", r.URL+"/api/v1/tenants?token="+tok.Secret, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	do(t, req, 400)
	req, _ = http.NewRequest("GET", r.URL+"/api/v1/tenants/"+project+"/quotas", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Secret+"x")
	do(t, req, 401)

	lines := records(t, log.String())
	if len(lines) != 8 {
		t.Errorf("%d access log lines for 8 requests:\n%s", len(lines), log.String())
	}
	for _, secret := range []string{adminToken, tok.Secret, cred.SecretKey, signature, hookSecret} {
		if strings.Contains(log.String(), secret) {
			t.Errorf("the access log holds the secret %q:\n%s", secret, log.String())
		}
	}
	// What a line does hold.
	want := map[string]any{"msg": "request", "method": "GET", "route": "GET /api/v1/tenants/{tenant}/quotas", "status": float64(200),
		"tenant": project, "actor": "acme-console"}
	found := false
	for _, l := range lines {
		if l["route"] != want["route"] || l["status"] != want["status"] {
			continue
		}
		found = true
		for k, v := range want {
			if l[k] != v {
				t.Errorf("%s = %v, want %v (line %v)", k, l[k], v, l)
			}
		}
		for _, k := range []string{"request_id", "duration", "bytes"} {
			if l[k] == nil || l[k] == "" || l[k] == float64(0) {
				t.Errorf("no %s in %v", k, l)
			}
		}
	}
	if !found {
		t.Errorf("no line for the tenant's quotas:\n%s", log.String())
	}
	for _, l := range lines {
		if l["route"] == "GET /v2/{project_id}/quota" && l["actor"] != cred.AccessKey {
			t.Errorf("the AK/SK request's actor is %v, want the access key %s", l["actor"], cred.AccessKey)
		}
		if l["status"] == float64(401) && (l["actor"] != "" || l["tenant"] != "") {
			t.Errorf("an unauthenticated request names an actor or tenant: %v", l)
		}
	}
}

func do(t *testing.T, req *http.Request, want int) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s %s, want %d", req.Method, req.URL.Path, resp.Status, b, want)
	}
}
