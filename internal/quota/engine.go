package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

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
	MaxBatch      int           // requests evaluated together; default 1024
	SweepInterval time.Duration // how often expired reservations are released; default 1s
	CommitTimeout time.Duration // default 30s
	MaxOps        int           // operations one change may carry; default (and at most) MaxOps
	// CacheConsumers bounds the consumers the committer keeps in memory;
	// default 1,000,000 (about 250 MB).
	CacheConsumers int
	// NewID returns a fresh identifier with a prefix, for requests and
	// webhooks; default random.
	NewID func(prefix string) string
	// MaxDepth is how many levels a tree of tenants may have; default
	// DefaultMaxDepth.
	MaxDepth int
}

// Engine is the write path: a bounded queue in front of one committer. The
// committer keeps the state it decides on in memory, exact. It takes what
// is waiting, evaluates it in order against that state, and hands the
// batch's writes to the writer, then goes on with the next batch while the
// writer commits, durably, and only then answers. Readers see the state as
// of the last commit.
//
// With a shared store (several processes on one database), each batch's
// transaction locks its tenants first and reads their versions; a tenant
// another process changed is read again before the batch is decided. The
// store's transaction stays the source of truth.
type Engine struct {
	cfg   EngineConfig
	store Store
	cat   *Catalog
	log   *slog.Logger
	now   func() time.Time
	obs   Observer

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool

	queue chan *request
	// system is allot's own lane (expiring reservations): the committer
	// serves it first, so a full client queue never holds up releasing
	// quota, and its changes are few and large, so they never crowd out
	// client changes.
	system chan *request
	done   chan struct{}

	st      *state      // the committer's; only its goroutine touches it
	epoch   uint64      // the committer's: bumped when the state is rebuilt
	batches uint64      // the committer's: batches evaluated
	writer  chan *batch // evaluated batches, to be committed
	// committedBatch is the last batch committed; brokenEpoch, the epoch
	// whose batches a failed commit invalidated (0: none).
	committedBatch atomic.Uint64
	brokenEpoch    atomic.Uint64
	// brokenByRejection is the writer's: whether the last failed commit
	// was the store refusing one change's data.
	brokenByRejection bool
	inflight          sync.WaitGroup // batches handed to the writer, not yet answered

	views *views

	commitMu  sync.Mutex
	committed chan struct{} // closed and replaced after each commit
}

type request struct {
	change Change
	alone  bool // decided in a batch of its own: its batch failed for another change's data
	res    *Result
	err    error
	done   chan struct{}
}

// solo reports whether r must be decided in a batch of its own.
func (r *request) solo() bool {
	return r.alone || r.change.Ops[0].Type().exclusive() || moves(r.change.Ops[0])
}

// batch is requests evaluated together, on their way to the writer.
type batch struct {
	seq, epoch uint64
	reqs       []*request
	tx         Tx            // nil: nothing to write
	views      []*TenantView // to publish once committed
	gone       []string      // tenants deleted, to unpublish
	started    time.Time
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
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = DefaultMaxDepth
	}
	if cfg.CacheConsumers <= 0 {
		cfg.CacheConsumers = 1_000_000
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
	e := &Engine{
		cfg: cfg, store: cfg.Store, cat: cfg.Catalog, log: cfg.Logger, now: cfg.Now, obs: cfg.Observer,
		queue: make(chan *request, cfg.QueueSize), system: make(chan *request, 4),
		done: make(chan struct{}), committed: make(chan struct{}),
		writer: make(chan *batch, 8), views: newViews(),
	}
	e.st = newState(cfg.Catalog, cfg.CacheConsumers, cfg.MaxDepth, e.committedBatch.Load)
	return e
}

// Catalog returns the engine's catalog.
func (e *Engine) Catalog() *Catalog { return e.cat }

// QueueDepth is the number of requests waiting for the committer.
func (e *Engine) QueueDepth() int { return len(e.queue) }

