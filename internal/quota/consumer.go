package quota

import (
	"maps"
	"math"
	"slices"
	"time"
)

// Consumer is one object of a kind, owned by a tenant.
type Consumer struct {
	Tenant     string
	ID         string
	Kind       string
	State      string
	Attributes map[string]int64
	Generation int64
	// Footprint is what the consumer was charged when it was last written. It
	// is stored rather than re-derived, so a catalog edit never corrupts the
	// accounting of objects that already exist.
	Footprint Footprint
	ExpiresAt *time.Time // non-nil: a reservation, released at that time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ConsumerKey identifies a consumer.
type ConsumerKey struct{ Tenant, ID string }

// Key returns the consumer's key.
func (c *Consumer) Key() ConsumerKey { return ConsumerKey{c.Tenant, c.ID} }

// Spec is the desired state of a consumer, as a PUT carries it.
type Spec struct {
	Kind       string
	State      string
	Attributes map[string]int64
	TTL        time.Duration // > 0: create or renew as a reservation
}

// Footprint maps qualified resource names to the amount a consumer uses.
type Footprint map[string]int64

// add returns a+b and whether it did not overflow.
func add(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// Normalize validates a spec against the catalog alone (no tenant): the kind,
// the state and the attributes must be known, attributes non-negative, the
// required ones present. It returns the kind and the attributes with defaults
// filled in.
func (c *Catalog) Normalize(s Spec) (*Kind, map[string]int64, error) {
	k := c.kinds[s.Kind]
	if k == nil {
		return nil, nil, Errorf(CodeInvalid, "unknown kind %q", truncate(s.Kind, 140))
	}
	switch {
	case len(k.States) == 0 && s.State != "":
		return nil, nil, Errorf(CodeInvalid, "kind %s takes no state", k.Name)
	case len(k.States) > 0 && s.State == "":
		return nil, nil, Errorf(CodeInvalid, "kind %s requires a state, one of %v", k.Name, k.States)
	case len(k.States) > 0 && !k.HasState(s.State):
		return nil, nil, Errorf(CodeInvalid, "unknown state %q of kind %s, want one of %v", truncate(s.State, 140), k.Name, k.States)
	}
	attrs := make(map[string]int64, len(k.Attributes))
	for name, v := range s.Attributes {
		if k.Attribute(name) == nil {
			return nil, nil, Errorf(CodeInvalid, "unknown attribute %q of kind %s", truncate(name, 140), k.Name)
		}
		if v < 0 {
			return nil, nil, Errorf(CodeInvalid, "attribute %s must not be negative", name)
		}
		attrs[name] = v
	}
	for _, a := range k.Attributes {
		if _, ok := attrs[a.Name]; ok {
			continue
		}
		if a.Default == nil {
			return nil, nil, Errorf(CodeInvalid, "attribute %s of kind %s is required", a.Name, k.Name)
		}
		attrs[a.Name] = *a.Default
	}
	if s.TTL < 0 {
		return nil, nil, Errorf(CodeInvalid, "ttl must not be negative")
	}
	return k, attrs, nil
}

// FootprintOf derives what a consumer of kind k in state with attrs uses. An
// amount that would overflow int64 is an invalid request, never a wrap.
func FootprintOf(k *Kind, state string, attrs map[string]int64) (Footprint, error) {
	fp := Footprint{}
	terms := k.Always
	if k.IsLive(state) {
		terms = append(slices.Clip(terms), k.Live...)
	}
	for _, t := range terms {
		amount := t.Const
		if t.Attribute != "" {
			amount = attrs[t.Attribute]
		}
		sum, ok := add(fp[t.Resource], amount)
		if !ok {
			return nil, Errorf(CodeInvalid, "the footprint of %s overflows", t.Resource)
		}
		fp[t.Resource] = sum
	}
	return fp, nil
}

// CheckLimits returns a limit_violation listing every attribute of attrs
// outside the tenant's effective limit, or nil. Attributes attrs leaves out
// are not checked.
func (c *Catalog) CheckLimits(t *Tenant, k *Kind, attrs map[string]int64) error {
	var vs []Violation
	for _, a := range k.Attributes {
		v, ok := attrs[a.Name]
		if a.Limit == "" || !ok {
			continue
		}
		if r := c.Limit(t, k, k.LimitDef(a.Limit)); !r.Contains(v) {
			vs = append(vs, Violation{Kind: k.Name, Attribute: a.Name, Value: v, Min: r.Min, Max: r.Max})
		}
	}
	if vs == nil {
		return nil
	}
	return &Error{Code: CodeLimitViolation, Message: "attributes outside their limits", Violations: vs}
}

// Delta is new minus old, per resource, leaving out resources that do not
// change. Footprints are never negative, so the subtraction cannot overflow.
func Delta(old, new Footprint) Footprint {
	d := Footprint{}
	for r, v := range new {
		if v != old[r] {
			d[r] = v - old[r]
		}
	}
	for r, v := range old {
		if _, ok := new[r]; !ok && v != 0 {
			d[r] = -v
		}
	}
	return d
}

// CheckQuotas returns a quota_exceeded listing every resource that delta
// grows past the tenant's hard quota, or nil. Shrinking is always allowed,
// even when the tenant is over quota already.
func (c *Catalog) CheckQuotas(t *Tenant, used map[string]int64, delta Footprint) error {
	var vs []Violation
	for _, res := range c.Resources { // catalog order keeps refusals stable
		d := delta[res.Name]
		if d <= 0 {
			continue
		}
		u, hard := used[res.Name], c.Hard(t, res)
		if sum, ok := add(u, d); !ok || sum > hard {
			vs = append(vs, Violation{Tenant: t.ID, Resource: res.Name, Used: u, Hard: hard, Requested: d, Available: max(0, hard-u)})
		}
	}
	if vs == nil {
		return nil
	}
	return &Error{Code: CodeQuotaExceeded, Message: "quota exceeded", Violations: vs}
}

// checkOverflow refuses a delta that would overflow usage, for writes that
// are not held to quotas.
func checkOverflow(used map[string]int64, delta Footprint) error {
	for r, d := range delta {
		if _, ok := add(used[r], d); !ok {
			return Errorf(CodeInvalid, "the usage of %s would overflow", r)
		}
	}
	return nil
}

// ApplyDelta adds delta to used, returning the resources it changed. Callers
// check quotas first; an overflow here (only possible for an unchecked
// shrink-to-grow sequence) saturates rather than wraps.
func ApplyDelta(used map[string]int64, delta Footprint) {
	for r, d := range delta {
		s, ok := add(used[r], d)
		if !ok {
			s = math.MaxInt64
		}
		used[r] = max(0, s)
	}
}

// Equal reports whether two consumers have the same kind, state,
// attributes and expiry: a PUT that changes none of them is a no-op.
func (c *Consumer) sameAs(kind, state string, attrs map[string]int64, exp *time.Time) bool {
	if c.Kind != kind || c.State != state || !maps.Equal(c.Attributes, attrs) {
		return false
	}
	if (c.ExpiresAt == nil) != (exp == nil) {
		return false
	}
	return exp == nil || c.ExpiresAt.Equal(*exp)
}
