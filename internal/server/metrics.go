package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/allot-dev/allot/internal/ledger"
	"github.com/allot-dev/allot/internal/quota"
	"github.com/allot-dev/allot/internal/version"
	"github.com/allot-dev/allot/internal/webhook"
)

// Metrics are allot's Prometheus metrics. It implements quota.Observer for
// the engine. Every label takes its value from a fixed set, whatever a
// request says, and no metric carries a tenant label unless per-tenant
// gauges are asked for: tenants are unbounded, series must not be.
type Metrics struct {
	registry *prometheus.Registry
	routes   *routeLabels

	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	decisions     *prometheus.CounterVec
	batchSize     prometheus.Histogram
	commitLatency prometheus.Histogram
	storeErrors   *prometheus.CounterVec
	expired       prometheus.Counter
	deliveries    *prometheus.CounterVec
}

// NewMetrics registers allot's metrics, and the Go and process collectors,
// with a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		routes:   &routeLabels{seen: map[string]bool{}},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "allot_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "allot_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "allot_claims_total",
			Help: "Changes decided by the engine, by operation and result (admitted, or the refusal's code).",
		}, []string{"op", "result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "allot_commit_batch_size", Help: "Changes committed together in one transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "allot_commit_duration_seconds", Help: "Time to evaluate and durably commit one batch.",
			Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "allot_store_errors_total", Help: "Failed store operations; a failed commit acknowledges nothing.",
		}, []string{"operation"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "allot_reservations_expired_total", Help: "Reservations released because their time ran out.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "allot_webhook_deliveries_total",
			Help: "Webhook delivery attempts by this process, by result: delivered, failed (retried later) or dropped (given up).",
		}, []string{"result"}),
	}
	// Every result is exposed from the start, so a rate over it needs no
	// first failure to exist.
	for _, r := range []string{webhook.ResultDelivered, webhook.ResultFailed, webhook.ResultDropped} {
		m.deliveries.WithLabelValues(r)
	}
	m.registry.MustRegister(m.requests, m.latency, m.decisions, m.batchSize, m.commitLatency, m.storeErrors, m.expired,
		m.deliveries, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Attempted implements webhook.Observer.
func (m *Metrics) Attempted(result string) {
	switch result {
	case webhook.ResultDelivered, webhook.ResultFailed, webhook.ResultDropped:
	default:
		result = "other"
	}
	m.deliveries.WithLabelValues(result).Inc()
}

// WatchWebhooks adds allot_webhook_pending: the deliveries waiting in the
// outbox, read from the store at scrape time. Every process sharing a
// database reports the same total. A scrape while the store does not
// answer leaves the gauge out rather than failing.
func (m *Metrics) WatchWebhooks(health func(context.Context) ([]*quota.WebhookHealth, error)) {
	m.registry.MustRegister(&webhookPending{health: health,
		desc: prometheus.NewDesc("allot_webhook_pending", "Webhook deliveries waiting in the outbox, of every subscription.", nil, nil)})
}

type webhookPending struct {
	health func(context.Context) ([]*quota.WebhookHealth, error)
	desc   *prometheus.Desc
}

func (c *webhookPending) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *webhookPending) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs, err := c.health(ctx)
	if err != nil {
		return
	}
	var n int64
	for _, h := range hs {
		n += h.Pending
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}

// Batch implements quota.Observer.
func (m *Metrics) Batch(requests int, took time.Duration, err error) {
	m.batchSize.Observe(float64(requests))
	m.commitLatency.Observe(took.Seconds())
	if err != nil {
		m.storeErrors.WithLabelValues("commit").Inc()
	}
}

// Decided implements quota.Observer.
func (m *Metrics) Decided(op quota.OpType, code quota.Code) {
	m.decisions.WithLabelValues(opLabel(op), resultLabel(code)).Inc()
}

// opLabel and resultLabel keep the engine's operations and codes; anything
// else is counted as "other", so no caller of the engine can grow the sets.
func opLabel(op quota.OpType) string {
	switch op {
	case quota.OpPutConsumer, quota.OpDeleteConsumer, quota.OpExpireConsumer, quota.OpSetQuota, quota.OpSetLimit,
		quota.OpCreateTenant, quota.OpUpdateTenant, quota.OpDeleteTenant, quota.OpPutToken, quota.OpRevokeToken,
		quota.OpRequest, quota.OpDecide, quota.OpReconcile, quota.OpPutWebhook, quota.OpDeleteWebhook,
		quota.OpSetThresholds:
		return string(op)
	}
	return "other"
}

func resultLabel(code quota.Code) string {
	switch code {
	case "":
		return "admitted"
	case quota.CodeInvalid, quota.CodeNotFound, quota.CodeConflict, quota.CodeQuotaExceeded, quota.CodeLimitViolation,
		quota.CodeGenerationMismatch, quota.CodeUnauthorized, quota.CodeForbidden, quota.CodeTooLarge, quota.CodeTooMany,
		quota.CodeOverloaded, quota.CodeUnavailable, quota.CodeOutcomeUnknown, quota.CodeOutsideRange,
		quota.CodeBelowUsage, quota.CodeInternal, quota.CodeUnknownParameter, quota.CodeReplayTooLong, quota.CodeBeforeRetention, quota.CodeEventsPruned,
		quota.CodeParentNotFound, quota.CodeParentCycle, quota.CodeTreeTooDeep, quota.CodeHasChildren:
		return string(code)
	}
	return "other"
}

