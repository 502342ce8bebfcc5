package cli

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/allot-dev/allot/internal/quota"
)

// catalogCommand prints the catalog a server started with the same
// --catalog (or ALLOT_CATALOG) would use; it needs no server.
func catalogCommand(r *remote, getenv Env) *cobra.Command {
	var path string
	show := &cobra.Command{
		Use:         "show",
		Short:       "Print the effective catalog: services, resources, kinds, limits and plans",
		Args:        args(cobra.NoArgs),
		Annotations: map[string]string{serverless: "true"},
		RunE: func(c *cobra.Command, _ []string) error {
			if path == "" {
				path = getenv("ALLOT_CATALOG")
			}
			cat, err := loadCatalog(path)
			if err != nil {
				return err
			}
			if r.output == "yaml" {
				// The catalog's own text, comments and order included.
				_, err := r.stdout.Write(cat.YAML())
				return err
			}
			var doc any
			if err := yaml.Unmarshal(cat.YAML(), &doc); err != nil {
				return err
			}
			return r.show(doc, func(w io.Writer) { catalogTable(w, cat) })
		},
	}
	show.Flags().StringVar(&path, "catalog", "", "catalog YAML file; empty for the embedded default (ALLOT_CATALOG)")
	return group("catalog", "Inspect the catalog", show)
}

func catalogTable(w io.Writer, cat *quota.Catalog) {
	for i, svc := range cat.Services {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s\n", svc.Name)
		t := newTable("  RESOURCE", "UNIT", "DEFAULT", "REQUESTABLE", "POLICY")
		for _, res := range svc.Resources {
			t.row("  "+res.Name, orDash(res.Unit), strconv.FormatInt(res.Default, 10),
				fmt.Sprintf("%d–%d", res.Requestable.Min, res.Requestable.Max), res.Policy)
		}
		t.print(w)
		fmt.Fprintln(w)
		t = newTable("  KIND", "ATTRIBUTE", "DEFAULT", "LIMIT", "RANGE")
		for _, k := range svc.Kinds {
			for _, a := range k.Attributes {
				def, limit, rng := "required", "-", "-"
				if a.Default != nil {
					def = strconv.FormatInt(*a.Default, 10)
				}
				if l := k.LimitDef(a.Limit); l != nil {
					limit, rng = l.Name, fmt.Sprintf("%d–%d", l.Default.Min, l.Default.Max)
				}
				t.row("  "+k.Name, a.Name, def, limit, rng)
			}
		}
		t.print(w)
		fmt.Fprintln(w)
		t = newTable("  KIND", "STATES", "USES")
		for _, k := range svc.Kinds {
			t.row("  "+k.Name, orDash(strings.Join(k.States, ",")), usageRule(k))
		}
		t.print(w)
	}
	if len(cat.Plans) == 0 {
		return
	}
	fmt.Fprintln(w, "\nplans")
	t := newTable("  PLAN", "SETS")
	names := make([]string, 0, len(cat.Plans))
	for name := range cat.Plans {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := cat.Plans[name]
		var sets []string
		for _, res := range cat.Resources {
			if v, ok := p.Quotas[res.Name]; ok {
				sets = append(sets, fmt.Sprintf("%s=%d", res.Name, v))
			}
		}
		limits := make([]string, 0, len(p.Limits))
		for l, r := range p.Limits {
			limits = append(limits, fmt.Sprintf("%s=%d–%d", l, r.Min, r.Max))
		}
		slices.Sort(limits)
		t.row("  "+name, orDash(strings.Join(append(sets, limits...), " ")))
	}
	t.print(w)
}

// usageRule writes a kind's footprint as "always: a+1 b+attr; live: …".
func usageRule(k *quota.Kind) string {
	terms := func(ts []quota.UsageTerm) string {
		var parts []string
		for _, t := range ts {
			v := t.Attribute
			if v == "" {
				v = strconv.FormatInt(t.Const, 10)
			}
			parts = append(parts, t.Resource+"+"+v)
		}
		return strings.Join(parts, " ")
	}
	s := terms(k.Always)
	if len(k.Live) > 0 {
		s += "; while " + strings.Join(k.LiveStates, "/") + ": " + terms(k.Live)
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
