// Reconciling a tenant with an inventory of what really exists.

package storetest

import (
	"maps"
	"slices"
	"testing"

	"github.com/allot-dev/allot/internal/quota"
)

func testReconcile(t *testing.T, h *harness) {
	h.must(createTenant("t", "free")) // 2 instances, 512 MB live memory
	h.must(instance("t", "kept", "running", 128), instance("t", "gone", "running", 128), volume("t", "vol", 10))
	inv := &quota.Reconcile{Tenant: "t", Kinds: []string{"compute.instance"}, Inventory: []quota.InventoryItem{
		{ID: "kept", Spec: quota.Spec{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 256}}},
		{ID: "new-1", Spec: quota.Spec{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 256}}},
		{ID: "new-2", Spec: quota.Spec{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": 4096}}},
	}}
	before := h.usage("t")
	seq := h.lastSeq()
	res, err := h.doOn(h.engine, true, inv)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Ops[0].Reconcile; !slices.Equal(r.Created, []string{"new-1", "new-2"}) || !slices.Equal(r.Updated, []string{"kept"}) || !slices.Equal(r.Deleted, []string{"gone"}) {
		t.Fatalf("dry run diff %+v", r)
	}
	if !maps.Equal(h.usage("t"), before) || h.lastSeq() != seq {
		t.Fatal("a dry run changed something")
	}
	res = h.must(inv)
	o := res.Ops[0]
	if got := o.Usage["compute.live_memory_mb"]; got != 256+256+4096 {
		t.Fatalf("live memory %d after reconciling", got)
	}
	if o.Usage["compute.instances"] != 3 || o.Usage["compute.volumes"] != 1 {
		t.Fatalf("usage after reconciling: %v (volumes are not covered and stay)", o.Usage)
	}
	for _, e := range h.events("t") {
		if e.Seq > seq && e.Type != quota.EventThreshold && e.Reason != "reconcile" {
			t.Errorf("event %s %s has reason %q, want reconcile", e.Type, e.Subject, e.Reason)
		}
	}
	// Reality wins over quotas: the tenant is now over, and new claims are refused.
	h.refused(quota.CodeQuotaExceeded, instance("t", "more", "stopped", 16))
	// The same inventory again changes nothing.
	if r := h.must(inv).Ops[0]; r.Changed {
		t.Fatalf("reconciling twice changed %+v", r.Reconcile)
	}
	// Drift the other way: everything went away.
	r := h.must(&quota.Reconcile{Tenant: "t", Kinds: []string{"compute.instance"}}).Ops[0]
	if len(r.Reconcile.Deleted) != 3 || r.Usage["compute.instances"] != 0 {
		t.Fatalf("emptying: %+v %v", r.Reconcile, r.Usage)
	}
}
