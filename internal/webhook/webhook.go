// Package webhook delivers the ledger's events to subscribers. Deliveries
// come from the store's outbox, written in the transaction of each event,
// so none is lost to a crash; they are leased, so several allot processes
// never send the same one at once; and only the first undelivered event of
// each webhook and tenant is ever in flight, so each tenant's events arrive
// in order. Delivery is at least once: receivers deduplicate by the
// X-Allot-Delivery header. Targets are held to a Policy, at subscription
// and again at every dial, and redirects are never followed.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/version"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// under the subscription's secret.
const SignatureHeader = "X-Allot-Signature"

// SecretContext binds sealed webhook secrets to their use.
const SecretContext = "webhook-secret"

// Sign returns the signature header's value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Payload is the body of every delivery.
type Payload struct {
	Webhook string       `json:"webhook"`
	Event   *quota.Event `json:"event"`
}

// Deliverer sends due deliveries until its context ends. Each
// subscription is served on its own: a slow or hanging receiver holds up
// only its own deliveries, never another subscription's.
type Deliverer struct {
	Store  quota.Store
	Sealer *auth.Sealer
	// Policy says which targets may be dialled; nil: public addresses only.
	Policy *Policy
	// Timeout bounds one attempt, from dialling to reading the answer;
	// default 10s.
	Timeout time.Duration
	// MaxInFlight caps the attempts in flight at once, in total (default
	// 64); MaxPerWebhook caps them per subscription (default 8).
	MaxInFlight, MaxPerWebhook int
	Log                        *slog.Logger     // default: discard
	Now                        func() time.Time // default: time.Now
	// Poll is how often to look for due deliveries (new events, other
	// processes' retries); the deliverer also wakes when a retry it
	// scheduled falls due. Default 500ms.
	Poll time.Duration
	// GiveUpAfter is how long a delivery is retried before it is dropped
	// (and logged); default 72h.
	GiveUpAfter time.Duration
	// Backoff is the wait after n failed attempts, counted from the end of
	// the failed attempt; default the package's Backoff.
	Backoff func(n int) time.Duration
	// Observer, if set, is told the result of every attempt.
	Observer Observer

	setup  sync.Once
	client *http.Client
	health health
}

const (
	// leaseBatch is the most deliveries leased in one query.
	leaseBatch = 64
	// leaseSlack is the part of a lease beyond one attempt's timeout,
	// left for recording the outcome.
	leaseSlack = 5 * time.Second
	// maxWakes caps the retry times remembered for waking; later ones are
	// found by polling.
	maxWakes = 4096
)

func (d *Deliverer) defaults() {
	d.setup.Do(func() {
		if d.Timeout <= 0 {
			d.Timeout = 10 * time.Second
		}
		if d.MaxInFlight <= 0 {
			d.MaxInFlight = 64
		}
		if d.MaxPerWebhook <= 0 {
			d.MaxPerWebhook = 8
		}
		if d.Log == nil {
			d.Log = slog.New(slog.DiscardHandler)
		}
		if d.Now == nil {
			d.Now = time.Now
		}
		if d.Poll <= 0 {
			d.Poll = 500 * time.Millisecond
		}
		if d.GiveUpAfter <= 0 {
			d.GiveUpAfter = 72 * time.Hour
		}
		if d.Backoff == nil {
			d.Backoff = Backoff
		}
		d.client = d.newClient()
	})
}

