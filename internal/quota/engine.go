package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// OpType says what an Op does.
type OpType string

const (
	OpPutConsumer    OpType = "put"
	OpDeleteConsumer OpType = "delete"
	OpExpireConsumer OpType = "expire"
	OpSetQuota       OpType = "set_quota"
	OpSetLimit       OpType = "set_limit"
	OpCreateTenant   OpType = "create_tenant"
	OpUpdateTenant   OpType = "update_tenant" // name and plan
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

// exclusive ops change tenants or tokens wholesale; each runs in a batch of
// its own so that no other change of the batch can interleave with it.
func (t OpType) exclusive() bool {
	switch t {
	case OpCreateTenant, OpDeleteTenant, OpPutToken, OpRevokeToken, OpReconcile, OpPutWebhook, OpDeleteWebhook:
		return true
	}
	return false
}

// Op is one change. Which fields count depends on Type.
type Op struct {
	Type     OpType
	Tenant   string
	Consumer string

	Spec       Spec  // put
	IfMatch    int64 // put, delete: the generation the consumer must have; 0 for any
	Generation int64 // expire: release only if the consumer still has it

	Resource string        // set_quota
	Quota    QuotaOverride // set_quota: Hard is required
	Kind     string        // set_limit
	Limit    string        // set_limit
	Range    Range         // set_limit

	Name string // create_tenant, update_tenant: display name ("" keeps it); revoke_token: token name
	Plan string // create_tenant, update_tenant ("" keeps it; "-" for none)

	Token   *Token // put_token
	Replace bool   // put_token: replace a token of the same name (the bootstrap admin token)

	Value   int64  // request: the hard quota asked for
	ID      string // request (assigned by the engine), decide, delete_webhook
	Approve bool   // decide
	Comment string // decide

	Kinds     []string        // reconcile: the kinds the inventory covers
	Inventory []InventoryItem // reconcile: every consumer of those kinds that exists

	Webhook    *Webhook // put_webhook
	Thresholds []int64  // set_thresholds; nil: back to the plan's

	kind  *Kind // put: resolved by validate
	force bool  // put during reconcile: reality wins over quotas and limits
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

// Observer receives what the engine does, for metrics. All methods must be
// cheap and safe for concurrent use.
type Observer interface {
	Batch(requests int, took time.Duration, err error)
	Decided(op OpType, code Code) // code is "" when the op was admitted
	Expired(n int)
}

// EngineConfig holds an Engine's dependencies and tunables.
type EngineConfig struct {
	Store         Store
	Catalog       *Catalog
	Logger        *slog.Logger
	Now           func() time.Time
	Observer      Observer      // optional
	QueueSize     int           // default 8192
	MaxBatch      int           // requests per transaction; default 1024
	SweepInterval time.Duration // how often expired reservations are released; default 1s
	CommitTimeout time.Duration // default 30s
	MaxOps        int           // operations one change may carry; default (and at most) MaxOps
	// NewID returns a fresh identifier with a prefix, for requests and
	// webhooks; default random.
	NewID func(prefix string) string
}

// Engine is the write path: a bounded queue in front of one committer that
// takes whatever is waiting, evaluates it in order against the state it
// loads inside one transaction, commits durably and only then answers.
// Because the store's transaction is the source of truth, several engines
// (several allot processes) over one database stay correct.
type Engine struct {
	cfg   EngineConfig
	store Store
	cat   *Catalog
	log   *slog.Logger
	now   func() time.Time
	obs   Observer

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool

	commitMu  sync.Mutex
	committed chan struct{} // closed and replaced after each commit
	queue     chan *request
	// system is allot's own lane (expiring reservations): the committer
	// serves it first, so a full client queue never holds up releasing
	// quota, and its changes are few and large, so they never crowd out
	// client changes.
	system chan *request
	done   chan struct{}
}

type request struct {
	change Change
	res    *Result
	err    error
	done   chan struct{}
}

// NewEngine returns an engine; Start runs it.
func NewEngine(cfg EngineConfig) *Engine {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 8192
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1024
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.MaxOps <= 0 || cfg.MaxOps > MaxOps {
		cfg.MaxOps = MaxOps
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = randomID
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	return &Engine{
		cfg: cfg, store: cfg.Store, cat: cfg.Catalog, log: cfg.Logger, now: cfg.Now, obs: cfg.Observer,
		queue: make(chan *request, cfg.QueueSize), system: make(chan *request, 4),
		done: make(chan struct{}), committed: make(chan struct{}),
	}
}

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() *Catalog { return e.cat }

// QueueDepth is the number of requests waiting for the committer.
func (e *Engine) QueueDepth() int { return len(e.queue) }

// Start runs the committer and the reservation sweeper until Stop.
func (e *Engine) Start() {
	sweepCtx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(e.done)
		defer cancel()
		e.commitLoop()
	}()
	go e.sweepLoop(sweepCtx)
}

// Stop refuses new changes, commits and answers every change already
// queued, and returns when the committer has finished or ctx ends.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.queue)
	}
	e.mu.Unlock()
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Committed returns a channel closed at the next commit of this engine:
// a stream of the ledger waits on it instead of polling.
func (e *Engine) Committed() <-chan struct{} {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.committed
}

// Do validates a change, queues it and waits for its outcome. Errors are
// *Error: a refusal, invalid input, or CodeOverloaded/CodeUnavailable when
// the change was not applied and may be retried.
func (e *Engine) Do(ctx context.Context, ch Change) (*Result, error) {
	if err := e.validate(&ch); err != nil {
		return nil, err
	}
	r := &request{change: ch, done: make(chan struct{})}
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return nil, Errorf(CodeUnavailable, "allot is shutting down")
	}
	select {
	case e.queue <- r:
	default:
		e.mu.RUnlock()
		e.obs.Decided(ch.Ops[0].Type, CodeOverloaded)
		return nil, Errorf(CodeOverloaded, "too many changes are waiting; retry shortly")
	}
	e.mu.RUnlock()
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		// The change may still commit: the caller gave up, not the engine.
		return nil, Errorf(CodeOutcomeUnknown, "the request ended before its change was decided; it may still be stored")
	}
}

