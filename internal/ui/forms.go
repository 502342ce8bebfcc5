package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/client"
)

// formInt reads a whole number from a form field.
func formInt(r *http.Request, field, label string) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue(field)), 10, 64)
	if err != nil {
		return 0, formError(label + " must be a whole number.")
	}
	return v, nil
}

// createRequest asks for a new hard quota (the tenant itself, or an admin).
func (u *UI) createRequest(w http.ResponseWriter, r *http.Request, s *session) error {
	tenant, back := r.PathValue("tenant"), "/ui/tenants/"+r.PathValue("tenant")
	if !s.admin() && s.actor.Tenant != tenant {
		return httpError{http.StatusForbidden, "Only the tenant itself or an admin may ask for a change."}
	}
	value, err := formInt(r, "value", "The new hard quota")
	if err != nil {
		return u.done(w, r, s, err, "", back)
	}
	res := r.PostFormValue("resource")
	x, err := u.client(s).CreateRequest(r.Context(), tenant, client.CreateRequestRequest{Resource: res, Value: &value,
		Reason: strings.TrimSpace(r.PostFormValue("reason"))})
	msg := ""
	if err == nil && x.Status == "approved" {
		msg = fmt.Sprintf("Approved at once: the hard quota of %s is now %s.", x.Resource, num(x.Value))
	} else if err == nil {
		msg = fmt.Sprintf("Asked for %s = %s; the request is %s.", x.Resource, num(x.Value), x.Status)
	}
	return u.done(w, r, s, err, msg, back)
}

// decide approves or denies a pending request (admins).
func (u *UI) decide(w http.ResponseWriter, r *http.Request, s *session) error {
	tenant, id, c := r.PathValue("tenant"), r.PathValue("id"), u.client(s)
	comment := strings.TrimSpace(r.PostFormValue("comment"))
	var x *client.Request
	var err error
	switch r.PostFormValue("decision") {
	case "approve":
		x, err = c.ApproveRequest(r.Context(), tenant, id, comment)
	case "deny":
		x, err = c.DenyRequest(r.Context(), tenant, id, comment)
	default:
		err = formError("Choose approve or deny.")
	}
	msg := ""
	if err == nil {
		msg = fmt.Sprintf("%s %s of %s = %s.", strings.ToUpper(x.Status[:1])+x.Status[1:], x.Resource, x.Tenant, num(x.Value))
	}
	return u.done(w, r, s, err, msg, "/ui/requests")
}

// setQuota sets a hard quota and, optionally, the requestable range (admins).
func (u *UI) setQuota(w http.ResponseWriter, r *http.Request, s *session) error {
	tenant, back := r.PathValue("tenant"), "/ui/tenants/"+r.PathValue("tenant")
	hard, err := formInt(r, "hard", "The hard quota")
	req := client.SetQuotaRequest{Hard: &hard}
	lo, hi := strings.TrimSpace(r.PostFormValue("min")), strings.TrimSpace(r.PostFormValue("max"))
	if err == nil && (lo != "" || hi != "") {
		var rng client.Range
		if rng.Min, err = formInt(r, "min", "The requestable minimum"); err == nil {
			rng.Max, err = formInt(r, "max", "The requestable maximum")
		}
		req.Requestable = &rng
	}
	var q *client.ResourceQuota
	if err == nil {
		q, err = u.client(s).SetQuota(r.Context(), tenant, r.PostFormValue("resource"), req)
	}
	msg := ""
	if err == nil {
		msg = fmt.Sprintf("The hard quota of %s is now %s (requestable %s–%s).", q.Resource, num(q.Hard), num(q.Requestable.Min), num(q.Requestable.Max))
		if q.OverQuota {
			msg += fmt.Sprintf(" The tenant uses %s: it is over quota and may not grow until it is back below.", num(q.Used))
		}
	}
	return u.done(w, r, s, err, msg, back)
}

// setLimit sets a per-object limit (admins); the limit field is kind/limit.
func (u *UI) setLimit(w http.ResponseWriter, r *http.Request, s *session) error {
	tenant, back := r.PathValue("tenant"), "/ui/tenants/"+r.PathValue("tenant")
	i := strings.LastIndex(r.PostFormValue("limit"), "/")
	if i < 0 {
		return u.done(w, r, s, formError("Choose a limit."), "", back)
	}
	kind, name := r.PostFormValue("limit")[:i], r.PostFormValue("limit")[i+1:]
	lo, err := formInt(r, "min", "The minimum")
	var hi int64
	if err == nil {
		hi, err = formInt(r, "max", "The maximum")
	}
	var l *client.Limit
	if err == nil {
		l, err = u.client(s).SetLimit(r.Context(), tenant, kind, name, client.SetLimitRequest{Min: &lo, Max: &hi})
	}
	msg := ""
	if err == nil {
		msg = fmt.Sprintf("The limit %s.%s is now %s–%s.", l.Kind, l.Limit, num(l.Min), num(l.Max))
	}
	return u.done(w, r, s, err, msg, back)
}

// eventStream relays the API's event stream (which needs the session's
// token in a header an EventSource cannot send) as Server-Sent Events,
// keeping only the events of the type filter.
func (u *UI) eventStream(w http.ResponseWriter, r *http.Request, s *session) error {
	f, c := r.URL.Query(), u.client(s)
	tenant, typ := f.Get("tenant"), f.Get("type")
	after, _ := strconv.ParseInt(f.Get("after"), 10, 64)
	if n, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && n > after {
		after = n // the browser reconnects where it stopped
	}
	if _, err := c.Events(r.Context(), client.EventQuery{Tenant: tenant, Limit: 1}); err != nil {
		return err // refused before the stream starts, so the EventSource gives up
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	if rc.Flush() != nil {
		return nil
	}
	err := c.StreamEvents(r.Context(), tenant, after, func(e client.Event) error {
		if !typeMatches(typ, e.Type) {
			return nil
		}
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.Seq, data); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && r.Context().Err() == nil {
		u.log.Warn("ui: the event stream ended", "err", err)
	}
	return nil
}
