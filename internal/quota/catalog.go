package quota

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed default_catalog.yaml
var defaultCatalogYAML []byte

// DefaultCatalogYAML returns the embedded catalog that `allot serve` uses when
// no --catalog is given.
func DefaultCatalogYAML() []byte { return slices.Clone(defaultCatalogYAML) }

// DefaultCatalog parses the embedded catalog. It cannot fail: a test keeps the
// embedded file valid.
func DefaultCatalog() *Catalog {
	c, err := ParseCatalog(defaultCatalogYAML)
	if err != nil {
		panic("quota: embedded catalog is invalid: " + err.Error())
	}
	return c
}

// Range is an inclusive [Min, Max] interval.
type Range struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

// Contains reports whether v lies in the range.
func (r Range) Contains(v int64) bool { return v >= r.Min && v <= r.Max }

// Catalog describes the services, resources, kinds and plans of a cloud.
// It is immutable once parsed and safe to share.
type Catalog struct {
	Services  []*Service
	Resources []*Resource // in catalog order
	Kinds     []*Kind     // in catalog order
	Plans     map[string]*Plan
	// Thresholds are the percentages of a hard quota whose crossing is
	// notified, unless a plan or the tenant sets its own.
	Thresholds []int64
	// Dialects maps, per API dialect, the dialect's field names to what
	// feeds them. Each dialect validates its own map.
	Dialects map[string]map[string]string

	resources map[string]*Resource
	kinds     map[string]*Kind
	yaml      []byte
}

// Service groups resources and kinds.
type Service struct {
	Name      string
	Resources []*Resource
	Kinds     []*Kind
}

// Resource is a counted amount with a tenant-wide hard quota.
type Resource struct {
	Name        string // qualified: "compute.instances"
	Service     string
	Default     int64
	Requestable Range
	Policy      string // "auto" or "review"
	Unit        string
	Display     *Display
}

// Display says how a dialect shows a resource in a coarser unit.
type Display struct {
	Unit string
	Per  int64
}

// Kind is a type of object that consumes resources.
type Kind struct {
	Name       string // qualified: "compute.instance"
	Service    string
	Attributes []*Attribute
	Limits     []*LimitDef
	States     []string
	LiveStates []string
	Always     []UsageTerm
	Live       []UsageTerm
}

// Attribute is a numeric property of a consumer.
type Attribute struct {
	Name    string
	Limit   string // name of the kind's limit that bounds it; "" for none
	Default *int64 // nil: the attribute is required
}

// LimitDef is a per-object limit of a kind with its catalog default.
type LimitDef struct {
	Name    string
	Default Range
}

// UsageTerm adds Const, or the value of Attribute, to Resource.
type UsageTerm struct {
	Resource  string // qualified
	Const     int64
	Attribute string
}

// Plan is a named set of defaults a tenant starts from.
type Plan struct {
	Name        string
	Thresholds  []int64          // nil: the catalog's
	Quotas      map[string]int64 // resource → hard
	Requestable map[string]Range // resource → range
	Limits      map[string]Range // "kind.limit" → range
}

// Resource returns the named resource, or nil.
func (c *Catalog) Resource(name string) *Resource { return c.resources[name] }

// Kind returns the named kind, or nil.
func (c *Catalog) Kind(name string) *Kind { return c.kinds[name] }

// YAML returns the catalog's source text.
func (c *Catalog) YAML() []byte { return slices.Clone(c.yaml) }

