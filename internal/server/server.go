// Package server composes allot's HTTP surface: the native API, the
// dialects, health and metrics, behind common middleware.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/allot-dev/allot/internal/api"
	"github.com/allot-dev/allot/internal/auth"
	"github.com/allot-dev/allot/internal/dcs"
	"github.com/allot-dev/allot/internal/kraftcloud"
	"github.com/allot-dev/allot/internal/quota"
)

// Deps is what the server needs.
type Deps struct {
	Engine *quota.Engine
	Store  quota.Store
	Region string
	Logger *slog.Logger
	Sealer *auth.Sealer     // encrypts AK/SK secret keys
	Now    func() time.Time // the clock AK/SK signatures are checked against; nil: time.Now
	// Metrics should be the engine's Observer too; nil gets fresh metrics
	// that see HTTP traffic only.
	Metrics *Metrics
}

// New returns allot's whole HTTP handler.
func New(d Deps) http.Handler {
	if d.Metrics == nil {
		d.Metrics = NewMetrics()
	}
	d.Metrics.watchQueue(d.Engine)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.Metrics.Handler())
	native := api.New(d.Engine, d.Store, d.Sealer, d.Region, d.Logger)
	native.Routes(mux)
	mux.Handle("/v1/", kraftcloud.New(d.Store, d.Engine.Catalog(), d.Logger).Handler())
	now := d.Now
	if now == nil {
		now = time.Now
	}
	huawei := dcs.New(d.Store, d.Engine.Catalog(), d.Sealer, now, d.Logger).Handler()
	mux.Handle("/v2/", huawei)
	mux.Handle("/v1.0/", huawei)
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
	return requestID(d.Metrics.instrument(recoverer(d.Logger, api.Fallback(mux, d.Logger))))
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
