package webhook_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/sqlite"
	"github.com/allot-dev/allot/internal/testserver"
	"github.com/allot-dev/allot/internal/webhook"
)

// finished is one FinishDelivery call.
type finished struct {
	id        int64
	delivered bool
	next      time.Time
	lastError string
}

// recordingStore records the outcome of every attempt.
type recordingStore struct {
	quota.Store
	mu   sync.Mutex
	done []finished
}

func (s *recordingStore) FinishDelivery(ctx context.Context, a quota.Attempt) error {
	s.mu.Lock()
	s.done = append(s.done, finished{a.Delivery, a.Delivered, a.Next, a.Error})
	s.mu.Unlock()
	return s.Store.FinishDelivery(ctx, a)
}

func (s *recordingStore) finished() []finished {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.done)
}

// rig is an engine over SQLite whose outbox a test's own deliverer drains.
type rig struct {
	store  *recordingStore
	engine *quota.Engine
	sealer *auth.Sealer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "allot.db"), "local", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, _ := auth.NewSealer(make([]byte, 32))
	e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog()})
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background()) })
	return &rig{store: &recordingStore{Store: st}, engine: e, sealer: sealer}
}

func (r *rig) do(t *testing.T, ops ...quota.Op) *quota.Result {
	t.Helper()
	res, err := r.engine.Do(t.Context(), quota.Change{Actor: quota.Actor{Name: "test", Role: quota.RoleAdmin}, Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// subscribe adds a webhook for consumer.put straight through the engine,
// past the API's check of the URL.
func (r *rig) subscribe(t *testing.T, url string) string {
	t.Helper()
	res := r.do(t, &quota.PutWebhook{Webhook: &quota.Webhook{URL: url, Events: []string{"consumer.put"},
		Sealed: r.sealer.Seal([]byte(secret), webhook.SecretContext)}})
	return res.Ops[0].Webhook.ID
}

func (r *rig) tenants(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		r.do(t, &quota.CreateTenant{Tenant: id})
	}
}

func (r *rig) put(t *testing.T, tenant, consumer string) {
	t.Helper()
	r.do(t, &quota.PutConsumer{Tenant: tenant, Consumer: consumer,
		Spec: quota.Spec{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 2}}})
}

// run runs d until the test ends.
func (r *rig) run(t *testing.T, d *webhook.Deliverer) {
	t.Helper()
	d.Store, d.Sealer = r.store, r.sealer
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
}

// eventually waits, within a generous deadline, for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counter is a receiver that counts its requests and answers status.
func counter(t *testing.T, status int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n.Add(1)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestSubscriptionsToLocalTargetsAreRefused(t *testing.T) {
	srv := testserver.Start(t) // allows 127.0.0.1, as tests need
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	ctx := t.Context()
	for _, tc := range []struct{ name, url, reason string }{
		{"ipv6 loopback", "http://[::1]:8080/x", "loopback"},
		{"other ipv4 loopback", "http://127.0.0.2:8080/x", "loopback"},
		{"mapped loopback", "http://[::ffff:127.0.0.2]/x", "loopback"},
		{"private", "http://10.0.0.1/x", "private"},
		{"metadata", "http://169.254.169.254/latest/meta-data/", "metadata"},
		{"localhost", "http://localhost:5432/", "loopback name"},
		{"cgnat", "https://100.64.1.1/x", "CGNAT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: tc.url, Secret: secret})
			if !client.IsCode(err, "invalid_request") || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("subscribing %s: %v, want invalid_request naming %q", tc.url, err, tc.reason)
			}
		})
	}
	if hs, err := c.Webhooks(ctx); err != nil || len(hs) != 0 {
		t.Fatalf("after refusals: %d webhooks, %v", len(hs), err)
	}
	rcv := newReceiver(t, 0)
	if _, err := c.CreateWebhook(ctx, client.CreateWebhookRequest{URL: rcv.srv.URL, Secret: secret, Events: []string{"tenant.create"}}); err != nil {
		t.Fatalf("subscribing an allowed loopback receiver: %v", err)
	}
	c.CreateTenant(ctx, client.CreateTenantRequest{ID: "acme"})
	if got := rcv.wait(1); len(got) != 1 || got[0].Event.Subject != "acme" {
		t.Fatalf("the allowed receiver got %v", got)
	}
}

