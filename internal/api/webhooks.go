package api

import (
	"net/http"
	"net/url"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/webhook"
)

func (a *API) createWebhook(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	var req client.CreateWebhookRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(req.URL) > 2048 || u.User != nil {
		return quota.Errorf(quota.CodeInvalid, "url must be an http:// or https:// URL without credentials, at most 2048 bytes")
	}
	if err := a.hooks.CheckURL(u); err != nil {
		return quota.Errorf(quota.CodeInvalid, "url: %v", err)
	}
	if len(req.Secret) < 16 || len(req.Secret) > 256 {
		return quota.Errorf(quota.CodeInvalid, "secret must be 16 to 256 bytes")
	}
	if len(req.Events) == 0 {
		req.Events = []string{string(quota.EventThreshold)}
	}
	if len(req.Events) > len(quota.EventTypes) {
		return quota.Errorf(quota.CodeInvalid, "too many event types")
	}
	for _, e := range req.Events {
		if e != "*" && !quota.EventType(e).Known() {
			return quota.Errorf(quota.CodeInvalid, "unknown event type %q; known: * %v", truncate(e, 64), quota.EventTypes)
		}
	}
	h := &quota.Webhook{URL: req.URL, Events: req.Events, Tenant: req.Tenant,
		Sealed: a.sealer.Seal([]byte(req.Secret), webhook.SecretContext)}
	res, _, err := a.do(w, r, who, "", &quota.PutWebhook{Webhook: h})
	if err != nil {
		return err
	}
	out := wireWebhook(res.Ops[0].Webhook)
	w.Header().Set("Location", "/api/v1/webhooks/"+out.ID)
	respond(w, http.StatusCreated, out)
	return nil
}

func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request, _ quota.Actor) error {
	hs, err := a.store.Webhooks(r.Context())
	if err != nil {
		return err
	}
	health, err := a.store.WebhookHealth(r.Context())
	if err != nil {
		return err
	}
	byID := make(map[string]*quota.WebhookHealth, len(health))
	for _, x := range health {
		byID[x.Webhook] = x
	}
	out := client.WebhookList{Webhooks: make([]client.Webhook, 0, len(hs))}
	for _, h := range hs {
		w := wireWebhook(h)
		if x := byID[h.ID]; x != nil {
			w.Pending, w.LastStatus, w.LastError, w.Failing = x.Pending, x.LastStatus, x.LastError, x.Failing()
			w.NextAttemptAt, w.LastAttemptAt = utcOrNil(x.NextAttempt), utcOrNil(x.LastAttempt)
		}
		out.Webhooks = append(out.Webhooks, w)
	}
	respond(w, http.StatusOK, out)
	return nil
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	if _, _, err := a.do(w, r, who, "", &quota.DeleteWebhook{ID: r.PathValue("id")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func wireWebhook(h *quota.Webhook) client.Webhook {
	return client.Webhook{ID: h.ID, URL: h.URL, Events: h.Events, Tenant: h.Tenant, CreatedAt: h.CreatedAt.UTC()}
}

// utcOrNil is t in UTC, nil for the zero time.
func utcOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
