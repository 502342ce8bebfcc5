package quota

// PutWebhook subscribes a URL to events of some types, of one tenant or
// of all.
type PutWebhook struct {
	Webhook *Webhook // its ID is assigned by check
}

func (*PutWebhook) Type() OpType { return OpPutWebhook }

func (op *PutWebhook) check(c *checker) error {
	h := op.Webhook
	if h == nil || h.URL == "" || len(h.Sealed) == 0 {
		return Errorf(CodeInvalid, "a webhook needs a URL and a secret")
	}
	if err := CheckText("url", h.URL, 2048); err != nil {
		return err
	}
	if h.Tenant != "" {
		if err := checkTenant(&h.Tenant); err != nil {
			return err
		}
	}
	h.ID = c.newID("wh-")
	return nil
}

func (op *PutWebhook) needs(n *needs) { n.tenant(op.Webhook.Tenant) }

func (op *PutWebhook) apply(ws *workset, ch *Change) (OpResult, error) {
	if op.Webhook.Tenant != "" {
		if _, err := ws.tenant(op.Webhook.Tenant); err != nil {
			return OpResult{}, err
		}
	}
	h := *op.Webhook
	h.CreatedAt = ws.now
	ws.setWebhook(h.ID, &h)
	ws.event(ch, EventWebhookCreate, h.Tenant, h.ID, nil, webhookView{h.URL, h.Events, h.Tenant})
	return OpResult{Webhook: &h, Created: true, Changed: true}, nil
}
