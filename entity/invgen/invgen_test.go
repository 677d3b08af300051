package invgen_test

import (
	"context"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invgen"
)

func TestBuildSmall(t *testing.T) {
	ctx := context.Background()
	s, err := entity.Open(ctx, t.TempDir()+"/gen.db", entity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sp := invgen.Spec{Datacenters: 2, RacksPerDC: 3, ServersPerRack: 30, Seed: 1}
	if testing.Short() { // make test runs it so under -race
		sp.ServersPerRack = 10
	}
	start := time.Now()
	if err := invgen.Build(ctx, s, sp); err != nil {
		t.Fatal(err)
	}
	names, err := s.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != sp.Entities() {
		t.Errorf("built %d entities, Spec.Entities says %d", len(names), sp.Entities())
	}
	last := sp.ServersPerRack - 1
	e, err := s.Get(ctx, invgen.Server(1, 2, last))
	if err != nil {
		t.Fatal(err)
	}
	// Servers from RU3 up, cabled to the switch and the console server;
	// those past the PDU's 24 outlets have no power cable.
	wantLinks := 3
	if last >= 24 {
		wantLinks = 2
	}
	if len(e.Links) != wantLinks || len(e.Parents) != 3 || e.Parents[0].Position == nil || *e.Parents[0].Position != int64(3+last) {
		t.Errorf("last server = %+v", e)
	}
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Errorf("generated inventory fails its check: %v %v", p, err)
	}
	t.Logf("%d entities in %v", len(names), time.Since(start))
}
