package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// certificates serves the key pair in two files, and loads it again on
// request (SIGHUP) and when either file changes, so a renewed certificate
// is served without a restart. Only new handshakes see the new pair:
// connections already open keep theirs, nothing is dropped. A pair that
// does not load (a half-written file, a key that does not match) is
// logged and the previous pair stays in use.
type certificates struct {
	certFile, keyFile string
	log               *slog.Logger
	current           atomic.Pointer[tls.Certificate]

	mu   sync.Mutex // one reload at a time
	seen [2]stamp   // the files as they were at the last attempt
}

// stamp is what tells that a file changed. os.Stat follows symbolic
// links, so a pair swapped in by a symlink (as Kubernetes mounts secrets)
// counts as a change too.
type stamp struct {
	mod  time.Time
	size int64
}

func stat(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{fi.ModTime(), fi.Size()}
}

// loadCertificates loads the pair, or fails: a server is never started
// without one.
func loadCertificates(certFile, keyFile string, log *slog.Logger) (*certificates, error) {
	c := &certificates{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certificates) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// reload loads the pair again; on failure the previous pair stays.
func (c *certificates) reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = [2]stamp{stat(c.certFile), stat(c.keyFile)}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("loading the TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	c.current.Store(&pair)
	if pair.Leaf != nil {
		c.log.Info("TLS certificate loaded", "cert", c.certFile, "subject", pair.Leaf.Subject.String(),
			"not_after", pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// changed says whether either file differs from the last attempt.
func (c *certificates) changed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen != [2]stamp{stat(c.certFile), stat(c.keyFile)}
}

// watch reloads the pair whenever the files change, until ctx ends. A
// failed reload is retried at the next change, so a certificate written
// before its key is picked up once the key is.
func (c *certificates) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !c.changed() {
				continue
			}
			if err := c.reload(); err != nil {
				c.log.Error("TLS certificate not reloaded; still serving the previous one", "err", err)
			}
		}
	}
}
