package postgres_test

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/pgtest"
	"github.com/allot-dev/allot/internal/postgres"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/storetest"
)

// fastOptions are the defaults' bounds scaled down, so that each fault
// test takes a few seconds.
func fastOptions() postgres.Options {
	return postgres.Options{
		LockTimeout:              200 * time.Millisecond,
		StatementTimeout:         5 * time.Second,
		IdleInTransactionTimeout: time.Second,
		ConnectTimeout:           time.Second,
		ResolveTimeout:           time.Second,
	}
}

func openWith(t testing.TB, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.OpenWithOptions(ctx, dsn, "test", slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startEngine runs an engine over st, as one allot process does.
func startEngine(t testing.TB, st quota.Store, commitTimeout time.Duration) *quota.Engine {
	t.Helper()
	e := quota.NewEngine(quota.EngineConfig{Store: st, Catalog: quota.DefaultCatalog(),
		SweepInterval: time.Hour, CommitTimeout: commitTimeout})
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background()) })
	return e
}

func do(e *quota.Engine, ops ...quota.Op) (*quota.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.Do(ctx, quota.Change{Actor: quota.Actor{Name: "test", Role: quota.RoleAdmin}, Ops: ops})
}

func mustDo(t testing.TB, e *quota.Engine, ops ...quota.Op) *quota.Result {
	t.Helper()
	res, err := do(e, ops...)
	if err != nil {
		t.Fatalf("%s: %v", ops[0].Type(), err)
	}
	return res
}

func createTenant(id string) quota.Op {
	return &quota.CreateTenant{Tenant: id}
}

func putInstance(tenant, id string, mem, ifMatch int64) quota.Op {
	return &quota.PutConsumer{Tenant: tenant, Consumer: id, IfMatch: ifMatch,
		Spec: quota.Spec{Kind: "compute.instance", State: "running", Attributes: map[string]int64{"memory_mb": mem}}}
}

func deleteConsumer(tenant, id string, ifMatch int64) quota.Op {
	return &quota.DeleteConsumer{Tenant: tenant, Consumer: id, IfMatch: ifMatch}
}

