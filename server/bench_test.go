package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
)

// The benchmark inventory is invgen.Bench (98,712 entities: 2 datacenters
// of 1,000 racks of 38 servers, each cabled three ways, in groups and with
// an address), built once and cached by invgen.Cached; each benchmark
// works on a copy of its own.
const (
	benchClients  = 32
	benchRequests = 16000 // per measured round, shared by the clients
	benchWarmup   = 2000
)

// benchDB returns the path of a private copy of the benchmark inventory.
func benchDB(b *testing.B) string {
	b.Helper()
	start := time.Now()
	path, err := invgen.Cached(context.Background(), invgen.Bench, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("benchmark inventory ready in %s", time.Since(start).Round(time.Millisecond))
	return path
}

// benchNames is a fixed pseudo-random sequence of n names to look up,
// drawn from every entity of st.
func benchNames(b *testing.B, st *store.Store, n int) []string {
	b.Helper()
	all, err := st.Names(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		out[i] = all[rng.IntN(len(all))]
	}
	return out
}

// load runs n calls of do spread over clients goroutines and returns each
// call's latency and the wall time of the whole run.
func load(clients, n int, do func(i int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := int(next)
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				t0 := time.Now()
				err := do(i)
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start), firstErr
}

// measure runs the load b.N times after a warm-up and reports requests per
// second, p50 and p99 latency, and per-request ns, bytes and allocations
// (both sides of the connection, for HTTP).
func measure(b *testing.B, do func(i int) error) {
	b.Helper()
	if _, _, err := load(benchClients, benchWarmup, do); err != nil {
		b.Fatal(err)
	}
	var all []time.Duration
	var wall time.Duration
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		lat, w, err := load(benchClients, benchRequests, do)
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, lat...)
		wall += w
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	slices.Sort(all)
	n := float64(len(all))
	pct := func(p float64) float64 { return float64(all[int(p*(n-1))].Microseconds()) }
	b.ReportMetric(n/wall.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-us")
	b.ReportMetric(pct(0.99), "p99-us")
	b.ReportMetric(float64(wall.Nanoseconds())/n, "ns/op")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/op")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/op")
}

// BenchmarkHTTPGetEntity reads whole entities (attributes, parents,
// children, links) from a 100,000-entity inventory with 32 concurrent
// clients: through the Go store API (store), and as GET
// /api/v1/entities/{name} with a read token over loopback HTTP (http), so
// that the ratio shows what HTTP, authentication and JSON cost. Client and
// server share the machine.
func BenchmarkHTTPGetEntity(b *testing.B) {
	path := benchDB(b)
	ctx := context.Background()
	st, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	names := benchNames(b, st, benchRequests+benchWarmup)

	b.Run("store", func(b *testing.B) {
		measure(b, func(i int) error {
			_, err := st.Get(ctx, names[i%len(names)])
			return err
		})
	})

	b.Run("http", func(b *testing.B) {
		token, _, err := st.CreateToken(ctx, entity.Caller{Actor: "clustod/bench"}, fmt.Sprintf("bench-%d", os.Getpid()), entity.RoleRead)
		if err != nil {
			b.Fatal(err)
		}
		srv := New(st, Options{Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
		ts := httptest.NewServer(srv) // 127.0.0.1, a free port
		defer ts.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * benchClients, MaxIdleConnsPerHost: 2 * benchClients}}
		defer client.CloseIdleConnections()
		measure(b, func(i int) error {
			req, err := http.NewRequest("GET", ts.URL+APIPrefix+"/entities/"+names[i%len(names)], nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := client.Do(req)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err == nil && res.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET %s: status %d", names[i%len(names)], res.StatusCode)
			}
			return err
		})
	})
}
