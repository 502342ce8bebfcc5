package client

import (
	"fmt"
	"net/url"
	"strings"
)

// InvalidIDError is a caller's value the client refused to put into a URL
// because it would not name exactly one resource: nothing was sent.
type InvalidIDError struct {
	What  string // the argument, e.g. "consumer id"
	Value string
	Why   string
}

func (e *InvalidIDError) Error() string {
	return fmt.Sprintf("allot: %s %q is not valid: %s", e.What, e.Value, e.Why)
}

// checkID refuses a value that would not be one path segment on the
// server: empty, a dot segment (which the URL resolves against its parent:
// DELETE …/consumers/.. would act on the tenant), or a slash. A value that
// decodes to one of those once more is refused too: a proxy or server that
// decodes twice would read a%2Fb as a/b.
func checkID(what, v string) error {
	if p := segmentProblem(v); p != "" {
		return &InvalidIDError{What: what, Value: v, Why: "it " + p}
	}
	if dec, err := url.PathUnescape(v); err == nil && dec != v {
		if p := segmentProblem(dec); p != "" {
			return &InvalidIDError{What: what, Value: v, Why: fmt.Sprintf("it decodes to %q, which %s", dec, p)}
		}
	}
	return nil
}

// segmentProblem says why v is not one path segment; backslashes count as
// slashes because some servers and proxies read them so.
func segmentProblem(v string) string {
	switch {
	case v == "":
		return "is empty"
	case v == "." || v == "..":
		return "is a dot segment"
	case strings.ContainsAny(v, `/\`):
		return "contains a slash"
	}
	return ""
}

// target is a path of the API with the caller's values in it, or why it
// could not be built. do takes a target, not a string, so every path goes
// through route.
type target struct {
	path string
	err  error
}

// route fills the placeholders of pattern, a path under /api/v1 such as
// "/tenants/{tenant id}/consumers/{consumer id}", with values in order,
// each checked and escaped as one segment. The placeholder names the value
// in errors.
func route(pattern string, values ...string) target {
	segs := strings.Split(pattern, "/")
	n := 0
	for i, s := range segs {
		what, ok := strings.CutPrefix(s, "{")
		if !ok {
			continue
		}
		what = strings.TrimSuffix(what, "}")
		if n == len(values) {
			return target{err: fmt.Errorf("allot: route %s: too few values", pattern)}
		}
		if err := checkID(what, values[n]); err != nil {
			return target{err: err}
		}
		segs[i] = url.PathEscape(values[n])
		n++
	}
	if n != len(values) {
		return target{err: fmt.Errorf("allot: route %s: too many values", pattern)}
	}
	return target{path: "/api/v1" + strings.Join(segs, "/")}
}