// wantConsumer fails t unless the stored consumer has gen (0: absent) and,
// if present, mem.
func wantConsumer(t *testing.T, st quota.Store, tenant, id string, gen, mem int64) {
	t.Helper()
	c, err := st.Consumer(context.Background(), tenant, id)
	if gen == 0 {
		if quota.ErrorCode(err) != quota.CodeNotFound {
			t.Errorf("consumer %s: %v, %v; want it deleted", id, c, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("consumer %s: %v", id, err)
	}
	if c.Generation != gen || c.Attributes["memory_mb"] != mem {
		t.Errorf("consumer %s: generation %d, memory_mb %d; want %d, %d", id, c.Generation, c.Attributes["memory_mb"], gen, mem)
	}
}

func wantUsage(t *testing.T, st quota.Store, tenant, resource string, want int64) {
	t.Helper()
	u, err := st.Usage(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	if u[resource] != want {
		t.Errorf("%s of %s: %d, want %d", resource, tenant, u[resource], want)
	}
}

// wantEvents fails t unless the ledger holds n events about subject: a
// change applied twice would show twice.
func wantEvents(t *testing.T, st quota.Store, tenant, subject string, n int) {
	t.Helper()
	es, err := st.Events(context.Background(), quota.EventFilter{Tenant: tenant, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, e := range es {
		if e.Subject == subject {
			got++
		}
	}
	if got != n {
		t.Errorf("%d events about %s, want %d", got, subject, n)
	}
}

// TestLostCommit breaks connections around COMMIT through a proxy and
// checks that every answer matches what was stored: a commit that was made
// is reported as made (not as the refusal a blind retry would meet), one
// that was not is run again, and one that cannot be looked up is reported
// as unknown, never as a refusal or as "nothing was stored".
func TestLostCommit(t *testing.T) {
	tests := []struct {
		name string
		// setup runs before the fault is armed.
		setup []quota.Op
		// arm arms the fault; commitTimeout is the engine's.
		arm           func(px *pgtest.Proxy) *pgtest.Fault
		commitTimeout time.Duration
		change        []quota.Op
		wantCode      quota.Code // "" for success
		wantCommits   int        // COMMITs the change sent
		check         func(t *testing.T, st quota.Store)
	}{
		{
			name:  "If-Match PUT whose reply is lost",
			setup: []quota.Op{putInstance("acme", "vm-1", 256, 0)},
			arm: func(px *pgtest.Proxy) *pgtest.Fault {
				return px.Arm(pgtest.IsCommit, pgtest.LoseReply, nil)
			},
			change:      []quota.Op{putInstance("acme", "vm-1", 512, 1)},
			wantCommits: 1,
			check: func(t *testing.T, st quota.Store) {
				wantConsumer(t, st, "acme", "vm-1", 2, 512)
				wantUsage(t, st, "acme", "compute.live_memory_mb", 512)
				wantEvents(t, st, "acme", "vm-1", 2)
			},
		},
		{
			name:  "DELETE whose reply is lost",
			setup: []quota.Op{putInstance("acme", "vm-1", 256, 0)},
			arm: func(px *pgtest.Proxy) *pgtest.Fault {
				return px.Arm(pgtest.IsCommit, pgtest.LoseReply, nil)
			},
			change:      []quota.Op{deleteConsumer("acme", "vm-1", 1)},
			wantCommits: 1,
			check: func(t *testing.T, st quota.Store) {
				wantConsumer(t, st, "acme", "vm-1", 0, 0)
				wantUsage(t, st, "acme", "compute.live_memory_mb", 0)
				wantEvents(t, st, "acme", "vm-1", 2)
			},
		},
		{
			name: "two-operation batch whose reply is lost",
			arm: func(px *pgtest.Proxy) *pgtest.Fault {
				return px.Arm(pgtest.IsCommit, pgtest.LoseReply, nil)
			},
			change:      []quota.Op{putInstance("acme", "vm-1", 256, 0), putInstance("acme", "vm-2", 256, 0)},
			wantCommits: 1,
			check: func(t *testing.T, st quota.Store) {
				wantConsumer(t, st, "acme", "vm-1", 1, 256)
				wantConsumer(t, st, "acme", "vm-2", 1, 256)
				wantUsage(t, st, "acme", "compute.instances", 2)
				wantUsage(t, st, "acme", "compute.live_memory_mb", 512)
			},
		},
		{
			// The lookup finds it aborted: nothing was stored, and the
			// answer says so.
			name:  "If-Match PUT whose COMMIT never arrives",
			setup: []quota.Op{putInstance("acme", "vm-1", 256, 0)},
			arm: func(px *pgtest.Proxy) *pgtest.Fault {
				return px.Arm(pgtest.IsCommit, pgtest.Drop, nil)
			},
			change:      []quota.Op{putInstance("acme", "vm-1", 512, 1)},
			wantCode:    quota.CodeUnavailable,
			wantCommits: 1,
			check: func(t *testing.T, st quota.Store) {
				wantConsumer(t, st, "acme", "vm-1", 1, 256)
				wantEvents(t, st, "acme", "vm-1", 1)
			},
		},
		{
			name:  "lost reply and the database out of reach",
			setup: []quota.Op{putInstance("acme", "vm-1", 256, 0)},
			arm: func(px *pgtest.Proxy) *pgtest.Fault {
				return px.Arm(pgtest.IsCommit, pgtest.LoseReply, func() { px.Refuse(true) })
			},
			change:      []quota.Op{putInstance("acme", "vm-1", 512, 1)},
			wantCode:    quota.CodeOutcomeUnknown,
			wantCommits: 1,
			check: func(t *testing.T, st quota.Store) {
				// It was applied: "nothing was stored" would have been false,
				// and a client retrying on it would have met a 412.
				wantConsumer(t, st, "acme", "vm-1", 2, 512)
			},
		},
		{
			// COMMIT reaches the server, then the network goes silent: the
			// engine's deadline ends the wait, and the lookup cannot connect.
			name:  "silent network after COMMIT",
			setup: []quota.Op{putInstance("acme", "vm-1", 256, 0)},
			arm: func(px *pgtest.Proxy) *pgtest.Fault {
				return px.Arm(pgtest.IsCommit, pgtest.Stall, nil)
			},
			commitTimeout: time.Second,
			change:        []quota.Op{putInstance("acme", "vm-1", 512, 1)},
			wantCode:      quota.CodeOutcomeUnknown,
			wantCommits:   1,
			check: func(t *testing.T, st quota.Store) {
				wantConsumer(t, st, "acme", "vm-1", 2, 512)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.Schema(t)
			px, viaProxy := pgtest.ProxyFor(t, dsn)
			st := openWith(t, viaProxy, fastOptions())
			e := startEngine(t, st, cmp.Or(tt.commitTimeout, 10*time.Second))
			mustDo(t, e, createTenant("acme"))
			for _, op := range tt.setup {
				mustDo(t, e, op)
			}
			f := tt.arm(px)
			before := px.Commits()

			start := time.Now()
			res, err := do(e, tt.change...)
			t.Logf("answered in %v: %v", time.Since(start).Round(time.Millisecond), err)
			select {
			case <-f.Struck():
			default:
				t.Fatal("the fault never struck")
			}
			if code := quota.ErrorCode(err); err != nil && code != tt.wantCode || err == nil && tt.wantCode != "" {
				t.Fatalf("answer: %v; want code %q", err, cmp.Or(tt.wantCode, "none (success)"))
			}
			if err == nil && len(res.Ops) != len(tt.change) {
				t.Fatalf("%d results for %d operations", len(res.Ops), len(tt.change))
			}
			if got := px.Commits() - before; got != tt.wantCommits {
				t.Errorf("the change sent %d COMMITs, want %d", got, tt.wantCommits)
			}

			px.Resume()
			direct := openWith(t, dsn, fastOptions())
			tt.check(t, direct)
			storetest.CheckInvariants(t, direct, "acme")
			storetest.CheckLedger(t, direct)
		})
	}
}

// TestLostCommitResults checks that after a lost reply the answer carries
// the results of the attempt that committed.
func TestLostCommitResults(t *testing.T) {
	dsn := pgtest.Schema(t)
	px, viaProxy := pgtest.ProxyFor(t, dsn)
	e := startEngine(t, openWith(t, viaProxy, fastOptions()), 10*time.Second)
	mustDo(t, e, createTenant("acme"))
	mustDo(t, e, putInstance("acme", "vm-1", 256, 0))
	px.Arm(pgtest.IsCommit, pgtest.LoseReply, nil)
	res := mustDo(t, e, putInstance("acme", "vm-1", 512, 1))
	if c := res.Ops[0].Consumer; c == nil || c.Generation != 2 || !res.Ops[0].Changed || res.Ops[0].Created {
		t.Errorf("result %+v; want the update to generation 2", res.Ops[0])
	}
	if got := res.Ops[0].Usage["compute.live_memory_mb"]; got != 512 {
		t.Errorf("usage after: %d, want 512", got)
	}
}

// TestStalledTransaction: a process that stops while it holds a tenant's
// lock (its transaction idle, as a SIGSTOPped process looks to the server)
// does not stop another process from writing that tenant; the server ends
// the stalled session, and the stalled process, once it resumes, fails to
// commit rather than committing on a lock it no longer holds.
func TestStalledTransaction(t *testing.T) {
	dsn := pgtest.Schema(t)
	a := openWith(t, dsn, fastOptions())
	b := openWith(t, dsn, fastOptions()) // another pool: another process
	eb := startEngine(t, b, 30*time.Second)
	mustDo(t, eb, createTenant("acme"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := a.Begin(ctx, []string{"acme"}) // holds acme's lock, then stalls
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = do(eb, putInstance("acme", "vm-b", 256, 0))
	waited := time.Since(start)
	t.Logf("the second process wrote after %v", waited.Round(time.Millisecond))
	if err != nil {
		t.Fatalf("the second process could not write while the first was stalled (after %v): %v", waited, err)
	}

	hard := int64(7)
	tx.Apply(&quota.Writes{Quotas: []quota.QuotaRow{
		{Tenant: "acme", Resource: "compute.volumes", QuotaOverride: quota.QuotaOverride{Hard: &hard}}}})
	if n, err := a.Commit(ctx, []quota.Tx{tx}); err == nil || n != 0 {
		t.Fatalf("the stalled process, resumed, committed (%d, %v); its session was ended and its lock lost", n, err)
	} else if quota.ErrorCode(err) == quota.CodeOutcomeUnknown {
		t.Errorf("the stalled process's failure was reported as unknown: %v", err)
	}
	tn, err := b.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if q := tn.Quotas["compute.volumes"].Hard; q != nil {
		t.Errorf("the stalled process's write was stored: %d", *q)
	}
	wantConsumer(t, b, "acme", "vm-b", 1, 256)
}

// TestSilentNetwork: the network between a process and the database goes
// silent (nothing forwarded, nothing closed) while the process holds a
// tenant's lock. Another process still writes the tenant, and the cut-off
// process fails within its own deadline rather than waiting for TCP.
func TestSilentNetwork(t *testing.T) {
	dsn := pgtest.Schema(t)
	px, viaProxy := pgtest.ProxyFor(t, dsn)
	a := openWith(t, viaProxy, fastOptions())
	b := openWith(t, dsn, fastOptions())
	eb := startEngine(t, b, 30*time.Second)
	mustDo(t, eb, createTenant("acme"))

	const deadline = 2 * time.Second // the engine's CommitTimeout, for process a
	held := make(chan struct{})
	type outcome struct {
		err  error
		took time.Duration
	}
	aDone := make(chan outcome, 1)
	go func() {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		tx, err := a.Begin(ctx, []string{"acme"})
		if err != nil {
			close(held)
			aDone <- outcome{err, time.Since(start)}
			return
		}
		px.Stall()
		close(held)
		tx.Apply(&quota.Writes{Usage: []quota.UsageRow{{Tenant: "acme", Resource: "compute.volumes", Used: 99}}})
		_, err = a.Commit(ctx, []quota.Tx{tx})
		aDone <- outcome{err, time.Since(start)}
	}()
	<-held
	start := time.Now()
	_, err := do(eb, putInstance("acme", "vm-b", 256, 0))
	t.Logf("the other process wrote after %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("the other process could not write while the first was cut off: %v", err)
	}
	select {
	case o := <-aDone:
		t.Logf("the cut-off process failed after %v: %v", o.took.Round(time.Millisecond), o.err)
		if o.err == nil {
			t.Fatal("the cut-off process reported success")
		}
		if errors.Is(o.err, quota.ErrRejected) || quota.ErrorCode(o.err) == quota.CodeOutcomeUnknown {
			t.Errorf("the cut-off process never sent COMMIT, yet: %v", o.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the cut-off process hung past its deadline")
	}
	px.Resume()
	wantUsage(t, b, "acme", "compute.volumes", 0)
	wantConsumer(t, b, "acme", "vm-b", 1, 256)
}

// TestRejectedValue: a value the database refuses fails the transaction
// with quota.ErrRejected, so the engine can tell it from a store failure.
func TestRejectedValue(t *testing.T) {
	st := openWith(t, pgtest.Schema(t), fastOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := st.Begin(ctx, []string{"acme"})
	if err != nil {
		t.Fatal(err)
	}
	tx.Apply(&quota.Writes{CreateTenants: []*quota.Tenant{{ID: "acme", Name: "nul\x00byte"}}})
	_, err = st.Commit(ctx, []quota.Tx{tx})
	if !errors.Is(err, quota.ErrRejected) {
		t.Fatalf("a NUL in a name: %v; want it to wrap quota.ErrRejected", err)
	}
	if _, err := st.Tenant(ctx, "acme"); quota.ErrorCode(err) != quota.CodeNotFound {
		t.Errorf("the refused tenant: %v; want it not stored", err)
	}
}
