// Command chart draws allot bench results as an SVG: throughput and p99
// latency against concurrency, one line per store and workload. It reads
// the JSON lines `allot bench --json` prints (the last line of each run).
//
//	go run ./internal/bench/chart < results.jsonl > docs/bench.svg
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/allot-dev/allot/internal/bench"
)

func main() {
	series, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
	if len(series) == 0 {
		fmt.Fprintln(os.Stderr, "chart: no results on standard input")
		os.Exit(1)
	}
	draw(os.Stdout, series)
}

type point struct{ c, ops, p99 float64 }

type line struct {
	name   string
	points []point
}

func read(r io.Reader) ([]line, error) {
	byName := map[string]*line{}
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(text, "{") {
			continue
		}
		var s bench.Summary
		if err := json.Unmarshal([]byte(text), &s); err != nil {
			return nil, err
		}
		for _, x := range []*bench.Summary{&s, s.Baseline} {
			if x == nil {
				continue
			}
			name := x.Workload + ", " + x.Store
			if byName[name] == nil {
				byName[name] = &line{name: name}
				order = append(order, name)
			}
			byName[name].points = append(byName[name].points, point{float64(x.Concurrency), x.OpsPerSec, x.P99ms})
		}
	}
	var out []line
	for _, n := range order {
		l := byName[n]
		slices.SortFunc(l.points, func(a, b point) int { return cmp.Compare(a.c, b.c) })
		out = append(out, *l)
	}
	return out, sc.Err()
}

var colours = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

func draw(w io.Writer, lines []line) {
	const pw, ph, mx, my = 420, 260, 60, 40
	width := 2*(pw+mx) + 60
	height := ph + 2*my + 24*len(lines) + 20
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	panel(w, lines, mx, my, pw, ph, "throughput (operations/s)", false, func(p point) float64 { return p.ops })
	panel(w, lines, 2*mx+pw+40, my, pw, ph, "p99 latency (ms, log scale)", true, func(p point) float64 { return p.p99 })
	for i, l := range lines {
		y := ph + 2*my + 24*i + 10
		fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`, mx, y, mx+30, y, colours[i%len(colours)])
		fmt.Fprintf(w, `<text x="%d" y="%d">%s</text>`+"\n", mx+40, y+4, escape(l.name))
	}
	fmt.Fprintln(w, "</svg>")
}

// panel plots value against concurrency (log scale) for every line; logY
// puts value on a log scale too, from 0.1.
func panel(w io.Writer, lines []line, x0, y0, pw, ph int, title string, logY bool, value func(point) float64) {
	minC, maxC, maxV := math.Inf(1), math.Inf(-1), 0.0
	for _, l := range lines {
		for _, p := range l.points {
			minC, maxC, maxV = math.Min(minC, p.c), math.Max(maxC, p.c), math.Max(maxV, value(p))
		}
	}
	maxV = nice(maxV)
	if maxC <= minC {
		maxC = minC * 2
	}
	px := func(c float64) float64 {
		return float64(x0) + float64(pw)*(math.Log2(c)-math.Log2(minC))/(math.Log2(maxC)-math.Log2(minC))
	}
	py := func(v float64) float64 { return float64(y0+ph) - float64(ph)*v/maxV }
	ticks := []float64{0, maxV / 4, maxV / 2, 3 * maxV / 4, maxV}
	if logY {
		lo, hi := -1.0, math.Ceil(math.Log10(maxV))
		py = func(v float64) float64 {
			return float64(y0+ph) - float64(ph)*(math.Log10(math.Max(v, 0.1))-lo)/(hi-lo)
		}
		ticks = nil
		for e := lo; e <= hi; e++ {
			ticks = append(ticks, math.Pow(10, e))
		}
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0-12, title)
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x0, y0, pw, ph)
	for _, v := range ticks {
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`, x0, py(v), x0+pw, py(v))
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, py(v)+4, label(v))
	}
	for c := minC; c <= maxC; c *= 2 {
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%g</text>`, px(c), y0+ph+16, c)
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">concurrency</text>`+"\n", x0+pw/2, y0+ph+32)
	for i, l := range lines {
		var pts []string
		for _, p := range l.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.c), py(value(p))))
		}
		colour := colours[i%len(colours)]
		fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colour)
		for _, p := range l.points {
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, px(p.c), py(value(p)), colour)
		}
		fmt.Fprintln(w)
	}
}

// nice rounds v up to 1, 2 or 5 times a power of ten.
func nice(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func label(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gk", v/1000)
	}
	return fmt.Sprintf("%g", v)
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
