package quota

import "time"

// PutConsumer creates a consumer or changes its state and attributes: the
// claim. Only what grows is held to quotas, and only attributes that
// change are held to the current limits.
type PutConsumer struct {
	Tenant, Consumer string
	Spec             Spec
	IfMatch          int64 // the generation the consumer must have; 0 for any

	kind  *Kind // resolved by check
	force bool  // during a reconciliation: reality wins over quotas and limits
}

func (*PutConsumer) Type() OpType { return OpPutConsumer }

func (op *PutConsumer) check(c *checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	if err := CheckID("consumer", op.Consumer); err != nil {
		return err
	}
	k, attrs, err := c.cat.Normalize(op.Spec)
	if err != nil {
		return err
	}
	op.kind, op.Spec.Attributes = k, attrs
	if op.IfMatch < 0 {
		return Errorf(CodeInvalid, "if-match must be a positive generation")
	}
	return nil
}

func (op *PutConsumer) needs(n *needs) { n.consumer(op.Tenant, op.Consumer) }

func (op *PutConsumer) apply(ws *workset, ch *Change) (OpResult, error) {
	t, err := ws.tenant(op.Tenant)
	if err != nil {
		return OpResult{}, err
	}
	key := ConsumerKey{op.Tenant, op.Consumer}
	old := ws.releaseIfExpired(key)
	if op.IfMatch != 0 && (old == nil || old.Generation != op.IfMatch) {
		return OpResult{}, Errorf(CodeGenerationMismatch, "consumer %s is not at generation %d", op.Consumer, op.IfMatch)
	}
	k, attrs := op.kind, op.Spec.Attributes
	if old != nil && old.Kind != k.Name {
		return OpResult{}, Errorf(CodeConflict, "consumer %s is a %s, not a %s: its kind cannot change", op.Consumer, old.Kind, k.Name)
	}
	// Only attributes that change are held to the current limits, so that a
	// lowered limit never blocks stopping or deleting what exists.
	changed := attrs
	if old != nil {
		changed = map[string]int64{}
		for a, v := range attrs {
			if ov, ok := old.Attributes[a]; !ok || ov != v {
				changed[a] = v
			}
		}
	}
	if err := ws.cat.CheckLimits(t, k, changed); err != nil && !op.force {
		return OpResult{}, err
	}
	fp, err := FootprintOf(k, op.Spec.State, attrs)
	if err != nil {
		return OpResult{}, err
	}
	var oldFP Footprint
	var exp *time.Time
	if op.Spec.TTL > 0 {
		at := ws.now.Add(op.Spec.TTL).UTC()
		exp = &at
	}
	if old != nil {
		oldFP = old.Footprint
		if old.sameAs(k.Name, op.Spec.State, attrs, exp) {
			return OpResult{Consumer: old, Usage: ws.usageOf(op.Tenant)}, nil
		}
	}
	delta := Delta(oldFP, fp)
	if op.force {
		if err := checkOverflow(ws.usage[op.Tenant], delta); err != nil {
			return OpResult{}, err
		}
	} else if err := ws.checkQuotas(t, delta); err != nil {
		return OpResult{}, err
	}
	c := &Consumer{
		Tenant: op.Tenant, ID: op.Consumer, Kind: k.Name, State: op.Spec.State, Attributes: attrs,
		Generation: 1, Footprint: fp, ExpiresAt: exp, CreatedAt: ws.now, UpdatedAt: ws.now,
	}
	if old != nil {
		c.Generation, c.CreatedAt = old.Generation+1, old.CreatedAt
	}
	ws.setConsumer(key, c)
	ws.addUsage(op.Tenant, delta)
	ws.countConsumer(op.Tenant, old == nil, 1)
	ws.event(ch, EventConsumerPut, op.Tenant, op.Consumer, viewOf(old), viewOf(c))
	return OpResult{Consumer: c, Created: old == nil, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}
