package auth

import (
	"context"
	"sync"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// CacheTokens wraps a store so that token lookups, made for every request,
// are answered from memory for up to ttl. Writes through the returned store
// that change tokens (create, revoke, tenant deletion) drop the cached
// entries when they commit, so in this process a revocation takes effect
// at once; another process sharing the database sees it within ttl.
// Lookups that find nothing are not cached: a new token works at once.
// now is the clock entries expire by; nil: time.Now.
func CacheTokens(s quota.Store, ttl time.Duration, now func() time.Time) quota.Store {
	if now == nil {
		now = time.Now
	}
	return &tokenCache{Store: s, ttl: ttl, now: now, entries: map[string]cachedToken{}}
}

type tokenCache struct {
	quota.Store
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cachedToken
}

type cachedToken struct {
	token   *quota.Token
	expires time.Time
}

func (c *tokenCache) Token(ctx context.Context, name string) (*quota.Token, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[name]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.token, nil
	}
	t, err := c.Store.Token(ctx, name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.entries) > 100_000 { // bounded: a flood of distinct tokens cannot grow it
		clear(c.entries)
	}
	c.entries[name] = cachedToken{t, now.Add(c.ttl)}
	c.mu.Unlock()
	return t, nil
}

// Begin notes which tokens the batch's writes change.
func (c *tokenCache) Begin(ctx context.Context, tenants []string) (quota.Tx, error) {
	tx, err := c.Store.Begin(ctx, tenants)
	if err != nil {
		return nil, err
	}
	return &watchTx{Tx: tx}, nil
}

// Commit forgets the tokens committed writes changed (all of them after
// a failure: a failed commit may have applied).
func (c *tokenCache) Commit(ctx context.Context, txs []quota.Tx) (int, error) {
	inner := make([]quota.Tx, len(txs))
	for i, t := range txs {
		inner[i] = t.(*watchTx).Tx
	}
	n, err := c.Store.Commit(ctx, inner)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range txs {
		w := t.(*watchTx)
		if w.all || err != nil && len(w.changed) > 0 {
			clear(c.entries)
			break
		}
		for _, name := range w.changed {
			delete(c.entries, name)
		}
	}
	return n, err
}

// watchTx notes which tokens a transaction writes.
type watchTx struct {
	quota.Tx
	changed []string
	all     bool
}

func (t *watchTx) Apply(w *quota.Writes) {
	for _, tok := range w.PutTokens {
		t.changed = append(t.changed, tok.Name)
	}
	if len(w.DeleteTenants) > 0 { // their tokens go with them
		t.all = true
	}
	t.Tx.Apply(w)
}
