package auth

import (
	"sync"
	"time"
)

// Limiter counts failed authentications per key (a source address, a token
// name) in fixed windows, and blocks a key that failed too often until its
// window ends. Memory is bounded: windows that ended are swept, and the
// table holds at most maxLimiterEntries keys; a new key past that evicts a
// random one, since keys come from requests and anyone can make more.
type Limiter struct {
	max        int
	window     time.Duration
	now        func() time.Time
	maxEntries int

	mu    sync.Mutex
	count map[string]*window
	swept time.Time
}

type window struct {
	failures int
	ends     time.Time
}

// maxLimiterEntries bounds a Limiter's table (about 100 bytes an entry).
const maxLimiterEntries = 10_000

// NewLimiter allows max failures per key within each window; max <= 0
// disables it.
func NewLimiter(max int, per time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{max: max, window: per, now: now, maxEntries: maxLimiterEntries, count: map[string]*window{}}
}

// Blocked reports whether key is blocked, and until when.
func (l *Limiter) Blocked(key string) (bool, time.Time) {
	if l == nil || l.max <= 0 {
		return false, time.Time{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.count[key]
	if w == nil || !l.now().Before(w.ends) {
		return false, time.Time{}
	}
	return w.failures >= l.max, w.ends
}

// Failed records a failed authentication of key.
func (l *Limiter) Failed(key string) {
	if l == nil || l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) > l.window {
		for k, w := range l.count {
			if !now.Before(w.ends) {
				delete(l.count, k)
			}
		}
		l.swept = now
	}
	w := l.count[key]
	if w == nil || !now.Before(w.ends) {
		if w == nil && len(l.count) >= l.maxEntries {
			for victim := range l.count { // map order is random enough
				delete(l.count, victim)
				break
			}
		}
		w = &window{ends: now.Add(l.window)}
		l.count[key] = w
	}
	w.failures++
}

// size is how many keys the table holds.
func (l *Limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.count)
}
