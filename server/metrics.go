package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series, on a registry of its own so
// that several servers (tests) never collide.
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	query     *prometheus.HistogramVec
	allocs    *prometheus.CounterVec
	writeWait prometheus.Histogram
	// backups counts backups by mode (file, download) and result (ok,
	// error, busy); backupLast and backupTime describe the successful ones.
	backups    *prometheus.CounterVec
	backupLast prometheus.Gauge
	backupTime prometheus.Histogram
	// heavy counts heavy requests by admission result.
	heavy   *prometheus.CounterVec
	handler http.Handler
}

func newMetrics(s *Server) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clusto_http_requests_total", Help: "HTTP requests by route template, method and status.",
	}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "clusto_http_request_duration_seconds", Help: "HTTP request latency by route template and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route", "method"})
	m.query = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "clusto_query_seconds", Help: "Query language time by phase: compile (parse and compile) and execute (SQL).",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"phase"})
	m.allocs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clusto_allocations_total", Help: "Successful allocation requests by kind (ip, rack, name, query).",
	}, []string{"kind"})
	m.writeWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "clusto_write_wait_seconds", Help: "Time a write waited for the single writer (BEGIN IMMEDIATE).",
		Buckets: []float64{.00001, .0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5},
	})
	m.backups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clusto_backups_total", Help: "Backups requested over the API by mode (file, download) and result (ok, error, or busy: refused while another ran).",
	}, []string{"mode", "result"})
	// Every series exists from the start, so that an alert on errors or on
	// the absence of successes works before the first backup.
	for _, mode := range []string{backupModeFile, backupModeDownload} {
		for _, result := range []string{backupOK, backupError, backupBusy} {
			m.backups.WithLabelValues(mode, result)
		}
	}
	m.backupLast = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "clusto_backup_last_success_timestamp_seconds", Help: "Unix time the last successful backup over the API finished; at start, that of the newest file in the backup directory (0: none).",
	})
	m.backupTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "clusto_backup_duration_seconds", Help: "Time a successful backup took to write its snapshot (a download's transfer not included).",
		Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900},
	})
	m.heavy = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clusto_heavy_requests_total", Help: "Heavy requests (queries, exports, plans, dry runs of batches, applies and allocations) by admission: admitted, or refused as per_token (429), queue_full or queue_timeout (503).",
	}, []string{"result"})
	for _, r := range []string{admitted, refusedToken, refusedFull, refusedWait} {
		m.heavy.WithLabelValues(r)
	}
	heavyRunning := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clusto_heavy_running", Help: "Heavy requests running now.",
	}, func() float64 { return float64(s.heavy.Running()) })
	heavyWaiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clusto_heavy_waiting", Help: "Heavy requests waiting for a turn now.",
	}, func() float64 { return float64(s.heavy.Waiting()) })
	preemptions := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "clusto_dry_run_preemptions_total", Help: "Dry runs canceled on the single writer because a real write arrived (each then starts again).",
	}, func() float64 { return float64(s.store.DryRunPreemptions()) })
	commits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "clusto_write_transactions_total", Help: "Transactions the single writer committed; with group commit one holds every write that queued beside it.",
	}, func() float64 { g, _ := s.store.GroupCommits(); return float64(g) })
	committedWrites := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "clusto_committed_writes_total", Help: "Writes committed; divided by clusto_write_transactions_total, the mean group size.",
	}, func() float64 { _, w := s.store.GroupCommits(); return float64(w) })
	tokenHits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "clusto_token_cache_hits_total", Help: "Token checks answered without reading the tokens table (nothing committed since the token was verified).",
	}, func() float64 { return float64(s.store.TokenCacheHits()) })
	cacheCollector := &cacheLookupCollector{s: s, desc: prometheus.NewDesc("clusto_entity_cache_lookups_total",
		"Lookups of encoded entities in the entity cache (--entity-cache), by result: hit or miss.", []string{"result"}, nil)}
	queuedWrites := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clusto_queued_writes", Help: "Writes waiting for the single writer now.",
	}, func() float64 { return float64(s.store.QueuedWrites()) })
	dbSize := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "clusto_database_size_bytes", Help: "Bytes the database occupies on disk (file and WAL).",
	}, func() float64 { return float64(s.store.Size()) })
	m.registry.MustRegister(m.requests, m.latency, m.query, m.allocs, m.writeWait, m.backups, m.backupLast, m.backupTime, dbSize,
		m.heavy, heavyRunning, heavyWaiting, preemptions, commits, committedWrites, queuedWrites, cacheCollector, tokenHits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.store.ObserveWriteWait(func(d time.Duration) { m.writeWait.Observe(d.Seconds()) })
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
	return m
}

// observe records one finished request under its route template (never
// the raw path, whose entity names would make unbounded series).
func (m *metrics) observe(method, route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// GET /metrics: the Prometheus text format.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.handler.ServeHTTP(w, r)
	return nil
}

// cacheLookupCollector reports the entity cache's hit and miss counts as
// one counter with a result label (none when the cache is off).
type cacheLookupCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func (c *cacheLookupCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *cacheLookupCollector) Collect(ch chan<- prometheus.Metric) {
	if c.s.cache == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.s.cache.hits.Load()), "hit")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.s.cache.misses.Load()), "miss")
}
