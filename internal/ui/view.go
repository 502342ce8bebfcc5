package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/quota"
)

var funcs = template.FuncMap{
	"num":  num,
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"stamp": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"source": sourceText,
	"join":   strings.Join,
	"lastComment": func(h []client.RequestStep) string {
		for i := len(h) - 1; i >= 0; i-- {
			if h[i].Comment != "" {
				return h[i].Comment
			}
		}
		return ""
	},
	"attrs": func(m map[string]int64) string {
		keys := slices.Sorted(maps.Keys(m))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + num(m[k])
		}
		return strings.Join(parts, " ")
	},
}

// num writes an integer with thousands separators: 819,200.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// bar is one resource's usage as the dashboard draws it.
type bar struct {
	client.ResourceQuota
	Pct   float64 // used/hard in percent; +Inf when something is used of a hard quota of 0
	Level string  // ok (green), warn (amber, from the tenant's first threshold), over (red, at or over 100 %)
}

func newBar(q client.ResourceQuota, thresholds []int64) bar {
	b := bar{ResourceQuota: q, Level: "ok"}
	switch {
	case q.Hard > 0:
		b.Pct = float64(q.Used) * 100 / float64(q.Hard)
	case q.Used > 0:
		b.Pct = math.Inf(1)
	}
	first := int64(80)
	if len(thresholds) > 0 {
		first = slices.Min(thresholds)
	}
	switch {
	case b.Pct >= 100:
		b.Level = "over"
	case b.Pct >= float64(first):
		b.Level = "warn"
	}
	return b
}

// Width is the filled part of the bar, out of 100.
func (b bar) Width() string { return strconv.FormatFloat(min(b.Pct, 100), 'f', 1, 64) }

func (b bar) PctText() string {
	switch {
	case math.IsInf(b.Pct, 1):
		return "over (hard quota 0)"
	case b.Hard == 0:
		return "no quota"
	}
	return strconv.FormatFloat(math.Floor(b.Pct), 'f', 0, 64) + " %"
}

// Status names the level in words, so colour is never the only signal.
func (b bar) Status() string {
	switch {
	case b.Used > b.Hard:
		return "over quota"
	case b.Level == "over":
		return "at quota"
	case b.Level == "warn":
		return "near quota"
	}
	return ""
}

// chart is one resource's usage over time, drawn as inline SVG in a 300×100
// box: Used and Hard are polyline points. The y axis runs from 0 to Top, a
// round number at or above every value, with a line and a label at Ticks;
// each sample is a band that names its values on hover, and Samples lists
// them for those who cannot hover.
type chart struct {
	Resource, Unit   string
	Used, Hard       string
	Top, Now, HardAt int64
	Ticks            []tick
	Bands            []band
	Samples          []sample
	Summary          string
}

// tick is a value on the y axis: Y in the box, Pos the class that puts
// its label there.
type tick struct {
	Label, Y, Pos string
}

// band is the stretch of the box around one sample.
type band struct {
	X, W, Title string
}

// sample is one moment of a chart.
type sample struct {
	At         time.Time
	Used, Hard int64
}

// chartRanges are the spans a usage chart can cover.
var chartRanges = []struct {
	Name string
	Span time.Duration
}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

const chartPoints = 24

// short writes an axis label in at most five characters: 2,500, 50k, 1.2M.
func short(n int64) string {
	for _, u := range []struct {
		div  int64
		unit string
	}{{1_000_000_000_000, "T"}, {1_000_000_000, "G"}, {1_000_000, "M"}, {10_000, "k"}} {
		if n >= u.div {
			if u.unit == "k" {
				return strconv.FormatInt(n/1000, 10) + "k"
			}
			return strings.TrimSuffix(strconv.FormatFloat(float64(n)/float64(u.div), 'f', 1, 64), ".0") + u.unit
		}
	}
	return num(n)
}

// niceTop is a round number at or above v whose half is whole, so the
// axis's three labels (0, half, top) are round: 2, 4, 10, 20, 50, 100, …
func niceTop(v int64) int64 {
	for _, t := range []int64{2, 4, 10} {
		if v <= t {
			return t
		}
	}
	for p := int64(10); p <= math.MaxInt64/10; p *= 10 {
		for _, m := range []int64{2, 5, 10} {
			if m*p >= v {
				return m * p
			}
		}
	}
	return v &^ 1
}

