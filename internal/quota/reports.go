package quota

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"
	"time"
)

// Read models: what the operator views compute from tenants, usage and
// the ledger. They take plain data and know nothing of HTTP.

// ResourceUse is one resource of a tenant: its use against its quota.
type ResourceUse struct {
	Resource    *Resource
	Used, Hard  int64
	Requestable Range
	// Tree: Used is the tenant's tree usage and Hard the quota set for
	// its tree (over-quota reports).
	Tree bool
	// Below is what the tenant's descendants use (usage at a time).
	Below int64
}

// Over reports whether the use is above the hard quota.
func (u ResourceUse) Over() bool { return u.Used > u.Hard }

// Use is a tenant's use of res.
func (c *Catalog) Use(t *Tenant, res *Resource, used map[string]int64) ResourceUse {
	return ResourceUse{Resource: res, Used: used[res.Name], Hard: c.Hard(t, res), Requestable: c.Requestable(t, res)}
}

// OverQuota is a tenant above some of its hard quotas.
type OverQuota struct {
	Tenant    string
	Resources []ResourceUse // in catalog order
}

// OverQuota lists the tenants whose usage exceeds a hard quota, the one
// most over first.
func (c *Catalog) OverQuota(tenants []*Tenant, usage map[string]map[string]int64) []OverQuota {
	views := make([]*TenantView, len(tenants))
	for i, t := range tenants {
		views[i] = &TenantView{Tenant: t, Usage: usage[t.ID]}
	}
	return c.OverQuotaViews(views)
}

// OverQuotaViews lists the tenants whose own usage exceeds their hard
// quota, or whose tree usage exceeds the quota set for their tree (after a
// move under a full parent, or a parent's quota lowered), the one most
// over first.
func (c *Catalog) OverQuotaViews(views []*TenantView) []OverQuota {
	var out []OverQuota
	for _, v := range views {
		t := v.Tenant
		var over []ResourceUse
		for _, res := range c.Resources {
			if u := c.Use(t, res, v.Usage); u.Over() {
				over = append(over, u)
			} else if hard, set := c.SetHard(t, res); set && v.Below[res.Name] > 0 && v.Tree(res.Name) > hard {
				over = append(over, ResourceUse{Resource: res, Used: v.Tree(res.Name), Hard: hard, Requestable: c.Requestable(t, res), Tree: true})
			}
		}
		if over != nil {
			out = append(out, OverQuota{Tenant: t.ID, Resources: over})
		}
	}
	worst := func(o OverQuota) int64 {
		var w int64
		for _, u := range o.Resources {
			w = max(w, u.Used-u.Hard)
		}
		return w
	}
	slices.SortStableFunc(out, func(a, b OverQuota) int { return cmp.Compare(worst(b), worst(a)) })
	return out
}

// Utilisation is a tenant's most used resource, relative to its quota.
type Utilisation struct {
	Tenant     *Tenant
	Worst      ResourceUse
	Ratio      float64  // Worst's used/hard; +Inf for use under a quota of 0
	Over       []string // the resources above their hard quota
	Thresholds []int64
}

// Utilisation ranks the tenants whose id or name contains search (case
// folded; "" for all): those over a hard quota first, then by their
// highest utilisation, then by id.
func (c *Catalog) Utilisation(tenants []*Tenant, usage map[string]map[string]int64, search string) []Utilisation {
	search = strings.ToLower(search)
	var rows []Utilisation
	for _, t := range tenants {
		if search != "" && !strings.Contains(strings.ToLower(t.ID), search) && !strings.Contains(strings.ToLower(t.Name), search) {
			continue
		}
		row := Utilisation{Tenant: t, Over: []string{}, Thresholds: c.TenantThresholds(t), Ratio: -1}
		for _, res := range c.Resources {
			u := c.Use(t, res, usage[t.ID])
			ratio := 0.0
			switch {
			case u.Hard > 0:
				ratio = float64(u.Used) / float64(u.Hard)
			case u.Used > 0:
				ratio = math.Inf(1)
			}
			if ratio > row.Ratio {
				row.Worst, row.Ratio = u, ratio
			}
			if u.Over() {
				row.Over = append(row.Over, res.Name)
			}
		}
		rows = append(rows, row)
	}
	slices.SortStableFunc(rows, func(x, y Utilisation) int {
		return cmp.Or(cmp.Compare(min(len(y.Over), 1), min(len(x.Over), 1)), cmp.Compare(y.Ratio, x.Ratio), strings.Compare(x.Tenant.ID, y.Tenant.ID))
	})
	return rows
}

// Sample is a tenant's usage and hard quotas at a moment.
type Sample struct {
	At        time.Time
	Resources []ResourceUse // in catalog order
}

// History rebuilds a tenant's usage at given moments from its ledger, in
// one pass: feed it the tenant's events in sequence order, from its
// creation on, until Feed says it has what it needs, then take Samples.
type History struct {
	cat     *Catalog
	tenant  *Tenant
	moments []time.Time // ascending
	replay  *Replay
	samples []Sample
}