// Attribute returns the named attribute of the kind, or nil.
func (k *Kind) Attribute(name string) *Attribute {
	for _, a := range k.Attributes {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// LimitDef returns the named limit of the kind, or nil.
func (k *Kind) LimitDef(name string) *LimitDef {
	for _, l := range k.Limits {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// HasState reports whether s is one of the kind's states.
func (k *Kind) HasState(s string) bool { return slices.Contains(k.States, s) }

// IsLive reports whether s is one of the kind's live states.
func (k *Kind) IsLive(s string) bool { return slices.Contains(k.LiveStates, s) }

// The YAML shape of a catalog file. Maps whose order matters are decoded as
// ordered lists of key/value pairs.
type catalogFile struct {
	Services   ordered[serviceFile]         `yaml:"services"`
	Thresholds []int64                      `yaml:"thresholds"`
	Plans      ordered[planFile]            `yaml:"plans"`
	Dialects   map[string]map[string]string `yaml:"dialects"`
}

type serviceFile struct {
	Resources ordered[resourceFile] `yaml:"resources"`
	Kinds     ordered[kindFile]     `yaml:"kinds"`
}

type resourceFile struct {
	Default     *int64   `yaml:"default"`
	Requestable []int64  `yaml:"requestable"`
	Policy      string   `yaml:"policy"`
	Unit        string   `yaml:"unit"`
	Display     *Display `yaml:"display"`
}

type kindFile struct {
	Attributes ordered[attributeFile] `yaml:"attributes"`
	Limits     ordered[[]int64]       `yaml:"limits"`
	States     []string               `yaml:"states"`
	LiveStates []string               `yaml:"live_states"`
	Usage      struct {
		Always ordered[yaml.Node] `yaml:"always"`
		Live   ordered[yaml.Node] `yaml:"live"`
	} `yaml:"usage"`
}

type attributeFile struct {
	Limit   yaml.Node `yaml:"limit"` // [min, max] or the name of a kind limit
	Default *int64    `yaml:"default"`
}

type planFile struct {
	Thresholds  []int64            `yaml:"thresholds"`
	Quotas      map[string]int64   `yaml:"quotas"`
	Requestable map[string][]int64 `yaml:"requestable"`
	Limits      map[string][]int64 `yaml:"limits"`
}

type pair[T any] struct {
	Key   string
	Value T
}

// ordered is a YAML mapping decoded with its keys in file order.
type ordered[T any] []pair[T]

func (o *ordered[T]) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected a mapping", n.Line)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if seen[k] {
			return fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
		}
		seen[k] = true
		var v T
		if err := decodeStrict(n.Content[i+1], &v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		*o = append(*o, pair[T]{k, v})
	}
	return nil
}

// decodeStrict decodes n refusing unknown fields: yaml.v3's Node.Decode
// does not carry the outer decoder's KnownFields setting.
func decodeStrict(n *yaml.Node, v any) error {
	if _, ok := v.(*yaml.Node); ok {
		return n.Decode(v)
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// ParseCatalog reads a catalog from YAML and validates it. Errors name the
// field at fault, e.g. `services.compute.kinds.instance.usage.live.live_vcpus`.
func ParseCatalog(src []byte) (*Catalog, error) {
	var f catalogFile
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("catalog: empty")
		}
		return nil, fmt.Errorf("catalog: %w", err)
	}
	c := &Catalog{
		Plans:     map[string]*Plan{},
		Dialects:  f.Dialects,
		resources: map[string]*Resource{},
		kinds:     map[string]*Kind{},
		yaml:      slices.Clone(src),
	}
	if len(f.Services) == 0 {
		return nil, errors.New("catalog: services: at least one service is required")
	}
	c.Thresholds = []int64{80, 100}
	if f.Thresholds != nil {
		if err := CheckThresholds(f.Thresholds); err != nil {
			return nil, fmt.Errorf("catalog: thresholds: %w", err)
		}
		c.Thresholds = f.Thresholds
	}
	for _, sp := range f.Services {
		if err := c.addService(sp.Key, sp.Value); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
	}
	for _, pp := range f.Plans {
		if err := c.addPlan(pp.Key, pp.Value); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
	}
	return c, nil
}

// Lookup resolves what a dialect field names: a resource, or a bound of a
// kind's limit ("compute.instance.memory_mb.max"). Exactly one of res and
// (kind, limit, bound) is set when ok.
func (c *Catalog) Lookup(name string) (res *Resource, kind *Kind, limit *LimitDef, bound string, ok bool) {
	if r := c.resources[name]; r != nil {
		return r, nil, nil, "", true
	}
	rest, bound := splitLast(name)
	kindName, limitName := splitLast(rest)
	k := c.kinds[kindName]
	if k == nil || k.LimitDef(limitName) == nil || (bound != "min" && bound != "max") {
		return nil, nil, nil, "", false
	}
	return nil, k, k.LimitDef(limitName), bound, true
}

// splitLast splits s at its last dot.
func splitLast(s string) (string, string) {
	i := strings.LastIndex(s, ".")
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}

func (c *Catalog) addService(name string, f serviceFile) error {
	at := "services." + name
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%s: invalid name (lower case letters, digits, _)", at)
	}
	s := &Service{Name: name}
	for _, rp := range f.Resources {
		r, err := parseResource(name, rp.Key, rp.Value)
		if err != nil {
			return err
		}
		s.Resources = append(s.Resources, r)
		c.Resources = append(c.Resources, r)
		c.resources[r.Name] = r
	}
	for _, kp := range f.Kinds {
		k, err := c.parseKind(name, kp.Key, kp.Value)
		if err != nil {
			return err
		}
		s.Kinds = append(s.Kinds, k)
		c.Kinds = append(c.Kinds, k)
		c.kinds[k.Name] = k
	}
	c.Services = append(c.Services, s)
	return nil
}

func parseResource(service, name string, f resourceFile) (*Resource, error) {
	at := "services." + service + ".resources." + name
	if !namePattern.MatchString(name) {
		return nil, fmt.Errorf("%s: invalid name", at)
	}
	r := &Resource{Name: service + "." + name, Service: service, Policy: f.Policy, Unit: f.Unit, Display: f.Display}
	if f.Default == nil || *f.Default < 0 {
		return nil, fmt.Errorf("%s.default: a non-negative integer is required", at)
	}
	r.Default = *f.Default
	r.Requestable = Range{0, r.Default}
	if f.Requestable != nil {
		rg, err := parseRange(f.Requestable)
		if err != nil {
			return nil, fmt.Errorf("%s.requestable: %w", at, err)
		}
		r.Requestable = rg
	}
	switch r.Policy {
	case "":
		r.Policy = "auto"
	case "auto", "review":
	default:
		return nil, fmt.Errorf("%s.policy: must be auto or review, not %q", at, r.Policy)
	}
	if d := r.Display; d != nil && (d.Unit == "" || d.Per <= 0) {
		return nil, fmt.Errorf("%s.display: unit and a positive per are required", at)
	}
	return r, nil
}

func parseRange(v []int64) (Range, error) {
	if len(v) != 2 {
		return Range{}, errors.New("must be [min, max]")
	}
	r := Range{v[0], v[1]}
	if r.Min < 0 || r.Min > r.Max {
		return Range{}, fmt.Errorf("[%d, %d] is not a range of non-negative integers with min <= max", r.Min, r.Max)
	}
	return r, nil
}

func (c *Catalog) parseKind(service, name string, f kindFile) (*Kind, error) {
	at := "services." + service + ".kinds." + name
	if !namePattern.MatchString(name) {
		return nil, fmt.Errorf("%s: invalid name", at)
	}
	k := &Kind{Name: service + "." + name, Service: service, States: f.States, LiveStates: f.LiveStates}
	for _, lp := range f.Limits {
		rg, err := parseRange(lp.Value)
		if err != nil {
			return nil, fmt.Errorf("%s.limits.%s: %w", at, lp.Key, err)
		}
		k.Limits = append(k.Limits, &LimitDef{Name: lp.Key, Default: rg})
	}
	for _, ap := range f.Attributes {
		aat := at + ".attributes." + ap.Key
		if !namePattern.MatchString(ap.Key) {
			return nil, fmt.Errorf("%s: invalid name", aat)
		}
		a := &Attribute{Name: ap.Key, Default: ap.Value.Default}
		if a.Default != nil && *a.Default < 0 {
			return nil, fmt.Errorf("%s.default: must not be negative", aat)
		}
		switch n := ap.Value.Limit; n.Kind {
		case 0: // no limit
		case yaml.ScalarNode: // the name of a shared kind limit
			if k.LimitDef(n.Value) == nil {
				return nil, fmt.Errorf("%s.limit: %q is not one of the kind's limits", aat, n.Value)
			}
			a.Limit = n.Value
		case yaml.SequenceNode: // an inline limit named after the attribute
			var v []int64
			if err := n.Decode(&v); err != nil {
				return nil, fmt.Errorf("%s.limit: %w", aat, err)
			}
			rg, err := parseRange(v)
			if err != nil {
				return nil, fmt.Errorf("%s.limit: %w", aat, err)
			}
			if k.LimitDef(ap.Key) != nil {
				return nil, fmt.Errorf("%s.limit: a limit named %q exists already", aat, ap.Key)
			}
			k.Limits = append(k.Limits, &LimitDef{Name: ap.Key, Default: rg})
			a.Limit = ap.Key
		default:
			return nil, fmt.Errorf("%s.limit: must be [min, max] or a limit's name", aat)
		}
		if a.Default != nil && a.Limit != "" && !k.LimitDef(a.Limit).Default.Contains(*a.Default) {
			return nil, fmt.Errorf("%s.default: %d is outside its limit", aat, *a.Default)
		}
		k.Attributes = append(k.Attributes, a)
	}
	for _, s := range k.LiveStates {
		if !k.HasState(s) {
			return nil, fmt.Errorf("%s.live_states: %q is not one of the states", at, s)
		}
	}
	var err error
	if k.Always, err = c.parseUsage(at+".usage.always", service, k, f.Usage.Always); err != nil {
		return nil, err
	}
	if k.Live, err = c.parseUsage(at+".usage.live", service, k, f.Usage.Live); err != nil {
		return nil, err
	}
	if len(k.Live) > 0 && len(k.LiveStates) == 0 {
		return nil, fmt.Errorf("%s.usage.live: the kind has no live_states", at)
	}
	return k, nil
}

func (c *Catalog) parseUsage(at, service string, k *Kind, terms ordered[yaml.Node]) ([]UsageTerm, error) {
	var out []UsageTerm
	for _, tp := range terms {
		tat := at + "." + tp.Key
		res := tp.Key
		if !strings.Contains(res, ".") {
			res = service + "." + res
		}
		if c.resources[res] == nil {
			return nil, fmt.Errorf("%s: unknown resource %q", tat, res)
		}
		t := UsageTerm{Resource: res}
		var n int64
		if err := tp.Value.Decode(&n); err == nil {
			if n < 0 {
				return nil, fmt.Errorf("%s: must not be negative", tat)
			}
			t.Const = n
		} else if k.Attribute(tp.Value.Value) != nil {
			t.Attribute = tp.Value.Value
		} else {
			return nil, fmt.Errorf("%s: %q is neither an integer nor an attribute of the kind", tat, tp.Value.Value)
		}
		out = append(out, t)
	}
	return out, nil
}

func (c *Catalog) addPlan(name string, f planFile) error {
	at := "plans." + name
	if !idPattern.MatchString(name) {
		return fmt.Errorf("%s: invalid name", at)
	}
	p := &Plan{Name: name, Quotas: map[string]int64{}, Requestable: map[string]Range{}, Limits: map[string]Range{}}
	if f.Thresholds != nil {
		if err := CheckThresholds(f.Thresholds); err != nil {
			return fmt.Errorf("%s.thresholds: %w", at, err)
		}
		p.Thresholds = f.Thresholds
	}
	for res, hard := range f.Quotas {
		if c.resources[res] == nil {
			return fmt.Errorf("%s.quotas.%s: unknown resource", at, res)
		}
		if hard < 0 {
			return fmt.Errorf("%s.quotas.%s: must not be negative", at, res)
		}
		p.Quotas[res] = hard
	}
	for res, v := range f.Requestable {
		if c.resources[res] == nil {
			return fmt.Errorf("%s.requestable.%s: unknown resource", at, res)
		}
		rg, err := parseRange(v)
		if err != nil {
			return fmt.Errorf("%s.requestable.%s: %w", at, res, err)
		}
		p.Requestable[res] = rg
	}
	for key, v := range f.Limits {
		i := strings.LastIndex(key, ".")
		if i < 0 || c.kinds[key[:i]] == nil || c.kinds[key[:i]].LimitDef(key[i+1:]) == nil {
			return fmt.Errorf("%s.limits.%s: unknown kind limit (want kind.limit, e.g. compute.instance.memory_mb)", at, key)
		}
		rg, err := parseRange(v)
		if err != nil {
			return fmt.Errorf("%s.limits.%s: %w", at, key, err)
		}
		p.Limits[key] = rg
	}
	c.Plans[name] = p
	return nil
}
