package ui

import (
	"net/http"
	"strings"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
)

// home sends each role to its start page.
func (u *UI) home(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch s := u.sessions.lookup(r); {
	case s == nil:
		http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
	case s.operator():
		http.Redirect(w, r, "/ui/tenants", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/ui/tenants/"+s.actor.Tenant, http.StatusSeeOther)
	}
}

type signinPage struct {
	CSRF  string
	Error string
}

// signinForm shows the form with a fresh secret in a cookie and in a
// hidden field: a sign-in, too, must come from this page (no login CSRF).
func (u *UI) signinForm(w http.ResponseWriter, r *http.Request) {
	if u.sessions.lookup(r) != nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	u.showSignin(w, r, http.StatusOK, "")
}

func (u *UI) showSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	secret := randomID()
	setCookie(w, r, signinCookie, secret, "/ui/signin", 3600)
	u.render(w, r, nil, status, "signin", view{Title: "Sign in", Page: signinPage{CSRF: secret, Error: msg}})
}

// signin learns who holds the token the way the API does (auth.Authenticate
// over the token store), which names the tenant of a tenant token exactly,
// then keeps the token in a new server-side session. A revoked token ends
// the session at its next API call.
func (u *UI) signin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	c, err := r.Cookie(signinCookie)
	if err != nil || !validPost(r, c.Value) {
		u.fail(w, r, nil, httpError{http.StatusForbidden, "The sign-in form has expired or was sent from another site. Open it again."})
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	who, err := auth.Authenticate(r.Context(), u.cfg.Tokens, token)
	if quota.ErrorCode(err) == quota.CodeUnauthorized || err == nil && !who.Role.Valid() {
		u.showSignin(w, r, http.StatusUnauthorized, "That token is not valid. Check it and try again.")
		return
	}
	if err != nil {
		u.fail(w, r, nil, err)
		return
	}
	if old := u.sessions.lookup(r); old != nil {
		u.sessions.drop(old) // one browser, one session
	}
	s := u.sessions.create(who, token)
	u.log.Info("ui: signed in", "name", who.Name, "role", who.Role)
	setCookie(w, r, signinCookie, "", "/ui/signin", -1)
	setCookie(w, r, sessionCookie, s.id, "/ui/", 0)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (u *UI) signout(w http.ResponseWriter, r *http.Request, s *session) error {
	u.sessions.drop(s)
	setCookie(w, r, sessionCookie, "", "/ui/", -1)
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
	return nil
}