// Start loads the state from the store and runs the committer, the writer,
// the reservation sweeper and (with a shared store) the watcher of other
// processes' changes, until Stop.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.st.load(ctx, e.store); err != nil {
		return err
	}
	e.epoch = 1
	for _, ts := range e.st.tenants {
		e.views.publish(ts.view())
	}
	bg, cancel := context.WithCancel(context.Background())
	written := make(chan struct{})
	go func() {
		defer close(written)
		e.writeLoop()
	}()
	go func() {
		defer close(e.done)
		defer cancel()
		e.commitLoop()
		close(e.writer)
		<-written
	}()
	go e.sweepLoop(bg)
	if e.store.Shared() {
		go e.watch(bg)
	}
	return nil
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
// *Error: a refusal, invalid input, CodeOverloaded or CodeUnavailable when
// the change was not applied and may be retried, or CodeOutcomeUnknown.
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
		e.obs.Decided(ch.Ops[0].Type(), CodeOverloaded)
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
	c := &checker{cat: e.cat, newID: e.cfg.NewID}
	for i, op := range ch.Ops {
		if op == nil {
			return Errorf(CodeInvalid, "operation %d is missing", i)
		}
		if err := op.check(c); err != nil {
			qe := asError(err)
			if len(ch.Ops) > 1 {
				qe.Operation = &i
			}
			return qe
		}
		if (op.Type().exclusive() || moves(op)) && len(ch.Ops) > 1 {
			return Errorf(CodeInvalid, "%s must be the only operation of its change", op.Type())
		}
	}
	return nil
}

// commitLoop is the committer: it takes what waits, the system lane
// first, and evaluates it as one batch.
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
		reqs := []*request{r}
		if !r.solo() {
		system:
			for len(reqs) < e.cfg.MaxBatch {
				select {
				case s := <-e.system:
					if s.solo() {
						next = s
						break system
					}
					reqs = append(reqs, s)
				default:
					break system
				}
			}
		drain:
			for len(reqs) < e.cfg.MaxBatch && next == nil {
				select {
				case r2, ok := <-e.queue:
					if !ok {
						break drain
					}
					if r2.solo() {
						next = r2
						break drain
					}
					reqs = append(reqs, r2)
				default:
					break drain
				}
			}
		}
		e.evaluate(reqs)
	}
}

// evaluate decides one batch against memory and hands it to the writer.
func (e *Engine) evaluate(reqs []*request) {
	start := time.Now()
	n := newNeeds()
	for _, r := range reqs {
		for _, op := range r.change.Ops {
			op.needs(n)
		}
	}
	// A batch that reads the store's tokens, requests or consumer counts
	// waits for the batches before it; so does one after a failed commit,
	// which must find the state rebuilt from the store.
	if n.settled || e.brokenEpoch.Load() >= e.epoch {
		e.inflight.Wait()
	}
	if e.brokenEpoch.Load() >= e.epoch {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.CommitTimeout)
		err := e.st.load(ctx, e.store)
		cancel()
		if err != nil {
			e.log.Error("rebuilding the committer's state failed", "err", err)
			e.fail(reqs, start, err)
			return
		}
		e.epoch = e.brokenEpoch.Load() + 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.CommitTimeout)
	defer cancel()
	tx, err := e.lock(ctx, n)
	if err != nil {
		e.fail(reqs, start, err)
		return
	}
	ws, err := e.load(ctx, tx, n)
	if err != nil {
		tx.Rollback()
		e.fail(reqs, start, err)
		return
	}
	for _, r := range reqs {
		r.res, r.err = ws.run(&r.change)
	}
	e.batches++
	b := &batch{seq: e.batches, epoch: e.epoch, reqs: reqs, started: start}
	w := ws.writes()
	if w.Empty() {
		tx.Rollback()
	} else {
		w.Versions = ws.finish(b.seq, e.store.Shared())
		if len(w.PutWebhooks)+len(w.DeleteWebhooks) > 0 {
			e.st.webhooksVersion++
			w.WebhooksVersion = e.st.webhooksVersion
		}
		for _, id := range ws.changedTenants() {
			if ts := e.st.tenants[id]; ts != nil {
				b.views = append(b.views, ts.view())
			} else {
				b.gone = append(b.gone, id)
			}
		}
		tx.Apply(w)
		b.tx = tx
	}
	e.inflight.Add(1)
	e.writer <- b
}

// maxRelocks bounds how often a batch locks again because the ancestry it
// read under its locks named tenants it had not locked.
const maxRelocks = 8

