package quota

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
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

// uuidShaped matches the ids whose case carries no meaning: UUIDs (RFC
// 9562 makes them case-insensitive) and the 32-hex project ids of Huawei
// Cloud.
var uuidShaped = regexp.MustCompile(`^(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32})$`)

// CanonicalTenant is the one spelling of a tenant id: UUID-shaped ids in
// lower case, every other id as it is. Every boundary that takes a tenant
// id from outside (paths, bodies, queries, tokens) passes it through here,
// and tenant ids are then compared byte for byte, never case-folded.
func CanonicalTenant(id string) string {
	if uuidShaped.MatchString(id) {
		return strings.ToLower(id)
	}
	return id
}

// SameTenant reports whether a and b name the same tenant. It is the only
// comparison of tenant ids that authorization uses.
func SameTenant(a, b string) bool { return CanonicalTenant(a) == CanonicalTenant(b) }

// CheckText applies the one rule for free text (names, reasons, comments,
// URLs, query values): valid UTF-8 of at most max bytes, with no control
// characters (C0, DEL, C1) and no bidirectional embedding, override or
// isolate controls, which can make text display as something else.
func CheckText(what, s string, max int) error {
	if len(s) > max {
		return Errorf(CodeInvalid, "%s is longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return Errorf(CodeInvalid, "%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if BadRune(r) {
			return Errorf(CodeInvalid, "%s holds the control character %U, which is not allowed", what, r)
		}
	}
	return nil
}

// BadRune reports whether r may not appear in text allot stores: control
// characters and bidirectional formatting controls.
func BadRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Tenant owns consumers and holds quotas.
type Tenant struct {
	ID   string
	Name string
	Plan string
	// Parent is the tenant this one sits under ("" for a root): the
	// parent's hard quotas cap the usage of its whole subtree.
	Parent    string
	CreatedAt time.Time
	// CreatedSeq is the ledger position of the tenant's creation: its
	// history starts there. A tenant deleted and created again under the
	// same id sees nothing of the previous owner's.
	CreatedSeq int64
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

// SetHard is the hard quota set for the tenant of res, by an override or
// its plan; ok is false when only the catalog's default applies. Only a set
// quota caps a tenant's tree usage: a parent with none does not limit its
// subtree.
func (c *Catalog) SetHard(t *Tenant, res *Resource) (hard int64, ok bool) {
	if o, ok := t.Quotas[res.Name]; ok && o.Hard != nil {
		return *o.Hard, true
	}
	if p := c.Plans[t.Plan]; p != nil {
		if v, ok := p.Quotas[res.Name]; ok {
			return v, true
		}
	}
	return 0, false
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
