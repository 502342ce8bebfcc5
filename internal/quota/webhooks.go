package quota

import (
	"slices"
	"time"
)

// Webhook is a subscription: events of the listed types (or "*" for all),
// of one tenant or of all, are POSTed to URL, signed with the secret.
type Webhook struct {
	ID        string
	URL       string
	Events    []string
	Tenant    string // "" for every tenant
	Sealed    []byte // the signing secret, encrypted
	CreatedAt time.Time
}

// Matches reports whether the webhook wants e.
func (w *Webhook) Matches(e *Event) bool {
	if w.Tenant != "" && w.Tenant != e.Tenant {
		return false
	}
	return slices.Contains(w.Events, "*") || slices.Contains(w.Events, string(e.Type))
}

// Delivery is one event on its way to one webhook.
type Delivery struct {
	ID        int64
	Webhook   *Webhook
	Event     *Event
	Attempts  int
	CreatedAt time.Time
}

func (ws *workset) putWebhook(ch Change, op Op) (OpResult, error) {
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

func (ws *workset) deleteWebhook(ch Change, op Op) (OpResult, error) {
	h := ws.webhooks[op.ID]
	if h == nil {
		return OpResult{}, Errorf(CodeNotFound, "webhook %q not found", op.ID)
	}
	ws.setWebhook(op.ID, nil)
	ws.event(ch, EventWebhookDelete, h.Tenant, h.ID, webhookView{h.URL, h.Events, h.Tenant}, nil)
	return OpResult{Webhook: h, Changed: true}, nil
}

func (ws *workset) setWebhook(id string, h *Webhook) {
	old, had := ws.webhooks[id]
	ws.undo = append(ws.undo, func() {
		if had {
			ws.webhooks[id] = old
		} else {
			delete(ws.webhooks, id)
		}
	})
	ws.webhooks[id] = h
	ws.dirtyWebhooks[id] = true
}

type webhookView struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Tenant string   `json:"tenant,omitempty"`
}
