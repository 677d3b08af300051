package server

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"testing"
)

// TestRandomOpsKeepEveryRule runs seeded random sequences of API calls,
// heavy on the inputs the rules read (units, height, cidr, gateway,
// exclusive, unique, next) and on extreme numbers, and asserts after each
// call that the server answered without a fault and that the whole
// inventory still keeps every rule (the code of clustod check). Each
// sequence is bounded; a failure names the seed and the step.
func TestRandomOpsKeepEveryRule(t *testing.T) {
	t.Parallel()
	steps := 250
	if testing.Short() {
		steps = 60
	}
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			g := &opGen{r: rand.New(rand.NewPCG(seed, 13))}
			for i := 0; i < steps; i++ {
				op := g.next()
				r := e.do(op.method, op.path, op.body)
				switch r.Status {
				case http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict:
				default:
					t.Fatalf("step %d: %s %s %v: status %d: %s", i, op.method, op.path, op.body, r.Status, r.Body)
				}
				problems, err := e.store.Check(context.Background())
				if err != nil || len(problems) > 0 {
					t.Fatalf("step %d: %s %s %v (status %d: %s) left problems: %v %+v", i, op.method, op.path, op.body, r.Status, r.Body, err, problems)
				}
			}
		})
	}
}

type opGen struct {
	r *rand.Rand
	n int
}

func (g *opGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

// number is a rack position, height or count, often an extreme one.
func (g *opGen) number() any {
	switch g.r.IntN(8) {
	case 0:
		return int64(math.MaxInt64)
	case 1:
		return int64(math.MaxInt64 - 1)
	case 2:
		return int64(1) << 62
	case 3:
		return g.r.IntN(3) - 1 // -1, 0, 1
	default:
		return g.r.IntN(50) + 1
	}
}

func (g *opGen) cidr() string {
	return g.pick("10.0.0.0/16", "10.0.1.0/24", "10.0.2.0/24", "10.0.1.0/25", "10.0.0.0/8", "192.168.0.0/24",
		"::ffff:10.0.0.0/104", "2001:db8::/64", "10.0.1.128/25", "10.0.0.0/30", "10.0.0.0/31")
}

var (
	propRacks   = []string{"r1", "r2"}
	propDevices = []string{"s1", "s2", "s3", "sw1"}
	propPools   = []string{"p1", "p2", "p3"}
	propBlocks  = []string{"b1", "b2", "b3", "b4"}
)

func (g *opGen) next() step {
	g.n++
	// Make sure the universe exists early on; creates of existing names
	// are conflicts, which is fine.
	if g.n <= 14 {
		all := []step{
			ent("r1", "rack"), ent("r2", "rack"), ent("s1", "server"), ent("s2", "server"), ent("s3", "server"), ent("sw1", "switch"),
			ent("p1", "pool"), ent("p2", "pool"), ent("p3", "pool"),
			ent("b1", "ipblock", kv("cidr", "10.0.0.0/16")), ent("b2", "ipblock", kv("cidr", "10.0.1.0/24")), ent("b3", "ipblock", kv("cidr", "10.0.2.0/24")),
			ent("b4", "ipblock", kv("cidr", "10.0.0.0/8")), ent("nm", "namemanager", kv("next", 3)),
		}
		return all[g.n-1]
	}
	dev, rack, pool, blk := g.pick(propDevices...), g.pick(propRacks...), g.pick(propPools...), g.pick(propBlocks...)
	switch g.r.IntN(22) {
	case 0, 1:
		return step{"POST", api + "/entities/" + rack + "/children", map[string]any{"child": dev, "position": g.number(), "height": g.number()}, 0}
	case 2:
		return step{"POST", api + "/entities/" + rack + "/children", map[string]any{"child": dev, "position": g.number()}, 0}
	case 3:
		return step{"DELETE", api + "/entities/" + rack + "/children/" + dev, nil, 0}
	case 4:
		return set(rack, "units", g.number())
	case 5:
		return set(dev, "height", g.number())
	case 6:
		return step{"POST", api + "/entities/" + g.pick(rack, dev) + "/attrs", kv(g.pick("units", "height"), g.number()), 0}
	case 7:
		return step{"DELETE", api + "/entities/" + g.pick(rack, dev) + "/attrs/" + g.pick("units", "height"), nil, 0}
	case 8:
		return step{"POST", api + "/entities/" + g.pick(propBlocks...) + "/children", map[string]any{"child": blk}, 0}
	case 9:
		return set(blk, "cidr", g.cidr())
	case 10:
		return step{"POST", api + "/entities/" + blk + "/attrs", kv(g.pick("cidr", "gateway"), g.pick("10.0.1.1", "10.0.2.1", g.cidr())), 0}
	case 11:
		return set(blk, "gateway", g.pick("10.0.1.1", "10.0.1.0", "10.0.1.255", "10.0.2.1", "10.0.0.1", "192.168.0.1", "10.0.1.2"))
	case 12:
		return step{"DELETE", api + "/entities/" + blk + "/attrs/" + g.pick("cidr", "gateway"), nil, 0}
	case 13, 14:
		body := map[string]any{"entity": dev, "interface": g.pick("eth0", "eth1", "")}
		if g.r.IntN(2) == 0 {
			body["address"] = g.pick("10.0.1.1", "10.0.1.2", "10.0.1.5", "10.0.2.7", "10.0.0.0", "10.0.1.255", "10.1.0.1", "10.0.0.9")
		}
		return step{"POST", api + "/ipblocks/" + blk + "/allocate", body, 0}
	case 15:
		return step{"DELETE", api + "/ipblocks/" + blk + "/allocations/" + g.pick("10.0.1.1", "10.0.1.2", "10.0.1.5", "10.0.2.7", "10.0.0.9"), nil, 0}
	case 16:
		return step{"POST", api + "/entities/" + pool + "/children", map[string]any{"child": g.pick(append(append([]string{}, propDevices...), propPools...)...)}, 0}
	case 17:
		return set(pool, g.pick("exclusive", "unique"), g.r.IntN(2) == 0)
	case 18:
		return set("nm", "next", g.number())
	case 19:
		return step{"POST", api + "/names/nm/allocate", map[string]any{"driver": "server", "count": 1 + g.r.IntN(2)}, 0}
	case 20:
		return step{"POST", api + "/entities/" + dev + "/attrs", map[string]any{"key": "ip", "subkey": g.pick("eth0", "x"), "value": g.pick("10.0.1.1", "10.0.1.5", "10.0.2.7"), "type": "ip"}, 0}
	default:
		return step{"DELETE", api + "/entities/" + g.pick(dev, blk, pool) + "?cascade=true", nil, 0}
	}
}
