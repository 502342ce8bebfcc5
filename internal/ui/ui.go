// Package ui serves allot's web dashboard under /ui/: pages rendered on the
// server from embedded templates, over the native API. Every page calls the
// API in-process through the public Go client with the signed-in user's own
// token, so the dashboard can never show or do more than that token may.
package ui

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
)

//go:embed templates static
var assets embed.FS

// Config is what the dashboard needs.
type Config struct {
	API     http.Handler     // the native API (/api/v1); required
	Tokens  auth.TokenReader // tells who holds a token at sign-in (the store); required
	Catalog *quota.Catalog   // kinds and states for the consumer filters; required
	Logger  *slog.Logger     // nil: discard
	Now     func() time.Time // nil: time.Now
	Idle    time.Duration    // a session ends after this long unused; 0: 12 hours
}

// UI is the dashboard.
type UI struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	pages    map[string]*template.Template
	sessions *sessionStore
	api      *http.Client
	mux      *http.ServeMux
}

// New returns the dashboard's handler, to be mounted at /ui/. It panics when
// a required dependency is missing: that is a wiring mistake.
func New(cfg Config) *UI {
	if cfg.API == nil || cfg.Tokens == nil || cfg.Catalog == nil {
		panic("ui: Config.API, Config.Tokens and Config.Catalog are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 12 * time.Hour
	}
	u := &UI{cfg: cfg, log: cfg.Logger, now: cfg.Now, pages: map[string]*template.Template{},
		api: &http.Client{Transport: handlerTransport{cfg.API}}, mux: http.NewServeMux(),
		sessions: &sessionStore{byID: map[string]*session{}, idle: cfg.Idle, now: cfg.Now}}
	for _, p := range []string{"signin", "tenants", "tenant", "quotas", "requests", "events", "webhooks", "error"} {
		u.pages[p] = template.Must(template.New(p).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+p+".html"))
	}
	u.routes()
	return u
}

// access says who may open a route.
type access int

const (
	signedIn  access = iota // any session; a tenant only under its own /ui/tenants/{tenant}
	operators               // admin and service
	admins                  // admin
)

// routes lists the dashboard's whole surface.
func (u *UI) routes() {
	static, _ := fs.Sub(assets, "static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	u.mux.Handle("GET /ui/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		files.ServeHTTP(w, r)
	}))
	u.mux.HandleFunc("GET /ui/{$}", u.home)
	u.mux.HandleFunc("GET /ui/signin", u.signinForm)
	u.mux.HandleFunc("POST /ui/signin", u.signin)
	u.handle("POST /ui/signout", signedIn, u.signout)

	u.handle("GET /ui/tenants", operators, u.tenantsPage)
	u.handle("GET /ui/tenants/{tenant}", signedIn, u.tenantPage)
	u.handle("POST /ui/tenants/{tenant}/requests", signedIn, u.createRequest)
	u.handle("POST /ui/tenants/{tenant}/requests/{id}/decide", admins, u.decide)
	u.handle("POST /ui/tenants/{tenant}/quotas", admins, u.setQuota)
	u.handle("POST /ui/tenants/{tenant}/limits", admins, u.setLimit)
	u.handle("GET /ui/quotas", operators, u.nearLimitPage)
	u.handle("GET /ui/webhooks", admins, u.webhooksPage)
	u.handle("GET /ui/requests", operators, u.requestsPage)
	u.handle("GET /ui/events", operators, u.eventsPage)
	u.handle("GET /ui/events/stream", signedIn, u.eventStream)

	u.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.fail(w, r, u.sessions.lookup(r), httpError{http.StatusNotFound, "There is no such page."})
	})
}

// ServeHTTP serves the dashboard with headers that keep its pages from
// loading anything from elsewhere or being framed.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, s *session) error

// handle registers h behind the session, CSRF and access checks.
func (u *UI) handle(pattern string, acc access, h handlerFunc) {
	u.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s := u.sessions.lookup(r)
		if s == nil {
			if r.URL.Path == "/ui/events/stream" {
				http.Error(w, "sign in first", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !validPost(r, s.csrf) {
				u.fail(w, r, s, httpError{http.StatusForbidden, "This form has expired or was sent from another site. Reload the page and try again."})
				return
			}
		}
		var err error
		switch t := r.PathValue("tenant"); {
		case s.actor.Role == quota.RoleTenant && t != "" && t != s.actor.Tenant:
			err = httpError{http.StatusNotFound, "There is no such tenant."} // as the API: existence never leaks
		case acc == operators && !s.operator(), acc == admins && !s.admin():
			err = httpError{http.StatusForbidden, "Your token may not open this page."}
		default:
			err = h(w, r, s)
		}
		if err != nil {
			u.fail(w, r, s, err)
		}
	})
}

