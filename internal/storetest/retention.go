// The ledger over months: snapshots, pruning and what stays answerable.

package storetest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/ledger"
	"github.com/allot-dev/allot/internal/quota"
)

// keeper is a ledger keeper on the harness's store and clock.
func (h *harness) keeper(retention, auditRetention time.Duration) *ledger.Keeper {
	h.t.Helper()
	k, err := ledger.New(ledger.Config{Store: h.store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: h.clock.Now,
		SnapshotEvery: 100, Retention: retention, AuditRetention: auditRetention, Chunk: 7, Tick: 50 * time.Millisecond})
	if err != nil {
		h.t.Fatal(err)
	}
	return k
}

// prune runs the keeper until nothing is left to prune.
func (h *harness) prune(k *ledger.Keeper) {
	h.t.Helper()
	for range 200 {
		before := k.Stats().Pruned
		if err := k.Step(h.ctx); err != nil {
			h.t.Fatal(err)
		}
		if k.Stats().Pruned == before {
			return
		}
	}
	h.t.Fatal("pruning did not finish")
}

// history is the tenant's usage at moments, as the API answers it.
func (h *harness) history(tenant string, moments []time.Time) ([]quota.Sample, error) {
	return quota.DefaultCatalog().UsageHistory(h.ctx, h.store, tenant, moments, 1_000_000)
}

