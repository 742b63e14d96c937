package watch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are watch's Prometheus metrics, in a registry of their own. The
// names are part of the interface (README, "Watch mode").
type Metrics struct {
	Registry *prometheus.Registry

	syncs       *prometheus.CounterVec // trigger, result
	failures    *prometheus.CounterVec // stage
	changes     *prometheus.CounterVec // engine
	activations *prometheus.CounterVec // engine, action
	fetchErrors *prometheus.CounterVec // reason
	lastSuccess prometheus.Gauge
	generation  prometheus.Gauge
	repairs     prometheus.Counter
	givenUp     prometheus.Gauge
	conflicts   prometheus.Gauge
	duration    prometheus.Histogram
	mirrorUp    *prometheus.GaugeVec // endpoint
}

// NewMetrics creates the metrics and their registry (with the Go and
// process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mirrorctl_syncs_total",
			Help: "Syncs run by watch, by trigger (start, source, local, drift, resync, signal, retry, probe) and result (ok, conflicts, failed)."},
			[]string{"trigger", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mirrorctl_sync_failures_total",
			Help: "Configs not applied, by stage: spec (invalid), apply (I/O, lock, systemd), health (rolled back)."},
			[]string{"stage"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mirrorctl_file_changes_total",
			Help: "Files written or removed, by engine."}, []string{"engine"}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mirrorctl_activations_total",
			Help: "Reloads and restarts done, by engine and action."}, []string{"engine", "action"}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mirrorctl_source_fetch_errors_total",
			Help: "Failed or refused reads of the source, by reason (unreachable, timeout, status, too_large, signature, serial, missing, read)."},
			[]string{"reason"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mirrorctl_last_success_timestamp_seconds",
			Help: "When the last sync succeeded, in seconds since the epoch."}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mirrorctl_config_generation",
			Help: "How many distinct central configs this node has applied (kept across restarts)."}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts{Name: "mirrorctl_drift_repairs_total",
			Help: "Managed files restored after someone else changed them."}),
		givenUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mirrorctl_drift_given_up_files",
			Help: "Managed files no longer repaired because they were changed again and again (the fight cap)."}),
		conflicts: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mirrorctl_conflicts",
			Help: "Files left alone in the last sync because mirrorctl did not write them."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mirrorctl_sync_duration_seconds",
			Help:    "How long a sync took, lock to health check.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		mirrorUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mirrorctl_mirror_up",
			Help: "With --probe-interval: 1 while a mirror endpoint answers (any HTTP status), 0 once it is down (2 failed probes in a row)."},
			[]string{"endpoint"}),
	}
	m.Registry.MustRegister(m.syncs, m.failures, m.changes, m.activations, m.fetchErrors, m.lastSuccess,
		m.generation, m.repairs, m.givenUp, m.conflicts, m.duration, m.mirrorUp,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) fetchError(err error) { m.fetchErrors.WithLabelValues(reasonOf(err)).Inc() }

func (m *Metrics) failure(stage string) { m.failures.WithLabelValues(stage).Inc() }

// observe records one sync that reached apply.
func (m *Metrics) observe(r *Report, took time.Duration) {
	m.duration.Observe(took.Seconds())
	result := "ok"
	switch {
	case r.Stage != "":
		result = "failed"
	case r.Result != nil && len(r.Result.Conflicts) > 0:
		result = "conflicts"
	}
	m.syncs.WithLabelValues(r.Trigger, result).Inc()
	if res := r.Result; res != nil {
		for _, p := range res.Written {
			m.changes.WithLabelValues(engineOf(r, p)).Inc()
		}
		for _, a := range res.Done {
			m.activations.WithLabelValues(a.Engine, a.Disruption.String()).Inc()
		}
		m.conflicts.Set(float64(len(res.Conflicts)))
	}
	m.repairs.Add(float64(len(r.Repaired)))
	m.givenUp.Set(float64(len(r.GivenUp)))
	m.generation.Set(float64(r.Generation))
	if result != "failed" {
		m.lastSuccess.SetToCurrentTime()
	}
}

// engineOf names the engine that wrote path, from the report's map.
func engineOf(r *Report, path string) string {
	if e, ok := r.engineOf[path]; ok {
		return e
	}
	return "unknown"
}

// Handler serves /metrics, /healthz (health: the loop is alive) and /readyz
// (ready: alive and a sync has succeeded), each probe with the status line.
func (m *Metrics) Handler(health, ready func() (bool, string)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	probe := func(check func() (bool, string)) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			ok, status := check()
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if !ok {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			fmt.Fprintln(w, status)
		}
	}
	mux.HandleFunc("/healthz", probe(health))
	mux.HandleFunc("/readyz", probe(ready))
	return mux
}

// MetricsAddr is --metrics-addr with the default host: ":9477" binds
// 127.0.0.1 only. Give 0.0.0.0 or [::] to serve every interface.
func MetricsAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-addr %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// Serve listens on addr and serves h until ctx ends. It returns the bound
// address once listening, and a channel that yields the server's end.
func Serve(ctx context.Context, addr string, h http.Handler) (net.Addr, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return ln.Addr(), done, nil
}
