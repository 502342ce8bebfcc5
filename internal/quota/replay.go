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
}

// NewReplay returns an empty replay.
func NewReplay() *Replay {
	return &Replay{Usage: map[string]map[string]int64{}, Hard: map[string]map[string]int64{}, Plans: map[string]string{}}
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
}

// SnapshotOf is what the replay holds for tenant, as a snapshot at seq;
// nil when the tenant does not exist there.
func (r *Replay) SnapshotOf(tenant string, seq int64, at time.Time) *Snapshot {
	plan, ok := r.Plans[tenant]
	if !ok && r.Usage[tenant] == nil {
		return nil
	}
	return &Snapshot{Tenant: tenant, Seq: seq, Time: at, Usage: maps.Clone(r.Usage[tenant]), Hard: maps.Clone(r.Hard[tenant]), Plan: plan}
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
	case EventTenantDelete:
		delete(r.Usage, e.Tenant)
		delete(r.Hard, e.Tenant)
		delete(r.Plans, e.Tenant)
	}
	return nil
}

func unmarshalView(b json.RawMessage, v any) error {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, v)
}
