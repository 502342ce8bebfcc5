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

// Update forgets the tokens a committed write changed.
func (c *tokenCache) Update(ctx context.Context, fn func(context.Context, quota.Tx) error) error {
	var changed []string
	all := false
	err := c.Store.Update(ctx, func(ctx context.Context, tx quota.Tx) error {
		changed, all = changed[:0], false // fn may run again
		return fn(ctx, &watchTx{Tx: tx, changed: &changed, all: &all})
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if all || err != nil && len(changed) > 0 { // a failed commit may have applied: forget anyway
		clear(c.entries)
		return err
	}
	for _, name := range changed {
		delete(c.entries, name)
	}
	return err
}

// watchTx notes which tokens a transaction writes.
type watchTx struct {
	quota.Tx
	changed *[]string
	all     *bool
}

func (t *watchTx) Apply(ctx context.Context, w *quota.Writes) error {
	for _, tok := range w.PutTokens {
		*t.changed = append(*t.changed, tok.Name)
	}
	if len(w.DeleteTenants) > 0 { // their tokens go with them
		*t.all = true
	}
	return t.Tx.Apply(ctx, w)
}
