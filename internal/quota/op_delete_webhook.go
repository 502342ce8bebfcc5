package quota

// DeleteWebhook unsubscribes, dropping the deliveries still queued.
type DeleteWebhook struct {
	ID string
}

func (*DeleteWebhook) Type() OpType { return OpDeleteWebhook }

func (op *DeleteWebhook) check(*checker) error { return CheckID("webhook", op.ID) }

func (op *DeleteWebhook) needs(*needs) {}

func (op *DeleteWebhook) apply(ws *workset, ch *Change) (OpResult, error) {
	h := ws.webhooks[op.ID]
	if h == nil {
		return OpResult{}, Errorf(CodeNotFound, "webhook %q not found", op.ID)
	}
	ws.setWebhook(op.ID, nil)
	ws.event(ch, EventWebhookDelete, h.Tenant, h.ID, webhookView{h.URL, h.Events, h.Tenant}, nil)
	return OpResult{Webhook: h, Changed: true}, nil
}