// NewHistory samples t at moments (ascending), starting from a snapshot
// (nil: from the tenant's creation): feed it the events after it.
func (c *Catalog) NewHistory(t *Tenant, from *Snapshot, moments []time.Time) *History {
	h := &History{cat: c, tenant: t, moments: moments, replay: NewReplay()}
	if from != nil {
		h.replay.Seed(from)
	}
	return h
}

// Feed applies one event; it reports whether every moment is sampled, so
// that later events are not needed.
func (h *History) Feed(e *Event) (done bool, err error) {
	for len(h.samples) < len(h.moments) && e.Time.After(h.moments[len(h.samples)]) {
		h.sample()
	}
	if len(h.samples) == len(h.moments) {
		return true, nil
	}
	return false, h.replay.Apply(e)
}

// Samples returns a sample for every moment: those after the last event
// fed show the state it left.
func (h *History) Samples() []Sample {
	for len(h.samples) < len(h.moments) {
		h.sample()
	}
	return h.samples
}

func (h *History) sample() {
	id := h.tenant.ID
	base := &Tenant{ID: id, Plan: h.tenant.Plan} // plan and catalog defaults
	if plan, ok := h.replay.Plans[id]; ok {
		base.Plan = plan // the plan it had then
	}
	s := Sample{At: h.moments[len(h.samples)], Resources: make([]ResourceUse, 0, len(h.cat.Resources))}
	for _, res := range h.cat.Resources {
		hard, ok := h.replay.Hard[id][res.Name]
		if !ok {
			hard = h.cat.Hard(base, res)
		}
		s.Resources = append(s.Resources, ResourceUse{Resource: res, Used: h.replay.Usage[id][res.Name], Hard: hard, Below: h.replay.Below[id][res.Name]})
	}
	h.samples = append(h.samples, s)
}

// UsageHistory rebuilds a tenant's usage and hard quotas at moments
// (ascending) from the ledger. Each moment starts from the tenant's newest
// snapshot no later than it, when that is further on than the replay
// stands, and applies only the events after it: two reads for the whole
// history, the snapshots and the events between them, whose cost is the
// events between snapshots, not the ledger's length. A replay that would
// pass maxReplay events is refused, and so is a time before the retention
// horizon, which can no longer be answered.
func (c *Catalog) UsageHistory(ctx context.Context, store Store, tenant string, moments []time.Time, maxReplay int) ([]Sample, error) {
	t, err := store.Tenant(ctx, tenant)
	if err != nil {
		return nil, err
	}
	horizon, err := store.Horizon(ctx)
	if err != nil {
		return nil, err
	}
	if horizon.Seq > 0 && moments[0].Before(horizon.Time) {
		return nil, Errorf(CodeBeforeRetention, "the ledger is kept from %s on; ask for that time or a later one",
			horizon.Time.UTC().Format(time.RFC3339Nano))
	}
	starts, err := store.SnapshotsAt(ctx, tenant, moments)
	if err != nil {
		return nil, err
	}
	// Snapshots of an earlier tenant under this id do not count.
	for i := range starts {
		if s := starts[i].Snapshot; s != nil && s.Seq < t.CreatedSeq {
			starts[i].Snapshot = nil
		}
	}
	// The events each moment needs: after its snapshot (or the tenant's
	// creation) and before the next one; the ranges, merged.
	var ranges []SeqRange
	for i, s := range starts {
		r := SeqRange{After: max(0, t.CreatedSeq-1), Before: s.Next, Until: moments[i]}
		if s.Snapshot != nil {
			r.After = s.Snapshot.Seq
		}
		if n := len(ranges); n > 0 && (ranges[n-1].Before == 0 || r.After < ranges[n-1].Before) {
			if r.Before == 0 || ranges[n-1].Before != 0 && r.Before > ranges[n-1].Before {
				ranges[n-1].Before = r.Before
			}
			ranges[n-1].Until = r.Until
			continue
		}
		ranges = append(ranges, r)
	}
	events, err := store.EventRanges(ctx, tenant, ranges, maxReplay+1)
	if err != nil {
		return nil, err
	}
	if len(events) > maxReplay {
		return nil, Errorf(CodeReplayTooLong, "answering needs more than %d of this tenant's events replayed", maxReplay)
	}
	h := c.NewHistory(t, nil, moments)
	pos := max(0, t.CreatedSeq-1) // the replay stands here
	for i, m := range moments {
		if s := starts[i].Snapshot; s != nil && s.Seq > pos {
			h.replay.Seed(s)
			pos = s.Seq
		}
		for len(events) > 0 && (events[0].Seq <= pos || !events[0].Time.After(m)) {
			if events[0].Seq > pos {
				if err := h.replay.Apply(events[0]); err != nil {
					return nil, err
				}
				pos = events[0].Seq
			}
			events = events[1:]
		}
		h.sample()
	}
	return h.samples, nil
}
