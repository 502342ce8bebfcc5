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
	"join": strings.Join,
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
// box: Used and Hard are polyline points.
type chart struct {
	Resource, Unit   string
	Used, Hard       string
	Max, Now, HardAt int64
	Summary          string
}

// chartRanges are the spans a usage chart can cover.
var chartRanges = []struct {
	Name string
	Span time.Duration
}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

const chartPoints = 24

// buildCharts turns usage samples (oldest first) into one chart per resource.
func buildCharts(samples []*client.UsageAt, units map[string]string, rangeName string) []chart {
	if len(samples) == 0 {
		return nil
	}
	var out []chart
	for i, res := range samples[0].Resources {
		c := chart{Resource: res.Resource, Unit: units[res.Resource], Max: 1}
		for _, s := range samples {
			if i < len(s.Resources) {
				c.Max = max(c.Max, s.Resources[i].Used, s.Resources[i].Hard)
			}
		}
		var used, hard []string
		for j, s := range samples {
			if i >= len(s.Resources) {
				continue
			}
			x := float64(j) * 300 / float64(max(len(samples)-1, 1))
			y := func(v int64) string {
				return strconv.FormatFloat(x, 'f', 1, 64) + "," + strconv.FormatFloat(98-float64(v)*94/float64(c.Max), 'f', 1, 64)
			}
			used, hard = append(used, y(s.Resources[i].Used)), append(hard, y(s.Resources[i].Hard))
			c.Now, c.HardAt = s.Resources[i].Used, s.Resources[i].Hard
		}
		c.Used, c.Hard = strings.Join(used, " "), strings.Join(hard, " ")
		first := samples[0].Resources[i].Used
		c.Summary = fmt.Sprintf("%s over the last %s: used went from %s to %s; hard quota now %s.",
			res.Resource, rangeName, num(first), num(c.Now), num(c.HardAt))
		out = append(out, c)
	}
	return out
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
