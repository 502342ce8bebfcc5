// Warning thresholds: crossings notified once, in both directions.

package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/allot-dev/allot/internal/quota"
)

func testThresholds(t *testing.T, h *harness) {
	h.must(createTenant("t", ""))
	h.must(setHard("t", "compute.volumes", 10)) // thresholds 80 and 100
	crossings := func(after int64) []string {
		var out []string
		for _, e := range h.events("t") {
			if e.Seq > after && e.Type == quota.EventThreshold {
				var v struct {
					Threshold int64
					Direction string
				}
				json.Unmarshal(e.After, &v)
				out = append(out, fmt.Sprintf("%s %d %s", e.Subject, v.Threshold, v.Direction))
			}
		}
		return out
	}
	step := func(name string, want []string, ops ...quota.Op) {
		t.Helper()
		seq := h.lastSeq()
		h.must(ops...)
		if got := crossings(seq); !slices.Equal(got, want) {
			t.Fatalf("%s: notified %v, want %v", name, got, want)
		}
	}
	for i := range 7 {
		step(fmt.Sprint(10*(i+1), "%"), nil, volume("t", fmt.Sprint("v", i), 2))
	}
	step("80%", []string{"compute.volumes 80 up"}, volume("t", "v7", 2))
	step("90%", nil, volume("t", "v8", 2))
	step("100%", []string{"compute.volumes 100 up"}, volume("t", "v9", 2))
	step("down and up in one change", nil, del("t", "v0"), volume("t", "v10", 2))
	seq := h.lastSeq()
	if _, err := h.doOn(h.engine, true, del("t", "v1")); err != nil {
		t.Fatal(err)
	}
	if got := crossings(seq); got != nil {
		t.Fatalf("a dry run notified %v", got)
	}
	step("90% again", []string{"compute.volumes 100 down"}, del("t", "v1"))
	step("70%", []string{"compute.volumes 80 down"}, del("t", "v2"), del("t", "v3"))
	step("a lower quota crosses both", []string{"compute.volumes 80 up", "compute.volumes 100 up"}, setHard("t", "compute.volumes", 5))
	step("own thresholds: no crossing is invented", nil, &quota.SetThresholds{Tenant: "t", Thresholds: []int64{50, 90, 150}})
	step("175%", []string{"compute.volumes 150 up"}, setHard("t", "compute.volumes", 4))
}
