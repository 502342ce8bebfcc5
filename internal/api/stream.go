package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// The ledger as Server-Sent Events. However many streams are open, one
// follower per process reads the ledger: it wakes on this process's
// commits, and once a second for the commits of other processes, reads
// what is new once, and keeps the newest events in memory, each encoded
// once. An idle stream costs a parked goroutine and nothing else. A stream
// that starts behind, or falls behind the follower's memory, reads the
// store itself, a page at a time, until it catches up.

const (
	defaultMaxStreams         = 1000
	defaultMaxStreamsPerToken = 10
	// recentEvents is how many of the newest events the follower keeps.
	recentEvents = 4096
	streamPage   = 500
	keepalive    = 15 * time.Second
	// writeTimeout bounds each write to a stream, so a client that stops
	// reading frees its slot instead of holding it for ever.
	writeTimeout = 10 * time.Second
)

type hub struct {
	store              quota.Store
	engine             *quota.Engine
	log                *slog.Logger
	maxStreams         int
	maxStreamsPerToken int

	mu       sync.Mutex
	streams  int
	byToken  map[string]int
	follower chan struct{} // closed to stop the follower; nil when none runs
	closed   chan struct{} // closed when the server shuts down
	recent   []sseEvent    // ascending; every event after base up to last
	base     int64         // recent holds every event with base < seq <= last
	last     int64
	grew     chan struct{} // closed and replaced when recent grows
	ready    bool          // base and last are known
}

type sseEvent struct {
	seq    int64
	tenant string
	frame  []byte // "id: …\nevent: …\ndata: …\n\n"
}

func newHub(store quota.Store, engine *quota.Engine, log *slog.Logger, maxStreams, perToken int) *hub {
	if maxStreams <= 0 {
		maxStreams = defaultMaxStreams
	}
	if perToken <= 0 {
		perToken = defaultMaxStreamsPerToken
	}
	return &hub{store: store, engine: engine, log: log, maxStreams: maxStreams, maxStreamsPerToken: perToken,
		byToken: map[string]int{}, grew: make(chan struct{}), closed: make(chan struct{})}
}

// join admits a stream of token, or refuses it when the caps are reached.
func (h *hub) join(token string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.streams >= h.maxStreams:
		return quota.Errorf(quota.CodeTooMany, "%d event streams are open, the most this server keeps; retry later", h.streams)
	case h.byToken[token] >= h.maxStreamsPerToken:
		return quota.Errorf(quota.CodeTooMany, "this token has %d event streams open, the most one token may", h.byToken[token])
	}
	h.streams++
	h.byToken[token]++
	if h.follower == nil {
		h.follower = make(chan struct{})
		h.ready = false
		go h.follow(h.follower)
	}
	return nil
}

func (h *hub) leave(token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams--
	if h.byToken[token]--; h.byToken[token] == 0 {
		delete(h.byToken, token)
	}
	if h.streams == 0 && h.follower != nil {
		close(h.follower)
		h.follower, h.recent, h.ready = nil, nil, false
	}
}

// shutdown ends every stream, so a server's graceful shutdown does not
// wait for clients that never hang up.
func (h *hub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.closed:
	default:
		close(h.closed)
	}
}

// follow reads new events until stop is closed.
func (h *hub) follow(stop chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	tick := time.NewTicker(time.Second) // other processes' commits
	defer tick.Stop()
	for {
		committed := h.engine.Committed()
		if err := h.readNew(ctx, stop); err != nil && ctx.Err() == nil {
			h.log.Warn("event streams: reading the ledger failed", "err", err)
		}
		select {
		case <-stop:
			return
		case <-committed:
		case <-tick.C:
		}
	}
}

