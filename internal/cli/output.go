// Output for people and scripts: -o json/yaml, tables, usage bars.

package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// table lines up columns for people; tabwriter counts runes, so bars of
// block characters line up too. Cells are escaped (printable): they hold
// what tenants and callers wrote.
type table struct{ rows [][]string }

func newTable(header ...string) *table { return &table{rows: [][]string{header}} }

func (t *table) row(cells ...string) {
	r := make([]string, len(cells))
	for i, c := range cells {
		r[i] = printable(c)
	}
	t.rows = append(t.rows, r)
}

func (t *table) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range t.rows {
		io.WriteString(tw, strings.Join(r, "\t")+"\n")
	}
	tw.Flush()
}

// show prints v as JSON or YAML, or calls table for people.
func (r *remote) show(v any, table func(w io.Writer)) error {
	switch r.output {
	case "json":
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := r.stdout.Write(jsonSafe(b.Bytes()))
		return err
	case "yaml":
		// Through JSON, so YAML keys are the API's field names.
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var generic any
		if err := dec.Decode(&generic); err != nil {
			return err
		}
		out, err := yamlSafe(integers(generic))
		if err != nil {
			return err
		}
		_, err = r.stdout.Write(out)
		return err
	case "table":
		table(r.stdout)
		return nil
	}
	return usageError{fmt.Sprintf("-o must be table, json or yaml, not %q", r.output)}
}

// integers turns the json.Numbers of a decoded document into int64 (all
// of the API's numbers are), so YAML shows 1048576, not 1.048576e+06.
func integers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = integers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = integers(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

const barWidth = 20

// bar draws used/hard as a bar of barWidth cells.
func bar(used, hard int64) string {
	filled := barWidth
	if hard > 0 && used < hard {
		filled = int(float64(used) / float64(hard) * barWidth)
	}
	if used == 0 {
		filled = 0
	}
	return strings.Repeat("█", filled) + strings.Repeat("░", barWidth-filled)
}

// percent is used/hard in whole percent; usage against a zero quota is
// shown as over.
func percent(used, hard int64) string {
	switch {
	case hard == 0 && used == 0:
		return "0%"
	case hard == 0:
		return "∞"
	}
	return fmt.Sprintf("%d%%", used*100/hard)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stamp is a moment for a table, "-" for none.
func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// streamTable prints rows as they arrive, which a tabwriter cannot: each
// cell is padded to its column's width. Widths start at what the usual
// values need and only grow, so the columns stay aligned unless a value is
// longer than every one before it. Cells are escaped like a table's.
type streamTable struct {
	w      io.Writer
	header []string
	widths []int
	begun  bool
}

func newStreamTable(w io.Writer, header []string, widths []int) *streamTable {
	return &streamTable{w: w, header: header, widths: widths}
}

func (t *streamTable) row(cells ...string) error {
	if !t.begun {
		t.begun = true
		if err := t.line(t.header); err != nil {
			return err
		}
	}
	r := make([]string, len(cells))
	for i, c := range cells {
		r[i] = printable(c)
	}
	return t.line(r)
}

func (t *streamTable) line(cells []string) error {
	var b strings.Builder
	for i, c := range cells {
		if i == len(cells)-1 {
			b.WriteString(c)
			break
		}
		n := utf8.RuneCountInString(c)
		if i < len(t.widths) && n > t.widths[i] {
			t.widths[i] = n
		}
		b.WriteString(c)
		if i < len(t.widths) {
			b.WriteString(strings.Repeat(" ", t.widths[i]-n))
		}
		b.WriteString("  ")
	}
	b.WriteString("\n")
	_, err := io.WriteString(t.w, b.String())
	return err
}