func TestDeliveriesToRefusedAddressesFail(t *testing.T) {
	r := newRig(t)
	rcv := newReceiver(t, 0)
	u, _ := url.Parse(rcv.srv.URL)
	_, port, _ := net.SplitHostPort(u.Host)
	// Subscribed before any policy applied (or through a name that
	// resolves to loopback): the dialer refuses them.
	r.subscribe(t, rcv.srv.URL)
	r.subscribe(t, "http://localhost:"+port)
	r.tenants(t, "acme")
	r.put(t, "acme", "v0")

	d := &webhook.Deliverer{Store: r.store, Sealer: r.sealer} // public addresses only
	if n, err := d.Once(t.Context()); err != nil || n != 2 {
		t.Fatalf("Once: %d, %v", n, err)
	}
	got := r.store.finished()
	if len(got) != 2 {
		t.Fatalf("%d attempts recorded, want 2", len(got))
	}
	for _, f := range got {
		if f.delivered || f.next.IsZero() || !strings.Contains(f.lastError, "loopback address") {
			t.Errorf("attempt %+v, want a failure to retry whose error names the loopback address", f)
		}
	}
	rcv.mu.Lock()
	reached := len(rcv.got)
	rcv.mu.Unlock()
	if reached != 0 {
		t.Fatalf("the refused receiver got %d requests", reached)
	}

	// The operator allows loopback: both are delivered.
	allowed := &webhook.Deliverer{Store: r.store, Sealer: r.sealer, Policy: allowLoopback(t),
		Now: func() time.Time { return time.Now().Add(time.Hour) }}
	if _, err := allowed.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := rcv.wait(2); len(got) != 2 {
		t.Fatalf("allowed: %d deliveries, want 2", len(got))
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	r := newRig(t)
	target, reached := counter(t, http.StatusOK)
	var asked atomic.Int64
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		asked.Add(1)
		// 307 keeps the method and body: a client that followed it would
		// post the signed delivery to the target.
		http.Redirect(w, req, target.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	r.subscribe(t, redirector.URL)
	r.tenants(t, "acme")
	r.put(t, "acme", "v0")

	d := &webhook.Deliverer{Store: r.store, Sealer: r.sealer, Policy: allowLoopback(t)}
	if _, err := d.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	if asked.Load() != 1 || reached.Load() != 0 {
		t.Fatalf("the redirector was asked %d times and its target %d times, want 1 and 0", asked.Load(), reached.Load())
	}
	got := r.store.finished()
	if len(got) != 1 || got[0].delivered || !strings.Contains(got[0].lastError, "redirects are not followed") {
		t.Fatalf("attempts %+v, want one failure saying redirects are not followed", got)
	}
}

func TestAHangingReceiverDoesNotDelayOthers(t *testing.T) {
	r := newRig(t)
	release := make(chan struct{})
	var hung atomic.Int64
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hung.Add(1)
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(release) })
	healthy := newReceiver(t, 0)
	r.subscribe(t, hanging.URL)
	r.subscribe(t, healthy.srv.URL)
	tenants := []string{"acme", "globex", "initech"}
	r.tenants(t, tenants...)
	r.run(t, &webhook.Deliverer{Policy: allowLoopback(t), Timeout: time.Hour, Poll: 20 * time.Millisecond, MaxPerWebhook: 2})
	const n = 30
	for i := range n / len(tenants) {
		for _, tn := range tenants {
			r.put(t, tn, fmt.Sprint("v", i))
		}
	}
	got := healthy.wait(n)
	if len(got) != n {
		t.Fatalf("the healthy receiver got %d deliveries, want %d", len(got), n)
	}
	per := map[string][]string{}
	for _, p := range got {
		per[p.Event.Tenant] = append(per[p.Event.Tenant], p.Event.Subject)
	}
	for _, tn := range tenants {
		if want := []string{"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"}; !slices.Equal(per[tn], want) {
			t.Errorf("%s: %v, want %v", tn, per[tn], want)
		}
	}
	// Still stuck on the first event of two tenants (its cap), the third
	// waiting: nothing it was sent has come back.
	if h := hung.Load(); h != 2 {
		t.Errorf("the hanging receiver holds %d requests, want 2", h)
	}
	if f := r.store.finished(); len(f) != n {
		t.Errorf("%d attempts finished, want the healthy receiver's %d", len(f), n)
	}
}