// newClient dials through the policy, never through a proxy (it would
// dial for us, past the policy), and never follows redirects: a redirect
// would carry the signed delivery to a target nobody subscribed.
func (d *Deliverer) newClient() *http.Client {
	dialer := &net.Dialer{Timeout: d.Timeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: d.Timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           d.Policy.DialContext(dialer),
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   d.MaxPerWebhook,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   d.Timeout,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// lease is how long a leased delivery is hidden from every other caller:
// long enough to wait up to one timeout for its turn, make its attempt
// and record the outcome.
func (d *Deliverer) lease() time.Duration { return 2*d.Timeout + leaseSlack }

// Backoff is the wait before attempt n+1 after n failed attempts: 1s,
// doubling, at most an hour.
func Backoff(n int) time.Duration {
	if n >= 12 {
		return time.Hour
	}
	return min(time.Second<<n, time.Hour)
}

// Run delivers until ctx ends, then waits for the attempts in flight.
func (d *Deliverer) Run(ctx context.Context) {
	d.defaults()
	s := d.newScheduler()
	var wg sync.WaitGroup
	defer wg.Wait()
	poll := time.NewTicker(d.Poll)
	defer poll.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	look := true
	for {
		if look {
			got, room, err := s.lease(ctx)
			if err != nil && ctx.Err() == nil {
				d.Log.Warn("webhook deliveries failed to load", "err", err)
			}
			// A full batch: more may be due.
			look = err == nil && room > 0 && got == room
		}
		s.start(ctx, &wg)
		if look {
			continue
		}
		if at, ok := s.nextWake(); ok {
			wake.Reset(max(at.Sub(d.Now()), 0))
		} else {
			wake.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case o := <-s.done:
			s.finish(o)
			for more := true; more; {
				select {
				case o := <-s.done:
					s.finish(o)
				default:
					more = false
				}
			}
			// A delivered one's successor is due now, and a slot is free.
			look = true
		case <-poll.C:
			look = true
		case <-wake.C:
			s.woken(d.Now())
			look = true
		}
	}
}

// Once leases the deliveries due now, sends them within the same caps as
// Run, waits for them, and returns how many it attempted. For tests and
// tools; Run never waits for a slow receiver.
func (d *Deliverer) Once(ctx context.Context) (int, error) {
	d.defaults()
	s := d.newScheduler()
	_, _, err := s.lease(ctx)
	var wg sync.WaitGroup
	n := 0
	for {
		n += s.start(ctx, &wg)
		if s.running == 0 {
			break
		}
		s.finish(<-s.done)
	}
	wg.Wait()
	return n, err
}

// scheduler keeps the leased deliveries of one Run (or Once) and decides
// which to send next. Only the goroutine of Run touches it; attempts
// report back on done. Ordering needs nothing here: the store leases only
// the first undelivered event of each webhook and tenant, so two attempts
// in flight are always for different lines.
type scheduler struct {
	d       *Deliverer
	waiting map[string][]leased // by webhook, oldest first; a key for each of turns
	turns   []string            // webhooks with waiting deliveries, round robin
	busy    map[string]int      // attempts in flight by webhook
	running int                 // attempts in flight
	holding int                 // deliveries waiting or in flight
	done    chan outcome
	wakes   []time.Time // next attempts of our own retries, sorted
}

type leased struct {
	dl    *quota.Delivery
	until time.Time // when the lease runs out
}

type outcome struct {
	webhook string
	retry   time.Time // when it is due again; zero if it is not
}

func (d *Deliverer) newScheduler() *scheduler {
	return &scheduler{d: d, waiting: map[string][]leased{}, busy: map[string]int{}, done: make(chan outcome, d.MaxInFlight)}
}

// lease takes due deliveries, up to room, and returns how many the store
// answered. A subscription holds at most 8*MaxPerWebhook leased
// deliveries (and all of them 8*MaxInFlight); those beyond are let go:
// their lease runs out and they are leased again, by this process or
// another, so one busy receiver cannot fill the queue.
func (s *scheduler) lease(ctx context.Context) (got, room int, err error) {
	now := s.d.Now()
	s.expire(now)
	room = min(leaseBatch, 8*s.d.MaxInFlight-s.holding)
	if room <= 0 {
		return 0, room, nil
	}
	due, err := s.d.Store.LeaseDeliveries(ctx, now, s.d.lease(), room)
	if err != nil {
		return 0, room, err
	}
	until := now.Add(s.d.lease())
	for _, dl := range due {
		id := dl.Webhook.ID
		if i := slices.IndexFunc(s.waiting[id], func(l leased) bool { return l.dl.ID == dl.ID }); i >= 0 {
			// Its lease ran out while it waited, and we took it again.
			s.waiting[id][i].until = until
			continue
		}
		// One we think in flight may come back too: its attempt was
		// recorded, and it is due again, before its outcome reached us.
		if s.busy[id]+len(s.waiting[id]) >= 8*s.d.MaxPerWebhook {
			continue
		}
		if _, ok := s.waiting[id]; !ok {
			s.turns = append(s.turns, id)
		}
		s.waiting[id] = append(s.waiting[id], leased{dl, until})
		s.holding++
	}
	return len(due), room, nil
}

// expire lets go of waiting deliveries whose lease would run out during
// their attempt: sending them could overlap another process's attempt.
func (s *scheduler) expire(now time.Time) {
	latest := now.Add(s.d.Timeout + leaseSlack)
	for id, q := range s.waiting {
		kept := q[:0]
		for _, l := range q {
			if latest.After(l.until) {
				s.holding--
				continue
			}
			kept = append(kept, l)
		}
		s.waiting[id] = kept
	}
}

// start begins attempts, taking turns between webhooks, while the caps
// allow, and returns how many it began.
func (s *scheduler) start(ctx context.Context, wg *sync.WaitGroup) int {
	s.expire(s.d.Now())
	began := 0
	for idle := len(s.turns); idle > 0 && len(s.turns) > 0 && s.running < s.d.MaxInFlight; idle-- {
		id := s.turns[0]
		s.turns = s.turns[1:]
		q := s.waiting[id]
		if len(q) == 0 {
			delete(s.waiting, id)
			continue
		}
		if s.busy[id] < s.d.MaxPerWebhook {
			dl := q[0].dl
			s.waiting[id] = q[1:]
			s.busy[id]++
			s.running++
			began++
			wg.Go(func() { s.done <- s.d.attempt(ctx, dl) })
			idle = len(s.turns) + 2 // progress: every webhook gets another look
		}
		if len(s.waiting[id]) > 0 {
			s.turns = append(s.turns, id)
		} else {
			delete(s.waiting, id)
		}
	}
	return began
}

// finish records the end of an attempt.
func (s *scheduler) finish(o outcome) {
	s.running--
	if s.busy[o.webhook]--; s.busy[o.webhook] <= 0 {
		delete(s.busy, o.webhook)
	}
	s.holding--
	if o.retry.IsZero() {
		return
	}
	i, _ := slices.BinarySearchFunc(s.wakes, o.retry, time.Time.Compare)
	if i < maxWakes {
		s.wakes = slices.Insert(s.wakes, i, o.retry)
		s.wakes = s.wakes[:min(len(s.wakes), maxWakes)]
	}
}

// nextWake is when the earliest retry we scheduled falls due.
func (s *scheduler) nextWake() (time.Time, bool) {
	if len(s.wakes) == 0 {
		return time.Time{}, false
	}
	return s.wakes[0], true
}

// woken forgets the retries due by now: the lease that follows finds them.
func (s *scheduler) woken(now time.Time) {
	i := 0
	for i < len(s.wakes) && !s.wakes[i].After(now) {
		i++
	}
	s.wakes = s.wakes[i:]
}

// attempt sends one delivery and records the outcome. A failure is
// retried Backoff(attempts) after the moment it failed.
func (d *Deliverer) attempt(ctx context.Context, dl *quota.Delivery) outcome {
	status, err := d.send(ctx, dl)
	failed := d.Now()
	o := outcome{webhook: dl.Webhook.ID}
	a := quota.Attempt{Delivery: dl.ID, Webhook: dl.Webhook.ID, At: failed, Delivered: err == nil, Status: status}
	result := ResultDelivered
	if err != nil {
		a.Error = err.Error()
		result = ResultFailed
		if failed.Sub(dl.CreatedAt) < d.GiveUpAfter {
			o.retry = failed.Add(d.Backoff(dl.Attempts))
			a.Next = o.retry
		} else {
			result = ResultDropped
			d.Log.Error("webhook delivery dropped after retrying", "webhook", dl.Webhook.ID, "seq", dl.Event.Seq, "attempts", dl.Attempts+1, "err", err)
		}
		d.Log.Debug("webhook delivery failed", "webhook", dl.Webhook.ID, "seq", dl.Event.Seq, "err", err)
	}
	d.health.note(d.Log, dl, a)
	if d.Observer != nil {
		d.Observer.Attempted(result)
	}
	if ferr := d.Store.FinishDelivery(context.WithoutCancel(ctx), a); ferr != nil {
		// The lease runs out and the delivery is sent again: at least once.
		d.Log.Warn("recording a webhook delivery failed", "err", ferr)
		o.retry = time.Time{}
	}
	return o
}

// The results an Observer is told of.
const (
	ResultDelivered = "delivered" // the receiver answered 2xx
	ResultFailed    = "failed"    // it did not; the delivery is tried again
	ResultDropped   = "dropped"   // it did not, for the last time: given up
)

// Observer is told the result of every attempt, for metrics.
type Observer interface {
	Attempted(result string)
}

// health remembers which subscriptions are failing, so that a warning is
// logged when one starts failing and again when it recovers, not at every
// attempt. It knows only this process's attempts: after a restart, the
// first failure of a subscription that was failing warns again.
type health struct {
	mu      sync.Mutex
	failing map[string]bool
}

func (h *health) note(log *slog.Logger, dl *quota.Delivery, a quota.Attempt) {
	h.mu.Lock()
	was := h.failing[a.Webhook]
	if a.Delivered {
		delete(h.failing, a.Webhook)
	} else {
		if h.failing == nil {
			h.failing = map[string]bool{}
		}
		h.failing[a.Webhook] = true
	}
	h.mu.Unlock()
	// The host only: a URL's path or query may carry a receiver's key.
	host := ""
	if u, err := url.Parse(dl.Webhook.URL); err == nil {
		host = u.Host
	}
	switch {
	case !was && !a.Delivered:
		args := []any{"webhook", a.Webhook, "host", host, "err", a.Error}
		if a.Status != 0 {
			args = append(args, "status", a.Status)
		}
		if !a.Next.IsZero() {
			args = append(args, "next_attempt", a.Next.UTC().Format(time.RFC3339))
		}
		log.Warn("webhook failing: deliveries are held back and retried until it answers 2xx", args...)
	case was && a.Delivered:
		log.Warn("webhook recovered: deliveries go through again", "webhook", a.Webhook, "host", host, "status", a.Status)
	}
}

// send makes one attempt and returns the receiver's status (0 if none
// answered) and, unless it answered 2xx, why it failed.
func (d *Deliverer) send(ctx context.Context, dl *quota.Delivery) (int, error) {
	secret, err := d.Sealer.Open(dl.Webhook.Sealed, SecretContext)
	if err != nil {
		return 0, fmt.Errorf("opening the secret: %w", err)
	}
	body, err := json.Marshal(Payload{Webhook: dl.Webhook.ID, Event: dl.Event})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "allot-webhook/"+version.Get().Version)
	req.Header.Set("X-Allot-Event", string(dl.Event.Type))
	req.Header.Set("X-Allot-Delivery", fmt.Sprintf("%s-%d", dl.Webhook.ID, dl.Event.Seq))
	req.Header.Set(SignatureHeader, Sign(secret, body))
	resp, err := d.client.Do(req)
	if err != nil {
		// Without the request's URL, which the error repeats: it is the
		// subscription's own, and its query may carry the receiver's key.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %s; redirects are not followed: subscribe the final URL", resp.Status)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}
