package server

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.block("net", "10.0.3.0/24")
	e.mk("s1", "server")
	e.do("POST", api+"/ipblocks/net/allocate", map[string]any{"entity": "s1"}).want(t, http.StatusCreated)
	e.do("GET", api+"/entities/s1", nil).want(t, http.StatusOK)
	e.do("GET", api+"/entities/nobody", nil).want(t, http.StatusNotFound)
	e.do("GET", api+"/query?q=driver:server", nil).want(t, http.StatusOK)
	r := e.do("GET", "/metrics", nil)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	body := string(r.Body)
	for _, want := range []string{
		`clusto_http_requests_total{method="GET",route="/api/v1/entities/{name}",status="200"} 1`,
		`clusto_http_requests_total{method="GET",route="/api/v1/entities/{name}",status="404"} 1`,
		`clusto_allocations_total{kind="ip"} 1`,
		`clusto_query_seconds_count{phase="compile"} 1`,
		`clusto_query_seconds_count{phase="execute"} 1`,
		`clusto_http_request_duration_seconds_bucket{method="POST",route="/api/v1/ipblocks/{name}/allocate",le="+Inf"} 1`,
		`clusto_heavy_requests_total{result="admitted"} 1`,
		`clusto_heavy_requests_total{result="per_token"} 0`,
		`clusto_heavy_running 0`,
		`clusto_dry_run_preemptions_total 0`,
		// GET s1 missed and cached it, the query page found it (a hit),
		// GET nobody missed.
		`clusto_entity_cache_lookups_total{result="hit"} 1`,
		`clusto_entity_cache_lookups_total{result="miss"} 2`,
		`clusto_queued_writes 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Entity names never become label values.
	if strings.Contains(body, "nobody") {
		t.Error("a raw path leaked into a label")
	}
	if m := regexp.MustCompile(`clusto_write_wait_seconds_count (\d+)`).FindStringSubmatch(body); m == nil || m[1] == "0" {
		t.Errorf("write wait not observed: %v", m)
	}
	if m := regexp.MustCompile(`clusto_database_size_bytes (\S+)`).FindStringSubmatch(body); m == nil || m[1] == "0" {
		t.Errorf("database size = %v", m)
	}
	// The reads after the last write checked the caller against the
	// token cache, not the tokens table.
	if m := regexp.MustCompile(`clusto_token_cache_hits_total (\d+)`).FindStringSubmatch(body); m == nil || m[1] == "0" {
		t.Errorf("token cache hits = %v, want some", m)
	}
	// One write at a time: as many transactions as writes, and some.
	tx := regexp.MustCompile(`clusto_write_transactions_total (\d+)`).FindStringSubmatch(body)
	w := regexp.MustCompile(`clusto_committed_writes_total (\d+)`).FindStringSubmatch(body)
	if tx == nil || w == nil || tx[1] != w[1] || tx[1] == "0" {
		t.Errorf("write transactions %v, committed writes %v", tx, w)
	}
}
