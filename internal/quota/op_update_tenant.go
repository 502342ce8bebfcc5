package quota

// UpdateTenant renames a tenant, moves it to another plan, or moves it
// (with its subtree) under another parent. Its usage is kept even where the
// new plan's quotas, or the new parent's, are lower: like a lowered quota,
// that refuses growth, never what exists.
type UpdateTenant struct {
	Tenant string
	Name   string // "" keeps it
	Plan   string // "" keeps it; "-" for none (the catalog's defaults)
	// SetParent moves the tenant under Parent ("": detach, making it a
	// root). A move is alone in its change and its batch.
	SetParent bool
	Parent    string
}

func (*UpdateTenant) Type() OpType { return OpUpdateTenant }

// moves reports whether op moves a tenant in the tree: such a change is
// decided alone, since it changes which tenants the next claims lock.
func moves(op Op) bool {
	u, ok := op.(*UpdateTenant)
	return ok && u.SetParent
}

func (op *UpdateTenant) check(c *checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	if err := CheckText("name", op.Name, 256); err != nil {
		return err
	}
	if op.Plan != "" && op.Plan != "-" && c.cat.Plans[op.Plan] == nil {
		return Errorf(CodeInvalid, "unknown plan %q", truncate(op.Plan, 140))
	}
	if op.SetParent && op.Parent != "" {
		if err := checkTenant(&op.Parent); err != nil {
			return err
		}
		if op.Parent == op.Tenant {
			return Errorf(CodeParentCycle, "tenant %q cannot be its own parent", op.Tenant)
		}
	}
	return nil
}

// needs reads, for a move, the new parent (the engine adds every
// ancestor) and the tenant's descendants as stored, for the depth limit.
func (op *UpdateTenant) needs(n *needs) {
	n.tenant(op.Tenant)
	if op.SetParent {
		n.tenant(op.Parent)
		n.subtrees = append(n.subtrees, op.Tenant)
		n.settled = true
	}
}

func (op *UpdateTenant) apply(ws *workset, ch *Change) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	nt := cloneTenant(t)
	if op.Name != "" {
		nt.Name = op.Name
	}
	switch op.Plan {
	case "":
	case "-":
		nt.Plan = ""
	default:
		nt.Plan = op.Plan
	}
	moved := op.SetParent && op.Parent != t.Parent
	if moved {
		if err := ws.checkMove(op.Tenant, op.Parent); err != nil {
			return OpResult{}, err
		}
		nt.Parent = op.Parent
	}
	if nt.Name == t.Name && nt.Plan == t.Plan && !moved {
		return OpResult{Tenant: t, Usage: ws.usageOf(op.Tenant)}, nil
	}
	for _, res := range ws.cat.Resources {
		if ws.cat.Hard(nt, res) != ws.cat.Hard(t, res) {
			ws.touch(op.Tenant, res.Name)
		}
	}
	if nt.Name != t.Name || nt.Plan != t.Plan {
		ws.event(ch, EventTenantUpdate, op.Tenant, op.Tenant, tenantView{t.Name, t.Plan, t.Parent}, tenantView{nt.Name, nt.Plan, nt.Parent})
	}
	if moved {
		// The subtree's tree usage leaves the old ancestors and joins the
		// new ones, in this one change. No quota refuses a move: above a
		// parent's quota, the tree is over quota and refuses growth.
		tree := ws.treeOf(op.Tenant)
		for _, a := range ws.ancestors(op.Tenant) {
			ws.addBelow(a, Delta(tree, nil))
		}
		ws.setTenant(op.Tenant, nt)
		for _, a := range ws.ancestors(op.Tenant) {
			ws.addBelow(a, tree)
		}
		ws.event(ch, EventTenantMove, op.Tenant, op.Tenant, moveView{t.Parent}, moveView{nt.Parent})
	} else {
		ws.setTenant(op.Tenant, nt)
	}
	return OpResult{Tenant: nt, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}

// checkMove refuses to put tenant under parent when parent does not exist,
// when parent is in tenant's subtree (a cycle), or when the subtree would
// pass the depth limit there.
func (ws *workset) checkMove(tenant, parent string) error {
	if parent == "" {
		return nil
	}
	if ws.tenants[parent] == nil {
		return Errorf(CodeParentNotFound, "parent %q not found", parent)
	}
	below := ws.subtrees[tenant]
	if _, inside := below[parent]; inside || parent == tenant {
		return Errorf(CodeParentCycle, "%q is in the subtree of %q: a tenant cannot move under its own descendant", parent, tenant)
	}
	for _, a := range ws.ancestors(parent) {
		if a == tenant {
			return Errorf(CodeParentCycle, "%q is in the subtree of %q: a tenant cannot move under its own descendant", parent, tenant)
		}
	}
	// The subtree's height: 1 for a tenant with no children.
	height := 1
	for d := range below {
		h, id := 1, d
		for i := 0; id != tenant && i < maxAncestors; i++ {
			h++
			id = below[id]
		}
		height = max(height, h)
	}
	if deepest := ws.depth(parent) + height; deepest > ws.st.maxDepth {
		return Errorf(CodeTreeTooDeep, "under %q the subtree of %q would reach level %d; a tree has at most %d levels", parent, tenant, deepest, ws.st.maxDepth)
	}
	return nil
}
