// Package schema holds what both stores' migrations share: which
// migrations a database lacks, refusing a database that a newer allot has
// migrated, and the rule that lets two versions of allot run on one
// PostgreSQL database during a rolling upgrade.
package schema

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Applied is a migration recorded in a database's schema_migrations.
type Applied struct {
	Name string
	// Requires is the newest migration an allot must know to serve a
	// database with this one applied; "" means this migration itself. An
	// allot that does not know a migration may still serve the database
	// if it knows what the migration requires: a migration that only adds
	// (see Additive) requires the one before it, so the previous version
	// keeps working on the new schema.
	Requires string
}

// Status compares a database with the migrations an allot has.
type Status struct {
	Known   []string  // the migrations this allot has, in order
	Applied []Applied // those in the database, in order of name
	Pending []string  // known, not applied
	Newer   []Applied // applied, not known: from a newer allot
}

// Compare says where a database stands for an allot with the migrations
// known (names as the store records them, e.g. "migrations/001_init.sql").
func Compare(known []string, applied []Applied) Status {
	st := Status{Known: slices.Sorted(slices.Values(known)), Applied: slices.Clone(applied)}
	slices.SortFunc(st.Applied, func(a, b Applied) int { return strings.Compare(a.Name, b.Name) })
	have := map[string]bool{}
	for _, a := range st.Applied {
		have[a.Name] = true
		if !slices.Contains(st.Known, a.Name) {
			st.Newer = append(st.Newer, a)
		}
	}
	for _, k := range st.Known {
		if !have[k] {
			st.Pending = append(st.Pending, k)
		}
	}
	return st
}

// Check refuses a database that a newer allot migrated in a way this one
// cannot serve, naming both versions.
func (st Status) Check() error {
	for _, n := range slices.Backward(st.Newer) {
		if n.Requires == "" || !slices.Contains(st.Known, n.Requires) {
			return fmt.Errorf("the database is at %s, migrated by a newer allot; this allot knows up to %s: "+
				"run the newer allot, or restore the backup taken before the upgrade", Describe(st.Newest()), Describe(st.KnownNewest()))
		}
	}
	return nil
}

// Current refuses a database that lacks migrations (serve --no-migrate).
func (st Status) Current() error {
	if len(st.Pending) == 0 {
		return nil
	}
	names := make([]string, len(st.Pending))
	for i, p := range st.Pending {
		names[i] = path.Base(p)
	}
	at := "has no schema yet"
	if len(st.Applied) > 0 {
		at = "is at " + Describe(st.Newest())
	}
	return fmt.Errorf("the database %s and this allot has %d migration(s) for it (%s); apply them with `allot migrate`, or start without --no-migrate",
		at, len(st.Pending), strings.Join(names, ", "))
}

// Newest is the newest migration applied to the database, "" if none.
func (st Status) Newest() string {
	if len(st.Applied) == 0 {
		return ""
	}
	return st.Applied[len(st.Applied)-1].Name
}

// KnownNewest is the newest migration this allot has.
func (st Status) KnownNewest() string {
	if len(st.Known) == 0 {
		return ""
	}
	return st.Known[len(st.Known)-1]
}

// Number is a migration's number, from the digits its file name starts
// with: 7 for "migrations/007_budgets.sql"; 0 if there are none.
func Number(name string) int {
	base := path.Base(name)
	end := strings.IndexFunc(base, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(base)
	}
	n, _ := strconv.Atoi(base[:end])
	return n
}

// Describe names a migration for people: "schema 7 (007_budgets.sql)".
func Describe(name string) string {
	if name == "" {
		return "no schema"
	}
	return fmt.Sprintf("schema %d (%s)", Number(name), path.Base(name))
}