// buildCharts turns usage samples (oldest first) into one chart per resource.
func buildCharts(samples []*client.UsageAt, units map[string]string, rangeName string) []chart {
	if len(samples) == 0 {
		return nil
	}
	var out []chart
	for i, res := range samples[0].Resources {
		c := chart{Resource: res.Resource, Unit: units[res.Resource]}
		var highest int64
		for _, s := range samples {
			if i < len(s.Resources) {
				highest = max(highest, s.Resources[i].Used, s.Resources[i].Hard)
			}
		}
		c.Top = niceTop(highest)
		y := func(v int64) string { return strconv.FormatFloat(98-float64(v)*94/float64(c.Top), 'f', 1, 64) }
		c.Ticks = []tick{{short(c.Top), y(c.Top), "t-top"}, {short(c.Top / 2), y(c.Top / 2), "t-mid"}, {"0", y(0), "t-bottom"}}
		unit := ""
		if c.Unit != "" {
			unit = " " + c.Unit
		}
		var used, hard []string
		step := 300 / float64(max(len(samples)-1, 1))
		for j, s := range samples {
			if i >= len(s.Resources) {
				continue
			}
			r := s.Resources[i]
			x := float64(j) * step
			at := strconv.FormatFloat(x, 'f', 1, 64) + ","
			used, hard = append(used, at+y(r.Used)), append(hard, at+y(r.Hard))
			c.Now, c.HardAt = r.Used, r.Hard
			left := max(x-step/2, 0)
			c.Bands = append(c.Bands, band{X: strconv.FormatFloat(left, 'f', 1, 64),
				W:     strconv.FormatFloat(min(x+step/2, 300)-left, 'f', 1, 64),
				Title: fmt.Sprintf("%s: used %s%s of %s", s.At.UTC().Format("Jan 2 15:04 UTC"), num(r.Used), unit, num(r.Hard))})
			c.Samples = append(c.Samples, sample{At: s.At, Used: r.Used, Hard: r.Hard})
		}
		c.Used, c.Hard = strings.Join(used, " "), strings.Join(hard, " ")
		first := samples[0].Resources[i].Used
		c.Summary = fmt.Sprintf("%s over the last %s: used went from %s to %s; hard quota now %s.",
			res.Resource, rangeName, num(first), num(c.Now), num(c.HardAt))
		out = append(out, c)
	}
	return out
}

// sourceText says where a hard quota comes from, in words.
func sourceText(source, plan string) string {
	switch source {
	case client.SourceOverride:
		return "set for this tenant"
	case client.SourcePlan:
		return "from plan " + plan
	case client.SourceCatalog:
		return "catalog default"
	}
	return ""
}

// eventRow is an event of the log with its change in one line.
type eventRow struct {
	client.Event
	Change string
}

func newEventRow(e client.Event) eventRow {
	compact := func(raw json.RawMessage) string {
		var b bytes.Buffer
		if len(raw) == 0 || json.Compact(&b, raw) != nil || b.String() == "null" {
			return ""
		}
		return b.String()
	}
	before, after := compact(e.Before), compact(e.After)
	change := after
	switch {
	case before != "" && after != "":
		change = before + " → " + after
	case before != "":
		change = before + " → (gone)"
	}
	if len(change) > 200 {
		change = strings.ToValidUTF8(change[:200], "") + "…"
	}
	return eventRow{Event: e, Change: change}
}

// typeMatches says whether an event type passes a filter: the exact type or
// its family ("request" matches request.approve).
func typeMatches(filter, typ string) bool {
	return filter == "" || typ == filter || strings.HasPrefix(typ, filter+".")
}

// eventTypes offers the filter's suggestions: each family ("consumer"),
// then its types, from quota's one list.
func eventTypes() []string {
	var out []string
	for _, t := range quota.EventTypes {
		family, _, _ := strings.Cut(string(t), ".")
		if !slices.Contains(out, family) {
			out = append(out, family)
		}
		out = append(out, string(t))
	}
	return out
}
