package quota

import (
	"maps"
	"sync/atomic"
	"time"
)

// consumerCache holds the consumers the committer has seen, least recently
// used first out, in a compact form: about 160 bytes a consumer (measured
// live with a million cached), where the
// domain type with its maps takes three times that. Only the committer's
// goroutine touches it.
//
// An entry written by a batch that is not yet committed is pinned: it is
// not evicted, so the store, which does not have it yet, is never asked
// for it. A deletion is kept as a tombstone for the same reason.
type consumerCache struct {
	cat        *Catalog
	limit      int
	size       int
	head, tail *entry // head: most recently used
	// odd holds, whole, the few consumers a compact entry cannot: of a kind
	// the catalog no longer describes, or charged under an older catalog.
	odd       map[*entry]*Consumer
	committed func() uint64
	evictions atomic.Int64 // read by other goroutines, for metrics
}

type entry struct {
	id         string
	tenant     *tenantState
	kind       *Kind
	attrs      [maxCompactAttrs]int64 // in kind.Attributes order
	generation int64
	expires    int64 // unix nanoseconds; 0: not a reservation
	created    int64
	updated    int64
	batch      uint64 // the batch that wrote it last
	prev, next *entry
	state      uint8 // index into kind.States, plus one; 0: no state
	deleted    bool  // a tombstone: the consumer does not exist
	odd        bool  // kept whole in consumerCache.odd
}

// maxCompactAttrs is the most attributes a compact entry holds; a kind with
// more is kept whole.
const maxCompactAttrs = 3

func newConsumerCache(cat *Catalog, limit int, committed func() uint64) *consumerCache {
	return &consumerCache{cat: cat, limit: limit, committed: committed, odd: map[*entry]*Consumer{}}
}

// get returns the cached consumer at key: found says whether the cache
// knows (a tombstone knows the consumer is absent: c is then nil).
func (cc *consumerCache) get(t *tenantState, id string) (c *Consumer, found bool) {
	e := t.consumers[id]
	if e == nil {
		return nil, false
	}
	cc.touch(e)
	if e.deleted {
		return nil, true
	}
	if e.odd {
		return cc.odd[e], true
	}
	return e.consumer(), true
}

// put records c (nil: deleted) for the tenant, written by batch. derived
// says c's footprint is what its kind's rules give (a consumer the engine
// just wrote); one read from the store is checked.
func (cc *consumerCache) put(t *tenantState, id string, c *Consumer, batch uint64, derived bool) {
	e := t.consumers[id]
	if e == nil {
		if t.consumers == nil {
			t.consumers = map[string]*entry{}
		}
		if c != nil {
			id = c.ID
		}
		e = &entry{id: id, tenant: t}
		t.consumers[id] = e
		cc.pushFront(e)
		cc.size++
	} else {
		cc.touch(e)
	}
	e.batch = batch
	delete(cc.odd, e)
	if !e.set(cc.cat, c, derived) {
		cc.odd[e] = c
	}
	cc.evict()
}

// forget drops every entry of a tenant.
func (cc *consumerCache) forget(t *tenantState) {
	for _, e := range t.consumers {
		cc.unlink(e)
		delete(cc.odd, e)
		cc.size--
	}
	t.consumers, t.complete = nil, false
}

// clear drops everything.
func (cc *consumerCache) clear(tenants map[string]*tenantState) {
	for _, t := range tenants {
		t.consumers, t.complete = nil, false
	}
	cc.head, cc.tail, cc.size = nil, nil, 0
	clear(cc.odd)
}

// evict drops least recently used entries beyond the limit, skipping those
// of batches not yet committed.
func (cc *consumerCache) evict() {
	committed := cc.committed()
	for e := cc.tail; cc.size > cc.limit && e != nil; {
		prev := e.prev
		if e.batch <= committed {
			cc.unlink(e)
			delete(cc.odd, e)
			delete(e.tenant.consumers, e.id)
			e.tenant.complete = false // it no longer holds all of its consumers
			cc.size--
			cc.evictions.Add(1)
		}
		e = prev
	}
}

func (cc *consumerCache) touch(e *entry) {
	if cc.head != e {
		cc.unlink(e)
		cc.pushFront(e)
	}
}

func (cc *consumerCache) pushFront(e *entry) {
	e.prev, e.next = nil, cc.head
	if cc.head != nil {
		cc.head.prev = e
	}
	cc.head = e
	if cc.tail == nil {
		cc.tail = e
	}
}

func (cc *consumerCache) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else if cc.head == e {
		cc.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else if cc.tail == e {
		cc.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// set stores c in the entry, compactly where its kind allows, and reports
// whether it could.
func (e *entry) set(cat *Catalog, c *Consumer, derived bool) bool {
	if e.deleted = c == nil; e.deleted {
		return true
	}
	e.odd = true
	e.generation, e.created, e.updated = c.Generation, c.CreatedAt.UnixNano(), c.UpdatedAt.UnixNano()
	e.expires = 0
	if c.ExpiresAt != nil {
		e.expires = c.ExpiresAt.UnixNano()
	}
	k := cat.Kind(c.Kind)
	if k == nil || len(k.Attributes) > maxCompactAttrs || len(c.Attributes) != len(k.Attributes) {
		return false // a kind the catalog no longer describes: kept whole
	}
	state := 0
	if c.State != "" {
		if state = indexOf(k.States, c.State) + 1; state == 0 {
			return false
		}
	}
	for i, a := range k.Attributes {
		v, ok := c.Attributes[a.Name]
		if !ok {
			return false
		}
		e.attrs[i] = v
	}
	if !derived {
		if fp, err := FootprintOf(k, c.State, c.Attributes); err != nil || !maps.Equal(fp, c.Footprint) {
			return false // charged under an older catalog: kept as charged
		}
	}
	e.kind, e.state, e.odd = k, uint8(state), false
	return true
}

// consumer materializes a compact entry.
func (e *entry) consumer() *Consumer {
	attrs := make(map[string]int64, len(e.kind.Attributes))
	for i, a := range e.kind.Attributes {
		attrs[a.Name] = e.attrs[i]
	}
	state := ""
	if e.state > 0 {
		state = e.kind.States[e.state-1]
	}
	fp, _ := FootprintOf(e.kind, state, attrs)
	c := &Consumer{Tenant: e.tenant.id, ID: e.id, Kind: e.kind.Name, State: state, Attributes: attrs,
		Generation: e.generation, Footprint: fp, CreatedAt: time.Unix(0, e.created).UTC(), UpdatedAt: time.Unix(0, e.updated).UTC()}
	if e.expires != 0 {
		at := time.Unix(0, e.expires).UTC()
		c.ExpiresAt = &at
	}
	return c
}

func indexOf(xs []string, s string) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return -1
}
