package quota

// RevokeToken revokes a token or an access key, for good.
type RevokeToken struct {
	Name string
}

func (*RevokeToken) Type() OpType { return OpRevokeToken }

func (op *RevokeToken) check(*checker) error { return CheckID("token name", op.Name) }

func (op *RevokeToken) needs(n *needs) {
	n.tokens[op.Name] = true
	n.settled = true
}

func (op *RevokeToken) apply(ws *workset, ch *Change) (OpResult, error) {
	old := ws.tokens[op.Name]
	if old == nil {
		return OpResult{}, Errorf(CodeNotFound, "token %q not found", op.Name)
	}
	if old.RevokedAt != nil {
		return OpResult{}, nil
	}
	t := *old
	now := ws.now
	t.RevokedAt = &now
	ws.setToken(op.Name, &t)
	ws.event(ch, EventTokenRevoke, t.Tenant, t.Name, tokenView{t.Role, t.Tenant}, nil)
	return OpResult{Changed: true}, nil
}