// readNew appends what the ledger holds after last.
func (h *hub) readNew(ctx context.Context, stop chan struct{}) error {
	h.mu.Lock()
	ready, last := h.ready, h.last
	h.mu.Unlock()
	if !ready {
		head, err := h.store.LastSeq(ctx)
		if err != nil {
			return err
		}
		h.mu.Lock()
		if h.follower == stop {
			h.base, h.last, h.ready = head, head, true
			close(h.grew)
			h.grew = make(chan struct{})
		}
		h.mu.Unlock()
		return nil
	}
	for range 20 { // at most 10,000 events a wake; the rest at the next
		es, err := h.store.Events(ctx, quota.EventFilter{After: last, Limit: streamPage})
		if err != nil || len(es) == 0 {
			return err
		}
		add := make([]sseEvent, len(es))
		for i, e := range es {
			add[i] = sseEvent{seq: e.Seq, tenant: e.Tenant, frame: frame(e)}
		}
		last = es[len(es)-1].Seq
		h.mu.Lock()
		if h.follower != stop { // stopped meanwhile
			h.mu.Unlock()
			return nil
		}
		h.recent = append(h.recent, add...)
		if over := len(h.recent) - recentEvents; over > 0 {
			h.base = h.recent[over-1].seq
			h.recent = append([]sseEvent(nil), h.recent[over:]...)
		}
		h.last = last
		close(h.grew)
		h.grew = make(chan struct{})
		h.mu.Unlock()
		if len(es) < streamPage {
			return nil
		}
	}
	return nil
}

// since returns the frames of tenant's events after scanned ("" for
// every tenant) and the position read to, or ok false when the follower's
// memory does not reach back to scanned. wake is closed when more arrive.
func (h *hub) since(scanned int64, tenant string) (frames [][]byte, to int64, wake <-chan struct{}, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ready || scanned < h.base {
		return nil, scanned, h.grew, false
	}
	for _, e := range h.recent {
		if e.seq > scanned && (tenant == "" || e.tenant == tenant) {
			frames = append(frames, e.frame)
		}
	}
	return frames, max(scanned, h.last), h.grew, true
}

// head is where the follower's memory starts, once it is known.
func (h *hub) head() (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.base, h.ready
}

func frame(e *quota.Event) []byte {
	data, _ := json.Marshal(wireEvent(e))
	return fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data)
}

// streamEvents serves the ledger as Server-Sent Events, from after
// Last-Event-ID (or ?after=) on, without gaps or duplicates: the ledger's
// sequence is its commit order, and the stream resumes strictly after the
// last id it sent.
func (a *API) streamEvents(w http.ResponseWriter, r *http.Request, who quota.Actor) error {
	tenant, err := eventScope(r, who)
	if err != nil {
		return err
	}
	after, err := queryInt(r, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != id {
			return quota.Errorf(quota.CodeInvalid, "Last-Event-ID must be an event's sequence number")
		}
		after = n
	}
	if after, err = a.ledgerStart(r, who, tenant, after, false); err != nil {
		return err
	}
	if err := a.hub.join(who.Name); err != nil {
		w.Header().Set("Retry-After", "5")
		return err
	}
	defer a.hub.leave(who.Name)

	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !write([]byte("retry: 1000\n\n")) {
		return nil
	}
	idle := time.NewTimer(keepalive)
	defer idle.Stop()
	scanned := after
	for {
		frames, to, wake, ok := a.hub.since(scanned, tenant)
		if !ok {
			// Behind the follower's memory: a page from the store. The
			// memory's start is taken first: a read after it sees every
			// event up to there.
			base, ready := a.hub.head()
			if h, err := a.store.Horizon(r.Context()); err == nil && scanned < h.Seq {
				// Fell behind pruning: say so, and end; the client reads
				// on from the oldest position kept.
				write(fmt.Appendf(nil, "event: pruned\ndata: {\"oldest_retained\":%d}\n\n", h.Seq))
				return nil
			}
			es, err := a.store.Events(r.Context(), quota.EventFilter{Tenant: tenant, After: scanned, Limit: streamPage})
			if err != nil {
				a.log.Warn("event stream: reading the ledger failed", "err", err)
				return nil // the client reconnects with Last-Event-ID
			}
			frames = frames[:0]
			for _, e := range es {
				frames = append(frames, frame(e))
				to = e.Seq
			}
			if len(es) < streamPage && ready {
				// Caught up with the store as it was when the follower's
				// memory began: nothing of this scope lies between.
				to = max(to, base)
			}
		}
		for _, f := range frames {
			if !write(f) {
				return nil
			}
		}
		if len(frames) > 0 {
			idle.Reset(keepalive)
		}
		progressed := to > scanned
		scanned = to
		if !ok && progressed {
			continue
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-a.hub.closed:
			return nil
		case <-wake:
		case <-idle.C:
			if !write([]byte(": keepalive\n\n")) {
				return nil
			}
			idle.Reset(keepalive)
		}
	}
}

// Shutdown ends the event streams; call it when the server shuts down.
func (a *API) Shutdown() { a.hub.shutdown() }
