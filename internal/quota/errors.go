package quota

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Clients branch on it; its
// text never changes once released.
type Code string

const (
	CodeInvalid            Code = "invalid_request"
	CodeNotFound           Code = "not_found"
	CodeConflict           Code = "conflict"
	CodeQuotaExceeded      Code = "quota_exceeded"
	CodeLimitViolation     Code = "limit_violation"
	CodeGenerationMismatch Code = "generation_mismatch"
	CodeUnauthorized       Code = "unauthorized"
	CodeForbidden          Code = "forbidden"
	CodeTooLarge           Code = "body_too_large"
	CodeTooMany            Code = "too_many_requests" // failed authentications from one address or key
	CodeOverloaded         Code = "overloaded"        // the write queue is full; retry
	CodeUnavailable        Code = "unavailable"       // the store failed or allot is stopping; nothing was stored; retry
	// CodeOutcomeUnknown: the store may or may not have committed the change
	// (the connection broke after COMMIT was sent, and the outcome could not
	// be looked up). The caller must read before it retries.
	CodeOutcomeUnknown Code = "outcome_unknown"
	CodeOutsideRange   Code = "outside_requestable_range"
	CodeBelowUsage     Code = "below_usage"
	CodeInternal       Code = "internal"
	// CodeUnknownParameter: a query parameter the route does not take.
	CodeUnknownParameter Code = "unknown_parameter"
	// CodeReplayTooLong: answering would replay more of the ledger than one
	// request may.
	CodeReplayTooLong Code = "replay_too_long"
	// CodeBeforeRetention: a time before the earliest the retained ledger
	// can answer (the message names it).
	CodeBeforeRetention Code = "before_retention"
	// CodeEventsPruned: events after the position asked for are pruned (the
	// message names the oldest position to read after).
	CodeEventsPruned Code = "events_pruned"
	// The tree of tenants: a parent that does not exist, a parent that
	// would make the tenant its own ancestor, a tree deeper than allowed,
	// and deleting a tenant that still has children.
	CodeParentNotFound Code = "parent_not_found"
	CodeParentCycle    Code = "parent_cycle"
	CodeTreeTooDeep    Code = "tree_too_deep"
	CodeHasChildren    Code = "tenant_has_children"
)

// Error is a domain error with a code, a message fit for the caller and, for
// refusals, what exactly was refused.
type Error struct {
	Code       Code
	Message    string
	Violations []Violation
	Operation  *int  // index of the failing operation in a batch
	Err        error // cause, for logs; never shown to callers
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable marks a store failure: the database could not be reached or
// read. Callers get 503 with Retry-After; err is logged, not shown.
func Unavailable(err error) *Error {
	return &Error{Code: CodeUnavailable, Message: "the store is unavailable; retry shortly", Err: err}
}

// OutcomeUnknown marks a commit whose outcome is not known: it may have
// been applied. Callers get 503 with the code outcome_unknown.
func OutcomeUnknown(err error) *Error {
	return &Error{Code: CodeOutcomeUnknown, Message: "the change may or may not have been stored; read its state before retrying", Err: err}
}

// ErrRejected wraps a store error that blames the data of one change (a
// value the database refuses), not the store: the engine then commits the
// batch's other changes without it.
var ErrRejected = errors.New("the store refused a value")

// ErrorCode returns the code of err, CodeInternal for errors that carry none.
func ErrorCode(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// Violation says why one resource or one attribute refused a claim. Exactly
// one of the two shapes is set: Resource (with Tenant, Used, Hard,
// Requested, Available) or Kind and Attribute (with Value, Min, Max).
// Tenant is the level of the tree whose quota refused: the tenant claimed
// on or one of its ancestors, whose Used is then its tree usage.
type Violation struct {
	Tenant    string
	Resource  string
	Used      int64
	Hard      int64
	Requested int64
	Available int64

	Kind      string
	Attribute string
	Value     int64
	Min       int64
	Max       int64
}

type resourceViolation struct {
	Tenant    string `json:"tenant,omitempty"`
	Resource  string `json:"resource"`
	Used      int64  `json:"used"`
	Hard      int64  `json:"hard"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
}

type attributeViolation struct {
	Kind      string `json:"kind"`
	Attribute string `json:"attribute"`
	Value     int64  `json:"value"`
	Min       int64  `json:"min"`
	Max       int64  `json:"max"`
}

func (v Violation) MarshalJSON() ([]byte, error) {
	if v.Resource != "" {
		return json.Marshal(resourceViolation{v.Tenant, v.Resource, v.Used, v.Hard, v.Requested, v.Available})
	}
	return json.Marshal(attributeViolation{v.Kind, v.Attribute, v.Value, v.Min, v.Max})
}

func (v *Violation) UnmarshalJSON(b []byte) error {
	var w struct {
		resourceViolation
		attributeViolation
	}
	if err := json.Unmarshal(b, &w.resourceViolation); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &w.attributeViolation); err != nil {
		return err
	}
	r, a := w.resourceViolation, w.attributeViolation
	*v = Violation{r.Tenant, r.Resource, r.Used, r.Hard, r.Requested, r.Available, a.Kind, a.Attribute, a.Value, a.Min, a.Max}
	return nil
}
