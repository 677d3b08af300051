package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/schema"
)

// The benchmark inventory: 10 datacenters, 2,500 racks in them, and 97,490
// servers 39 to a rack (RU1-39), each with five attributes (serial, mac,
// ip, status, memory_gb): 100,000 entities.
const (
	benchDCs           = 10
	benchRacks         = 2500
	benchServers       = 97490
	benchPerRack       = 39
	benchEntities      = benchDCs + benchRacks + benchServers
	benchGenVersion    = 1 // bump when the generated content changes
	benchClients       = 32
	benchRequests      = 16000 // per measured round, shared by the clients
	benchWarmup        = 2000
	benchBatchEntities = 10000 // entities per write transaction while generating
)

func benchServerName(i int) string { return fmt.Sprintf("srv%06d", i) }

// benchDB returns a private copy of the 100,000-entity inventory. The
// inventory is generated once, through the store's bulk path, and cached in
// os.TempDir() under a name keyed by the schema version, so later runs
// only copy it.
func benchDB(b *testing.B) string {
	b.Helper()
	cached := filepath.Join(os.TempDir(), fmt.Sprintf("clusto-bench-100k-schema%d-gen%d.db", schema.LatestVersion(), benchGenVersion))
	if _, err := os.Stat(cached); err != nil {
		start := time.Now()
		if err := generateBenchDB(cached); err != nil {
			b.Fatalf("generate benchmark inventory: %v", err)
		}
		b.Logf("generated %d entities in %s into %s", benchEntities, time.Since(start).Round(time.Millisecond), cached)
	}
	dst := filepath.Join(b.TempDir(), "bench.db")
	src, err := os.Open(cached)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return dst
}

// generateBenchDB writes the inventory to a temporary file beside path and
// renames it into place, so a concurrent or interrupted run never sees a
// partial file.
func generateBenchDB(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmpPath := tmp.Name()
	tmp.Close()
	os.Remove(tmpPath)
	defer func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(tmpPath + suffix)
		}
	}()
	ctx := context.Background()
	st, err := store.Open(ctx, tmpPath, store.Options{})
	if err != nil {
		return err
	}
	write := func(fn func(tx *store.Tx) error) error { return st.Update(ctx, "bench", fn) }
	err = write(func(tx *store.Tx) error {
		for d := range benchDCs {
			if err := tx.Create(entity.NewEntity{Name: fmt.Sprintf("dc%02d", d), Driver: "datacenter"}); err != nil {
				return err
			}
		}
		for r := range benchRacks {
			name := fmt.Sprintf("rack%04d", r)
			if err := tx.Create(entity.NewEntity{Name: name, Driver: "rack"}); err != nil {
				return err
			}
			if _, err := tx.Insert(fmt.Sprintf("dc%02d", r%benchDCs), name, entity.Placement{}); err != nil {
				return err
			}
		}
		return nil
	})
	for lo := 0; err == nil && lo < benchServers; lo += benchBatchEntities {
		hi := min(lo+benchBatchEntities, benchServers)
		err = write(func(tx *store.Tx) error {
			for i := lo; i < hi; i++ {
				name := benchServerName(i)
				ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
				if err := tx.Create(entity.NewEntity{Name: name, Driver: "server", Attrs: []entity.Attr{
					{Key: "serial", Value: entity.String(fmt.Sprintf("SN%08d", i))},
					{Key: "mac", Value: entity.String(fmt.Sprintf("02:00:00:%02x:%02x:%02x", byte(i>>16), byte(i>>8), byte(i)))},
					{Key: "ip", Value: entity.IP(ip)},
					{Key: "status", Value: entity.String([]string{"live", "spare", "broken"}[i%3])},
					{Key: "memory_gb", Value: entity.Int(int64(64 << (i % 3)))},
				}}); err != nil {
					return err
				}
				pos := int64(i%benchPerRack + 1)
				if _, err := tx.Insert(fmt.Sprintf("rack%04d", i/benchPerRack), name, entity.Placement{Position: &pos}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Closing the last connection checkpoints the log into the file.
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmpPath, path)
}

// benchNames is a fixed pseudo-random sequence of entity names to look up,
// across servers, racks and datacenters in their proportions.
func benchNames(n int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		switch k := rng.IntN(benchEntities); {
		case k < benchDCs:
			out[i] = fmt.Sprintf("dc%02d", k)
		case k < benchDCs+benchRacks:
			out[i] = fmt.Sprintf("rack%04d", k-benchDCs)
		default:
			out[i] = benchServerName(k - benchDCs - benchRacks)
		}
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
	names := benchNames(benchRequests + benchWarmup)

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
