package schema_test

import (
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/schema"
)

var known = []string{"migrations/001_init.sql", "migrations/002_lifecycle.sql", "migrations/003_meta.sql"}

func applied(names ...string) []schema.Applied {
	var out []schema.Applied
	for _, n := range names {
		out = append(out, schema.Applied{Name: n})
	}
	return out
}

func TestCompare(t *testing.T) {
	st := schema.Compare(known, applied("migrations/001_init.sql"))
	if got := strings.Join(st.Pending, ","); got != "migrations/002_lifecycle.sql,migrations/003_meta.sql" {
		t.Errorf("pending %s", got)
	}
	if len(st.Newer) != 0 || st.Check() != nil {
		t.Errorf("an older database is refused: %v", st.Check())
	}
	if err := st.Current(); err == nil || !strings.Contains(err.Error(), "is at schema 1 (001_init.sql)") ||
		!strings.Contains(err.Error(), "2 migration(s) for it (002_lifecycle.sql, 003_meta.sql)") {
		t.Errorf("Current() = %v", err)
	}
	if err := schema.Compare(known, nil).Current(); err == nil || !strings.Contains(err.Error(), "has no schema yet") {
		t.Errorf("a fresh database: Current() = %v", err)
	}
	if err := schema.Compare(known, applied(known...)).Current(); err != nil {
		t.Errorf("an up-to-date database: %v", err)
	}
}

func TestCheckRefusesANewerSchemaNamingBothVersions(t *testing.T) {
	tests := []struct {
		name    string
		newer   []schema.Applied
		refused bool
	}{
		{"one newer migration, no promise", []schema.Applied{{Name: "migrations/007_budgets.sql"}}, true},
		{"newer, requires the newest this allot knows", []schema.Applied{{Name: "migrations/004_x.sql", Requires: "migrations/003_meta.sql"}}, false},
		{"newer, requires itself", []schema.Applied{{Name: "migrations/004_x.sql", Requires: "migrations/004_x.sql"}}, true},
		{"two newer: the second requires the first, unknown here", []schema.Applied{
			{Name: "migrations/004_x.sql", Requires: "migrations/003_meta.sql"}, {Name: "migrations/005_y.sql", Requires: "migrations/004_x.sql"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.Compare(known, append(applied(known...), tt.newer...)).Check()
			if !tt.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			newest := tt.newer[len(tt.newer)-1].Name
			if err == nil {
				t.Fatal("a database migrated by a newer allot is accepted")
			}
			for _, want := range []string{schema.Describe(newest), "this allot knows up to schema 3 (003_meta.sql)"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q lacks %q", err, want)
				}
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	if got := schema.Describe("migrations/007_budgets.sql"); got != "schema 7 (007_budgets.sql)" {
		t.Errorf("got %q", got)
	}
}

func TestAdditive(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		ok   bool
	}{
		{"new table and index", "-- a comment; with a semicolon\nCREATE TABLE budgets (region text NOT NULL, id text NOT NULL, PRIMARY KEY (region, id));\nCREATE INDEX budgets_by_id ON budgets (id);", true},
		{"nullable column", "ALTER TABLE tenants ADD COLUMN note text;", true},
		{"not null with a default", "alter table tenants add column version bigint not null default 0;", true},
		{"two columns in one statement", "ALTER TABLE tenants ADD COLUMN a text, ADD COLUMN b bigint NOT NULL DEFAULT 0;", true},
		{"a backfill", "UPDATE tenants SET created_seq = 1 WHERE created_seq = 0;", true},
		{"quoted semicolon", "INSERT INTO meta (region, key, value) VALUES ('', 'k', 'a;DROP TABLE x');", true},
		{"drop table", "DROP TABLE consumers;", false},
		{"drop column", "ALTER TABLE tenants DROP COLUMN plan;", false},
		{"rename table", "ALTER TABLE consumers RENAME TO consumers_old;", false},
		{"rename column", "ALTER TABLE tenants RENAME COLUMN plan TO tier;", false},
		{"change a type", "ALTER TABLE usage ALTER COLUMN used TYPE numeric;", false},
		{"set not null", "ALTER TABLE tenants ALTER COLUMN name SET NOT NULL;", false},
		{"not null without a default", "ALTER TABLE tenants ADD COLUMN owner text NOT NULL;", false},
		{"a new constraint", "ALTER TABLE tenants ADD CONSTRAINT plan_known CHECK (plan <> '');", false},
		{"a column with a check", "ALTER TABLE tenants ADD COLUMN n int DEFAULT 0 CHECK (n > 0);", false},
		{"an add then a drop", "ALTER TABLE tenants ADD COLUMN n int, DROP COLUMN plan;", false},
		{"delete", "DELETE FROM events;", false},
		{"truncate", "TRUNCATE outbox;", false},
		{"a function", "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql;", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.Additive(tt.sql)
			if tt.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.ok && err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestIncompatible(t *testing.T) {
	if got := schema.Incompatible("-- Versions.\n-- incompatible: every process must raise the version\nALTER TABLE t ADD COLUMN v int;"); got != "every process must raise the version" {
		t.Errorf("got %q", got)
	}
	if got := schema.Incompatible("ALTER TABLE t ADD COLUMN v int; -- compatible"); got != "" {
		t.Errorf("got %q", got)
	}
}
