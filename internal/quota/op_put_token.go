package quota

// PutToken stores a credential: a bearer token's hash, or an access key's
// sealed secret.
type PutToken struct {
	Token   *Token
	Replace bool // replace a token of the same name (the bootstrap admin token)
}

func (*PutToken) Type() OpType { return OpPutToken }

func (op *PutToken) check(*checker) error {
	t := op.Token
	if t == nil || !t.Role.Valid() || (len(t.Hash) == 0) == (len(t.Sealed) == 0) {
		return Errorf(CodeInvalid, "a token needs a valid role and either a hash or a sealed secret")
	}
	if err := CheckID("token name", t.Name); err != nil {
		return err
	}
	if (t.Role == RoleTenant) != (t.Tenant != "") {
		return Errorf(CodeInvalid, "a tenant token names its tenant; other roles name none")
	}
	if t.Tenant != "" {
		return checkTenant(&t.Tenant)
	}
	return nil
}

func (op *PutToken) needs(n *needs) {
	n.tenant(op.Token.Tenant)
	n.tokens[op.Token.Name] = true
	n.settled = true
}

func (op *PutToken) apply(ws *workset, ch *Change) (OpResult, error) {
	tok := op.Token
	if old := ws.tokens[tok.Name]; old != nil && !op.Replace {
		return OpResult{}, Errorf(CodeConflict, "a token named %q exists already", tok.Name)
	}
	if tok.Role == RoleTenant {
		if _, err := ws.tenant(tok.Tenant); err != nil {
			return OpResult{}, err
		}
	}
	t := *tok
	t.CreatedAt = ws.now
	ws.setToken(tok.Name, &t)
	ws.event(ch, EventTokenCreate, tok.Tenant, tok.Name, nil, tokenView{t.Role, t.Tenant})
	return OpResult{Changed: true}, nil
}
