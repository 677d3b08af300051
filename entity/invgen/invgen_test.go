package invgen_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
)

// build generates sp into a new store and checks what holds for every
// spec: as many entities as Spec.Entities says, and a clean check.
func build(t *testing.T, sp invgen.Spec) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, t.TempDir()+"/gen.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	start := time.Now()
	if err := invgen.Build(ctx, s, sp); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d entities in %v", sp.Entities(), time.Since(start))
	names, err := s.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != sp.Entities() {
		t.Errorf("built %d entities, Spec.Entities says %d", len(names), sp.Entities())
	}
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Errorf("generated inventory fails its check: %v %v", p, err)
	}
	return s
}

func TestBuildSmall(t *testing.T) {
	sp := invgen.Spec{Datacenters: 2, RacksPerDC: 3, ServersPerRack: 30, Seed: 1}
	if testing.Short() { // make test runs it so under -race
		sp.ServersPerRack = 10
	}
	s := build(t, sp)
	last := sp.ServersPerRack - 1
	e, err := s.Get(context.Background(), invgen.Server(1, 2, last))
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
}

// TestBuildExtras: the VMs, small pools and rare status of a spec are
// there as it says, and leave the rest of the inventory as it would be
// without them.
func TestBuildExtras(t *testing.T) {
	ctx := context.Background()
	base := invgen.Spec{Datacenters: 2, RacksPerDC: 3, ServersPerRack: 10, Seed: 1}
	extra := base
	extra.VMsPerRack, extra.Pools, extra.PoolMembers, extra.DecommissionedEvery = 2, 22, 2, 7
	a, b := build(t, base), build(t, extra)
	get := func(s *store.Store, name string) *entity.Entity {
		t.Helper()
		e, err := s.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	decommissioned, vms := 0, 0
	inPools := map[string]string{}
	for d := range base.Datacenters {
		for r := range base.RacksPerDC {
			for i := range base.ServersPerRack {
				name := invgen.Server(d, r, i)
				ea, eb := get(a, name), get(b, name)
				// Everything but the status, the VM and the small pool is
				// as without the extras.
				status := func(e *entity.Entity) string {
					for _, at := range e.Attrs {
						if at.Key == "status" {
							return at.Value.Text
						}
					}
					return ""
				}
				if g := (d*base.RacksPerDC+r)*base.ServersPerRack + i; g%extra.DecommissionedEvery == 0 {
					decommissioned++
					if got := status(eb); got != "decommissioned" {
						t.Errorf("%s (server %d) has status %q, want decommissioned", name, g, got)
					}
				} else if status(ea) != status(eb) {
					t.Errorf("%s: status %q, without the extras %q", name, status(eb), status(ea))
				}
				opts := []cmp.Option{
					cmpopts.IgnoreFields(entity.Entity{}, "ID", "Version", "CreatedAt", "UpdatedAt", "Children", "Parents"),
					cmpopts.IgnoreSliceElements(func(at entity.Attr) bool { return at.Key == "status" }),
				}
				if diff := cmp.Diff(ea, eb, opts...); diff != "" {
					t.Errorf("%s differs from the inventory without the extras (-without +with):\n%s", name, diff)
				}
				var parents []entity.Relation
				for _, p := range eb.Parents {
					if strings.HasPrefix(p.Name, "pool-") {
						if prev, dup := inPools[name]; dup {
							t.Errorf("%s is in %s and %s", name, prev, p.Name)
						}
						inPools[name] = p.Name
						continue
					}
					parents = append(parents, p)
				}
				if diff := cmp.Diff(ea.Parents, parents); diff != "" {
					t.Errorf("%s: parents other than the small pools differ (-without +with):\n%s", name, diff)
				}
				wantVM := i < extra.VMsPerRack
				if n := len(eb.Children); (n == 1) != wantVM || wantVM && eb.Children[0].Name != invgen.VM(d, r, i) {
					t.Errorf("%s holds %v; want a VM: %v", name, eb.Children, wantVM)
				}
				vms += len(eb.Children)
			}
		}
	}
	if want := (extra.Servers() + extra.DecommissionedEvery - 1) / extra.DecommissionedEvery; decommissioned != want {
		t.Errorf("%d servers decommissioned, want %d", decommissioned, want)
	}
	if want := extra.Datacenters * extra.RacksPerDC * extra.VMsPerRack; vms != want {
		t.Errorf("%d VMs, want %d", vms, want)
	}
	if len(inPools) != extra.Pools*extra.PoolMembers {
		t.Errorf("%d servers in the small pools, want %d", len(inPools), extra.Pools*extra.PoolMembers)
	}
	// Pools 11 and 22 each hold the ten before them, and their own members.
	for _, p := range []int{11, 22} {
		var got []string
		for _, c := range get(b, invgen.Pool(p)).Children {
			if strings.HasPrefix(c.Name, "pool-") {
				got = append(got, c.Name)
			}
		}
		var want []string
		for q := p - 10; q < p; q++ {
			want = append(want, invgen.Pool(q))
		}
		if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(x, y string) bool { return x < y })); diff != "" {
			t.Errorf("%s holds pools (-want +got):\n%s", invgen.Pool(p), diff)
		}
		if n := len(get(b, invgen.Pool(p)).Children) - len(got); n != extra.PoolMembers {
			t.Errorf("%s holds %d servers, want %d", invgen.Pool(p), n, extra.PoolMembers)
		}
	}
}

// TestCached: the first call builds the spec into os.TempDir() and every
// call returns a copy of that one file in the directory given.
func TestCached(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("TMPDIR", cache) // os.TempDir
	ctx := context.Background()
	sp := invgen.Spec{Datacenters: 1, RacksPerDC: 2, ServersPerRack: 3, Seed: 1, VMsPerRack: 1}
	first, err := invgen.Cached(ctx, sp, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	built, err := filepath.Glob(filepath.Join(cache, "clusto-invgen-*"))
	if err != nil || len(built) != 1 {
		t.Fatalf("the cache holds %v (%v), want one file", built, err)
	}
	before, err := os.Stat(built[0])
	if err != nil {
		t.Fatal(err)
	}
	second, err := invgen.Cached(ctx, sp, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(built[0])
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Errorf("the second call built the cache anew")
	}
	want, err := os.ReadFile(built[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{first, second} {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not a copy of the cached %s", p, built[0])
		}
	}
	s, err := store.Open(ctx, second, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	names, err := s.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != sp.Entities() {
		t.Errorf("the copy holds %d entities, Spec.Entities says %d", len(names), sp.Entities())
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "*.building*")); len(left) > 0 {
		t.Errorf("left behind in the cache: %v", left)
	}
}

// TestBenchScales checks the sizes BenchScales's comment gives, and that
// its middle size is Bench itself (whose cached file the query and HTTP
// benchmarks share).
func TestBenchScales(t *testing.T) {
	var got []int
	for _, sp := range invgen.BenchScales {
		got = append(got, sp.Entities())
	}
	if diff := cmp.Diff([]int{9882, 98712, 296112}, got); diff != "" {
		t.Errorf("BenchScales entities (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(invgen.Bench, invgen.BenchScales[1], cmpopts.IgnoreFields(invgen.Spec{}, "Progress")); diff != "" {
		t.Errorf("BenchScales[1] is not Bench (-Bench +got):\n%s", diff)
	}
}
