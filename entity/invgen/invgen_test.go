package invgen_test

import (
	"context"
	"testing"
	"time"

	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
)

func TestBuildSmall(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, t.TempDir()+"/gen.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sp := invgen.Spec{Datacenters: 2, RacksPerDC: 3, ServersPerRack: 30, Seed: 1}
	start := time.Now()
	if err := invgen.Build(ctx, s, sp); err != nil {
		t.Fatal(err)
	}
	names, _ := s.Names(ctx)
	if len(names) != sp.Entities() {
		t.Errorf("built %d entities, Spec.Entities says %d", len(names), sp.Entities())
	}
	e, err := s.Get(ctx, invgen.Server(1, 2, 29))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Links) != 2 || len(e.Parents) != 3 || *e.Parents[0].Position != 32 {
		t.Errorf("last server = %+v", e)
	}
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Errorf("generated inventory fails its check: %v %v", p, err)
	}
	t.Logf("%d entities in %v", len(names), time.Since(start))
}
