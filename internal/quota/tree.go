package quota

import "maps"

// The tree of tenants. A tenant may sit under a parent; every tenant keeps
// its own usage (what its consumers use) and, when it has descendants, what
// they use (below): its tree usage is the sum. A claim is held to two
// rules, in one decision: the tenant's own usage stays under its effective
// hard quota (as for a tenant with no parent), and the tree usage of the
// tenant and of each of its ancestors stays under the hard quota set for
// it (an override or its plan's; the catalog's default caps a tenant's own
// usage only, so a parent with no quota set does not limit its subtree).

// DefaultMaxDepth is how many levels a tree may have by default: a root
// and five levels below it.
const DefaultMaxDepth = 6

// maxAncestors bounds every walk up the tree, so that data that is not a
// tree (it cannot be, but a walk must end) never loops.
const maxAncestors = 64

// closure adds to ids the ancestors memory knows of every tenant in it,
// and reports whether it added any. Under a shared store the ancestry is
// known for certain only for tenants read under the batch's locks: the
// engine locks the closure, reads what changed, and repeats until it
// stands.
func (s *state) closure(ids map[string]bool) bool {
	added := false
	for _, id := range sortedKeys(ids) {
		for i := 0; i < maxAncestors; i++ {
			ts := s.tenants[id]
			if ts == nil || ts.t.Parent == "" {
				break
			}
			id = ts.t.Parent
			if !ids[id] {
				ids[id] = true
				added = true
			}
		}
	}
	return added
}

// ancestors returns the ancestors of tenant in the batch, parent first.
func (ws *workset) ancestors(tenant string) []string {
	var out []string
	t := ws.tenants[tenant]
	for i := 0; t != nil && t.Parent != "" && i < maxAncestors; i++ {
		out = append(out, t.Parent)
		t = ws.tenants[t.Parent]
	}
	return out
}

// depth is the number of levels from the root down to tenant (1: a root).
func (ws *workset) depth(tenant string) int { return len(ws.ancestors(tenant)) + 1 }

// addBelow changes what tenant's descendants use by delta.
func (ws *workset) addBelow(tenant string, delta Footprint) {
	b := ws.below[tenant]
	if b == nil {
		b = map[string]int64{}
		ws.below[tenant] = b
		ws.undo = append(ws.undo, func() { delete(ws.below, tenant) })
	}
	ws.addTo(b, ws.dirtyBelow, tenant, delta)
}

// treeUsed is a tenant's tree usage of a resource: its own and its
// descendants'.
func (ws *workset) treeUsed(tenant, resource string) int64 {
	s, ok := add(ws.usage[tenant][resource], ws.below[tenant][resource])
	if !ok {
		return 1<<63 - 1
	}
	return s
}

// treeOf is a tenant's tree usage of every resource.
func (ws *workset) treeOf(tenant string) Footprint {
	fp := Footprint(maps.Clone(ws.usage[tenant]))
	if fp == nil {
		fp = Footprint{}
	}
	ApplyDelta(fp, ws.below[tenant])
	return fp
}

// measure is what a tenant's thresholds and over-quota state look at for
// a resource: its tree usage against a quota set for it, else its own
// usage against the catalog's default. For a tenant with no descendants
// both are its usage against its hard quota.
func (ws *workset) measure(t *Tenant, res *Resource) (used, hard int64) {
	if h, ok := ws.cat.SetHard(t, res); ok {
		return ws.treeUsed(t.ID, res.Name), h
	}
	return ws.usage[t.ID][res.Name], ws.cat.Hard(t, res)
}

// checkQuotas refuses a delta that grows a resource past the tenant's own
// hard quota, or past the quota set for the tenant's tree or for any of
// its ancestors' trees, listing every level and resource that fails:
// the tenant first, then its ancestors upwards, resources in catalog
// order. Shrinking is always allowed.
func (ws *workset) checkQuotas(t *Tenant, delta Footprint) error {
	err := ws.cat.CheckQuotas(t, ws.usage[t.ID], delta)
	var vs []Violation
	if err != nil {
		vs = err.(*Error).Violations
	}
	levels := append([]string{t.ID}, ws.ancestors(t.ID)...)
	for i, id := range levels {
		lt := ws.tenants[id]
		if lt == nil {
			continue
		}
		for _, res := range ws.cat.Resources {
			d := delta[res.Name]
			if d <= 0 {
				continue
			}
			hard, set := ws.cat.SetHard(lt, res)
			if !set || i == 0 && ws.below[id][res.Name] == 0 { // the tenant's own rule covers it
				continue
			}
			u := ws.treeUsed(id, res.Name)
			if sum, ok := add(u, d); !ok || sum > hard {
				vs = append(vs, Violation{Tenant: id, Resource: res.Name, Used: u, Hard: hard, Requested: d, Available: max(0, hard-u)})
			}
		}
	}
	if vs == nil {
		return nil
	}
	return &Error{Code: CodeQuotaExceeded, Message: "quota exceeded", Violations: vs}
}

// Headroom is what a tenant could still claim of a resource now: the
// smallest headroom along its path, its own hard quota against its own
// usage and each quota set on the path against that level's tree usage.
// path is the tenant's view and its ancestors', parent first.
func (c *Catalog) Headroom(path []*TenantView, res *Resource) int64 {
	if len(path) == 0 {
		return 0
	}
	self := path[0]
	room := c.Hard(self.Tenant, res) - self.Usage[res.Name]
	for _, v := range path {
		if hard, ok := c.SetHard(v.Tenant, res); ok {
			room = min(room, hard-v.Tree(res.Name))
		}
	}
	return max(0, room)
}

// Tree is the view's tree usage of a resource: its own and its
// descendants'.
func (v *TenantView) Tree(resource string) int64 {
	s, ok := add(v.Usage[resource], v.Below[resource])
	if !ok {
		return 1<<63 - 1
	}
	return s
}

// TreeOver reports whether the view's tree usage of res is above a quota
// set for it.
func (c *Catalog) TreeOver(v *TenantView, res *Resource) bool {
	hard, ok := c.SetHard(v.Tenant, res)
	return ok && v.Tree(res.Name) > hard
}

// ShownHard is the hard quota a dialect that has no notion of a tree shows
// for a tenant: its own, lowered to its usage plus the headroom along its
// path, so that hard - used is what it could claim now. A tenant with no
// ancestor quota set sees its own hard quota unchanged.
func ShownHard(c *Catalog, path []*TenantView, res *Resource) int64 {
	hard := c.Hard(path[0].Tenant, res)
	if len(path) == 1 && path[0].Below[res.Name] == 0 {
		return hard
	}
	used := path[0].Usage[res.Name]
	if used >= hard {
		return hard
	}
	return min(hard, used+c.Headroom(path, res))
}
