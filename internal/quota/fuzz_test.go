package quota

import (
	"strings"
	"testing"
)

// FuzzParseCatalog must never panic, and what it accepts must be usable:
// every resource and kind resolvable, and footprints derivable.
func FuzzParseCatalog(f *testing.F) {
	f.Add(string(DefaultCatalogYAML()))
	f.Add("services:\n  s:\n    resources:\n      r: {default: 1, requestable: [0, 2]}\n")
	f.Add("services:\n  s:\n    resources:\n      r: {default: 1}\n    kinds:\n      k:\n        attributes: {a: {limit: [1, 2]}}\n        usage: {always: {r: a}}\n")
	f.Add("services: {s: {kinds: {k: {usage: {always: {r: 9223372036854775807}}}}}}")
	f.Add("&a [*a, *a]")
	f.Fuzz(func(t *testing.T, src string) {
		c, err := ParseCatalog([]byte(src))
		if err != nil {
			return
		}
		for _, r := range c.Resources {
			if c.Resource(r.Name) != r {
				t.Fatalf("resource %s does not resolve", r.Name)
			}
		}
		for _, k := range c.Kinds {
			attrs := map[string]int64{}
			for _, a := range k.Attributes {
				attrs[a.Name] = 1
			}
			state := ""
			if len(k.States) > 0 {
				state = k.States[0]
			}
			_, _ = FootprintOf(k, state, attrs) // may refuse (overflow), must not panic
		}
	})
}

// FuzzCheckID holds identifiers to their promise: what passes is safe in
// paths, logs and SQL.
func FuzzCheckID(f *testing.F) {
	for _, s := range []string{"acme", "../etc/passwd", "a b", "x%00", "0123456789abcdef0123456789abcdef", strings.Repeat("a", 129), "é", "a/b", "a\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckID("tenant", s) != nil {
			return
		}
		if len(s) == 0 || len(s) > 128 || strings.ContainsAny(s, "/\\ \t\r\n%'\"?#&;") || strings.Contains(s, "..") && strings.Trim(s, ".") == "" {
			t.Fatalf("%q passed as an identifier", s)
		}
	})
}
