// Package ledger keeps the ledger bounded over months: it records each
// tenant's state as of checkpoints (snapshots), so that reading usage at a
// time replays only the events since the snapshot before it, and it prunes
// what the retention lets go, archiving it first if asked. It works in the
// background, in small steps of their own transactions, and never holds up
// the committer for more than one step.
package ledger

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// Config is the keeper's policy.
type Config struct {
	Store  quota.Store
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
	// A checkpoint is taken every SnapshotEvery events or SnapshotInterval,
	// whichever comes first (and only when there are new events).
	SnapshotEvery    int           // default 10,000
	SnapshotInterval time.Duration // default 10 minutes
	// Retention is how long consumer events and threshold crossings are
	// kept; AuditRetention, the audit events (quota, limit, plan, tenant,
	// token, request, webhook changes). Zero keeps them for ever.
	Retention, AuditRetention time.Duration
	// Archive, if set, is a directory where every event is written before
	// it is pruned (see Archive).
	Archive string
	// Tick is how often the keeper looks for work; default 1s.
	Tick time.Duration
	// Chunk is the most rows one step writes or removes; default 500.
	Chunk int
}

// Keeper runs the policy.
type Keeper struct {
	cfg     Config
	store   quota.Store
	archive *Archive

	pruned, archived   atomic.Int64
	lastCheckpointNano atomic.Int64
	size               atomic.Pointer[Stats] // rows, bytes and horizon, refreshed now and then
	sizedAt            time.Time
}

// sizeEvery is how often the keeper measures the ledger: counting its rows
// reads an index, which is not free on a long ledger.
const sizeEvery = 30 * time.Second

// maxStep bounds the events one checkpoint replays, so that the first one
// on a long ledger is taken in several steps.
const maxStep = 100_000

// tenantEvery is how many of one tenant's events may pass between two of
// its snapshots: reading its usage at any time replays at most this many.
const tenantEvery = 10

// New checks cfg and returns a keeper.
func New(cfg Config) (*Keeper, error) {
	if cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("ledger: a store and a logger are required")
	}
	if cfg.Retention < 0 || cfg.AuditRetention < 0 {
		return nil, errors.New("ledger: retention must not be negative")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 10_000
	}
	if cfg.SnapshotInterval <= 0 {
		cfg.SnapshotInterval = 10 * time.Minute
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = 500
	}
	k := &Keeper{cfg: cfg, store: cfg.Store}
	if cfg.Archive != "" {
		a, err := OpenArchive(cfg.Archive)
		if err != nil {
			return nil, err
		}
		k.archive = a
	}
	return k, nil
}

