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