// doSystem queues one of allot's own changes on the system lane, waiting
// for room rather than being refused.
func (e *Engine) doSystem(ctx context.Context, ch Change) (*Result, error) {
	if err := e.validate(&ch); err != nil {
		return nil, err
	}
	r := &request{change: ch, done: make(chan struct{})}
	select {
	case e.system <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.done:
		return nil, Errorf(CodeUnavailable, "allot is shutting down")
	}
	select {
	case <-r.done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// MaxOps is the most operations one change may carry.
const MaxOps = 1000

// validate checks everything that does not depend on stored state, so that
// bad input never reaches the queue.
func (e *Engine) validate(ch *Change) error {
	if len(ch.Ops) == 0 {
		return Errorf(CodeInvalid, "no operations")
	}
	if len(ch.Ops) > e.cfg.MaxOps {
		return Errorf(CodeInvalid, "%d operations; at most %d are allowed in one change", len(ch.Ops), e.cfg.MaxOps)
	}
	if err := CheckText("reason", ch.Reason, 1024); err != nil {
		return err
	}
	for i := range ch.Ops {
		if err := e.validateOp(&ch.Ops[i]); err != nil {
			if len(ch.Ops) > 1 {
				err.Operation = &i
			}
			return err
		}
		if ch.Ops[i].Type.exclusive() && len(ch.Ops) > 1 {
			return Errorf(CodeInvalid, "%s must be the only operation of its change", ch.Ops[i].Type)
		}
	}
	return nil
}

func (e *Engine) validateOp(op *Op) *Error {
	asError := func(err error) *Error {
		if err == nil {
			return nil
		}
		var qe *Error
		errors.As(err, &qe)
		return qe
	}
	if (op.Type != OpPutToken && op.Type != OpRevokeToken && op.Type != OpPutWebhook && op.Type != OpDeleteWebhook) || op.Tenant != "" {
		if err := CheckID("tenant", op.Tenant); err != nil {
			return asError(err)
		}
		op.Tenant = CanonicalTenant(op.Tenant)
	}
	switch op.Type {
	case OpPutConsumer:
		if err := CheckID("consumer", op.Consumer); err != nil {
			return asError(err)
		}
		k, attrs, err := e.cat.Normalize(op.Spec)
		if err != nil {
			return asError(err)
		}
		op.kind, op.Spec.Attributes = k, attrs
		if op.IfMatch < 0 {
			return Errorf(CodeInvalid, "if-match must be a positive generation")
		}
	case OpDeleteConsumer, OpExpireConsumer:
		if err := CheckID("consumer", op.Consumer); err != nil {
			return asError(err)
		}
	case OpSetQuota:
		if e.cat.Resource(op.Resource) == nil {
			return Errorf(CodeInvalid, "unknown resource %q", truncate(op.Resource, 140))
		}
		if op.Quota.Hard == nil || *op.Quota.Hard < 0 {
			return Errorf(CodeInvalid, "hard must be a non-negative integer")
		}
		if r := op.Quota.Requestable; r != nil && (r.Min < 0 || r.Min > r.Max) {
			return Errorf(CodeInvalid, "requestable must have 0 <= min <= max")
		}
	case OpSetLimit:
		k := e.cat.Kind(op.Kind)
		if k == nil {
			return Errorf(CodeInvalid, "unknown kind %q", truncate(op.Kind, 140))
		}
		if k.LimitDef(op.Limit) == nil {
			return Errorf(CodeInvalid, "unknown limit %q of kind %s", truncate(op.Limit, 140), k.Name)
		}
		if op.Range.Min < 0 || op.Range.Min > op.Range.Max {
			return Errorf(CodeInvalid, "a limit must have 0 <= min <= max")
		}
	case OpCreateTenant, OpUpdateTenant:
		if err := CheckText("name", op.Name, 256); err != nil {
			return asError(err)
		}
		if op.Plan != "" && !(op.Type == OpUpdateTenant && op.Plan == "-") && e.cat.Plans[op.Plan] == nil {
			return Errorf(CodeInvalid, "unknown plan %q", truncate(op.Plan, 140))
		}
	case OpDeleteTenant:
	case OpPutToken:
		t := op.Token
		if t == nil || !t.Role.Valid() || (len(t.Hash) == 0) == (len(t.Sealed) == 0) {
			return Errorf(CodeInvalid, "a token needs a valid role and either a hash or a sealed secret")
		}
		if err := CheckID("token name", t.Name); err != nil {
			return asError(err)
		}
		if (t.Role == RoleTenant) != (t.Tenant != "") {
			return Errorf(CodeInvalid, "a tenant token names its tenant; other roles name none")
		}
		if t.Tenant != "" {
			if err := CheckID("tenant", t.Tenant); err != nil {
				return asError(err)
			}
			t.Tenant = CanonicalTenant(t.Tenant)
		}
		op.Tenant = t.Tenant
	case OpRevokeToken:
		if err := CheckID("token name", op.Name); err != nil {
			return asError(err)
		}
	case OpRequest:
		if e.cat.Resource(op.Resource) == nil {
			return Errorf(CodeInvalid, "unknown resource %q", truncate(op.Resource, 140))
		}
		if op.Value < 0 {
			return Errorf(CodeInvalid, "value must be a non-negative integer")
		}
		op.ID = e.cfg.NewID("req-")
	case OpDecide:
		if err := CheckID("request", op.ID); err != nil {
			return asError(err)
		}
		if err := CheckText("comment", op.Comment, 1024); err != nil {
			return asError(err)
		}
	case OpReconcile:
		if len(op.Kinds) == 0 {
			return Errorf(CodeInvalid, "kinds: name the kinds the inventory covers")
		}
		for _, k := range op.Kinds {
			if e.cat.Kind(k) == nil {
				return Errorf(CodeInvalid, "kinds: unknown kind %q", truncate(k, 140))
			}
		}
		seen := make(map[string]bool, len(op.Inventory))
		for i := range op.Inventory {
			item := &op.Inventory[i]
			if err := CheckID("consumer", item.ID); err != nil {
				return asError(err)
			}
			if seen[item.ID] {
				return Errorf(CodeInvalid, "consumer %s is listed twice", item.ID)
			}
			seen[item.ID] = true
			if !slices.Contains(op.Kinds, item.Spec.Kind) {
				return Errorf(CodeInvalid, "consumer %s is a %q, which kinds does not list", item.ID, truncate(item.Spec.Kind, 140))
			}
			item.Spec.TTL = 0
			k, attrs, err := e.cat.Normalize(item.Spec)
			if err != nil {
				return asError(err)
			}
			item.kind, item.Spec.Attributes = k, attrs
		}
	case OpPutWebhook:
		h := op.Webhook
		if h == nil || h.URL == "" || len(h.Sealed) == 0 {
			return Errorf(CodeInvalid, "a webhook needs a URL and a secret")
		}
		if err := CheckText("url", h.URL, 2048); err != nil {
			return asError(err)
		}
		if h.Tenant != "" {
			if err := CheckID("tenant", h.Tenant); err != nil {
				return asError(err)
			}
			h.Tenant = CanonicalTenant(h.Tenant)
		}
		h.ID = e.cfg.NewID("wh-")
		op.Tenant = h.Tenant
	case OpDeleteWebhook:
		if err := CheckID("webhook", op.ID); err != nil {
			return asError(err)
		}
	case OpSetThresholds:
		if err := CheckThresholds(op.Thresholds); err != nil {
			return Errorf(CodeInvalid, "thresholds: %v", err)
		}
	default:
		return Errorf(CodeInvalid, "unknown operation %q", truncate(string(op.Type), 40))
	}
	return nil
}

func (e *Engine) commitLoop() {
	var next *request
	for {
		r := next
		next = nil
		if r == nil {
			select {
			case r = <-e.system:
			default:
				select {
				case r = <-e.system:
				case q, ok := <-e.queue:
					if !ok {
						return
					}
					r = q
				}
			}
		}
		batch := []*request{r}
		if !r.change.Ops[0].Type.exclusive() {
		system:
			for len(batch) < e.cfg.MaxBatch {
				select {
				case s := <-e.system:
					batch = append(batch, s)
				default:
					break system
				}
			}
		drain:
			for len(batch) < e.cfg.MaxBatch {
				select {
				case r2, ok := <-e.queue:
					if !ok {
						break drain
					}
					if r2.change.Ops[0].Type.exclusive() {
						next = r2
						break drain
					}
					batch = append(batch, r2)
				default:
					break drain
				}
			}
		}
		e.commit(batch)
	}
}

// commit evaluates and writes one batch, then answers its requests.
func (e *Engine) commit(batch []*request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.CommitTimeout)
	defer cancel()
	// fn may run more than once: a store retries it after a serialization
	// failure, so everything it decides is rebuilt from what it loads.
	err := e.store.Update(ctx, func(ctx context.Context, tx Tx) error {
		ws, err := load(ctx, tx, e.cat, e.now(), batch)
		if err != nil {
			return err
		}
		for _, r := range batch {
			r.res, r.err = ws.run(r.change)
		}
		w := ws.writes()
		if w.Empty() {
			return nil
		}
		return tx.Apply(ctx, w)
	})
	e.obs.Batch(len(batch), time.Since(start), err)
	if err == nil {
		e.commitMu.Lock()
		close(e.committed)
		e.committed = make(chan struct{})
		e.commitMu.Unlock()
	}
	if err != nil {
		if errors.Is(err, ErrRejected) && len(batch) > 1 {
			// One change's data failed the whole transaction: commit each
			// change on its own, so only the culprit fails.
			e.log.Warn("the store refused a batch; committing its changes one by one", "requests", len(batch), "err", err)
			for _, r := range batch {
				e.commit([]*request{r})
			}
			return
		}
		// Logged here once for the batch; the answers carry no cause, so
		// the handlers do not log it once per request.
		answer := Error{Code: CodeUnavailable, Message: "the change could not be stored; nothing of it was applied; retry shortly"}
		switch {
		case errors.Is(err, ErrRejected):
			answer = Error{Code: CodeInvalid, Message: "the store refused a value of this change"}
			e.log.Error("the store refused a change", "err", err)
		case ErrorCode(err) == CodeOutcomeUnknown:
			answer = Error{Code: CodeOutcomeUnknown, Message: "the change may or may not have been stored: the store's answer to the commit was lost; read its state before retrying"}
			e.log.Error("commit outcome unknown", "requests", len(batch), "err", err)
		default:
			e.log.Error("commit failed; nothing of the batch was applied", "requests", len(batch), "err", err)
		}
		for _, r := range batch {
			a := answer
			r.res, r.err = nil, &a
		}
	}
	for _, r := range batch {
		code := Code("")
		if r.err != nil {
			code = ErrorCode(r.err)
		}
		e.obs.Decided(r.change.Ops[0].Type, code)
		close(r.done)
	}
}

// sweepLoop releases reservations whose time ran out. Every allot process
// runs one; the expire op is a no-op for a consumer that another process
// released already or that was confirmed meanwhile, so each expiry happens
// exactly once.
func (e *Engine) sweepLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("releasing expired reservations failed", "err", err)
			}
		}
	}
}

