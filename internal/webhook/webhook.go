// Package webhook delivers the ledger's events to subscribers. Deliveries
// come from the store's outbox, written in the transaction of each event,
// so none is lost to a crash; they are leased, so several allot processes
// never send the same one at once; and only the first undelivered event of
// each webhook and tenant is ever in flight, so each tenant's events arrive
// in order. Delivery is at least once: receivers deduplicate by the
// X-Allot-Delivery header.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/quota"
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

// Deliverer sends due deliveries until its context ends.
type Deliverer struct {
	Store  quota.Store
	Sealer *auth.Sealer
	Client *http.Client     // default: 10s timeout
	Log    *slog.Logger     // default: discard
	Now    func() time.Time // default: time.Now
	Poll   time.Duration    // how often to look for due deliveries; default 500ms
	// GiveUpAfter is how long a delivery is retried before it is dropped
	// (and logged); default 72h.
	GiveUpAfter time.Duration
	// Backoff is the wait after n failed attempts; default the package's
	// Backoff.
	Backoff func(n int) time.Duration
}

func (d *Deliverer) defaults() {
	if d.Client == nil {
		d.Client = &http.Client{Timeout: 10 * time.Second}
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
}

// Backoff is the wait before attempt n+1 after n failed attempts: 1s,
// doubling, at most an hour.
func Backoff(n int) time.Duration {
	if n >= 12 {
		return time.Hour
	}
	return min(time.Second<<n, time.Hour)
}

// Run delivers until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	d.defaults()
	t := time.NewTicker(d.Poll)
	defer t.Stop()
	for {
		for {
			n, err := d.Once(ctx)
			if err != nil && ctx.Err() == nil {
				d.Log.Warn("webhook deliveries failed to load", "err", err)
			}
			if n == 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once sends the deliveries due now, concurrently (each is the head of its
// own line), and returns how many it attempted.
func (d *Deliverer) Once(ctx context.Context) (int, error) {
	d.defaults()
	due, err := d.Store.LeaseDeliveries(ctx, d.Now(), 2*d.Client.Timeout+5*time.Second, 64)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, dl := range due {
		wg.Go(func() { d.deliver(ctx, dl) })
	}
	wg.Wait()
	return len(due), nil
}

func (d *Deliverer) deliver(ctx context.Context, dl *quota.Delivery) {
	err := d.send(ctx, dl)
	now := d.Now()
	var next time.Time
	if err != nil {
		if now.Sub(dl.CreatedAt) < d.GiveUpAfter {
			next = now.Add(d.Backoff(dl.Attempts))
		} else {
			d.Log.Error("webhook delivery dropped after retrying", "webhook", dl.Webhook.ID, "seq", dl.Event.Seq, "attempts", dl.Attempts+1, "err", err)
		}
		d.Log.Debug("webhook delivery failed", "webhook", dl.Webhook.ID, "seq", dl.Event.Seq, "err", err)
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if ferr := d.Store.FinishDelivery(context.WithoutCancel(ctx), dl.ID, err == nil, next, msg); ferr != nil {
		// The lease runs out and the delivery is sent again: at least once.
		d.Log.Warn("recording a webhook delivery failed", "err", ferr)
	}
}

func (d *Deliverer) send(ctx context.Context, dl *quota.Delivery) error {
	secret, err := d.Sealer.Open(dl.Webhook.Sealed, SecretContext)
	if err != nil {
		return fmt.Errorf("opening the secret: %w", err)
	}
	body, err := json.Marshal(Payload{Webhook: dl.Webhook.ID, Event: dl.Event})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "allot-webhook/1")
	req.Header.Set("X-Allot-Event", string(dl.Event.Type))
	req.Header.Set("X-Allot-Delivery", fmt.Sprintf("%s-%d", dl.Webhook.ID, dl.Event.Seq))
	req.Header.Set(SignatureHeader, Sign(secret, body))
	resp, err := d.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}
