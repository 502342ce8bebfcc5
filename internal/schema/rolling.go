package schema

import (
	"fmt"
	"regexp"
	"strings"
)

// The rule for PostgreSQL migrations: allot version N and N+1 run on one
// database at once (during a rolling upgrade, and after a rollback), so a
// migration must leave every query of the previous version working. That
// holds when it only adds: tables, indexes, nullable columns or columns
// with a default, and data. Additive checks the statements of a migration
// against these forms; a migration that needs anything else (a DROP, a
// RENAME, a new type, a new constraint) says so in a line starting with
// IncompatibleMarker and the reason, is reviewed as such, and an allot
// that does not know it refuses the database it was applied to.
//
// Statements are not all: a migration whose schema is additive may still
// need every process to write a new column (005_versions.sql does). Such a
// migration is marked incompatible too; the reviewer decides.

// IncompatibleMarker starts the line of a migration that the previous
// version of allot cannot run with, followed by the reason.
const IncompatibleMarker = "-- incompatible:"

// Incompatible returns the reason a migration gives for being
// incompatible with the previous version, or "".
func Incompatible(sql string) string {
	for line := range strings.Lines(sql) {
		if reason, ok := strings.CutPrefix(strings.TrimSpace(line), IncompatibleMarker); ok {
			return cmpOr(strings.TrimSpace(reason), "(no reason given)")
		}
	}
	return ""
}

func cmpOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

var (
	createTable = regexp.MustCompile(`^CREATE TABLE (IF NOT EXISTS )?[a-z_][a-z0-9_]* ?\(`)
	createIndex = regexp.MustCompile(`^CREATE (UNIQUE )?INDEX (CONCURRENTLY )?(IF NOT EXISTS )?[a-z_][a-z0-9_]* ON `)
	alterTable  = regexp.MustCompile(`^ALTER TABLE (IF EXISTS )?(ONLY )?([a-z_][a-z0-9_]*) (.*)$`)
	addColumn   = regexp.MustCompile(`^ADD (COLUMN )?(IF NOT EXISTS )?[a-z_][a-z0-9_]* `)
	dataChange  = regexp.MustCompile(`^(INSERT INTO|UPDATE) `)
	comment     = regexp.MustCompile(`^COMMENT ON `)
	notNull     = regexp.MustCompile(`\bNOT NULL\b`)
	withDefault = regexp.MustCompile(`\bDEFAULT\b`)
	constraint  = regexp.MustCompile(`\b(REFERENCES|CHECK|UNIQUE|PRIMARY KEY|GENERATED)\b`)
)

// Additive returns nil if every statement of the migration only adds, or
// an error naming the first that does not.
func Additive(sql string) error {
	stmts, err := statements(sql)
	if err != nil {
		return err
	}
	for _, st := range stmts {
		if err := additive(st); err != nil {
			return fmt.Errorf("%q: %w", truncate(st, 80), err)
		}
	}
	return nil
}

func additive(st string) error {
	// Keywords are matched in upper case, names as they are written.
	kw, up := keywordsUpper(st), strings.ToUpper(strings.Join(strings.Fields(st), " "))
	if createTable.MatchString(kw) || createIndex.MatchString(kw) || dataChange.MatchString(up) || comment.MatchString(up) {
		return nil
	}
	m := alterTable.FindStringSubmatch(kw)
	if m == nil {
		return fmt.Errorf("not one of the additive forms (CREATE TABLE, CREATE INDEX, ALTER TABLE … ADD COLUMN, INSERT, UPDATE, COMMENT ON)")
	}
	for _, action := range splitTop(m[4], ',') {
		action = strings.TrimSpace(action)
		au := strings.ToUpper(action)
		if !addColumn.MatchString(keywordsUpper(action)) {
			return fmt.Errorf("ALTER TABLE %s: %q: an additive migration only adds columns", m[3], truncate(action, 40))
		}
		if constraint.MatchString(au) {
			return fmt.Errorf("ALTER TABLE %s: a new column with a constraint can refuse the previous version's writes", m[3])
		}
		if notNull.MatchString(au) && !withDefault.MatchString(au) {
			return fmt.Errorf("ALTER TABLE %s: a NOT NULL column needs a DEFAULT, or the previous version's inserts fail", m[3])
		}
	}
	return nil
}

// keywordsUpper upper-cases the SQL keywords the forms are written with,
// leaving names as they are.
func keywordsUpper(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		switch strings.ToUpper(w) {
		case "CREATE", "TABLE", "IF", "NOT", "EXISTS", "UNIQUE", "INDEX", "CONCURRENTLY", "ON", "ALTER", "ONLY", "ADD", "COLUMN":
			words[i] = strings.ToUpper(w)
		}
	}
	return strings.Join(words, " ")
}

// statements splits a migration into its statements, without comments.
// Quoted text is kept whole; dollar quoting (function bodies) is not
// understood, so a migration with it is not additive by this check.
func statements(sql string) ([]string, error) {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			cur.WriteByte(' ')
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("an unterminated comment")
			}
			i += end + 3
			cur.WriteByte(' ')
		case c == '\'' || c == '"':
			end := strings.IndexByte(sql[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("an unterminated quote")
			}
			cur.WriteString(sql[i : i+end+2])
			i += end + 1
		case c == '$':
			return nil, fmt.Errorf("dollar quoting (a function body?) is not checked: mark the migration %q with its reason", IncompatibleMarker)
		case c == ';':
			if s := strings.TrimSpace(cur.String()); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out, nil
}

// splitTop splits s at sep outside parentheses.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, from := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case sep:
			if depth == 0 {
				out = append(out, s[from:i])
				from = i + 1
			}
		}
	}
	return append(out, s[from:])
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
