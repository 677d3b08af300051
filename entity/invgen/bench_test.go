package invgen_test

import (
	"context"
	"testing"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invgen"
)

// BenchmarkBuild reports the generator's speed in entities per second.
func BenchmarkBuild(b *testing.B) {
	ctx := context.Background()
	sp := invgen.Spec{Datacenters: 1, RacksPerDC: 20, ServersPerRack: 38, Seed: 1}
	for i := 0; i < b.N; i++ {
		s, err := entity.Open(ctx, b.TempDir()+"/gen.db", entity.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := invgen.Build(ctx, s, sp); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.ReportMetric(float64(sp.Entities()*b.N)/b.Elapsed().Seconds(), "entities/s")
}
