package quota

import (
	"math/bits"
	"slices"
	"strings"
)

// usageMark is a resource's usage and hard quota at a moment.
type usageMark struct{ used, hard int64 }

// touch notes a tenant resource's state before the running change first
// moves it.
func (ws *workset) touch(tenant, resource string) {
	k := [2]string{tenant, resource}
	if _, ok := ws.touched[k]; ok || ws.touched == nil {
		return
	}
	if t := ws.tenants[tenant]; t != nil {
		if res := ws.cat.Resource(resource); res != nil {
			used, hard := ws.measure(t, res)
			ws.touched[k] = usageMark{used, hard}
		}
	}
}

// reached counts the thresholds (percentages) that used/hard has reached.
// A hard quota of 0 is reached by any use at all.
func reached(used, hard int64, thresholds []int64) int {
	n := 0
	for _, th := range thresholds {
		if used > 0 && atLeast(used, 100, hard, th) {
			n++
		}
	}
	return n
}

// atLeast reports a*b >= c*d for non-negative operands, without overflow.
func atLeast(a, b, c, d int64) bool {
	h1, l1 := bits.Mul64(uint64(a), uint64(b))
	h2, l2 := bits.Mul64(uint64(c), uint64(d))
	return h1 > h2 || h1 == h2 && l1 >= l2
}

type thresholdView struct {
	Threshold int64  `json:"threshold"`
	Direction string `json:"direction"` // "up" or "down"
	Used      int64  `json:"used"`
	Hard      int64  `json:"hard"`
}

// notify records a quota.threshold event for every threshold the running
// change crossed, either way, on the resources it touched, at every level
// of the tree it moved (see measure). A change of the
// thresholds themselves is a new baseline, not a crossing.
func (ws *workset) notify(ch *Change) {
	keys := make([][2]string, 0, len(ws.touched))
	for k := range ws.touched {
		keys = append(keys, k)
	}
	order := func(r string) int {
		return slices.IndexFunc(ws.cat.Resources, func(x *Resource) bool { return x.Name == r })
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if a[0] != b[0] {
			return strings.Compare(a[0], b[0])
		}
		return order(a[1]) - order(b[1])
	})
	for _, k := range keys {
		tenant, resource := k[0], k[1]
		t := ws.tenants[tenant]
		if t == nil || ws.newThresholds[tenant] {
			continue
		}
		ths := ws.cat.TenantThresholds(t)
		was := ws.touched[k]
		used, hard := ws.measure(t, ws.cat.Resource(resource))
		b, a := reached(was.used, was.hard, ths), reached(used, hard, ths)
		for i := b; i < a; i++ {
			ws.event(ch, EventThreshold, tenant, resource, nil, thresholdView{ths[i], "up", used, hard})
		}
		for i := b - 1; i >= a; i-- {
			ws.event(ch, EventThreshold, tenant, resource, nil, thresholdView{ths[i], "down", used, hard})
		}
	}
}
