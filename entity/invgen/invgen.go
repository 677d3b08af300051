// Package invgen builds large, realistic inventories for benchmarks, load
// tests and demos: datacenters with rooms, rows and racks, each rack with
// a top-of-rack switch, a console server and a PDU, servers at real rack
// positions with every NIC, console and power port cabled, one /24 per
// rack with an address per server, pools and roles. It writes through the
// store's ordinary transactions (the same code the API uses), in large
// batches.
package invgen

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// Spec sizes an inventory.
type Spec struct {
	Datacenters    int
	RacksPerDC     int
	ServersPerRack int
	// Seed makes attribute values reproducible.
	Seed uint64
	// Progress, when set, is called after each rack.
	Progress func(done, total int)
}

// Entities is how many entities Build creates for the spec.
func (sp Spec) Entities() int {
	rows := (sp.RacksPerDC + RacksPerRow - 1) / RacksPerRow
	perDC := 1 + 1 + rows + sp.RacksPerDC*(1+3+1+sp.ServersPerRack) // dc, room, rows, racks with devices and a block
	return sp.Datacenters*perDC + 1 + len(pools) + len(roles)       // + site block
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
func row(d, r int) string       { return fmt.Sprintf("dc%d-row%03d", d+1, r/RacksPerRow+1) }
func room(d int) string         { return fmt.Sprintf("dc%d-room1", d+1) }
func blockCIDR(d, r int) string { return fmt.Sprintf("10.%d.%d.0/24", d*16+r/256, r%256) }

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
			if err := create(tx, room(d), "room"); err != nil {
				return err
			}
			if err := insert(tx, DC(d), room(d), nil); err != nil {
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
					if err := create(tx, row(d, r0), "row"); err != nil {
						return err
					}
					if err := insert(tx, room(d), row(d, r0), nil); err != nil {
						return err
					}
					for r := r0; r < min(r0+RacksPerRow, sp.RacksPerDC); r++ {
						if err := buildRack(tx, rng, d, r, sp.ServersPerRack, create, insert, str, num); err != nil {
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
	return nil
}

func buildRack(tx *store.Tx, rng *rand.Rand, d, r, servers int,
	create func(*store.Tx, string, string, ...entity.Attr) error,
	insert func(*store.Tx, string, string, *int64) error,
	str func(string, string) entity.Attr, num func(string, int64) entity.Attr) error {
	at := func(u int64) *int64 { return &u }
	rack, sw, cons, pdu, blk := Rack(d, r), Switch(d, r), Console(d, r), PDU(d, r), Block(d, r)
	if err := create(tx, rack, "rack", num("row", int64(r/RacksPerRow+1))); err != nil {
		return err
	}
	if err := insert(tx, row(d, r), rack, nil); err != nil {
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
	if err := create(tx, blk, "ipblock", str("cidr", blockCIDR(d, r)), str("gateway", "10."+fmt.Sprint(d*16+r/256)+"."+fmt.Sprint(r%256)+".1")); err != nil {
		return err
	}
	if err := insert(tx, "site-net", blk, nil); err != nil {
		return err
	}
	for i := 0; i < servers; i++ {
		s := Server(d, r, i)
		attrs := []entity.Attr{
			str("status", statuses[rng.IntN(len(statuses))]),
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
	}
	return nil
}
