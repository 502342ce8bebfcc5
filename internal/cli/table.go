package cli

import (
	"io"
	"strings"
	"text/tabwriter"
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
