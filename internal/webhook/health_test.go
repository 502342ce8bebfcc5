package webhook_test

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/testserver"
)

// logBuffer collects a logger's lines; safe for the deliverer's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

// scrape reads the value of one sample from /metrics; -1 if it is absent.
func scrape(t *testing.T, url, sample string) float64 {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f
		}
	}
	return -1
}

// A receiver fails for a while, then recovers. The subscription's health
// in GET /api/v1/webhooks, the delivery metrics and the log follow: while
// it fails, its pending deliveries, the failed attempt's status and error
// and the next attempt are shown, and one warning is logged however many
// attempts fail; once it recovers, nothing is pending, the last attempt is
// a 200, and one more warning says it recovered.
func TestWebhookHealthAfterFailureAndRecovery(t *testing.T) {
	logs := &logBuffer{}
	srv := testserver.Start(t, testserver.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	ctx := t.Context()
	var failing atomic.Bool
	var failures, deliveries atomic.Int64
	failing.Store(true)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if failing.Load() {
			failures.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		deliveries.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rcv.Close)
	h, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: rcv.URL, Secret: secret, Events: []string{"consumer.put"}})
	if err != nil {
		t.Fatal(err)
	}
	if h.Pending != 0 || h.Failing || h.LastAttemptAt != nil {
		t.Errorf("a new subscription: %+v", h)
	}
	if _, err := c.CreateTenant(ctx, client.CreateTenantRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"v1", "v2"} {
		if _, err := c.PutConsumer(ctx, "acme", id, client.PutConsumerRequest{Kind: "compute.volume",
			Attributes: map[string]int64{"size_mb": 2}}, client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list := func() client.Webhook {
		t.Helper()
		hs, err := c.Webhooks(ctx)
		if err != nil || len(hs) != 1 {
			t.Fatalf("webhooks: %v %v", hs, err)
		}
		return hs[0]
	}

	eventually(t, "four failed attempts", func() bool { return failures.Load() >= 4 })
	got := list()
	if !got.Failing || got.Pending != 2 || got.LastStatus != 500 || !strings.Contains(got.LastError, "500") ||
		got.LastAttemptAt == nil || got.NextAttemptAt == nil {
		t.Errorf("while the receiver fails: %+v", got)
	}
	if n := scrape(t, srv.URL, `allot_webhook_deliveries_total{result="failed"}`); n < 4 {
		t.Errorf("failed deliveries counted: %v, want at least 4", n)
	}
	if n := scrape(t, srv.URL, "allot_webhook_pending"); n != 2 {
		t.Errorf("allot_webhook_pending: %v, want 2", n)
	}
	if n := logs.count("webhook failing"); n != 1 {
		t.Errorf("%d warnings that the webhook fails after %d failed attempts, want 1:\n%s", n, failures.Load(), logs)
	}

	failing.Store(false)
	eventually(t, "both deliveries", func() bool { return deliveries.Load() >= 2 })
	eventually(t, "an empty outbox", func() bool { return list().Pending == 0 })
	got = list()
	if got.Failing || got.LastStatus != 200 || got.LastError != "" || got.NextAttemptAt != nil || got.LastAttemptAt == nil {
		t.Errorf("after recovery: %+v", got)
	}
	if n := scrape(t, srv.URL, `allot_webhook_deliveries_total{result="delivered"}`); n < 2 {
		t.Errorf("delivered: %v, want at least 2", n)
	}
	if n := scrape(t, srv.URL, "allot_webhook_pending"); n != 0 {
		t.Errorf("allot_webhook_pending after recovery: %v", n)
	}
	if n, m := logs.count("webhook failing"), logs.count("webhook recovered"); n != 1 || m != 1 {
		t.Errorf("%d warnings of failing and %d of recovering, want 1 and 1:\n%s", n, m, logs)
	}
}

// A receiver's URL may carry its key in the query: neither the health's
// last error nor the log repeats it.
func TestWebhookHealthKeepsTheURLOut(t *testing.T) {
	logs := &logBuffer{}
	srv := testserver.Start(t, testserver.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // nothing listens there now: connection refused
	if _, err := c.CreateWebhook(t.Context(), client.CreateWebhookRequest{URL: gone.URL + "/hook?key=s3cret-key", Secret: secret,
		Events: []string{"tenant.create"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTenant(t.Context(), client.CreateTenantRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	var got client.Webhook
	eventually(t, "a failed attempt", func() bool {
		hs, err := c.Webhooks(t.Context())
		if err == nil && len(hs) == 1 {
			got = hs[0]
		}
		return got.Failing
	})
	if got.LastStatus != 0 || !strings.Contains(got.LastError, "connection refused") || strings.Contains(got.LastError, "s3cret") {
		t.Errorf("last status %d, last error %q", got.LastStatus, got.LastError)
	}
	if strings.Contains(logs.String(), "s3cret") || logs.count("webhook failing") != 1 {
		t.Errorf("the log:\n%s", logs)
	}
}
