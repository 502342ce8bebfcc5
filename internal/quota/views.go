package quota

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// TenantView is a tenant and its usage as of a commit: immutable, shared
// by every reader.
type TenantView struct {
	Tenant  *Tenant
	Usage   map[string]int64 // its own consumers'
	Below   map[string]int64 // its descendants'
	Version int64
}

// view shares the tenant's usage map: the committer never changes a map in
// place once a batch has finished with it (each batch works on a copy), so
// readers may hold it as it is.
func (ts *tenantState) view() *TenantView {
	return &TenantView{Tenant: ts.t, Usage: ts.usage, Below: ts.below, Version: ts.version}
}

// views is what readers see: each tenant as of the last commit that
// changed it. A view is published only after its batch is durable, so no
// reader ever sees a change that has not committed. Views of different
// tenants may be of different commits: a read of several tenants is not
// one snapshot.
type views struct {
	mu      sync.RWMutex
	tenants map[string]*TenantView
}

func newViews() *views { return &views{tenants: map[string]*TenantView{}} }

func (v *views) publish(tv *TenantView) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if old := v.tenants[tv.Tenant.ID]; old != nil && old.Version > tv.Version {
		return // a newer one is published already
	}
	v.tenants[tv.Tenant.ID] = tv
}

func (v *views) remove(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.tenants, id)
}

// View returns a tenant as of the last commit. With a store other
// processes share, it reads the tenant from the store first (one indexed
// read), so that a change any process acknowledged is seen by the next
// read through any process; Watch keeps the rest of the views fresh.
func (e *Engine) View(ctx context.Context, tenant string) (*TenantView, error) {
	if e.store.Shared() {
		records, err := e.store.LoadTenants(ctx, []string{tenant})
		if err != nil {
			return nil, err
		}
		if len(records) == 0 {
			return nil, Errorf(CodeNotFound, "tenant %q not found", tenant)
		}
		r := records[0]
		e.views.publish(&TenantView{Tenant: r.Tenant, Usage: r.Usage, Below: r.Below, Version: r.Version})
	}
	e.views.mu.RLock()
	tv := e.views.tenants[tenant]
	e.views.mu.RUnlock()
	if tv == nil {
		return nil, Errorf(CodeNotFound, "tenant %q not found", tenant)
	}
	return tv, nil
}

// Views returns every tenant as of the last commits, ordered by id.
func (e *Engine) Views() []*TenantView {
	e.views.mu.RLock()
	out := make([]*TenantView, 0, len(e.views.tenants))
	for _, tv := range e.views.tenants {
		out = append(out, tv)
	}
	e.views.mu.RUnlock()
	slices.SortFunc(out, func(a, b *TenantView) int { return strings.Compare(a.Tenant.ID, b.Tenant.ID) })
	return out
}

// watch keeps the views of tenants other processes change up to date: the
// store tells which tenants changed, as they commit, and they are read
// again. The committer does not rely on it: it checks versions under its
// locks.
func (e *Engine) watch(ctx context.Context) {
	for ctx.Err() == nil {
		err := e.store.Watch(ctx, func(tenants []string) {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			records, err := e.store.LoadTenants(rctx, tenants)
			if err != nil {
				e.log.Warn("reading tenants other processes changed failed", "err", err)
				return
			}
			seen := map[string]bool{}
			for _, r := range records {
				seen[r.Tenant.ID] = true
				e.views.publish(&TenantView{Tenant: r.Tenant, Usage: r.Usage, Below: r.Below, Version: r.Version})
			}
			if tenants == nil {
				for _, tv := range e.Views() {
					if !seen[tv.Tenant.ID] {
						e.views.remove(tv.Tenant.ID)
					}
				}
				return
			}
			for _, id := range tenants {
				if !seen[id] {
					e.views.remove(id)
				}
			}
		})
		if ctx.Err() == nil {
			e.log.Warn("watching other processes' changes failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// CacheEvictions counts the consumers evicted from the committer's cache.
func (e *Engine) CacheEvictions() int64 { return e.st.cache.evictions.Load() }

// Path returns a tenant's view and its ancestors', parent first: what the
// headroom along the path is computed from.
func (e *Engine) Path(ctx context.Context, tenant string) ([]*TenantView, error) {
	v, err := e.View(ctx, tenant)
	if err != nil {
		return nil, err
	}
	path := []*TenantView{v}
	for i := 0; v.Tenant.Parent != "" && i < maxAncestors; i++ {
		if v, err = e.View(ctx, v.Tenant.Parent); err != nil {
			return nil, err
		}
		path = append(path, v)
	}
	return path, nil
}

// SubtreeNode is one tenant of a subtree, with its depth below the
// subtree's root (0: the root).
type SubtreeNode struct {
	View  *TenantView
	Depth int
}

// Subtree returns a tenant and everything below it, depth first, children
// by id: as of the last commits, like Views.
func (e *Engine) Subtree(ctx context.Context, tenant string) ([]SubtreeNode, error) {
	root, err := e.View(ctx, tenant)
	if err != nil {
		return nil, err
	}
	children := map[string][]*TenantView{}
	for _, v := range e.Views() { // ordered by id
		if p := v.Tenant.Parent; p != "" {
			children[p] = append(children[p], v)
		}
	}
	var out []SubtreeNode
	var walk func(v *TenantView, depth int)
	walk = func(v *TenantView, depth int) {
		out = append(out, SubtreeNode{View: v, Depth: depth})
		if depth >= maxAncestors {
			return
		}
		for _, c := range children[v.Tenant.ID] {
			walk(c, depth+1)
		}
	}
	walk(root, 0)
	return out, nil
}
