// Package invgen builds large, realistic inventories for benchmarks, load
// tests and demos: datacenters with rooms, rows and racks, each rack with
// a top-of-rack switch, a console server and a PDU, servers at real rack
// positions with every NIC, console and power port cabled, one /24 per
// rack with an address per server, pools and roles; optionally VMs in the
// servers, small nested pools and a rare status, which the query
// benchmarks ask about. It writes through the store's ordinary
// transactions (the same code the API uses), in large batches. Every
// benchmark inventory of the project is one of its specs (Bench, and
// Cached to build it once).
package invgen

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/schema"
)

// Spec sizes an inventory.
type Spec struct {
	Datacenters    int
	RacksPerDC     int
	ServersPerRack int
	// Seed makes attribute values reproducible.
	Seed uint64

	// The extras below are off when zero, and then the inventory is
	// the same as without them.

	// VMsPerRack: the first VMsPerRack servers of each rack each hold a
	// VM (named VM(d, r, s)).
	VMsPerRack int
	// Pools small pools (named Pool(1) ...), each with PoolMembers
	// servers spread over the inventory, no server in two of them; each
	// pool whose number is a multiple of 11 also holds the ten pools
	// before it.
	Pools, PoolMembers int
	// DecommissionedEvery: every DecommissionedEvery-th server, counting
	// from the first (Server(0, 0, 0)) across racks and datacenters, has
	// the status "decommissioned" instead of its random one.
	DecommissionedEvery int

	// Progress, when set, is called after each rack.
	Progress func(done, total int)
}

// Entities is how many entities Build creates for the spec.
func (sp Spec) Entities() int {
	rows := (sp.RacksPerDC + RacksPerRow - 1) / RacksPerRow
	perDC := 1 + 1 + rows + sp.RacksPerDC*(1+3+1+sp.ServersPerRack+sp.VMsPerRack) // dc, room, rows, racks with devices, a block and VMs
	return sp.Datacenters*perDC + 1 + len(pools) + len(roles) + sp.Pools          // + site block
}

// Servers is how many servers Build creates for the spec.
func (sp Spec) Servers() int { return sp.Datacenters * sp.RacksPerDC * sp.ServersPerRack }

// Bench is the benchmark inventory of the query and HTTP benchmarks: 2
// datacenters of 1,000 racks of 38 servers (76,000), 6 VMs a rack, 600
// pools of 20 and one server in 1,000 decommissioned; 98,712 entities.
var Bench = Spec{Datacenters: 2, RacksPerDC: 1000, ServersPerRack: 38, Seed: 1,
	VMsPerRack: 6, Pools: 600, PoolMembers: 20, DecommissionedEvery: 1000}

// BenchScales are Bench's shape at three sizes, for measuring how a
// query's cost grows with the inventory: the same racks (38 servers, 6
// VMs), one server in 1,000 decommissioned and pools of 20 as many as
// the racks make room for, in 2 datacenters of 100, 1,000 and 3,000 racks:
// 9,882, 98,712 (Bench itself) and 296,112 entities.
var BenchScales = []Spec{Bench.WithRacks(100), Bench, Bench.WithRacks(3000)}

// WithRacks is sp with racksPerDC racks in each datacenter and its pools
// scaled with them (as many per rack as sp has).
func (sp Spec) WithRacks(racksPerDC int) Spec {
	sp.Pools = sp.Pools * racksPerDC / sp.RacksPerDC
	sp.RacksPerDC = racksPerDC
	return sp
}

// RacksPerRow is how many racks a generated row holds.
const RacksPerRow = 20

// rowsPerTx is how many rows of racks one transaction builds. Large
// transactions are much the faster way to load: a commit writes every page
// the transaction touched to the WAL, and the hot pages of each index (the
// ends where new rows go) are touched by every transaction again. At 20
// racks a transaction, 100k entities took 46 s; at 400, 27 s. The writer
// is held for a few seconds at a time.
const rowsPerTx = 20

var (
	pools    = []string{"production", "staging", "development"}
	roles    = []string{"web", "db", "cache", "batch"}
	statuses = []string{"allocated", "allocated", "allocated", "unallocated", "spare", "broken"}
)

