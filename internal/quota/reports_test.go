package quota

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestOverQuotaRanksTheMostOverFirst(t *testing.T) {
	c := DefaultCatalog()
	tenants := []*Tenant{
		{ID: "a", Quotas: map[string]QuotaOverride{"compute.instances": {Hard: ptr(int64(2))}}},
		{ID: "b", Quotas: map[string]QuotaOverride{"compute.volumes": {Hard: ptr(int64(0))}, "compute.instances": {Hard: ptr(int64(1))}}},
		{ID: "c"},
	}
	usage := map[string]map[string]int64{
		"a": {"compute.instances": 3},                        // 1 over
		"b": {"compute.volumes": 4, "compute.instances": 1},  // 4 over, one resource only
		"c": {"compute.instances": 1, "compute.volumes": 10}, // at, not over, the catalog's 10
	}
	got := c.OverQuota(tenants, usage)
	if len(got) != 2 || got[0].Tenant != "b" || got[1].Tenant != "a" {
		t.Fatalf("over quota: %+v, want b (4 over) then a (1 over)", got)
	}
	if r := got[0].Resources; len(r) != 1 || r[0].Resource.Name != "compute.volumes" || r[0].Used != 4 || r[0].Hard != 0 {
		t.Fatalf("b's resources: %+v", r)
	}
}

func TestUtilisationRanksOverQuotaThenRatio(t *testing.T) {
	c := DefaultCatalog()
	tenants := []*Tenant{
		{ID: "idle", Name: "Idle"},
		{ID: "busy", Name: "Busy Co"},
		{ID: "over", Name: "Over"},
		{ID: "zero", Name: "Zero", Quotas: map[string]QuotaOverride{"compute.volumes": {Hard: ptr(int64(0))}}},
	}
	usage := map[string]map[string]int64{
		"busy": {"compute.instances": 9},  // 90 % of 10
		"over": {"compute.live_vcpus": 9}, // over 8
		"zero": {"compute.volumes": 1},    // use under a quota of 0: infinitely over
	}
	got := c.Utilisation(tenants, usage, "")
	order := []string{}
	for _, u := range got {
		order = append(order, u.Tenant.ID)
	}
	if want := []string{"zero", "over", "busy", "idle"}; len(order) != 4 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] || order[3] != want[3] {
		t.Fatalf("ranking %v, want %v", order, want)
	}
	if !math.IsInf(got[0].Ratio, 1) || got[2].Worst.Resource.Name != "compute.instances" || got[2].Ratio != 0.9 {
		t.Fatalf("ratios: %v %v %s", got[0].Ratio, got[2].Ratio, got[2].Worst.Resource.Name)
	}
	if found := c.Utilisation(tenants, usage, "busy co"); len(found) != 1 || found[0].Tenant.ID != "busy" {
		t.Fatalf("search by name, case folded: %+v", found)
	}
}

func TestHistorySamplesAcrossTheLedger(t *testing.T) {
	c := DefaultCatalog()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	view := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	vol := func(size int64) any {
		return consumerView{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": size}, Generation: 1,
			Footprint: Footprint{"compute.volumes": 1, "compute.total_volume_mb": size}}
	}
	events := []*Event{
		{Seq: 1, Time: at(0), Type: EventTenantCreate, Tenant: "t", After: view(tenantView{Name: "T"})},
		{Seq: 2, Time: at(1), Type: EventConsumerPut, Tenant: "t", Subject: "v1", After: view(vol(100))},
		{Seq: 3, Time: at(3), Type: EventQuotaSet, Tenant: "t", Subject: "compute.volumes", After: view(quotaView{Hard: 4})},
		{Seq: 4, Time: at(5), Type: EventConsumerDelete, Tenant: "t", Subject: "v1", Before: view(vol(100))},
	}
	h := c.NewHistory(&Tenant{ID: "t"}, nil, []time.Time{at(0), at(2), at(4), at(6)})
	for _, e := range events {
		if done, err := h.Feed(e); err != nil || done {
			t.Fatalf("feeding %d: done %v, %v", e.Seq, done, err)
		}
	}
	samples := h.Samples()
	want := []struct{ used, hard int64 }{{0, 10}, {1, 10}, {1, 4}, {0, 4}}
	for i, s := range samples {
		var volumes ResourceUse
		for _, r := range s.Resources {
			if r.Resource.Name == "compute.volumes" {
				volumes = r
			}
		}
		if volumes.Used != want[i].used || volumes.Hard != want[i].hard {
			t.Errorf("at %s: volumes %d of %d, want %d of %d", s.At, volumes.Used, volumes.Hard, want[i].used, want[i].hard)
		}
	}
	// Once every moment is sampled, later events are not needed.
	h = c.NewHistory(&Tenant{ID: "t"}, nil, []time.Time{at(0)})
	h.Feed(events[0])
	if done, _ := h.Feed(events[1]); !done {
		t.Fatal("an event after the last moment did not end the feed")
	}
}
