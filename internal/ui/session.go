package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// Sessions live in this process only: the browser's cookie holds a random
// id and nothing else, the API token stays on the server. (Several allot
// processes behind one address need sticky sessions for the dashboard.)

const (
	sessionCookie = "allot_session"
	signinCookie  = "allot_signin" // the sign-in form's CSRF secret, before any session exists
)

type session struct {
	id    string
	token string
	actor quota.Actor
	csrf  string
	seen  time.Time
	flash *flash
}

// flash is a one-time message shown on the page after a form's redirect.
type flash struct {
	Kind string // "ok" or "error"
	Text string
}

func (s *session) operator() bool {
	return s.actor.Role == quota.RoleAdmin || s.actor.Role == quota.RoleService
}
func (s *session) admin() bool { return s.actor.Role == quota.RoleAdmin }

type sessionStore struct {
	mu   sync.Mutex
	byID map[string]*session
	idle time.Duration
	now  func() time.Time
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session, first forgetting every expired one.
func (st *sessionStore) create(a quota.Actor, token string) *session {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	for id, s := range st.byID {
		if now.Sub(s.seen) > st.idle {
			delete(st.byID, id)
		}
	}
	s := &session{id: randomID(), token: token, actor: a, csrf: randomID(), seen: now}
	st.byID[s.id] = s
	return s
}

// lookup returns the request's live session, or nil, and marks it used.
func (st *sessionStore) lookup(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byID[c.Value]
	if s == nil {
		return nil
	}
	if now := st.now(); now.Sub(s.seen) <= st.idle {
		s.seen = now
		return s
	}
	delete(st.byID, s.id)
	return nil
}

func (st *sessionStore) drop(s *session) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.byID, s.id)
}

func (st *sessionStore) setFlash(s *session, f flash) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s.flash = &f
}

func (st *sessionStore) popFlash(s *session) *flash {
	st.mu.Lock()
	defer st.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

// setCookie sets (maxAge > 0) or clears (maxAge < 0) a dashboard cookie.
func setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"})
}

// validPost guards a form against cross-site request forgery: the hidden
// csrf field must equal want, and an Origin or Referer, when the browser
// sends one, must name this host.
func validPost(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return false
	}
	from := r.Header.Get("Origin")
	if from == "" {
		from = r.Header.Get("Referer")
	}
	if from == "" {
		return true
	}
	u, err := url.Parse(from)
	return err == nil && u.Host != "" && u.Host == r.Host
}