// Names used by the generator, so tests and benchmarks can ask for them.
func DC(d int) string           { return fmt.Sprintf("dc%d", d+1) }
func Rack(d, r int) string      { return fmt.Sprintf("dc%d-rack%04d", d+1, r+1) }
func Server(d, r, s int) string { return fmt.Sprintf("s%d%04d%02d", d+1, r+1, s+1) }
func Switch(d, r int) string    { return fmt.Sprintf("dc%d-sw%04d", d+1, r+1) }
func Console(d, r int) string   { return fmt.Sprintf("dc%d-cons%04d", d+1, r+1) }
func PDU(d, r int) string       { return fmt.Sprintf("dc%d-pdu%04d", d+1, r+1) }
func Block(d, r int) string     { return fmt.Sprintf("dc%d-net%04d", d+1, r+1) }
func VM(d, r, s int) string     { return Server(d, r, s) + "-vm" }
func Pool(p int) string         { return fmt.Sprintf("pool-%04d", p) }
func Row(d, r int) string       { return fmt.Sprintf("dc%d-row%03d", d+1, r/RacksPerRow+1) }
func Room(d int) string         { return fmt.Sprintf("dc%d-room1", d+1) }
func BlockCIDR(d, r int) string { return fmt.Sprintf("10.%d.%d.0/24", d*16+r/256, r%256) }

