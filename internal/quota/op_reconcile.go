package quota

import "slices"

// Reconcile makes a tenant's consumers of some kinds equal an inventory of
// what really exists, regardless of quotas and limits: the inventory wins.
type Reconcile struct {
	Tenant    string
	Kinds     []string        // the kinds the inventory covers
	Inventory []InventoryItem // every consumer of those kinds that exists
}

func (*Reconcile) Type() OpType { return OpReconcile }

func (op *Reconcile) check(c *checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	if len(op.Kinds) == 0 {
		return Errorf(CodeInvalid, "kinds: name the kinds the inventory covers")
	}
	for _, k := range op.Kinds {
		if c.cat.Kind(k) == nil {
			return Errorf(CodeInvalid, "kinds: unknown kind %q", truncate(k, 140))
		}
	}
	seen := make(map[string]bool, len(op.Inventory))
	for i := range op.Inventory {
		item := &op.Inventory[i]
		if err := CheckID("consumer", item.ID); err != nil {
			return err
		}
		if seen[item.ID] {
			return Errorf(CodeInvalid, "consumer %s is listed twice", item.ID)
		}
		seen[item.ID] = true
		if !slices.Contains(op.Kinds, item.Spec.Kind) {
			return Errorf(CodeInvalid, "consumer %s is a %q, which kinds does not list", item.ID, truncate(item.Spec.Kind, 140))
		}
		item.Spec.TTL = 0
		k, attrs, err := c.cat.Normalize(item.Spec)
		if err != nil {
			return err
		}
		item.kind, item.Spec.Attributes = k, attrs
	}
	return nil
}

// needs lists every consumer of the kinds as the store holds them.
func (op *Reconcile) needs(n *needs) {
	for _, item := range op.Inventory {
		n.consumer(op.Tenant, item.ID)
	}
	n.tenant(op.Tenant)
	n.listed[op.Tenant] = op.Kinds
	n.settled = true
}

// reconcile makes the tenant's consumers of op.Kinds equal to op.Inventory,
// regardless of quotas and limits: the inventory is what exists.
func (op *Reconcile) apply(ws *workset, ch *Change) (OpResult, error) {
	if _, err := ws.tenant(op.Tenant); err != nil {
		return OpResult{}, err
	}
	rc := *ch
	rc.Reason = "reconcile"
	out := OpResult{Changed: false, Reconcile: &ReconcileResult{}}
	want := map[string]bool{}
	for _, item := range op.Inventory {
		want[item.ID] = true
		key := ConsumerKey{op.Tenant, item.ID}
		old := ws.consumers[key]
		put := &PutConsumer{Tenant: op.Tenant, Consumer: item.ID, Spec: item.Spec, kind: item.kind, force: true}
		r, err := put.apply(ws, &rc)
		if err != nil {
			return OpResult{}, err
		}
		switch {
		case !r.Changed:
		case old == nil:
			out.Reconcile.Created = append(out.Reconcile.Created, item.ID)
		default:
			out.Reconcile.Updated = append(out.Reconcile.Updated, item.ID)
		}
	}
	for _, c := range ws.listed[op.Tenant] {
		if want[c.ID] || ws.consumers[c.Key()] == nil {
			continue
		}
		if _, err := (&DeleteConsumer{Tenant: op.Tenant, Consumer: c.ID}).apply(ws, &rc); err != nil {
			return OpResult{}, err
		}
		out.Reconcile.Deleted = append(out.Reconcile.Deleted, c.ID)
	}
	out.Changed = len(out.Reconcile.Created)+len(out.Reconcile.Updated)+len(out.Reconcile.Deleted) > 0
	out.Usage = ws.usageOf(op.Tenant)
	return out, nil
}
