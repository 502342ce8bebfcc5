package quota

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// Replay rebuilds state from the ledger: fed every event in sequence
// order, it holds each tenant's usage and effective hard quotas as they
// were after the last event fed. Because every change writes its event in
// its own transaction, a replay of the whole ledger equals the stored
// state; tests hold the stores to that.
type Replay struct {
	Usage map[string]map[string]int64 // tenant → resource → used
	// Hard holds hard quotas set by quota.set events; resources without
	// one have their plan's or the catalog's.
	Hard map[string]map[string]int64
	// Plans holds each tenant's plan, from tenant.create and tenant.update.
	Plans map[string]string
	// Parents holds each tenant's parent ("": a root), from tenant.create
	// and tenant.move; Below, what its descendants use, from usage.subtree.
	Parents map[string]string
	Below   map[string]map[string]int64
}

// NewReplay returns an empty replay.
func NewReplay() *Replay {
	return &Replay{Usage: map[string]map[string]int64{}, Hard: map[string]map[string]int64{}, Plans: map[string]string{},
		Parents: map[string]string{}, Below: map[string]map[string]int64{}}
}

// Seed starts a tenant from a snapshot: the events fed next are those
// after it.
func (r *Replay) Seed(s *Snapshot) {
	r.Usage[s.Tenant] = maps.Clone(s.Usage)
	if r.Usage[s.Tenant] == nil {
		r.Usage[s.Tenant] = map[string]int64{}
	}
	r.Hard[s.Tenant] = maps.Clone(s.Hard)
	r.Plans[s.Tenant] = s.Plan
	r.Parents[s.Tenant] = s.Parent
	r.Below[s.Tenant] = maps.Clone(s.Below)
}

// SnapshotOf is what the replay holds for tenant, as a snapshot at seq;
// nil when the tenant does not exist there.
func (r *Replay) SnapshotOf(tenant string, seq int64, at time.Time) *Snapshot {
	plan, ok := r.Plans[tenant]
	if !ok && r.Usage[tenant] == nil {
		return nil
	}
	return &Snapshot{Tenant: tenant, Seq: seq, Time: at, Usage: maps.Clone(r.Usage[tenant]), Hard: maps.Clone(r.Hard[tenant]), Plan: plan,
		Parent: r.Parents[tenant], Below: maps.Clone(r.Below[tenant])}
}

// Apply feeds one event.
func (r *Replay) Apply(e *Event) error {
	switch e.Type {
	case EventConsumerPut, EventConsumerDelete, EventConsumerExpired:
		var before, after struct{ Footprint Footprint }
		if err := unmarshalView(e.Before, &before); err != nil {
			return fmt.Errorf("event %d: %w", e.Seq, err)
		}
		if err := unmarshalView(e.After, &after); err != nil {
			return fmt.Errorf("event %d: %w", e.Seq, err)
		}
		u := r.Usage[e.Tenant]
		if u == nil {
			u = map[string]int64{}
			r.Usage[e.Tenant] = u
		}
		ApplyDelta(u, Delta(before.Footprint, after.Footprint))
	case EventQuotaSet:
		var after quotaView
		if err := unmarshalView(e.After, &after); err != nil {
			return fmt.Errorf("event %d: %w", e.Seq, err)
		}
		if r.Hard[e.Tenant] == nil {
			r.Hard[e.Tenant] = map[string]int64{}
		}
		r.Hard[e.Tenant][e.Subject] = after.Hard
	case EventTenantCreate, EventTenantUpdate:
		var after tenantView
		if err := unmarshalView(e.After, &after); err != nil {
			return fmt.Errorf("event %d: %w", e.Seq, err)
		}
		r.Plans[e.Tenant] = after.Plan
		if e.Type == EventTenantCreate {
			r.Parents[e.Tenant] = after.Parent
		}
	case EventTenantMove:
		var after moveView
		if err := unmarshalView(e.After, &after); err != nil {
			return fmt.Errorf("event %d: %w", e.Seq, err)
		}
		r.Parents[e.Tenant] = after.Parent
	case EventSubtreeUsage:
		var after belowView
		if err := unmarshalView(e.After, &after); err != nil {
			return fmt.Errorf("event %d: %w", e.Seq, err)
		}
		r.Below[e.Tenant] = after.Below
	case EventTenantDelete:
		delete(r.Usage, e.Tenant)
		delete(r.Hard, e.Tenant)
		delete(r.Plans, e.Tenant)
		delete(r.Parents, e.Tenant)
		delete(r.Below, e.Tenant)
	}
	return nil
}

// Tree is a tenant's tree usage of a resource as replayed: its own and
// what its descendants use.
func (r *Replay) Tree(tenant, resource string) int64 {
	return r.Usage[tenant][resource] + r.Below[tenant][resource]
}

// SumBelow recomputes, from the replayed usage and parents alone, what
// each tenant's descendants use: the tree invariant is that it equals
// Below for every tenant.
func (r *Replay) SumBelow() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for t, u := range r.Usage {
		p := r.Parents[t]
		for i := 0; p != "" && i < maxAncestors; i++ {
			if out[p] == nil {
				out[p] = map[string]int64{}
			}
			for res, v := range u {
				if v != 0 {
					out[p][res] += v
				}
			}
			p = r.Parents[p]
		}
	}
	return out
}

func unmarshalView(b json.RawMessage, v any) error {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, v)
}