// testRetention writes a ledger over hours with checkpoints between, then
// prunes to a one-hour retention: usage at every retained moment answers
// as before, from snapshots; earlier moments get before_retention; audit
// events stay; and the ledger still replays to the state.
func testRetention(t *testing.T, h *harness) {
	h.must(createTenant("t", "pro"))
	h.must(createTenant("u", ""))
	k := h.keeper(time.Hour, 0)
	start := h.clock.Now()
	var moments []time.Time
	for step := range 24 { // 4 hours, 10 minutes a step
		for i := range 5 {
			h.must(volume("t", fmt.Sprint("v", (step*5+i)%17), int64(2+step+i)))
		}
		if step%3 == 0 {
			h.must(setHard("t", "compute.volumes", int64(40+step)))
		}
		h.must(instance("u", fmt.Sprint("i", step%5), "running", int64(64+step)))
		if step%4 == 1 {
			h.must(del("u", fmt.Sprint("i", step%5)))
		}
		moments = append(moments, h.clock.Now())
		if step%2 == 0 {
			if _, err := k.Checkpoint(h.ctx); err != nil {
				t.Fatal(err)
			}
		}
		h.clock.Advance(10 * time.Minute)
	}
	moments = append(moments, h.clock.Now())
	before := map[string][]quota.Sample{}
	for _, tn := range []string{"t", "u"} {
		s, err := h.history(tn, moments)
		if err != nil {
			t.Fatal(err)
		}
		before[tn] = s
		// From snapshots or from the start, one answer: the history across
		// snapshot boundaries is exact.
		for i, m := range moments {
			one, err := h.history(tn, []time.Time{m})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(one[0].Resources, s[i].Resources) {
				t.Fatalf("%s at %s: alone %v, in a history %v", tn, m, one[0].Resources, s[i].Resources)
			}
		}
	}
	if got := before["t"][0].Resources; reflect.DeepEqual(got, before["t"][len(moments)-1].Resources) {
		t.Fatalf("the history does not change over time: %v", got)
	}

	h.prune(k)
	hz, err := h.store.Horizon(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hz.Seq == 0 || hz.Time.Before(start) || h.clock.Now().Sub(hz.Time) < time.Hour {
		t.Fatalf("horizon %+v: want a checkpoint at least an hour old", hz)
	}
	retained := 0
	for i, m := range moments {
		for _, tn := range []string{"t", "u"} {
			got, err := h.history(tn, []time.Time{m})
			if m.Before(hz.Time) {
				if qe, ok := errors.AsType[*quota.Error](err); !ok || qe.Code != quota.CodeBeforeRetention {
					t.Fatalf("%s at %s, before the horizon %s: err = %v, want before_retention", tn, m, hz.Time, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s at %s: %v", tn, m, err)
			}
			retained++
			if !reflect.DeepEqual(got[0].Resources, before[tn][i].Resources) {
				t.Fatalf("%s at %s: after pruning %v, before %v", tn, m, got[0].Resources, before[tn][i].Resources)
			}
		}
	}
	if retained == 0 {
		t.Fatal("no moment was retained")
	}
	// Below the horizon only audit events remain; above it, all.
	es, err := h.store.Events(h.ctx, quota.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	audits := 0
	for _, e := range es {
		if e.Seq <= hz.Seq {
			if !e.Type.Audit() {
				t.Fatalf("event %d (%s) is at or before the horizon %d and not an audit event", e.Seq, e.Type, hz.Seq)
			}
			audits++
		}
	}
	if audits == 0 {
		t.Fatal("the audit events before the horizon were pruned, with audit retention for ever")
	}
	CheckLedger(t, h.store)

	// Claims go on after pruning, and the ledger still replays.
	h.must(volume("t", "after", 3))
	CheckLedger(t, h.store)

	// An audit retention lets the old audit events go too, in order.
	h.clock.Advance(time.Hour)
	k2 := h.keeper(time.Hour, 90*time.Minute)
	h.prune(k2)
	hz2, err := h.store.Horizon(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hz2.AuditSeq == 0 {
		t.Fatalf("horizon %+v: no audit event pruned", hz2)
	}
	es, _ = h.store.Events(h.ctx, quota.EventFilter{Limit: 1000})
	for _, e := range es {
		if e.Seq <= hz2.AuditSeq {
			t.Fatalf("event %d is kept below the audit horizon %d", e.Seq, hz2.AuditSeq)
		}
		if e.Seq <= hz2.Seq && h.clock.Now().Sub(e.Time) > 90*time.Minute+10*time.Minute {
			t.Fatalf("audit event %d of %s outlived its retention", e.Seq, e.Time)
		}
	}
}

// testPruneKeepsOwedEvents: an event whose webhook delivery is pending
// survives pruning, and so does everything after it, until delivered.
func testPruneKeepsOwedEvents(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.volumes", 100))
	h.must(&quota.PutWebhook{Webhook: &quota.Webhook{URL: "http://127.0.0.1:1/t", Events: []string{"consumer.put"}, Tenant: "t", Sealed: []byte("x")}})
	k := h.keeper(time.Minute, 0)
	for i := range 30 {
		h.must(volume("t", fmt.Sprint("v", i), 2))
		if i%10 == 9 {
			if _, err := k.Checkpoint(h.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.clock.Advance(time.Hour)
	h.prune(k)
	ds, err := h.store.LeaseDeliveries(h.ctx, h.clock.Now(), time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Event.Subject != "v0" {
		t.Fatalf("deliveries after pruning: %d, want the first, for v0", len(ds))
	}
	es, err := h.store.Events(h.ctx, quota.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	subjects := []string{}
	for _, e := range es {
		if e.Type == quota.EventConsumerPut {
			subjects = append(subjects, e.Subject)
		}
	}
	if len(subjects) != 30 {
		t.Fatalf("consumer events kept while owed to a webhook: %d, want 30", len(subjects))
	}
	// Delivered, all of them: now they go.
	if err := h.store.FinishDelivery(h.ctx, quota.Attempt{Delivery: ds[0].ID, Webhook: ds[0].Webhook.ID, At: h.clock.Now(), Delivered: true, Status: 200}); err != nil {
		t.Fatal(err)
	}
	for {
		ds, err := h.store.LeaseDeliveries(h.ctx, h.clock.Now(), time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			if err := h.store.FinishDelivery(h.ctx, quota.Attempt{Delivery: d.ID, Webhook: d.Webhook.ID, At: h.clock.Now(), Delivered: true, Status: 200}); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.prune(k)
	es, _ = h.store.Events(h.ctx, quota.EventFilter{Limit: 1000})
	if slices.ContainsFunc(es, func(e *quota.Event) bool { return e.Type == quota.EventConsumerPut }) {
		t.Fatal("delivered consumer events older than the retention were not pruned")
	}
}
