// The outbox: webhook deliveries in order, one in flight per line.

package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// testOutbox checks that events reach the outbox with their change, in
// order, one in flight per webhook and tenant.
func testOutbox(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(createTenant("u", ""))
	h.must(&quota.PutWebhook{Webhook: &quota.Webhook{URL: "http://127.0.0.1:1/all", Events: []string{"*"}, Sealed: []byte("x")}})
	h.must(&quota.PutWebhook{Webhook: &quota.Webhook{URL: "http://127.0.0.1:1/u", Events: []string{"consumer.put"}, Tenant: "u", Sealed: []byte("x")}})
	hooks, err := h.store.Webhooks(h.ctx)
	if err != nil || len(hooks) != 2 {
		t.Fatalf("webhooks: %v %v", hooks, err)
	}
	if hooks[0].Tenant == "u" {
		hooks[0], hooks[1] = hooks[1], hooks[0]
	}
	h.must(volume("t", "v1", 2))
	h.must(volume("t", "v2", 2))
	h.must(volume("u", "v1", 2))
	if _, err := h.doOn(h.engine, true, volume("u", "dry", 2)); err != nil {
		t.Fatal(err)
	}
	h.refused(quota.CodeNotFound, del("u", "nothing"))

	now := h.clock.Now()
	got := map[string][]string{} // webhook URL → "tenant type subject", in delivery order
	for round := 0; ; round++ {
		ds, err := h.store.LeaseDeliveries(h.ctx, now, time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		lines := map[string]bool{}
		for _, d := range ds {
			line := d.Webhook.ID + "/" + d.Event.Tenant
			if lines[line] {
				t.Fatalf("two deliveries of one line in flight at once: %s", line)
			}
			lines[line] = true
			// Leased: nobody else gets it.
			if again, _ := h.store.LeaseDeliveries(h.ctx, now, time.Minute, 100); len(again) != 0 {
				t.Fatalf("leased deliveries handed out again: %d", len(again))
			}
		}
		for i, d := range ds {
			if round == 0 && i < 2 {
				// A failed attempt keeps its place in line until retried.
				if err := h.store.FinishDelivery(h.ctx, quota.Attempt{Delivery: d.ID, Webhook: d.Webhook.ID, At: now,
					Error: "refused", Next: now.Add(time.Second)}); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := h.store.FinishDelivery(h.ctx, quota.Attempt{Delivery: d.ID, Webhook: d.Webhook.ID, At: now, Delivered: true, Status: 200}); err != nil {
				t.Fatal(err)
			}
			got[d.Webhook.URL] = append(got[d.Webhook.URL], d.Event.Tenant+" "+string(d.Event.Type)+" "+d.Event.Subject)
		}
		now = now.Add(2 * time.Second)
	}
	want := map[string][]string{
		"http://127.0.0.1:1/all": {"t consumer.put v1", "t consumer.put v2", "u webhook.create " + hooks[1].ID, "u consumer.put v1"},
		"http://127.0.0.1:1/u":   {"u consumer.put v1"},
	}
	// Order is promised per tenant: compare the tenants' lines.
	perTenant := func(ls []string) map[string][]string {
		m := map[string][]string{}
		for _, l := range ls {
			if tn := firstField(l); tn != "" {
				m[tn] = append(m[tn], l)
			}
		}
		return m
	}
	for url, lines := range want {
		g, w := perTenant(got[url]), perTenant(lines)
		for tn := range w {
			if !slices.Equal(g[tn], w[tn]) {
				t.Errorf("%s, tenant %s: delivered %v, want %v", url, tn, g[tn], w[tn])
			}
		}
	}
	// Deleting a webhook drops what it had pending.
	h.must(volume("u", "v2", 2))
	h.must(&quota.DeleteWebhook{ID: hooks[1].ID})
	for _, d := range mustLease(t, h, now) {
		if d.Webhook.ID == hooks[1].ID {
			t.Fatalf("a deleted webhook still has deliveries")
		}
	}
}

func firstField(l string) string {
	f, _, _ := strings.Cut(l, " ")
	return f
}

func mustLease(t *testing.T, h *harness, now time.Time) []*quota.Delivery {
	t.Helper()
	ds, err := h.store.LeaseDeliveries(h.ctx, now, time.Minute, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
