package quota

// DeleteConsumer releases a consumer and everything it used.
type DeleteConsumer struct {
	Tenant, Consumer string
	IfMatch          int64 // the generation the consumer must have; 0 for any
}

func (*DeleteConsumer) Type() OpType { return OpDeleteConsumer }

func (op *DeleteConsumer) check(*checker) error {
	if err := checkTenant(&op.Tenant); err != nil {
		return err
	}
	if op.IfMatch < 0 {
		return Errorf(CodeInvalid, "if-match must be a positive generation")
	}
	return CheckID("consumer", op.Consumer)
}

func (op *DeleteConsumer) needs(n *needs) { n.consumer(op.Tenant, op.Consumer) }

func (op *DeleteConsumer) apply(ws *workset, ch *Change) (OpResult, error) {
	if _, err := ws.tenant(op.Tenant); err != nil {
		return OpResult{}, err
	}
	key := ConsumerKey{op.Tenant, op.Consumer}
	old := ws.releaseIfExpired(key)
	if old == nil {
		return OpResult{}, Errorf(CodeNotFound, "consumer %q not found", op.Consumer)
	}
	if op.IfMatch != 0 && old.Generation != op.IfMatch {
		return OpResult{}, Errorf(CodeGenerationMismatch, "consumer %s is not at generation %d", op.Consumer, op.IfMatch)
	}
	ws.removeConsumer(ch, key, old, EventConsumerDelete)
	return OpResult{Consumer: old, Changed: true, Usage: ws.usageOf(op.Tenant)}, nil
}
