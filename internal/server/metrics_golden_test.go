package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/allot-dev/allot/client"
	"github.com/allot-dev/allot/internal/golden"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/testserver"
)

// family is one metric family of an exposition: what dashboards and alerts
// are written against, without the values.
type family struct {
	typ    string
	labels map[string]bool
}

// families parses the Prometheus text exposition into its families. A
// sample belongs to the family its TYPE line announced last; the labels
// le and quantile are how histograms and summaries are exposed, not labels
// of the family, so they are left out.
func families(t *testing.T, exposition io.Reader) map[string]*family {
	t.Helper()
	out := map[string]*family{}
	var cur string
	sc := bufio.NewScanner(exposition)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, ok := strings.Cut(f, " ")
			if !ok {
				t.Fatalf("TYPE line %q", line)
			}
			cur = name
			out[name] = &family{typ: typ, labels: map[string]bool{}}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, labels := parseSample(t, line)
		if cur == "" || !strings.HasPrefix(name, cur) {
			t.Fatalf("sample %q outside its family %q", line, cur)
		}
		for _, l := range labels {
			if l != "le" && l != "quantile" {
				out[cur].labels[l] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// parseSample splits `name{a="x",b="y"} value` into the name and the label
// names, reading quoted values with their escapes so a brace or comma inside
// a value (route patterns have both) does not confuse it.
func parseSample(t *testing.T, line string) (string, []string) {
	t.Helper()
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		t.Fatalf("sample %q", line)
	}
	name := line[:i]
	if line[i] == ' ' {
		return name, nil
	}
	var labels []string
	rest := line[i+1:]
	for {
		if strings.HasPrefix(rest, "}") {
			return name, labels
		}
		eq := strings.Index(rest, `="`)
		if eq < 0 {
			t.Fatalf("sample %q: label without a value", line)
		}
		labels = append(labels, rest[:eq])
		rest = rest[eq+2:]
		for j := 0; ; j++ {
			if j >= len(rest) {
				t.Fatalf("sample %q: unterminated value", line)
			}
			if rest[j] == '\\' {
				j++
				continue
			}
			if rest[j] == '"' {
				rest = strings.TrimPrefix(rest[j+1:], ",")
				break
			}
		}
	}
}

// TestMetricFamiliesGolden pins allot's metric families: names, types and
// label names (one line each: name type label,label), as dashboards and
// alerts depend on them. The scenario makes
// every family expose a sample (a vector with no series is not exposed at
// all). Go runtime and process families vary by platform and are not ours to
// pin.
func TestMetricFamiliesGolden(t *testing.T) {
	var fs *failingStore
	srv := testserver.Start(t, testserver.Options{Wrap: func(st quota.Store) quota.Store {
		fs = &failingStore{Store: st}
		return fs
	}})
	srv.Metrics.WatchTenants(srv.Engine, srv.Engine.Catalog())
	c := client.New(srv.URL, client.WithToken(srv.AdminToken))
	ctx := t.Context()
	if _, err := c.CreateTenant(ctx, client.CreateTenantRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	put := func(id string) error {
		_, err := c.PutConsumer(ctx, "acme", id, client.PutConsumerRequest{Kind: "compute.volume", Attributes: map[string]int64{"size_mb": 2}}, client.PutOptions{})
		return err
	}
	if err := put("v1"); err != nil {
		t.Fatal(err)
	}
	fs.broken.Store(true)
	if err := put("v2"); !client.IsCode(err, "unavailable") {
		t.Fatalf("a write to a failing store: %v", err)
	}
	fs.broken.Store(false)

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	fams := families(t, resp.Body)
	var names []string
	for name := range fams {
		if strings.HasPrefix(name, "allot_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		labels := slices.Sorted(func(yield func(string) bool) {
			for l := range fams[name].labels {
				if !yield(l) {
					return
				}
			}
		})
		fmt.Fprintf(&b, "%s %s", name, fams[name].typ)
		if len(labels) > 0 {
			fmt.Fprintf(&b, " %s", strings.Join(labels, ","))
		}
		b.WriteByte('\n')
	}
	golden.Assert(t, "testdata/metrics.golden", []byte(b.String()))

	// Every metric name in the source must be in the scenario, or a new
	// metric would go unpinned.
	src, err := os.ReadFile("metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"(allot_[a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		if fams[m[1]] == nil {
			t.Errorf("%s is declared in metrics.go but not exposed by this test's scenario: make the scenario touch it", m[1])
		}
	}
}
