package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
	"github.com/allot-dev/allot/internal/testserver"
	"github.com/allot-dev/allot/internal/webhook"
)

const secret = "a-secret-of-16-bytes-or-more"

// receiver records what it is sent, checking every signature; it fails
// the first `failures` requests with 503.
type receiver struct {
	t        *testing.T
	mu       sync.Mutex
	failures int
	got      []webhook.Payload
	ids      []string
	srv      *httptest.Server
}

func newReceiver(t *testing.T, failures int) *receiver {
	r := &receiver{t: t, failures: failures}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if got, want := req.Header.Get(webhook.SignatureHeader), webhook.Sign([]byte(secret), body); got != want {
			t.Errorf("signature %q, want %q", got, want)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.failures > 0 {
			r.failures--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("payload: %v", err)
		}
		r.got = append(r.got, p)
		r.ids = append(r.ids, req.Header.Get("X-Allot-Delivery"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// wait waits until n deliveries arrived, then a little longer to catch
// duplicates, and returns them.
func (r *receiver) wait(n int) []webhook.Payload {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r.mu.Lock()
		got := len(r.got)
		r.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d deliveries arrived", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// allowLoopback is the policy of deliverers whose receivers are httptest
// servers.
func allowLoopback(t *testing.T) *webhook.Policy {
	t.Helper()
	p, err := webhook.ParsePolicy("127.0.0.0/8,::1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func describe(ps []webhook.Payload) []string {
	var out []string
	for _, p := range ps {
		var v struct {
			Threshold int64
			Direction string
		}
		json.Unmarshal(p.Event.After, &v)
		out = append(out, fmt.Sprintf("%s %d %s", p.Event.Subject, v.Threshold, v.Direction))
	}
	return out
}

func TestThresholdCrossingsAreNotifiedOnceEachWay(t *testing.T) {
	srv := testserver.Start(t)
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	ctx := t.Context()
	rcv := newReceiver(t, 0)
	c.CreateTenant(ctx, client.CreateTenantRequest{ID: "acme"})
	hard := int64(5)
	c.SetQuota(ctx, "acme", "compute.volumes", client.SetQuotaRequest{Hard: &hard})
	if _, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: rcv.srv.URL, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	put := func(id string) {
		t.Helper()
		if _, err := c.PutConsumer(ctx, "acme", id, client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 2}}, client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		put(fmt.Sprint("v", i)) // 80% at the 4th, 100% at the 5th
	}
	c.DeleteConsumer(ctx, "acme", "v4", client.DeleteOptions{})
	c.DeleteConsumer(ctx, "acme", "v3", client.DeleteOptions{})
	got := describe(rcv.wait(4))
	want := []string{"compute.volumes 80 up", "compute.volumes 100 up", "compute.volumes 100 down", "compute.volumes 80 down"}
	if !slices.Equal(got, want) {
		t.Fatalf("notified %v, want %v", got, want)
	}
}

func TestAFailingReceiverGetsEverythingInOrder(t *testing.T) {
	srv := testserver.Start(t)
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	ctx := t.Context()
	rcv := newReceiver(t, 6)
	for _, id := range []string{"acme", "globex"} {
		c.CreateTenant(ctx, client.CreateTenantRequest{ID: id})
	}
	if _, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: rcv.srv.URL, Secret: secret, Events: []string{"consumer.put"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		for _, tn := range []string{"acme", "globex"} {
			if _, err := c.PutConsumer(ctx, tn, fmt.Sprint("v", i), client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 2}}, client.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := rcv.wait(20)
	if len(got) != 20 {
		t.Fatalf("%d deliveries, want 20 (no duplicates)", len(got))
	}
	per := map[string][]string{}
	for _, p := range got {
		per[p.Event.Tenant] = append(per[p.Event.Tenant], p.Event.Subject)
	}
	for _, tn := range []string{"acme", "globex"} {
		want := []string{"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"}
		if !slices.Equal(per[tn], want) {
			t.Errorf("%s received %v, want %v in order", tn, per[tn], want)
		}
	}
}

func TestDeliveriesPendingAtARestartAreSentAfterIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allot.db")
	log := slog.New(slog.DiscardHandler)
	sealer, _ := auth.NewSealer(make([]byte, 32))
	ctx := context.Background()
	rcv := newReceiver(t, 0)

	st, err := sqlite.Open(ctx, path, "local", log)
	if err != nil {
		t.Fatal(err)
	}
	e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog()})
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	admin := quota.Actor{Name: "test", Role: quota.RoleAdmin}
	must := func(ops ...quota.Op) {
		t.Helper()
		if _, err := e.Do(ctx, quota.Change{Actor: admin, Ops: ops}); err != nil {
			t.Fatal(err)
		}
	}
	must(&quota.CreateTenant{Tenant: "acme"})
	must(&quota.PutWebhook{Webhook: &quota.Webhook{URL: rcv.srv.URL, Events: []string{"consumer.put"},
		Sealed: sealer.Seal([]byte(secret), webhook.SecretContext)}})
	for i := range 5 {
		must(&quota.PutConsumer{Tenant: "acme", Consumer: fmt.Sprint("v", i),
			Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 2}}})
	}
	// allot stops before delivering anything.
	e.Stop(ctx)
	st.Close()

	st, err = sqlite.Open(ctx, path, "local", log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := &webhook.Deliverer{Store: st, Sealer: sealer, Policy: allowLoopback(t)}
	for {
		n, err := d.Once(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	var subjects []string
	for _, p := range rcv.wait(5) {
		subjects = append(subjects, p.Event.Subject)
	}
	if !slices.Equal(subjects, []string{"v0", "v1", "v2", "v3", "v4"}) {
		t.Fatalf("after the restart: %v", subjects)
	}
}

func TestBackoffAndGivingUp(t *testing.T) {
	var waits []time.Duration
	total := time.Duration(0)
	for n := 0; total < 24*time.Hour; n++ {
		waits = append(waits, webhook.Backoff(n))
		total += webhook.Backoff(n)
	}
	if waits[0] != time.Second || waits[1] != 2*time.Second || waits[len(waits)-1] != time.Hour {
		t.Fatalf("backoff %v", waits[:5])
	}
	// A delivery that fails for longer than GiveUpAfter is dropped; before
	// that it is kept.
	path := filepath.Join(t.TempDir(), "allot.db")
	st, _ := sqlite.Open(context.Background(), path, "local", slog.New(slog.DiscardHandler))
	defer st.Close()
	sealer, _ := auth.NewSealer(make([]byte, 32))
	e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog()})
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(context.Background())
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	defer dead.Close()
	admin := quota.Actor{Name: "test", Role: quota.RoleAdmin}
	e.Do(t.Context(), quota.Change{Actor: admin, Ops: []quota.Op{&quota.PutWebhook{Webhook: &quota.Webhook{URL: dead.URL, Events: []string{"*"},
		Sealed: sealer.Seal([]byte(secret), webhook.SecretContext)}}}})
	e.Do(t.Context(), quota.Change{Actor: admin, Ops: []quota.Op{&quota.CreateTenant{Tenant: "acme"}}})
	now := time.Now()
	d := &webhook.Deliverer{Store: st, Sealer: sealer, Policy: allowLoopback(t), Now: func() time.Time { return now }, GiveUpAfter: 25 * time.Hour}
	attempts := 0
	for range 100 {
		n, err := d.Once(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		attempts += n
		now = now.Add(time.Hour)
	}
	// Two deliveries (the webhook's creation, the tenant's), each retried
	// about hourly until 25 hours had passed, then dropped.
	if attempts < 2*20 || attempts > 2*40 {
		t.Fatalf("%d attempts, want two deliveries retried for about 25 hours", attempts)
	}
	if left, _ := st.LeaseDeliveries(t.Context(), now.Add(1000*time.Hour), time.Minute, 10); len(left) != 0 {
		t.Fatalf("%d deliveries kept after giving up", len(left))
	}
}
