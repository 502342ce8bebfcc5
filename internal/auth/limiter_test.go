package auth

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLimiterBlocksAfterMaxFailures(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	l := NewLimiter(3, time.Minute, clock.Now)
	for i := range 3 {
		if blocked, _ := l.Blocked("addr 192.0.2.1"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Failed("addr 192.0.2.1")
	}
	if blocked, until := l.Blocked("addr 192.0.2.1"); !blocked || !until.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("Blocked = %v, %v after 3 failures", blocked, until)
	}
	if blocked, _ := l.Blocked("addr 192.0.2.2"); blocked {
		t.Fatal("another address is blocked")
	}
	clock.advance(time.Minute)
	if blocked, _ := l.Blocked("addr 192.0.2.1"); blocked {
		t.Fatal("still blocked after the window")
	}
}

func TestLimiterTableIsBounded(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	l := NewLimiter(3, time.Minute, clock.Now)
	const n = 30_000
	for i := range n {
		l.Failed(fmt.Sprintf("addr 10.%d.%d.%d", i>>16, i>>8&0xff, i&0xff))
	}
	if got := l.size(); got > maxLimiterEntries {
		t.Fatalf("%d addresses left %d entries, over the cap of %d", n, got, maxLimiterEntries)
	}
	// A full table still blocks a new address that fails too often.
	for range 3 {
		l.Failed("addr 192.0.2.200")
	}
	if blocked, _ := l.Blocked("addr 192.0.2.200"); !blocked {
		t.Fatal("a full table did not block a new address")
	}
}

func TestLimiterSweepsEndedWindows(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	l := NewLimiter(3, time.Minute, clock.Now)
	for i := range 100 {
		l.Failed(fmt.Sprintf("addr 10.0.0.%d", i))
	}
	if got := l.size(); got != 100 {
		t.Fatalf("%d entries, want 100", got)
	}
	clock.advance(time.Minute + time.Second)
	l.Failed("addr 192.0.2.1")
	if got := l.size(); got != 1 {
		t.Fatalf("%d entries after their windows ended, want 1 (the newest)", got)
	}
}
