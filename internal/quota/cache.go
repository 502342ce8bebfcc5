package quota

import (
	"maps"
	"sync/atomic"
	"time"
)

// consumerCache holds the consumers the committer has seen, least recently
// used first out, in a compact form: about 250 bytes a consumer, where the
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
	committed  func() uint64
	evictions  atomic.Int64 // read by other goroutines, for metrics
}

type entry struct {
	key        ConsumerKey
	tenant     *tenantState
	deleted    bool // a tombstone: the consumer does not exist
	kind       *Kind
	state      string
	attrs      []int64   // in kind.Attributes order
	fp         Footprint // nil: what the kind's usage rules derive
	full       *Consumer // instead of the compact fields, when they cannot hold it
	generation int64
	expires    int64 // unix nanoseconds; 0: not a reservation
	created    int64
	updated    int64
	batch      uint64 // the batch that wrote it last
	prev, next *entry
}

func newConsumerCache(cat *Catalog, limit int, committed func() uint64) *consumerCache {
	return &consumerCache{cat: cat, limit: limit, committed: committed}
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
	return e.consumer(), true
}

// put records c (nil: deleted) for the tenant, written by batch.
func (cc *consumerCache) put(t *tenantState, id string, c *Consumer, batch uint64) {
	e := t.consumers[id]
	if e == nil {
		e = &entry{key: ConsumerKey{t.id, id}, tenant: t}
		t.consumers[id] = e
		cc.pushFront(e)
		cc.size++
	} else {
		cc.touch(e)
	}
	e.batch = batch
	e.set(cc.cat, c)
	cc.evict()
}

// forget drops every entry of a tenant.
func (cc *consumerCache) forget(t *tenantState) {
	for _, e := range t.consumers {
		cc.unlink(e)
		cc.size--
	}
	clear(t.consumers)
	t.complete = false
}

// clear drops everything.
func (cc *consumerCache) clear(tenants map[string]*tenantState) {
	for _, t := range tenants {
		clear(t.consumers)
		t.complete = false
	}
	cc.head, cc.tail, cc.size = nil, nil, 0
}

// evict drops least recently used entries beyond the limit, skipping those
// of batches not yet committed.
func (cc *consumerCache) evict() {
	committed := cc.committed()
	for e := cc.tail; cc.size > cc.limit && e != nil; {
		prev := e.prev
		if e.batch <= committed {
			cc.unlink(e)
			delete(e.tenant.consumers, e.key.ID)
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

// set stores c in the entry, compactly where its kind allows.
func (e *entry) set(cat *Catalog, c *Consumer) {
	e.full, e.fp, e.attrs = nil, nil, nil
	if e.deleted = c == nil; e.deleted {
		return
	}
	e.generation, e.created, e.updated = c.Generation, c.CreatedAt.UnixNano(), c.UpdatedAt.UnixNano()
	e.expires = 0
	if c.ExpiresAt != nil {
		e.expires = c.ExpiresAt.UnixNano()
	}
	k := cat.Kind(c.Kind)
	if k == nil || len(c.Attributes) != len(k.Attributes) || (c.State != "" && !k.HasState(c.State)) {
		e.full = c // a kind the catalog no longer describes: keep it whole
		return
	}
	attrs := make([]int64, len(k.Attributes))
	for i, a := range k.Attributes {
		v, ok := c.Attributes[a.Name]
		if !ok {
			e.full = c
			return
		}
		attrs[i] = v
	}
	e.kind, e.attrs = k, attrs
	e.state = c.State
	if i := indexOf(k.States, c.State); i >= 0 {
		e.state = k.States[i] // the catalog's string, not a copy
	}
	if derived, err := FootprintOf(k, c.State, c.Attributes); err != nil || !maps.Equal(derived, c.Footprint) {
		e.fp = c.Footprint // charged under an older catalog: keep what was charged
	}
}

// consumer materializes the entry.
func (e *entry) consumer() *Consumer {
	if e.full != nil {
		return e.full
	}
	attrs := make(map[string]int64, len(e.attrs))
	for i, a := range e.kind.Attributes {
		attrs[a.Name] = e.attrs[i]
	}
	fp := e.fp
	if fp == nil {
		fp, _ = FootprintOf(e.kind, e.state, attrs)
	}
	c := &Consumer{Tenant: e.key.Tenant, ID: e.key.ID, Kind: e.kind.Name, State: e.state, Attributes: attrs,
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