// Sweep releases every reservation expired by now and returns how many it
// released. Each round lists up to sweepPage expired reservations and
// expires them in a few large changes on the system lane.
func (e *Engine) Sweep(ctx context.Context) (int, error) {
	released := 0
	for {
		cs, err := e.store.Expired(ctx, e.now(), sweepPage)
		if err != nil || len(cs) == 0 {
			return released, err
		}
		n := 0
		for chunk := range slices.Chunk(cs, e.cfg.MaxOps) {
			ops := make([]Op, len(chunk))
			for i, c := range chunk {
				ops[i] = Op{Type: OpExpireConsumer, Tenant: c.Tenant, Consumer: c.ID, Generation: c.Generation}
			}
			res, err := e.doSystem(ctx, Change{Actor: Actor{Name: "allot", Role: RoleSystem}, Reason: "expired", Ops: ops})
			if err != nil {
				e.obs.Expired(n)
				return released + n, err
			}
			for _, o := range res.Ops {
				if o.Changed {
					n++
				}
			}
		}
		released += n
		e.obs.Expired(n)
		if len(cs) < sweepPage || n == 0 {
			return released, nil
		}
	}
}

// sweepPage is how many expired reservations one sweep round handles.
const sweepPage = 500

type nopObserver struct{}

func (nopObserver) Batch(int, time.Duration, error) {}
func (nopObserver) Decided(OpType, Code)            {}
func (nopObserver) Expired(int)                     {}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// randomID returns a random identifier for requests and webhooks.
func randomID(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
