package quota

import "errors"

// Op is one change to the state: a consumer put, a quota set, a tenant
// created. Each operation is a type of its own, in a file of its own, that
// knows its rules: what it checks before it is queued, what the committer
// must load for it, how it applies, and whether it must be alone in its
// change. The set is closed: only this package implements Op.
type Op interface {
	// Type names the operation, for metrics and messages.
	Type() OpType
	// check validates and normalizes what needs no stored state, so that bad
	// input never reaches the queue. It runs in the caller's goroutine.
	check(c *checker) error
	// needs adds what the operation reads to the batch's load.
	needs(n *needs)
	// apply evaluates the operation against the batch's state.
	apply(ws *workset, ch *Change) (OpResult, error)
}

// OpType says what an Op does.
type OpType string

const (
	OpPutConsumer    OpType = "put"
	OpDeleteConsumer OpType = "delete"
	OpExpireConsumer OpType = "expire"
	OpSetQuota       OpType = "set_quota"
	OpSetLimit       OpType = "set_limit"
	OpCreateTenant   OpType = "create_tenant"
	OpUpdateTenant   OpType = "update_tenant" // name, plan and parent
	OpDeleteTenant   OpType = "delete_tenant"
	OpPutToken       OpType = "put_token"
	OpRevokeToken    OpType = "revoke_token"
	OpRequest        OpType = "request"        // ask for a new hard quota
	OpDecide         OpType = "decide"         // approve or deny a request
	OpReconcile      OpType = "reconcile"      // make consumers equal an inventory
	OpPutWebhook     OpType = "put_webhook"    // subscribe
	OpDeleteWebhook  OpType = "delete_webhook" // unsubscribe
	OpSetThresholds  OpType = "set_thresholds" // a tenant's warning thresholds
)

// exclusive ops change tenants, tokens or subscriptions wholesale: each
// runs in a change and a batch of its own, so nothing else interleaves.
func (t OpType) exclusive() bool {
	switch t {
	case OpCreateTenant, OpDeleteTenant, OpPutToken, OpRevokeToken, OpReconcile, OpPutWebhook, OpDeleteWebhook:
		return true
	}
	return false
}

// Change is one caller's request: its ops succeed together or not at all.
type Change struct {
	Actor  Actor
	DryRun bool
	Reason string
	Ops    []Op
}

// Result answers a Change, one OpResult per Op.
type Result struct {
	Ops []OpResult
}

// OpResult is the outcome of one op.
type OpResult struct {
	Consumer  *Consumer        // put: after; delete, expire: the consumer released
	Created   bool             // put: the consumer did not exist
	Changed   bool             // false when the op was a no-op (same spec again, nothing to expire)
	Tenant    *Tenant          // tenant ops, set_quota, set_limit: after
	Usage     map[string]int64 // the tenant's usage after the op
	OverQuota bool             // set_quota: usage is above the new hard quota
	Request   *Request         // request, decide
	Reconcile *ReconcileResult // reconcile
	Webhook   *Webhook         // put_webhook, delete_webhook
}

// checker is what check may use: the catalog and the id source.
type checker struct {
	cat   *Catalog
	newID func(prefix string) string
}

// checkTenant validates and canonicalizes a tenant id.
func checkTenant(id *string) error {
	if err := CheckID("tenant", *id); err != nil {
		return err
	}
	*id = CanonicalTenant(*id)
	return nil
}

// needs is what a batch must load before it is evaluated.
type needs struct {
	tenants   map[string]bool
	consumers map[ConsumerKey]bool
	tokens    map[string]bool
	requests  []string            // by id, besides every pending one of the tenants
	counts    []string            // tenants whose consumers must be counted
	subtrees  []string            // tenants whose descendants must be read
	listed    map[string][]string // tenant → kinds whose consumers must all be listed
	// settled: the op reads what the store holds of tokens, requests or
	// consumer counts, so the batches before it must be committed first.
	settled bool
}

func newNeeds() *needs {
	return &needs{tenants: map[string]bool{}, consumers: map[ConsumerKey]bool{}, tokens: map[string]bool{}, listed: map[string][]string{}}
}

func (n *needs) tenant(id string) {
	if id != "" {
		n.tenants[id] = true
	}
}

func (n *needs) consumer(tenant, id string) {
	n.tenant(tenant)
	n.consumers[ConsumerKey{tenant, id}] = true
}

// asError keeps a domain error's identity for the Operation index.
func asError(err error) *Error {
	if err == nil {
		return nil
	}
	if qe, ok := errors.AsType[*Error](err); ok {
		return qe
	}
	return &Error{Code: CodeInternal, Message: "an internal error occurred", Err: err}
}
