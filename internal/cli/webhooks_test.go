package cli_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/testserver"
)

// allot webhooks list shows how each subscription's deliveries go: what is
// pending, the next and the last attempt, and why the last one failed.
func TestWebhooksListShowsFailingDeliveries(t *testing.T) {
	srv := testserver.Start(t)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	t.Cleanup(rcv.Close)
	for _, args := range [][]string{
		{"webhooks", "create", rcv.URL, "--secret", "a-secret-of-16-bytes", "--events", "tenant.create"},
		{"tenants", "create", "acme"},
	} {
		if r := allot(t, srv, "", args...); r.code != 0 {
			t.Fatalf("allot %v: %s", args, r.stderr)
		}
	}
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if hs, err := c.Webhooks(t.Context()); err == nil && len(hs) == 1 && hs[0].Failing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook never failed")
		}
	}
	r := allot(t, srv, "", "webhooks", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if want := regexp.MustCompile(`^WEBHOOK +URL +EVENTS +TENANT +CREATED +PENDING +NEXT ATTEMPT +LAST ATTEMPT +LAST RESULT$`); !want.MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	stamp := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`
	row := regexp.MustCompile(`^wh-\S+ +` + regexp.QuoteMeta(rcv.URL) + ` +tenant\.create +- +` + stamp + ` +1 +` + stamp + ` +` + stamp +
		` +failing: the receiver answered 502 Bad Gateway$`)
	if !row.MatchString(lines[1]) {
		t.Errorf("row %q does not match %s", lines[1], row)
	}
	if r = allot(t, srv, "", "webhooks", "list", "-o", "json"); !strings.Contains(r.stdout, `"failing": true`) || !strings.Contains(r.stdout, `"last_status": 502`) {
		t.Errorf("-o json:\n%s", r.stdout)
	}
}
