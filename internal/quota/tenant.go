package quota

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// idPattern is what every identifier (tenant, consumer, token name, plan)
// must match: safe in paths, logs and SQL alike.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ValidID reports whether s is a well-formed identifier. Dots alone ("."
// and "..") are not: in a URL path they mean something else.
func ValidID(s string) bool { return idPattern.MatchString(s) && strings.Trim(s, ".") != "" }

// CheckID returns an invalid_request error naming what when s is not a valid
// identifier.
func CheckID(what, s string) error {
	if !ValidID(s) {
		return Errorf(CodeInvalid, "%s %q is not valid: 1 to 128 characters of A-Z a-z 0-9 . _ : -", what, truncate(s, 140))
	}
	return nil
}

// Tenant owns consumers and holds quotas.
type Tenant struct {
	ID        string
	Name      string
	Plan      string
	CreatedAt time.Time
	// Overrides set for this tenant alone; they win over its plan and the
	// catalog defaults.
	Quotas map[string]QuotaOverride // by resource
	Limits map[string]Range         // by "kind.limit"
	// Thresholds of its own (percentages of each hard quota); nil: the
	// plan's or the catalog's.
	Thresholds []int64
}

// QuotaOverride is a tenant's own hard quota and, optionally, requestable
// range for one resource.
type QuotaOverride struct {
	Hard        *int64 `json:"hard,omitempty"`
	Requestable *Range `json:"requestable,omitempty"`
}

// LimitKey names a kind's limit in plans and overrides.
func LimitKey(kind, limit string) string { return kind + "." + limit }

// Hard is the tenant's effective hard quota of res.
func (c *Catalog) Hard(t *Tenant, res *Resource) int64 {
	if o, ok := t.Quotas[res.Name]; ok && o.Hard != nil {
		return *o.Hard
	}
	if p := c.Plans[t.Plan]; p != nil {
		if v, ok := p.Quotas[res.Name]; ok {
			return v
		}
	}
	return res.Default
}

// Requestable is the range the tenant may ask its hard quota of res to be.
func (c *Catalog) Requestable(t *Tenant, res *Resource) Range {
	if o, ok := t.Quotas[res.Name]; ok && o.Requestable != nil {
		return *o.Requestable
	}
	if p := c.Plans[t.Plan]; p != nil {
		if v, ok := p.Requestable[res.Name]; ok {
			return v
		}
	}
	return res.Requestable
}

// TenantThresholds are the tenant's effective warning thresholds.
func (c *Catalog) TenantThresholds(t *Tenant) []int64 {
	if t.Thresholds != nil {
		return t.Thresholds
	}
	if p := c.Plans[t.Plan]; p != nil && p.Thresholds != nil {
		return p.Thresholds
	}
	return c.Thresholds
}

// CheckThresholds validates a list of warning thresholds: percentages from
// 1 to 1000, strictly ascending, at most 10.
func CheckThresholds(ts []int64) error {
	if len(ts) > 10 {
		return errors.New("at most 10 thresholds")
	}
	for i, v := range ts {
		if v < 1 || v > 1000 {
			return fmt.Errorf("%d is not a percentage from 1 to 1000", v)
		}
		if i > 0 && v <= ts[i-1] {
			return errors.New("thresholds must be strictly ascending")
		}
	}
	return nil
}

// Limit is the tenant's effective per-object limit of a kind.
func (c *Catalog) Limit(t *Tenant, k *Kind, l *LimitDef) Range {
	key := LimitKey(k.Name, l.Name)
	if v, ok := t.Limits[key]; ok {
		return v
	}
	if p := c.Plans[t.Plan]; p != nil {
		if v, ok := p.Limits[key]; ok {
			return v
		}
	}
	return l.Default
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
