// Quota change requests and their policies.

package storetest

import (
	"slices"
	"testing"

	"github.com/allot-dev/allot/internal/quota"
)

func request(tenant, res string, value int64) quota.Op {
	return &quota.RequestQuota{Tenant: tenant, Resource: res, Value: value}
}

func decide(tenant, id string, approve bool) quota.Op {
	return &quota.Decide{Tenant: tenant, ID: id, Approve: approve, Comment: "ok"}
}

func testRequestPolicy(t *testing.T, h *harness) {
	h.must(createTenant("t", "")) // compute.instances: default 10, requestable 1–100, auto; dcs.instances: 10, 1–10, review
	h.must(instance("t", "vm-1", "stopped", 16), instance("t", "vm-2", "stopped", 16), instance("t", "vm-3", "stopped", 16))

	type step struct {
		name   string
		op     func() quota.Op
		code   quota.Code
		status quota.RequestStatus
		hard   int64 // the resource's hard quota after
		events []string
	}
	var pendingID string
	steps := []step{
		{"auto inside the range", func() quota.Op { return request("t", "compute.instances", 40) }, "", quota.RequestApproved, 40,
			[]string{"request.create", "request.approve", "quota.set"}},
		{"outside the range", func() quota.Op { return request("t", "compute.instances", 101) }, quota.CodeOutsideRange, "", 40, nil},
		{"below usage", func() quota.Op { return request("t", "compute.instances", 2) }, quota.CodeBelowUsage, "", 40, nil},
		{"auto decrease to usage", func() quota.Op { return request("t", "compute.instances", 3) }, "", quota.RequestApproved, 3,
			[]string{"request.create", "request.approve", "quota.set", string(quota.EventThreshold), string(quota.EventThreshold)}},
		{"review inside the range", func() quota.Op { return request("t", "dcs.instances", 5) }, "", quota.RequestPending, 10,
			[]string{"request.create"}},
		{"duplicate", func() quota.Op { return request("t", "dcs.instances", 5) }, "", quota.RequestPending, 10, nil},
		{"replacement", func() quota.Op { return request("t", "dcs.instances", 7) }, "", quota.RequestPending, 10,
			[]string{"request.supersede", "request.create"}},
		{"deny", func() quota.Op { return decide("t", pendingID, false) }, "", quota.RequestDenied, 10, []string{"request.deny"}},
		{"deny again", func() quota.Op { return decide("t", pendingID, false) }, quota.CodeConflict, "", 10, nil},
		{"ask again", func() quota.Op { return request("t", "dcs.instances", 2) }, "", quota.RequestPending, 10, []string{"request.create"}},
		{"approve", func() quota.Op { return decide("t", pendingID, true) }, "", quota.RequestApproved, 2,
			[]string{"request.approve", "quota.set"}},
		{"unknown request", func() quota.Op { return decide("t", "req-nope", true) }, quota.CodeNotFound, "", 2, nil},
	}
	var firstDup string
	for _, s := range steps {
		before := h.lastSeq()
		op := s.op()
		res, err := h.do(op)
		if s.code != "" {
			if quota.ErrorCode(err) != s.code {
				t.Fatalf("%s: err = %v, want %s", s.name, err, s.code)
			}
		} else {
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			r := res.Ops[0].Request
			if r.Status != s.status {
				t.Fatalf("%s: status %s, want %s", s.name, r.Status, s.status)
			}
			if stored, err := h.store.Request(h.ctx, "t", r.ID); err != nil || stored.Status != s.status || len(stored.History) == 0 {
				t.Fatalf("%s: stored request %+v, %v", s.name, stored, err)
			}
			pendingID = r.ID
			switch s.name {
			case "review inside the range":
				firstDup = r.ID
			case "duplicate":
				if r.ID != firstDup || res.Ops[0].Created {
					t.Fatalf("duplicate: got %s (created %v), want the open request %s", r.ID, res.Ops[0].Created, firstDup)
				}
			case "replacement":
				old, _ := h.store.Request(h.ctx, "t", firstDup)
				if old.Status != quota.RequestSuperseded {
					t.Fatalf("replaced request is %s, want superseded", old.Status)
				}
			}
		}
		res0 := "compute.instances"
		if s.name != "auto inside the range" && s.name != "outside the range" && s.name != "below usage" && s.name != "auto decrease to usage" {
			res0 = "dcs.instances"
		}
		if got := h.hard("t", res0); got != s.hard {
			t.Fatalf("%s: hard quota of %s is %d, want %d", s.name, res0, got, s.hard)
		}
		if got := h.eventTypes("t", before); !slices.Equal(got, s.events) {
			t.Fatalf("%s: events %v, want %v", s.name, got, s.events)
		}
	}
	pending, err := h.store.Requests(h.ctx, quota.RequestFilter{Tenant: "t", Status: "pending", Limit: 10})
	if err != nil || len(pending) != 0 {
		t.Fatalf("pending requests left: %v %v", pending, err)
	}
	all, _ := h.store.Requests(h.ctx, quota.RequestFilter{Tenant: "t", Limit: 100})
	if len(all) != 5 {
		t.Fatalf("%d requests stored, want 5", len(all))
	}
}
