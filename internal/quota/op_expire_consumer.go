package quota

// ExpireConsumer releases a reservation whose time ran out: allot's own
// change, from the sweeper. It is a no-op for a consumer that another
// process released already, or that was confirmed or renewed meanwhile
// (its generation moved), so each expiry happens exactly once.
type ExpireConsumer struct {
	Tenant, Consumer string
	Generation       int64 // release only if the consumer still has it
}

func (*ExpireConsumer) Type() OpType { return OpExpireConsumer }

func (op *ExpireConsumer) check(*checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	return CheckID("consumer", op.Consumer)
}

func (op *ExpireConsumer) needs(n *needs) { n.consumer(op.Tenant, op.Consumer) }

func (op *ExpireConsumer) apply(ws *workset, ch *Change) (OpResult, error) {
	if ws.tenants[op.Tenant] == nil {
		return OpResult{}, nil
	}
	key := ConsumerKey{op.Tenant, op.Consumer}
	old := ws.consumers[key]
	if old == nil || old.Generation != op.Generation || old.ExpiresAt == nil || old.ExpiresAt.After(ws.now) {
		return OpResult{}, nil
	}
	ws.removeConsumer(ch, key, old, EventConsumerExpired)
	return OpResult{Consumer: old, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}
