// Package route holds the routing every API dialect shares: one algorithm
// for unknown paths and wrong methods, and one rule for which paths are
// served at all. Each dialect passes its own renderer, so its callers get
// errors in the shape their clients parse.
package route

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/allot-dev/allot/internal/quota"
)

// Router is where a dialect registers its routes: an *http.ServeMux, or a
// recorder in tests that hold documents and matrices to the routes.
type Router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Problem is an answer the router gives before any handler runs.
type Problem struct {
	Status  int        // 400, 404 or 405
	Code    quota.Code // invalid_request, not_found or method_not_allowed
	Message string
	Allow   []string // 405: the methods the path takes
}

// CodeMethodNotAllowed is the code of a 405.
const CodeMethodNotAllowed quota.Code = "method_not_allowed"

// Render writes a Problem in a dialect's error shape.
type Render func(w http.ResponseWriter, r *http.Request, p Problem)

// Fallback serves mux, answering a request that matches no route with 405
// (and Allow) when its path exists under another method, else 404.
func Fallback(mux *http.ServeMux, render Render) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		if allow := AllowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			render(w, r, Problem{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Allow: allow,
				Message: r.Method + " is not allowed here; use " + strings.Join(allow, ", ")})
			return
		}
		render(w, r, Problem{Status: http.StatusNotFound, Code: quota.CodeNotFound, Message: "no such route: " + clip(r.URL.Path, 200)})
	})
}

// AllowedMethods lists the methods mux routes for r's path.
func AllowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

// Strict refuses, with a 400 in the shape of the dialect that owns the
// path's prefix, every path that does not name exactly one resource: dot
// segments ("." and "..", also percent-encoded), encoded slashes and
// backslashes, empty segments other than a trailing one, and segments that
// are not valid text. A request acts on exactly the path it names, or is
// refused: it is never cleaned, redirected or reinterpreted.
func Strict(next http.Handler, byPrefix map[string]Render, fallback Render) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if msg := checkPath(r.URL); msg != "" {
			render := fallback
			for prefix, rd := range byPrefix {
				if strings.HasPrefix(r.URL.Path, prefix) {
					render = rd
				}
			}
			render(w, r, Problem{Status: http.StatusBadRequest, Code: quota.CodeInvalid, Message: msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkPath returns why a URL's path is refused, or "".
func checkPath(u *url.URL) string {
	raw := u.EscapedPath()
	if !strings.HasPrefix(raw, "/") {
		return "the path must start with /"
	}
	segs := strings.Split(raw[1:], "/")
	for i, seg := range segs {
		if seg == "" && i < len(segs)-1 {
			return "the path has an empty segment (//)"
		}
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return "the path holds a malformed percent-encoding"
		}
		switch {
		case dec == "." || dec == "..":
			return "the path has a dot segment (. or ..); name the resource itself"
		case strings.ContainsAny(dec, `/\`):
			return "the path has an encoded slash or a backslash in a segment"
		case !utf8.ValidString(dec):
			return "the path is not valid UTF-8"
		}
		for _, r := range dec {
			if quota.BadRune(r) {
				return "the path holds a control character"
			}
		}
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
