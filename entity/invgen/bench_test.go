package invgen_test

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
)

// BenchmarkBuild reports the generator's speed in entities per second on a
// small inventory (4,300 entities), quick enough to compare changes.
func BenchmarkBuild(b *testing.B) {
	benchBuild(b, invgen.Spec{Datacenters: 1, RacksPerDC: 100, ServersPerRack: 38, Seed: 1})
}

// BenchmarkBuild100k builds the 100,000-entity inventory (2
// datacenters of 1,163 racks of 38 servers: 100,148 entities) into a new
// database file: the target is under 30 s on the project's 2-core machine.
func BenchmarkBuild100k(b *testing.B) {
	benchBuild(b, invgen.Spec{Datacenters: 2, RacksPerDC: 1163, ServersPerRack: 38, Seed: 1})
}

func benchBuild(b *testing.B, sp invgen.Spec) {
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		s, err := store.Open(ctx, b.TempDir()+"/gen.db", store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := invgen.Build(ctx, s, sp); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// CPU time as well as wall time: on a shared 2-core machine the wall
	// time moves with other work, the CPU time much less.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/build")
	b.ReportMetric(float64(sp.Entities()*b.N)/b.Elapsed().Seconds(), "entities/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/build")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(sp.Entities()*b.N), "B/entity")
}

// cpuTime is the user and system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
