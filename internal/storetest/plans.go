// Moving a tenant to another plan.

package storetest

import (
	"slices"
	"testing"

	"github.com/allot-dev/allot/internal/quota"
)

func testPlanChange(t *testing.T, h *harness) {
	h.must(createTenant("t", "")) // compute.instances: 10 by the catalog
	h.must(instance("t", "a", "stopped", 16), instance("t", "b", "stopped", 16), instance("t", "c", "stopped", 16))
	seq := h.lastSeq()
	res := h.must(&quota.UpdateTenant{Tenant: "t", Plan: "free", Name: "Renamed"}) // free: 2 instances
	if tn := res.Ops[0].Tenant; tn.Plan != "free" || tn.Name != "Renamed" {
		t.Fatalf("after the update: %+v", tn)
	}
	if got := h.hard("t", "compute.instances"); got != 2 {
		t.Fatalf("hard after moving to free: %d, want 2", got)
	}
	types := h.eventTypes("t", seq)
	if len(types) == 0 || types[0] != "tenant.update" || !slices.Contains(types, string(quota.EventThreshold)) {
		t.Fatalf("events of the plan change: %v", types)
	}
	h.refused(quota.CodeQuotaExceeded, instance("t", "d", "stopped", 16)) // over the new plan: no growth
	h.must(del("t", "a"))                                                 // shrinking is always allowed
	if r := h.must(&quota.UpdateTenant{Tenant: "t", Plan: "free"}); r.Ops[0].Changed {
		t.Fatal("the same plan again changed something")
	}
	h.must(&quota.UpdateTenant{Tenant: "t", Plan: "-"})
	if got := h.hard("t", "compute.instances"); got != 10 {
		t.Fatalf("hard with no plan: %d, want 10", got)
	}
	if _, err := h.do(&quota.UpdateTenant{Tenant: "t", Plan: "gold"}); quota.ErrorCode(err) != quota.CodeInvalid {
		t.Fatalf("an unknown plan: %v", err)
	}
	if _, err := h.do(&quota.UpdateTenant{Tenant: "nobody", Plan: "free"}); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Fatalf("an unknown tenant: %v", err)
	}
}