// lock begins the batch's transaction, locking its tenants and every
// ancestor of theirs, in one order (the store's), so that claims under one
// parent serialize on it and claims in unrelated trees do not. With a
// shared store, another process may have moved a tenant: the tenants whose
// versions changed are read again under the locks, and when their
// ancestry names a tenant not locked, the batch locks again, with it.
func (e *Engine) lock(ctx context.Context, n *needs) (Tx, error) {
	e.st.closure(n.tenants)
	for attempt := 1; ; attempt++ {
		tenants := sortedKeys(n.tenants)
		tx, err := e.store.Begin(ctx, tenants)
		if err != nil {
			return nil, err
		}
		if !e.store.Shared() {
			return tx, nil
		}
		if err := e.refresh(ctx, tx, tenants); err != nil {
			tx.Rollback()
			return nil, err
		}
		if !e.st.closure(n.tenants) {
			return tx, nil
		}
		tx.Rollback()
		if attempt == maxRelocks {
			return nil, Errorf(CodeUnavailable, "the tree of tenants kept changing while the change was decided; retry shortly")
		}
	}
}

// refresh reads again, under the batch's locks, the tenants whose stored
// version differs from memory's: another process changed them.
func (e *Engine) refresh(ctx context.Context, tx Tx, tenants []string) error {
	stored, _ := tx.Versions()
	var stale []string
	for _, id := range tenants {
		var have int64
		if ts := e.st.tenants[id]; ts != nil {
			have = ts.version
		}
		if stored[id] != have {
			stale = append(stale, id)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	records, err := tx.Tenants(ctx, stale)
	if err != nil {
		return err
	}
	fresh := map[string]*TenantRecord{}
	for _, r := range records {
		fresh[r.Tenant.ID] = r
	}
	for _, id := range stale {
		e.st.replace(id, fresh[id])
	}
	return nil
}

// load brings memory up to date for the batch and builds its workset: the
// tenants are fresh (lock), and so must the webhooks be, with a shared
// store.
func (e *Engine) load(ctx context.Context, tx Tx, n *needs) (*workset, error) {
	if e.store.Shared() {
		_, hooks := tx.Versions()
		if hooks != e.st.webhooksVersion {
			list, version, err := e.store.LoadWebhooks(ctx)
			if err != nil {
				return nil, err
			}
			e.st.setWebhooks(list, version)
		}
	}
	have, err := e.st.prepare(ctx, tx, n.consumers)
	if err != nil {
		return nil, err
	}
	return newWorkset(ctx, e.st, tx, e.now(), n, have)
}

// fail answers a batch that could not be evaluated: nothing of it was
// applied.
func (e *Engine) fail(reqs []*request, start time.Time, err error) {
	e.obs.Batch(len(reqs), time.Since(start), err)
	e.log.Error("a batch could not be evaluated; nothing of it was applied", "requests", len(reqs), "err", err)
	for _, r := range reqs {
		r.res, r.err = nil, &Error{Code: CodeUnavailable, Message: "the change could not be decided; nothing of it was applied; retry shortly"}
		e.answer(r)
	}
}

func (e *Engine) answer(r *request) {
	code := Code("")
	if r.err != nil {
		code = ErrorCode(r.err)
	}
	e.obs.Decided(r.change.Ops[0].Type(), code)
	close(r.done)
}

// writeLoop is the writer: it commits the batches the committer hands
// over, several at once when they wait, in order, and answers them.
func (e *Engine) writeLoop() {
	for b := range e.writer {
		group := []*batch{b}
	more:
		for len(group) < 64 {
			select {
			case b2, ok := <-e.writer:
				if !ok {
					break more
				}
				group = append(group, b2)
			default:
				break more
			}
		}
		e.write(group)
	}
}

func (e *Engine) write(group []*batch) {
	// Batches decided on a state a failed commit invalidated are refused
	// without a try: they may depend on what did not commit.
	var live, stale []*batch
	for _, b := range group {
		if b.epoch <= e.brokenEpoch.Load() {
			stale = append(stale, b)
		} else {
			live = append(live, b)
		}
	}
	var txs []Tx
	var carriers []*batch // the batches whose txs these are
	for _, b := range live {
		if b.tx != nil {
			txs = append(txs, b.tx)
			carriers = append(carriers, b)
		}
	}
	committed, err := len(txs), error(nil)
	if len(txs) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.CommitTimeout)
		committed, err = e.store.Commit(ctx, txs)
		cancel()
	}
	// Every batch up to the last committed one (and those that wrote
	// nothing in between) is done.
	okUpTo := len(live)
	if err != nil {
		okUpTo = slices.Index(live, carriers[committed])
		e.brokenEpoch.Store(max(e.brokenEpoch.Load(), live[okUpTo].epoch))
	}
	for _, b := range live[:okUpTo] {
		e.obs.Batch(len(b.reqs), time.Since(b.started), nil)
		for _, v := range b.views {
			e.views.publish(v)
		}
		for _, id := range b.gone {
			e.views.remove(id)
		}
		e.committedBatch.Store(b.seq)
	}
	if okUpTo > 0 {
		e.commitMu.Lock()
		close(e.committed)
		e.committed = make(chan struct{})
		e.commitMu.Unlock()
		for _, b := range live[:okUpTo] {
			for _, r := range b.reqs {
				e.answer(r)
			}
			e.inflight.Done()
		}
	}
	if err != nil {
		// A change the store refused for its own data fails alone: the
		// batches decided after it are decided again, not refused for it.
		rejected := errors.Is(err, ErrRejected)
		e.brokenByRejection = rejected
		failed := live[okUpTo:]
		e.failCommit(failed[0], err)
		for _, b := range failed[1:] {
			if rejected {
				e.redo(b)
			} else {
				e.refuse(b, "an earlier change it was decided with failed to commit")
			}
		}
	}
	for _, b := range stale {
		if b.tx != nil {
			b.tx.Rollback()
		}
		if e.brokenByRejection {
			e.redo(b)
		} else {
			e.refuse(b, "an earlier change it was decided with failed to commit")
		}
	}
}