func TestConcurrencyIsCapped(t *testing.T) {
	r := newRig(t)
	var mu sync.Mutex
	inFlight := map[string]int{}
	total, maxTotal, maxOne := 0, 0, 0
	var done atomic.Int64
	slow := func(name string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			mu.Lock()
			inFlight[name]++
			total++
			maxTotal, maxOne = max(maxTotal, total), max(maxOne, inFlight[name])
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			inFlight[name]--
			total--
			mu.Unlock()
			done.Add(1)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	r.subscribe(t, slow("a").URL)
	r.subscribe(t, slow("b").URL)
	tenants := []string{"t0", "t1", "t2", "t3", "t4", "t5"}
	r.tenants(t, tenants...)
	for _, tn := range tenants {
		r.put(t, tn, "v0")
		r.put(t, tn, "v1")
	}
	r.run(t, &webhook.Deliverer{Policy: allowLoopback(t), Poll: 20 * time.Millisecond, MaxInFlight: 3, MaxPerWebhook: 2})
	eventually(t, "24 deliveries", func() bool { return done.Load() >= 24 })
	mu.Lock()
	defer mu.Unlock()
	if maxTotal > 3 || maxOne > 2 {
		t.Fatalf("at most %d attempts in flight in total and %d for one subscription, want at most 3 and 2", maxTotal, maxOne)
	}
}

// jumpClock runs with real time but jumps forward when told to, so that
// a test knows what time an attempt failed at within a wide margin.
type jumpClock struct {
	mu   sync.Mutex
	base time.Time // the clock's time at since
	at   time.Time // real time
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Since(c.at))
}

// jump moves the clock an hour ahead and returns its new time.
func (c *jumpClock) jump() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.at = c.base.Add(time.Since(c.at)+time.Hour), time.Now()
	return c.base
}

func TestRetriesFollowBackoffFromTheFailure(t *testing.T) {
	r := newRig(t)
	clock := &jumpClock{base: time.Now(), at: time.Now()}
	var mu sync.Mutex
	var failedAt []time.Time // clock times at which the attempts failed
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		mu.Lock()
		defer mu.Unlock()
		if len(failedAt) < 3 {
			// The attempt took an hour: its retry counts from now, not
			// from when it was leased or sent.
			failedAt = append(failedAt, clock.jump())
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer flaky.Close()
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(release) })
	r.subscribe(t, hanging.URL)
	r.subscribe(t, flaky.URL)
	r.tenants(t, "acme")
	r.put(t, "acme", "v0")
	backoff := func(n int) time.Duration { return time.Duration(n+1) * 50 * time.Millisecond }
	// Polling once an hour: only waking for its own retries brings them
	// on time.
	r.run(t, &webhook.Deliverer{Policy: allowLoopback(t), Timeout: time.Hour, Poll: time.Hour, Now: clock.Now, Backoff: backoff})
	eventually(t, "the flaky receiver's fourth attempt", func() bool { return len(r.store.finished()) >= 4 })

	got := r.store.finished()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 4 || len(failedAt) != 3 || !got[3].delivered {
		t.Fatalf("attempts %+v, want three failures, then a delivery", got)
	}
	for n, f := range got[:3] {
		if f.delivered || f.id != got[3].id {
			t.Fatalf("attempt %d: %+v, want a failure of the same delivery", n, f)
		}
		// The next attempt is due Backoff(n) after the failure; the margin
		// is for the time between the receiver's answer and the deliverer
		// reading the clock, far below the hour a wrong origin would be off.
		if wait := f.next.Sub(failedAt[n]); wait < backoff(n) || wait > backoff(n)+time.Minute {
			t.Errorf("attempt %d failed at %v and is retried at %v: %v later, want Backoff(%d) = %v", n, failedAt[n], f.next, wait, n, backoff(n))
		}
	}
}