// Run works until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	t := time.NewTicker(k.cfg.Tick)
	defer t.Stop()
	for {
		if err := k.Step(ctx); err != nil && ctx.Err() == nil {
			k.cfg.Logger.Warn("keeping the ledger failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step does one round of work if this process leads: a checkpoint when one
// is due, then pruning until it is done or the round's budget is spent.
func (k *Keeper) Step(ctx context.Context) error {
	if err := k.measure(ctx); err != nil {
		return err
	}
	release, lead, err := k.store.TryLead(ctx, "ledger")
	if err != nil || !lead {
		return err
	}
	defer release()
	for range 10 { // a long ledger is caught up in steps, not one go
		took, err := k.checkpoint(ctx, false)
		if err != nil || !took {
			if err != nil {
				return err
			}
			break
		}
	}
	// Pruning takes the writer for one chunk at a time and then rests four
	// times as long, for half of each tick: at most a tenth of the writer
	// goes from the claims. Archiving reads only, and is not paced.
	deadline := time.Now().Add(k.cfg.Tick / 2)
	for time.Now().Before(deadline) {
		archived, err := k.archiveDue(ctx)
		if err != nil {
			return err
		}
		if archived {
			continue
		}
		began := time.Now()
		done, err := k.prune(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(4 * time.Since(began)):
		}
	}
	return nil
}

// Checkpoint takes a checkpoint now if there are events after the last
// one, whatever the policy says; tests and operators use it.
func (k *Keeper) Checkpoint(ctx context.Context) (bool, error) { return k.checkpoint(ctx, true) }

// checkpoint replays the events since the last checkpoint (at most
// maxStep of them) and records a snapshot of every tenant they touched as
// of the last one. The checkpoint row is written after every snapshot, but
// each snapshot is right on its own, so one written by a step that then
// failed is as good as the next step's.
func (k *Keeper) checkpoint(ctx context.Context, force bool) (bool, error) {
	cps, err := k.store.Checkpoints(ctx)
	if err != nil {
		return false, err
	}
	var last quota.Checkpoint
	if len(cps) > 0 {
		last = cps[len(cps)-1]
	}
	k.lastCheckpointNano.Store(last.Time.UnixNano())
	head, err := k.store.LastSeq(ctx)
	if err != nil || head <= last.Seq {
		return false, err
	}
	// The first checkpoint is taken at once; then by the policy.
	if !force && !last.Time.IsZero() && head-last.Seq < int64(k.cfg.SnapshotEvery) && k.cfg.Now().Sub(last.Time) < k.cfg.SnapshotInterval {
		return false, nil
	}
	target := min(head, last.Seq+maxStep)
	replay := quota.NewReplay()
	seeded := map[string]bool{}
	count := map[string]int{} // each tenant's events since its last snapshot
	var at quota.Checkpoint
	var batch []*quota.Snapshot
	put := func(force bool) error {
		if len(batch) == 0 || !force && len(batch) < k.cfg.Chunk {
			return nil
		}
		// A busy tenant's snapshot can fall on the checkpoint itself: one
		// row per tenant and position.
		seen := map[string]bool{}
		unique := batch[:0:0]
		for i := len(batch) - 1; i >= 0; i-- {
			if key := batch[i].Tenant + "\x00" + strconv.FormatInt(batch[i].Seq, 10); !seen[key] {
				seen[key] = true
				unique = append(unique, batch[i])
			}
		}
		err := k.store.PutSnapshots(ctx, unique)
		batch = batch[:0]
		return err
	}
	for after := last.Seq; after < target; {
		es, err := k.store.Events(ctx, quota.EventFilter{After: after, Limit: 1000})
		if err != nil {
			return false, err
		}
		if len(es) == 0 {
			break
		}
		var unseeded []string
		for _, e := range es {
			if e.Tenant != "" && !seeded[e.Tenant] && e.Seq <= target {
				seeded[e.Tenant] = true
				unseeded = append(unseeded, e.Tenant)
			}
		}
		snaps, err := k.store.Snapshots(ctx, unseeded, last.Seq)
		if err != nil {
			return false, err
		}
		for _, s := range snaps {
			replay.Seed(s)
		}
		for _, e := range es {
			if e.Seq > target {
				break
			}
			if err := replay.Apply(e); err != nil {
				return false, err
			}
			after, at = e.Seq, quota.Checkpoint{Seq: e.Seq, Time: e.Time}
			// A busy tenant gets snapshots between checkpoints too, so
			// that no moment is more than tenantEvery of its events from
			// one.
			if count[e.Tenant]++; count[e.Tenant] == tenantEvery {
				count[e.Tenant] = 0
				if s := replay.SnapshotOf(e.Tenant, e.Seq, e.Time); s != nil {
					batch = append(batch, s)
				}
				if err := put(false); err != nil {
					return false, err
				}
			}
		}
		if len(es) < 1000 {
			break
		}
	}
	if at.Seq == 0 {
		return false, nil
	}
	for tenant := range seeded {
		if s := replay.SnapshotOf(tenant, at.Seq, at.Time); s != nil {
			batch = append(batch, s)
		}
		if err := put(false); err != nil {
			return false, err
		}
	}
	if err := put(true); err != nil {
		return false, err
	}
	if err := k.store.Checkpoint(ctx, at.Seq, at.Time); err != nil {
		return false, err
	}
	k.lastCheckpointNano.Store(at.Time.UnixNano())
	return true, nil
}

// Horizon is where the retention puts the prune point now: the newest
// checkpoint at least Retention old and, with an archive, archived (zero:
// none, nothing to prune). The prune point is always a checkpoint, so
// every time after it can still be answered.
func (k *Keeper) Horizon(ctx context.Context) (quota.Checkpoint, error) {
	if k.cfg.Retention == 0 {
		return quota.Checkpoint{}, nil
	}
	cps, err := k.store.Checkpoints(ctx)
	if err != nil {
		return quota.Checkpoint{}, err
	}
	cutoff := k.cfg.Now().Add(-k.cfg.Retention)
	archived := int64(-1)
	if k.archive != nil {
		archived = k.archive.ArchivedTo()
	}
	var h quota.Checkpoint
	for _, c := range cps {
		if c.Time.After(cutoff) || archived >= 0 && c.Seq > archived {
			break
		}
		h = c
	}
	return h, nil
}

// archiveDue archives, if there is an archive, a step of the events up to
// the newest checkpoint the retention lets go (ten chunks: an archive step
// costs its file's sync, not the writer); it reports whether it wrote any.
func (k *Keeper) archiveDue(ctx context.Context) (bool, error) {
	if k.archive == nil || k.cfg.Retention == 0 {
		return false, nil
	}
	cps, err := k.store.Checkpoints(ctx)
	if err != nil {
		return false, err
	}
	cutoff := k.cfg.Now().Add(-k.cfg.Retention)
	var due int64
	for _, c := range cps {
		if c.Time.After(cutoff) {
			break
		}
		due = c.Seq
	}
	if due <= k.archive.ArchivedTo() {
		return false, nil
	}
	n, err := k.archive.Append(ctx, k.store, due, 10*k.cfg.Chunk)
	k.archived.Add(int64(n))
	return n > 0, err
}

// prune removes one chunk; done says there is nothing left.
func (k *Keeper) prune(ctx context.Context) (bool, error) {
	h, err := k.Horizon(ctx)
	if err != nil || h.Seq == 0 {
		return true, err
	}
	p := quota.Prune{Horizon: h, Limit: k.cfg.Chunk}
	if k.cfg.AuditRetention > 0 {
		p.AuditBefore = k.cfg.Now().Add(-k.cfg.AuditRetention)
	}
	res, err := k.store.Prune(ctx, p)
	k.pruned.Add(int64(res.Events))
	return res.Done, err
}

// Stats are the keeper's figures, for metrics.
type Stats struct {
	Pruned, Archived int64     // events, since this process started
	LastCheckpoint   time.Time // zero: none yet
	Rows, Bytes      int64     // the ledger's size, as last measured
	Horizon          quota.Horizon
}

// measure records the horizon for Stats, and now and then the ledger's
// size.
func (k *Keeper) measure(ctx context.Context) error {
	m := Stats{}
	if last := k.size.Load(); last != nil {
		m = *last
	}
	if time.Since(k.sizedAt) >= sizeEvery {
		rows, bytes, err := k.store.LedgerSize(ctx)
		if err != nil {
			return err
		}
		m.Rows, m.Bytes, k.sizedAt = rows, bytes, time.Now()
	}
	h, err := k.store.Horizon(ctx)
	if err != nil {
		return err
	}
	m.Horizon = h
	k.size.Store(&m)
	return nil
}

// Stats returns the keeper's figures.
func (k *Keeper) Stats() Stats {
	var s Stats
	if m := k.size.Load(); m != nil {
		s = *m
	}
	s.Pruned, s.Archived = k.pruned.Load(), k.archived.Load()
	if n := k.lastCheckpointNano.Load(); n > 0 {
		s.LastCheckpoint = time.Unix(0, n)
	}
	return s
}

// Policy is the keeper's configuration, for `serve --check` and logs.
func (k *Keeper) Policy() Config { return k.cfg }
