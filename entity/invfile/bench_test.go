package invfile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clusto/clusto/entity/invfile"
	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/schema"
)

// benchSpec is about 100,000 entities: 2 datacenters of 1,300 racks, each
// rack a switch, console server, PDU, /24 block and 33 servers.
var benchSpec = invgen.Spec{Datacenters: 2, RacksPerDC: 1300, ServersPerRack: 33, Seed: 1}

// benchFile returns the exported file of the generated inventory, building
// both once and caching them in os.TempDir() keyed by schema version.
func benchFile(b *testing.B) string {
	b.Helper()
	dir := os.TempDir()
	file := filepath.Join(dir, fmt.Sprintf("clusto-bench-invfile-%d-schema%d.yaml", benchSpec.Entities(), schema.LatestVersion()))
	if _, err := os.Stat(file); err == nil {
		return file
	}
	ctx := context.Background()
	db := filepath.Join(b.TempDir(), "gen.db")
	s, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	if err := invgen.Build(ctx, s, benchSpec); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d entities in %v", benchSpec.Entities(), time.Since(start).Round(time.Millisecond))
	tmp := file + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	if err := invfile.Export(ctx, s, nil, f); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		b.Fatal(err)
	}
	return file
}

// peakHeap samples the Go heap while fn runs and returns its peak.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	return peak.Load()
}

// BenchmarkImport100k applies the ~100,000-entity file to an empty
// inventory the whole-document way (parse, plan, one batch: what the
// server does with a file sent to it), then plans the same file against
// the result (no changes), and imports it into another empty inventory a
// window at a time (Import: what clustod import does), reporting the time
// and peak Go heap of each.
func BenchmarkImport100k(b *testing.B) {
	file := benchFile(b)
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for range b.N {
		s, err := store.Open(ctx, filepath.Join(b.TempDir(), "import.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var importTime, planTime time.Duration
		// The import in its three phases, each with its own peak: the
		// heap of each includes what the earlier ones left live.
		var doc *invfile.Document
		var plan *invfile.Plan
		timed := func(fn func() error) func() {
			return func() {
				start := time.Now()
				if err := fn(); err != nil {
					b.Fatal(err)
				}
				importTime += time.Since(start)
			}
		}
		parsePeak := peakHeap(timed(func() (err error) {
			doc, err = invfile.Parse(filepath.Base(file), data)
			return err
		}))
		makePeak := peakHeap(timed(func() (err error) {
			plan, err = invfile.MakePlan(ctx, s, doc, invfile.Options{})
			return err
		}))
		applyPeak := peakHeap(timed(func() error {
			_, err := plan.Apply(ctx, s, "bench", store.BatchOptions{NoResults: true})
			return err
		}))
		importPeak := max(parsePeak, makePeak, applyPeak)
		doc, plan = nil, nil
		planPeak := peakHeap(func() {
			start := time.Now()
			doc, err := invfile.Parse(filepath.Base(file), data)
			if err != nil {
				b.Fatal(err)
			}
			p, err := invfile.MakePlan(ctx, s, doc, invfile.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if !p.Empty() {
				b.Fatalf("planning the file against its own import: %d steps", len(p.Steps))
			}
			planTime = time.Since(start)
		})
		s.Close()
		streamed, err := store.Open(ctx, filepath.Join(b.TempDir(), "streamed.db"), store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var streamTime time.Duration
		streamPeak := peakHeap(func() {
			start := time.Now()
			sum, err := invfile.Import(ctx, streamed, filepath.Base(file), data, invfile.ImportOptions{Actor: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			if sum.Create != benchSpec.Entities() {
				b.Fatalf("Import created %d entities, want %d", sum.Create, benchSpec.Entities())
			}
			streamTime = time.Since(start)
		})
		streamed.Close()
		b.ReportMetric(streamTime.Seconds(), "stream-import-s")
		b.ReportMetric(float64(streamPeak)/(1<<20), "stream-import-peak-MiB")
		b.ReportMetric(float64(benchSpec.Entities()), "entities")
		b.ReportMetric(float64(len(data))/1e6, "file-MB")
		b.ReportMetric(importTime.Seconds(), "import-s")
		b.ReportMetric(float64(importPeak)/(1<<20), "import-peak-MiB")
		b.ReportMetric(float64(parsePeak)/(1<<20), "parse-peak-MiB")
		b.ReportMetric(float64(applyPeak)/(1<<20), "apply-peak-MiB")
		b.ReportMetric(planTime.Seconds(), "plan-s")
		b.ReportMetric(float64(planPeak)/(1<<20), "plan-peak-MiB")
	}
}
