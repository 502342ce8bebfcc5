package quota

import (
	"context"
	"maps"
)

// state is what the committer decides on, held in memory and exact: every
// tenant with its overrides and usage, every webhook, and the consumers it
// has seen. Only the committer's goroutine reads or writes it. A commit that
// fails leaves it ahead of the store; the engine then rebuilds it.
type state struct {
	cat             *Catalog
	tenants         map[string]*tenantState
	webhooks        map[string]*Webhook
	webhooksVersion int64
	cache           *consumerCache
	// completeLimit is the most consumers of one tenant loaded at once to
	// make it complete.
	completeLimit int
	folded        map[string]string // lower-cased id → id, built on demand
	maxDepth      int               // levels a tree of tenants may have
}

type tenantState struct {
	id      string
	t       *Tenant          // replaced, never changed in place
	usage   map[string]int64 // changed in place, with undo
	below   map[string]int64 // what its descendants use; nil: nothing
	version int64
	// complete: every consumer of the tenant is cached (or a tombstone),
	// so one that is not cached does not exist.
	complete bool
	// large: the tenant has more consumers than completeLimit; its
	// consumers are looked up one by one.
	large     bool
	consumers map[string]*entry
}

func newState(cat *Catalog, cacheLimit, maxDepth int, committed func() uint64) *state {
	return &state{cat: cat, maxDepth: maxDepth, tenants: map[string]*tenantState{}, webhooks: map[string]*Webhook{},
		cache: newConsumerCache(cat, cacheLimit, committed), completeLimit: max(16, min(10_000, cacheLimit/10))}
}

// load replaces the state with the store's.
func (s *state) load(ctx context.Context, store Store) error {
	records, err := store.LoadTenants(ctx, nil)
	if err != nil {
		return err
	}
	hooks, version, err := store.LoadWebhooks(ctx)
	if err != nil {
		return err
	}
	s.cache.clear(s.tenants)
	s.folded = nil
	s.tenants = make(map[string]*tenantState, len(records))
	for _, r := range records {
		s.tenants[r.Tenant.ID] = newTenantState(r)
	}
	s.setWebhooks(hooks, version)
	return nil
}

func (s *state) setWebhooks(hooks []*Webhook, version int64) {
	s.webhooks = make(map[string]*Webhook, len(hooks))
	for _, h := range hooks {
		s.webhooks[h.ID] = h
	}
	s.webhooksVersion = version
}

func newTenantState(r *TenantRecord) *tenantState {
	u := maps.Clone(r.Usage)
	if u == nil {
		u = map[string]int64{}
	}
	return &tenantState{id: r.Tenant.ID, t: r.Tenant, usage: u, below: maps.Clone(r.Below), version: r.Version}
}

// replace puts a tenant read again from the store in place of what memory
// held, dropping its cached consumers; r nil: the tenant no longer exists.
func (s *state) replace(id string, r *TenantRecord) {
	if old := s.tenants[id]; old != nil {
		s.cache.forget(old)
		delete(s.tenants, id)
	}
	if r != nil {
		s.tenants[id] = newTenantState(r)
	}
	s.folded = nil
}

// prepare makes sure the consumers at keys are known: from the cache, from
// a tenant that is complete (what it lacks does not exist), or else read
// from tx. It loads a small tenant whole on its first use, so that its
// next new consumers need no read at all. It returns each key's consumer
// (nil: none).
func (s *state) prepare(ctx context.Context, tx Tx, keys map[ConsumerKey]bool) (map[ConsumerKey]*Consumer, error) {
	have := make(map[ConsumerKey]*Consumer, len(keys))
	var missing []ConsumerKey
	wholes := map[string]bool{}
	for k := range keys {
		ts := s.tenants[k.Tenant]
		if ts == nil {
			have[k] = nil
			continue
		}
		if c, found := s.cache.get(ts, k.ID); found {
			have[k] = c
			continue
		}
		if ts.complete {
			have[k] = nil
			continue
		}
		if !ts.large && !wholes[k.Tenant] {
			wholes[k.Tenant] = true
		}
		missing = append(missing, k)
	}
	// A small tenant is read whole: its consumers, and so its absent ones.
	for tenant := range wholes {
		ts := s.tenants[tenant]
		cs, err := tx.TenantConsumers(ctx, tenant, nil, s.completeLimit+1)
		if err != nil {
			return nil, err
		}
		if len(cs) > s.completeLimit {
			ts.large = true
			continue
		}
		for _, c := range cs {
			if _, known := ts.consumers[c.ID]; !known { // what a pending batch wrote wins
				s.cache.put(ts, c.ID, c, 0, false)
			}
		}
		ts.complete = true
	}
	var point []ConsumerKey
	for _, k := range missing {
		ts := s.tenants[k.Tenant]
		if ts.complete {
			c, _ := s.cache.get(ts, k.ID)
			have[k] = c
			continue
		}
		point = append(point, k)
	}
	if len(point) > 0 {
		found, err := tx.Consumers(ctx, point)
		if err != nil {
			return nil, err
		}
		for _, k := range point {
			c := found[k]
			have[k] = c
			s.cache.put(s.tenants[k.Tenant], k.ID, c, 0, false)
		}
	}
	return have, nil
}