// redo decides a batch's changes again, each alone, once the state is
// rebuilt: the batch held, or was decided on the effects of, a change the
// store refused for that change's own data, and must not fail for it.
func (e *Engine) redo(b *batch) {
	e.inflight.Done()
	go func() {
		for _, r := range b.reqs {
			e.resubmit(r)
		}
	}()
}

// failCommit answers the batch whose commit failed.
func (e *Engine) failCommit(b *batch, err error) {
	e.obs.Batch(len(b.reqs), time.Since(b.started), err)
	if errors.Is(err, ErrRejected) && len(b.reqs) > 1 {
		// One change's data failed the whole transaction: decide each change
		// again on its own, once the state is rebuilt, so only the culprit
		// fails.
		e.log.Warn("the store refused a batch; committing its changes one by one", "requests", len(b.reqs), "err", err)
		e.redo(b)
		return
	}
	// Logged here once for the batch; the answers carry no cause, so the
	// handlers do not log it once per request.
	answer := Error{Code: CodeUnavailable, Message: "the change could not be stored; nothing of it was applied; retry shortly"}
	switch {
	case errors.Is(err, ErrRejected):
		answer = Error{Code: CodeInvalid, Message: "the store refused a value of this change"}
		e.log.Error("the store refused a change", "err", err)
	case ErrorCode(err) == CodeOutcomeUnknown:
		answer = Error{Code: CodeOutcomeUnknown, Message: "the change may or may not have been stored: the store's answer to the commit was lost; read its state before retrying"}
		e.log.Error("commit outcome unknown; the batch may have been applied", "requests", len(b.reqs), "err", err)
	default:
		e.log.Error("commit failed; nothing of the batch was applied", "requests", len(b.reqs), "err", err)
	}
	for _, r := range b.reqs {
		a := answer
		r.res, r.err = nil, &a
		e.answer(r)
	}
	e.inflight.Done()
}

// refuse answers a batch that was not committed because it was decided on
// the effects of a batch that failed: nothing of it was applied.
func (e *Engine) refuse(b *batch, why string) {
	e.obs.Batch(len(b.reqs), time.Since(b.started), errors.New(why))
	for _, r := range b.reqs {
		r.res, r.err = nil, &Error{Code: CodeUnavailable, Message: "the change could not be stored (" + why + "); nothing of it was applied; retry shortly"}
		e.answer(r)
	}
	e.inflight.Done()
}

// resubmit decides a request again, alone: after its batch was refused for
// another change's data.
func (e *Engine) resubmit(r *request) {
	again := &request{change: r.change, alone: true, done: make(chan struct{})}
	select {
	case e.system <- again:
	case <-e.done:
		r.res, r.err = nil, Errorf(CodeUnavailable, "allot is shutting down")
		close(r.done)
		return
	}
	<-again.done
	r.res, r.err = again.res, again.err
	close(r.done)
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
				ops[i] = &ExpireConsumer{Tenant: c.Tenant, Consumer: c.ID, Generation: c.Generation}
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
