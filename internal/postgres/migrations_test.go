package postgres

import (
	"fmt"
	"path"
	"testing"

	"github.com/allot-dev/allot/internal/schema"
)

// The rolling-upgrade rule: allot N and N+1 run on one database at once.
// Each migration either only adds (schema.Additive: new tables, indexes,
// nullable columns or columns with a default, data), and so keeps the
// previous version working, or is marked incompatible with its reason and
// reviewed as such: then an allot that does not know it refuses the
// database (requires). A migration with a DROP, a RENAME or a new type
// fails here until it is marked.
func TestMigrationsKeepThePreviousVersionWorking(t *testing.T) {
	names := known()
	if len(names) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, name := range names {
		t.Run(path.Base(name), func(t *testing.T) {
			if want := fmt.Sprintf("%03d_", i+1); path.Base(name)[:4] != want {
				t.Errorf("migration %d is %s: migrations are numbered 001, 002, … without gaps", i+1, path.Base(name))
			}
			src, err := migrations.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			reason := schema.Incompatible(string(src))
			if err := schema.Additive(string(src)); err != nil && reason == "" {
				t.Errorf("not additive, so allot %d could not run on this schema: %v\n"+
					"make it additive (add, backfill, and drop only in a later release), or mark it with a line %q and the reason",
					i, err, schema.IncompatibleMarker+" …")
			}
			req, err := requires(name)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case i == 0 || reason != "":
				if req != name {
					t.Errorf("requires %s, want itself", req)
				}
			case req != names[i-1]:
				t.Errorf("requires %s, want the migration before it, %s", req, names[i-1])
			}
		})
	}
}