// methodLabel keeps the standard methods a client of allot sends; any
// other token is a valid HTTP method, and there are as many as anyone likes.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// statusLabel is a real status code, or "other".
func statusLabel(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status)
}

// routeLabels turns the pattern a request matched into its route label.
// Patterns come from the muxes' registrations, a fixed set; the cap only
// guards against a handler that one day sets a pattern from its input.
type routeLabels struct {
	mu   sync.Mutex
	seen map[string]bool
}

const maxRouteLabels = 256

func (l *routeLabels) label(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.seen[pattern] {
		if len(l.seen) >= maxRouteLabels {
			return "other"
		}
		l.seen[pattern] = true
	}
	return pattern
}

// Build exports allot_build_info, always 1, labelled with which allot
// this is, so a dashboard can tell the versions of a fleet apart.
func (m *Metrics) Build(v version.Info) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "allot_build_info", Help: "The running allot's version, commit, commit date and Go version; always 1.",
	}, []string{"version", "commit", "date", "go_version"})
	g.WithLabelValues(v.Version, v.Commit, v.Date, v.GoVersion).Set(1)
	m.registry.MustRegister(g)
}

// Expired implements quota.Observer.
func (m *Metrics) Expired(n int) { m.expired.Add(float64(n)) }

// watchQueue exposes the engine's queue depth.
func (m *Metrics) watchQueue(e *quota.Engine) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "allot_queue_depth", Help: "Changes waiting for the committer.",
	}, func() float64 { return float64(e.QueueDepth()) }))
}

// Handler serves the exposition.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// instrument counts and times every request by the route pattern it matched.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := m.routes.label(r.Pattern) // set by the mux on this same request
		method := methodLabel(r.Method)
		m.requests.WithLabelValues(route, method, statusLabel(sw.status)).Inc()
		m.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush for streams.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// tenantUsage is the opt-in per-tenant collector: it reads usage and hard
// quotas from the engine's views at scrape time, so it costs nothing
// between scrapes.
type tenantUsage struct {
	views interface{ Views() []*quota.TenantView }
	cat   *quota.Catalog
	used  *prometheus.Desc
	hard  *prometheus.Desc
}

// WatchTenants adds allot_tenant_usage and allot_tenant_hard gauges per
// tenant and resource.
func (m *Metrics) WatchTenants(views interface{ Views() []*quota.TenantView }, cat *quota.Catalog) {
	m.registry.MustRegister(&tenantUsage{
		views: views, cat: cat,
		used: prometheus.NewDesc("allot_tenant_usage", "A tenant's use of a resource.", []string{"tenant", "resource"}, nil),
		hard: prometheus.NewDesc("allot_tenant_hard", "A tenant's hard quota of a resource.", []string{"tenant", "resource"}, nil),
	})
}

func (c *tenantUsage) Describe(ch chan<- *prometheus.Desc) { ch <- c.used; ch <- c.hard }

func (c *tenantUsage) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.views.Views() {
		for _, res := range c.cat.Resources {
			ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(v.Usage[res.Name]), v.Tenant.ID, res.Name)
			ch <- prometheus.MustNewConstMetric(c.hard, prometheus.GaugeValue, float64(c.cat.Hard(v.Tenant, res)), v.Tenant.ID, res.Name)
		}
	}
}

// WatchLedger adds the ledger's size, horizon and pruning figures, read
// from the keeper at scrape time.
func (m *Metrics) WatchLedger(k *ledger.Keeper) {
	gauge := func(name, help string, f func(ledger.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(k.Stats()) })
	}
	counter := func(name, help string, f func(ledger.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(k.Stats()) })
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	m.registry.MustRegister(
		gauge("allot_ledger_rows", "Events in the ledger, as last measured.", func(s ledger.Stats) float64 { return float64(s.Rows) }),
		gauge("allot_ledger_bytes", "Bytes the database uses (the ledger is most of them), as last measured.", func(s ledger.Stats) float64 { return float64(s.Bytes) }),
		gauge("allot_ledger_oldest_retained_seq", "The oldest ledger position kept whole: every event after the horizon.", func(s ledger.Stats) float64 { return float64(s.Horizon.Seq + 1) }),
		gauge("allot_ledger_oldest_retained_timestamp_seconds", "The oldest time usage can still be read at; 0 while nothing was pruned.", func(s ledger.Stats) float64 { return unix(s.Horizon.Time) }),
		gauge("allot_ledger_snapshot_timestamp_seconds", "When the newest checkpoint's snapshots were taken (its last event); 0: none yet.", func(s ledger.Stats) float64 { return unix(s.LastCheckpoint) }),
		counter("allot_ledger_pruned_events_total", "Events pruned by this process.", func(s ledger.Stats) float64 { return float64(s.Pruned) }),
		counter("allot_ledger_archived_events_total", "Events written to the archive by this process.", func(s ledger.Stats) float64 { return float64(s.Archived) }),
	)
}
