package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/allot-dev/allot/internal/auth"
)

// accessLog writes one line per request: its id, method, route pattern,
// status, duration, the bytes of the answer, the tenant and the actor.
// Nothing else of the request: not its path or query (the route pattern
// names the route), no header, no body. So no token, signature or secret
// can reach the log, whatever a client sends where.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, caller := auth.WithCaller(r.Context())
		r = r.WithContext(ctx)
		cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(cw, r)
		route := r.Pattern // set by the mux on this same request
		if route == "" {
			route = "unmatched"
		}
		// The tenant the path names, once the caller is known: an
		// anonymous request does not get to write into the log.
		actor, known := caller.Actor()
		tenant := actor.Tenant
		if t := r.PathValue("tenant"); known && t != "" {
			tenant = t
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", w.Header().Get("X-Request-Id")),
			slog.String("method", methodLabel(r.Method)),
			slog.String("route", route),
			slog.Int("status", cw.status),
			slog.Duration("duration", time.Since(start)),
			slog.Int64("bytes", cw.bytes),
			slog.String("tenant", tenant),
			slog.String("actor", actor.Name),
		)
	})
}

// countingWriter records the status and counts the bytes of the body.
type countingWriter struct {
	http.ResponseWriter
	status  int
	bytes   int64
	written bool
}

func (w *countingWriter) WriteHeader(code int) {
	if !w.written {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.written = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush for streams.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