// Build creates the inventory in s. It fails if a name already exists.
func Build(ctx context.Context, s *store.Store, sp Spec) error {
	if sp.Datacenters < 1 || sp.RacksPerDC < 1 || sp.ServersPerRack < 0 {
		return entity.Errorf(entity.KindInvalid, "need at least one datacenter and one rack per datacenter")
	}
	if sp.ServersPerRack > 38 {
		return entity.Errorf(entity.KindInvalid, "at most 38 servers fit a 42U rack next to its switch, console server and PDU")
	}
	if sp.RacksPerDC > 16*256 || sp.Datacenters > 15 {
		return entity.Errorf(entity.KindInvalid, "at most 15 datacenters of 4096 racks (the generator's address plan)")
	}
	if sp.VMsPerRack < 0 || sp.VMsPerRack > sp.ServersPerRack {
		return entity.Errorf(entity.KindInvalid, "VMs per rack must be between 0 and the servers per rack")
	}
	if sp.Pools < 0 || sp.PoolMembers < 0 || sp.Pools*sp.PoolMembers > sp.Servers() || sp.Pools > 9999 {
		return entity.Errorf(entity.KindInvalid, "at most 9999 small pools, whose members (no server in two) must not outnumber the servers")
	}
	if sp.DecommissionedEvery < 0 {
		return entity.Errorf(entity.KindInvalid, "DecommissionedEvery must not be negative")
	}
	rng := rand.New(rand.NewPCG(sp.Seed, 42))
	create := func(tx *store.Tx, name, driver string, attrs ...entity.Attr) error {
		return tx.Create(entity.NewEntity{Name: name, Driver: driver, Attrs: attrs})
	}
	insert := func(tx *store.Tx, parent, child string, pos *int64) error {
		_, err := tx.Insert(parent, child, entity.Placement{Position: pos})
		return err
	}
	str := func(k, v string) entity.Attr { return entity.Attr{Key: k, Value: entity.String(v)} }
	num := func(k string, v int64) entity.Attr { return entity.Attr{Key: k, Value: entity.Int(v)} }
	err := s.Update(ctx, "generate", func(tx *store.Tx) error {
		if err := create(tx, "site-net", "ipblock", str("cidr", "10.0.0.0/8")); err != nil {
			return err
		}
		for _, p := range pools {
			if err := create(tx, p, "pool"); err != nil {
				return err
			}
		}
		for _, r := range roles {
			if err := create(tx, r, "role"); err != nil {
				return err
			}
		}
		for d := 0; d < sp.Datacenters; d++ {
			if err := create(tx, DC(d), "datacenter", str("region", []string{"eu", "us", "ap"}[d%3])); err != nil {
				return err
			}
			if err := create(tx, Room(d), "room"); err != nil {
				return err
			}
			if err := insert(tx, DC(d), Room(d), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	total := sp.Datacenters * sp.RacksPerDC
	done := 0
	// One transaction per rowsPerTx rows of racks (about 17,000 entities).
	for d := 0; d < sp.Datacenters; d++ {
		for t0 := 0; t0 < sp.RacksPerDC; t0 += RacksPerRow * rowsPerTx {
			err := s.Update(ctx, "generate", func(tx *store.Tx) error {
				for r0 := t0; r0 < min(t0+RacksPerRow*rowsPerTx, sp.RacksPerDC); r0 += RacksPerRow {
					if err := create(tx, Row(d, r0), "row"); err != nil {
						return err
					}
					if err := insert(tx, Room(d), Row(d, r0), nil); err != nil {
						return err
					}
					for r := r0; r < min(r0+RacksPerRow, sp.RacksPerDC); r++ {
						if err := buildRack(tx, rng, sp, d, r, create, insert, str, num); err != nil {
							return fmt.Errorf("rack %s: %w", Rack(d, r), err)
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			done += min(RacksPerRow*rowsPerTx, sp.RacksPerDC-t0)
			if sp.Progress != nil {
				sp.Progress(done, total)
			}
		}
	}
	if sp.Pools == 0 {
		return nil
	}
	return s.Update(ctx, "generate", func(tx *store.Tx) error { return buildPools(tx, sp, create, insert) })
}

// buildPools makes the small pools. Member k (counting through the pools)
// is server k*step mod the servers, for a step coprime with their number:
// no server twice, spread over every rack.
func buildPools(tx *store.Tx, sp Spec, create func(*store.Tx, string, string, ...entity.Attr) error, insert func(*store.Tx, string, string, *int64) error) error {
	n := sp.Servers()
	step := 7919
	for gcd(step, n) != 1 {
		step++
	}
	perDC := sp.RacksPerDC * sp.ServersPerRack
	k := 0
	for p := 1; p <= sp.Pools; p++ {
		if err := create(tx, Pool(p), "pool"); err != nil {
			return err
		}
		for range sp.PoolMembers {
			g := k * step % n
			k++
			if err := insert(tx, Pool(p), Server(g/perDC, g%perDC/sp.ServersPerRack, g%sp.ServersPerRack), nil); err != nil {
				return err
			}
		}
		if p%11 == 0 {
			for q := p - 10; q < p; q++ {
				if err := insert(tx, Pool(p), Pool(q), nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func buildRack(tx *store.Tx, rng *rand.Rand, sp Spec, d, r int,
	create func(*store.Tx, string, string, ...entity.Attr) error,
	insert func(*store.Tx, string, string, *int64) error,
	str func(string, string) entity.Attr, num func(string, int64) entity.Attr) error {
	at := func(u int64) *int64 { return &u }
	rack, sw, cons, pdu, blk := Rack(d, r), Switch(d, r), Console(d, r), PDU(d, r), Block(d, r)
	if err := create(tx, rack, "rack", num("row", int64(r/RacksPerRow+1))); err != nil {
		return err
	}
	if err := insert(tx, Row(d, r), rack, nil); err != nil {
		return err
	}
	if err := create(tx, sw, "switch", str("model", "7050SX"), str("serial", "SW"+sw)); err != nil {
		return err
	}
	if err := create(tx, cons, "console-server", str("model", "ACS6048")); err != nil {
		return err
	}
	if err := create(tx, pdu, "pdu", str("model", "AP8941")); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		u    int64
	}{{pdu, 1}, {cons, 41}, {sw, 42}} {
		if err := insert(tx, rack, p.name, at(p.u)); err != nil {
			return err
		}
	}
	if err := create(tx, blk, "ipblock", str("cidr", BlockCIDR(d, r)), str("gateway", "10."+fmt.Sprint(d*16+r/256)+"."+fmt.Sprint(r%256)+".1")); err != nil {
		return err
	}
	if err := insert(tx, "site-net", blk, nil); err != nil {
		return err
	}
	for i := 0; i < sp.ServersPerRack; i++ {
		s := Server(d, r, i)
		status := statuses[rng.IntN(len(statuses))]
		if g := (d*sp.RacksPerDC+r)*sp.ServersPerRack + i; sp.DecommissionedEvery > 0 && g%sp.DecommissionedEvery == 0 {
			status = "decommissioned"
		}
		attrs := []entity.Attr{
			str("status", status),
			str("serial", fmt.Sprintf("SN%08X", rng.Uint32())),
			str("mac", fmt.Sprintf("52:54:00:%02x:%02x:%02x", d, r%256, i)),
			num("memory_gb", []int64{32, 64, 128, 256}[rng.IntN(4)]),
			num("cpus", []int64{8, 16, 32, 64}[rng.IntN(4)]),
			str("model", []string{"R640", "R740", "DL360"}[rng.IntN(3)]),
		}
		if err := create(tx, s, "server", attrs...); err != nil {
			return err
		}
		if err := insert(tx, rack, s, at(int64(3+i))); err != nil {
			return err
		}
		for _, l := range [][2]entity.Endpoint{
			{{Name: s, Port: "eth0"}, {Name: sw, Port: fmt.Sprint(i + 1)}},
			{{Name: s, Port: "console"}, {Name: cons, Port: fmt.Sprint(i + 1)}},
			{{Name: s, Port: "psu1"}, {Name: pdu, Port: fmt.Sprint(i%24 + 1)}},
		} {
			if i >= 24 && l[1].Name == pdu {
				continue // 24 outlets
			}
			if err := tx.Connect(l[0], l[1]); err != nil {
				return err
			}
		}
		if err := insert(tx, pools[rng.IntN(len(pools))], s, nil); err != nil {
			return err
		}
		if err := insert(tx, roles[rng.IntN(len(roles))], s, nil); err != nil {
			return err
		}
		if _, err := tx.AllocateIP(entity.IPRequest{Block: blk, Entity: s, Interface: "eth0"}); err != nil {
			return err
		}
		if i < sp.VMsPerRack {
			if err := create(tx, VM(d, r, i), "vm", str("status", "allocated"), num("memory_gb", 8)); err != nil {
				return err
			}
			if err := insert(tx, s, VM(d, r, i), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// Version numbers what Build generates: it changes whenever the same spec
// would give another inventory, so that Cached builds anew.
const Version = 1

// Cached returns the path of a private copy, in dir, of the inventory of
// sp. The inventory is built once and kept in os.TempDir() under a name
// that carries the schema version, Version and the spec, so that only the
// first benchmark run of a machine pays for the build; Progress is not
// called. Processes that build the same spec at once each build it and
// rename theirs into place, whole.
func Cached(ctx context.Context, sp Spec, dir string) (string, error) {
	sp.Progress = nil
	cached := filepath.Join(os.TempDir(), fmt.Sprintf("clusto-invgen-s%d-v%d-%dx%dx%d-seed%d-vm%d-pools%dx%d-dec%d.db",
		schema.LatestVersion(), Version, sp.Datacenters, sp.RacksPerDC, sp.ServersPerRack, sp.Seed,
		sp.VMsPerRack, sp.Pools, sp.PoolMembers, sp.DecommissionedEvery))
	if _, err := os.Stat(cached); err != nil {
		if err := buildFile(ctx, sp, cached); err != nil {
			return "", fmt.Errorf("generate %s: %w", cached, err)
		}
	}
	src, err := os.Open(cached)
	if err != nil {
		return "", err
	}
	defer src.Close()
	path := filepath.Join(dir, filepath.Base(cached))
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", err
	}
	return path, dst.Close()
}

// buildFile builds the inventory of sp into a new file beside path and
// renames it into place, closed (its log checkpointed into it), so that
// no one ever sees a part of it.
func buildFile(ctx context.Context, sp Spec, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.building")
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
	s, err := store.Open(ctx, tmpPath, store.Options{})
	if err != nil {
		return err
	}
	err = Build(ctx, s, sp)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmpPath, path)
}
