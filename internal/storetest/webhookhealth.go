// Webhook health: what waits in the outbox and how the latest attempt went.

package storetest

import (
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// testWebhookHealth checks the health every store reports per webhook:
// pending deliveries, the next attempt of the first in each line, and the
// latest attempt's time, status and error, kept after the delivery is gone
// and never overwritten by an earlier attempt recorded late.
func testWebhookHealth(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(createTenant("u", ""))
	h.must(&quota.PutWebhook{Webhook: &quota.Webhook{URL: "http://127.0.0.1:1/a", Events: []string{"consumer.put"}, Sealed: []byte("x")}})
	h.must(&quota.PutWebhook{Webhook: &quota.Webhook{URL: "http://127.0.0.1:1/b", Events: []string{"consumer.put"}, Tenant: "u", Sealed: []byte("x")}})
	hooks, err := h.store.Webhooks(h.ctx)
	if err != nil || len(hooks) != 2 {
		t.Fatalf("webhooks: %v %v", hooks, err)
	}
	a, b := hooks[0].ID, hooks[1].ID
	if hooks[0].Tenant == "u" {
		a, b = b, a
	}
	queued := h.clock.Now()
	health := func() map[string]*quota.WebhookHealth {
		t.Helper()
		list, err := h.store.WebhookHealth(h.ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]*quota.WebhookHealth{}
		for i, x := range list {
			if i > 0 && list[i-1].Webhook >= x.Webhook {
				t.Errorf("health is not ordered by webhook: %s before %s", list[i-1].Webhook, x.Webhook)
			}
			m[x.Webhook] = x
		}
		return m
	}
	check := func(what string, got *quota.WebhookHealth, pending int64, next, last time.Time, status int, lastErr string) {
		t.Helper()
		if got == nil {
			t.Fatalf("%s: no health", what)
		}
		if got.Pending != pending || !got.NextAttempt.Equal(next) || !got.LastAttempt.Equal(last) || got.LastStatus != status ||
			got.LastError != lastErr || got.Failing() != (lastErr != "") {
			t.Errorf("%s: health %+v (failing %v), want pending %d, next %v, last %v, status %d, error %q",
				what, *got, got.Failing(), pending, next, last, status, lastErr)
		}
	}
	hs := health()
	check("a, nothing queued", hs[a], 0, time.Time{}, time.Time{}, 0, "")
	check("b, nothing queued", hs[b], 0, time.Time{}, time.Time{}, 0, "")

	h.must(volume("t", "v1", 2))
	h.must(volume("t", "v2", 2))
	h.must(volume("u", "v1", 2))
	hs = health()
	check("a, queued", hs[a], 3, queued, time.Time{}, 0, "")
	check("b, queued", hs[b], 1, queued, time.Time{}, 0, "")

	// a's line of t fails with a 500; its line of u is delivered, and that
	// later attempt is recorded first: the failure does not overwrite it.
	now := queued.Add(time.Minute)
	retry := now.Add(time.Hour)
	var delivered, failed []quota.Attempt
	for _, d := range mustLease(t, h, now) {
		switch {
		case d.Webhook.ID != a:
		case d.Event.Tenant == "t":
			failed = append(failed, attempt(d, now, 500, "the receiver answered 500 Internal Server Error", retry))
		default:
			delivered = append(delivered, attempt(d, now.Add(time.Second), 200, "", time.Time{}))
		}
	}
	if len(delivered) != 1 || len(failed) != 1 {
		t.Fatalf("leased %d of a's line u and %d of its line t, want 1 and 1", len(delivered), len(failed))
	}
	for _, at := range append(delivered, failed...) {
		if err := h.store.FinishDelivery(h.ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	hs = health()
	check("a, one line delivered", hs[a], 2, retry, now.Add(time.Second), 200, "")

	// The retry fails again, later: now a is failing.
	later := retry.Add(time.Second)
	for _, d := range mustLease(t, h, retry) {
		if d.Webhook.ID == a {
			if err := h.store.FinishDelivery(h.ctx, attempt(d, later, 0, "dial tcp 127.0.0.1:1: connection refused", later.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
		} else if err := h.store.FinishDelivery(h.ctx, attempt(d, later, 200, "", time.Time{})); err != nil {
			t.Fatal(err)
		}
	}
	hs = health()
	check("a, failing", hs[a], 2, later.Add(time.Hour), later, 0, "dial tcp 127.0.0.1:1: connection refused")
	check("b, delivered", hs[b], 0, time.Time{}, later, 200, "")

	// It recovers: everything goes through, and the health says so.
	end := later.Add(2 * time.Hour)
	for round := 0; round < 3; round++ {
		for _, d := range mustLease(t, h, end) {
			if err := h.store.FinishDelivery(h.ctx, attempt(d, end, 204, "", time.Time{})); err != nil {
				t.Fatal(err)
			}
		}
	}
	hs = health()
	check("a, recovered", hs[a], 0, time.Time{}, end, 204, "")

	h.must(&quota.DeleteWebhook{ID: a})
	if hs = health(); len(hs) != 1 || hs[b] == nil {
		t.Errorf("after deleting %s, health of %v", a, hs)
	}
}

// attempt is the outcome of an attempt at d.
func attempt(d *quota.Delivery, at time.Time, status int, err string, next time.Time) quota.Attempt {
	return quota.Attempt{Delivery: d.ID, Webhook: d.Webhook.ID, At: at, Delivered: err == "", Status: status, Error: err, Next: next}
}
