// Package server composes allot's HTTP surface: the native API, the
// dialects, health and metrics, behind common middleware.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	// Registers on http.DefaultServeMux as well, which allot never serves.
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/allot-dev/allot/internal/api"
	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/dcs"
	"github.com/allot-dev/allot/internal/kraftcloud"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/route"
	"github.com/allot-dev/allot/internal/webhook"
)

// deps is what the handler is made of; Start assembles it.
type deps struct {
	Engine *quota.Engine
	Store  quota.Store
	Region string
	Logger *slog.Logger
	Sealer *auth.Sealer     // encrypts AK/SK secret keys
	Now    func() time.Time // the clock AK/SK signatures are checked against; nil: time.Now
	// Metrics should be the engine's Observer too; nil gets fresh metrics
	// that see HTTP traffic only.
	Metrics *Metrics
	// Dashboard, if set, serves /ui/ given the native API's handler (see
	// internal/ui; passed in so that package can test against this one).
	Dashboard func(api http.Handler) http.Handler
	// MaxBody caps request bodies below api.MaxBody; 0 for api.MaxBody.
	MaxBody int64
	// FailedAuthLimit is how many failed authentications a source address
	// may have per minute before it gets 429 until the minute is over; 0
	// turns the limit off.
	FailedAuthLimit int
	// Webhooks says which webhook targets subscriptions may name; nil:
	// public addresses only.
	Webhooks *webhook.Policy
	// MetricsElsewhere leaves /metrics off this handler: it is served on
	// a listener of its own (metricsHandler).
	MetricsElsewhere bool
	// AccessLog, if set, gets one line per request.
	AccessLog *slog.Logger
}

// newHandler returns allot's whole HTTP handler, and a function that ends
// its event streams for a graceful shutdown.
func newHandler(d deps) (http.Handler, func(), error) {
	if d.Metrics == nil {
		d.Metrics = NewMetrics()
	}
	d.Metrics.watchQueue(d.Engine)
	mux := http.NewServeMux()
	if !d.MetricsElsewhere {
		mux.Handle("GET /metrics", d.Metrics.Handler())
	}
	native, err := api.New(api.Config{Engine: d.Engine, Store: d.Store, Sealer: d.Sealer, Region: d.Region, Logger: d.Logger, Now: d.Now, Webhooks: d.Webhooks})
	if err != nil {
		return nil, nil, err
	}
	native.Routes(mux)
	if d.Dashboard != nil {
		mux.Handle("/ui/", d.Dashboard(native.Handler()))
	}
	kraft, err := kraftcloud.New(kraftcloud.Config{Store: d.Store, Tenants: d.Engine, Catalog: d.Engine.Catalog(), Logger: d.Logger})
	if err != nil {
		return nil, nil, err
	}
	mux.Handle("/v1/", kraft.Handler())
	huawei, err := dcs.New(dcs.Config{Store: d.Store, Tenants: d.Engine, Catalog: d.Engine.Catalog(), Sealer: d.Sealer, Now: d.Now, Logger: d.Logger})
	if err != nil {
		return nil, nil, err
	}
	mux.Handle("/v2/", huawei.Handler())
	mux.Handle("/v1.0/", huawei.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := d.Store.Ping(ctx); err != nil {
			d.Logger.Warn("not ready", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("store unavailable\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	limiter := auth.NewLimiter(d.FailedAuthLimit, time.Minute, d.Now)
	// A path that does not name exactly one resource is refused before
	// any mux could clean or redirect it, in the shape of its dialect.
	handler := route.Strict(route.Fallback(mux, native.Render),
		map[string]route.Render{"/v1/": kraftcloud.Render, "/v2/": dcs.Render, "/v1.0/": dcs.Render}, native.Render)
	handler = recoverer(d.Logger, handler)
	if d.MaxBody > 0 && d.MaxBody < api.MaxBody {
		handler = limitBody(d.MaxBody, handler)
	}
	handler = d.Metrics.instrument(limitFailures(limiter, d.Logger, handler))
	if d.AccessLog != nil {
		handler = accessLog(d.AccessLog, handler)
	}
	return requestID(handler), native.Shutdown, nil
}

// metricsHandler serves /metrics on a listener of its own, and, with
// pprof, Go's profiles under /debug/pprof/: never on the API's listener,
// whose clients are not the operator.
func metricsHandler(m *Metrics, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	if withPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// limitBody caps request bodies.
func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

// limitFailures answers 429 to a source address, or a token, that failed
// to authenticate too often, so credentials cannot be guessed at speed.
func limitFailures(l *auth.Limiter, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys := failureKeys(r)
		for _, k := range keys {
			if blocked, until := l.Blocked(k); blocked {
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(time.Until(until).Seconds()+0.999))))
				api.Fail(w, r, log, quota.Errorf(quota.CodeTooMany, "too many failed authentications; retry later"))
				return
			}
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.status == http.StatusUnauthorized {
			for _, k := range keys {
				l.Failed(k)
			}
		}
	})
}

// failureKeys are what failed authentications are counted against: the
// source address. Bearer tokens are not counted per token: their 256-bit
// secrets cannot be guessed, and blocking a token after failures others
// caused would let anyone who knows a token's name lock its holder out.
// (Access keys, whose secrets are shorter, lock out in the DCS dialect.)
func failureKeys(r *http.Request) []string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return []string{"addr " + host}
}

// requestID gives every answer an X-Request-Id, the caller's if it sent a
// sane one, so a request can be followed through logs.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if len(id) == 0 || len(id) > 64 || !quota.ValidID(id) {
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500, so one bad request cannot take
// the process down.
func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
				api.Fail(w, r, log, quota.Errorf(quota.CodeInternal, "an internal error occurred; it has been logged"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