// client is the native API as the session's token sees it.
func (u *UI) client(s *session) *client.Client {
	return client.New("http://allot.in-process", client.WithToken(s.token), client.WithHTTPClient(u.api))
}

// httpError is an answer the dashboard itself decides.
type httpError struct {
	status int
	msg    string
}

func (e httpError) Error() string { return e.msg }

// formError is a mistake in a form, shown to the user on the page again.
type formError string

func (e formError) Error() string { return string(e) }

// fail renders an error. The API's 401 means the token was revoked: the
// session ends.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong; it has been logged."
	if he, ok := errors.AsType[httpError](err); ok {
		status, msg = he.status, he.msg
	} else if ae, ok := errors.AsType[*client.Error](err); ok && ae.Status < 500 {
		if ae.Status == http.StatusUnauthorized && s != nil {
			u.sessions.drop(s)
			setCookie(w, r, sessionCookie, "", "/ui/", -1)
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
			return
		}
		status, msg = ae.Status, problemText(ae)
	} else {
		u.log.Error("ui: serving a page", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	u.render(w, r, s, status, "error", view{Title: http.StatusText(status), Page: struct {
		Status int
		Text   string
	}{status, msg}})
}

// problemText says in one sentence why the API refused.
func problemText(e *client.Error) string {
	p := e.Problem
	text := p.Detail
	if text == "" {
		text = strings.ReplaceAll(p.Code, "_", " ")
	}
	for _, v := range p.Violations {
		if v.Resource != "" {
			text += fmt.Sprintf("; %s: %d used of %d, %d asked, %d available", v.Resource, v.Used, v.Hard, v.Requested, v.Available)
		} else {
			text += fmt.Sprintf("; %s.%s = %d is outside [%d, %d]", v.Kind, v.Attribute, v.Value, v.Min, v.Max)
		}
	}
	return text
}

// view is what every page template gets.
type view struct {
	Title   string
	Section string // the current entry of the navigation
	S       *sessionView
	Flash   *flash
	Path    string // this page, for forms to come back to
	Page    any
}

type sessionView struct {
	Name, Role, Tenant, CSRF string
	Operator, Admin          bool
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, s *session, status int, page string, v view) {
	if s != nil {
		v.S = &sessionView{Name: s.actor.Name, Role: string(s.actor.Role), Tenant: s.actor.Tenant, CSRF: s.csrf,
			Operator: s.operator(), Admin: s.admin()}
		v.Flash = u.sessions.popFlash(s)
	}
	v.Path = r.URL.RequestURI()
	var buf bytes.Buffer
	if err := u.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		u.log.Error("ui: rendering a page", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// done ends a form: a refusal of the API or a mistake in the form becomes
// an error message, success the message ok; both go back to the page the
// form came from (303, so reloading does not send it again).
func (u *UI) done(w http.ResponseWriter, r *http.Request, s *session, err error, ok, fallback string) error {
	if fe, isForm := errors.AsType[formError](err); isForm {
		u.sessions.setFlash(s, flash{"error", string(fe)})
	} else if ae, isAPI := errors.AsType[*client.Error](err); isAPI && ae.Status < 500 &&
		ae.Status != http.StatusUnauthorized && ae.Status != http.StatusForbidden && ae.Status != http.StatusNotFound {
		u.sessions.setFlash(s, flash{"error", problemText(ae)})
	} else if err != nil {
		return err
	} else {
		u.sessions.setFlash(s, flash{"ok", ok})
	}
	http.Redirect(w, r, localPath(r.PostFormValue("next"), fallback), http.StatusSeeOther)
	return nil
}

// localPath returns next if it is a page of the dashboard, else fallback:
// a form must not send anyone elsewhere.
func localPath(next, fallback string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(next, "/ui/") ||
		strings.ContainsAny(next, "\\\r\n") || strings.Contains(next, "//") {
		return fallback
	}
	return next
}
