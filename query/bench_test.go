package query

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/schema"
)

// The benchmark inventory: 100,000 entities and about 1,000,000
// attributes, built through the store (Create, Insert, Connect) in
// large transactions, and cached in os.TempDir() under a name that
// carries the schema version and benchGenVersion, so that only the first
// run of a build pays for it.
//
//	4 datacenters dc01..dc04, each with 5 rooms (dcNN-room1..5) of 10 rows
//	(dcNN-row001..050) of 10 racks (dcNN-r0001..0500): 2,000 racks.
//	In each rack: a switch dcNN-rRRRR-sw, 40 servers dcNN-rRRRR-s01..s40;
//	a console server (-con) in odd racks, a PDU (-pdu) in even ones.
//	Servers: 10 attributes (status, serial, mac, model, vendor, asset,
//	owner, memory_gb, cpus, ip) and a disk.sda subkey; every server's eth0
//	is linked to its rack's switch, and servers s01-s24 of odd racks have
//	their console linked to the rack's console server.
//	13,000 VMs in the first servers of each rack, 600 pools of 20 members
//	(pools 1-10 nested in pool 11), 100 roles, 50 classes, 26 services.
const benchGenVersion = 1

const (
	benchDCs          = 4
	benchRoomsPerDC   = 5
	benchRowsPerRoom  = 10
	benchRacksPerRow  = 10
	benchServersPerRk = 40
	benchVMs          = 13000
	benchPools        = 600
	benchPoolMembers  = 20
)

var benchOnce struct {
	sync.Once
	path string
	err  error
}

// benchStore opens the cached benchmark inventory, building it if needed.
func benchStore(b *testing.B) *store.Store {
	b.Helper()
	benchOnce.Do(func() {
		benchOnce.path = filepath.Join(os.TempDir(), fmt.Sprintf("clusto-query-bench-s%d-g%d.db", schema.LatestVersion(), benchGenVersion))
		if _, err := os.Stat(benchOnce.path); err == nil {
			return
		}
		start := time.Now()
		tmp := benchOnce.path + fmt.Sprintf(".building-%d", os.Getpid())
		if benchOnce.err = buildBenchInventory(tmp); benchOnce.err != nil {
			return
		}
		if benchOnce.err = os.Rename(tmp, benchOnce.path); benchOnce.err != nil {
			return
		}
		fmt.Fprintf(os.Stderr, "built the benchmark inventory %s in %s\n", benchOnce.path, time.Since(start).Round(time.Second))
	})
	if benchOnce.err != nil {
		b.Fatal(benchOnce.err)
	}
	st, err := store.Open(context.Background(), benchOnce.path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func buildBenchInventory(path string) error {
	ctx := context.Background()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	st, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	models := []string{"r640", "r650", "r740", "dl360"}
	vendors := []string{"dell", "hpe"}
	owners := []string{"web", "db", "ops", "batch", "ml"}
	memory := []int64{32, 64, 128, 256, 512}
	server := 0
	rackNo := 0
	for dc := 1; dc <= benchDCs; dc++ {
		dcName := fmt.Sprintf("dc%02d", dc)
		err := st.Update(ctx, "bench", func(tx *store.Tx) error {
			if err := tx.Create(entity.NewEntity{Name: dcName, Driver: "datacenter", Attrs: []entity.Attr{str("region", fmt.Sprintf("region-%d", dc))}}); err != nil {
				return err
			}
			for room := 1; room <= benchRoomsPerDC; room++ {
				roomName := fmt.Sprintf("%s-room%d", dcName, room)
				if err := createIn(tx, dcName, entity.NewEntity{Name: roomName, Driver: "room"}); err != nil {
					return err
				}
				for r := 1; r <= benchRowsPerRoom; r++ {
					row := (room-1)*benchRowsPerRoom + r
					rowName := fmt.Sprintf("%s-row%03d", dcName, row)
					if err := createIn(tx, roomName, entity.NewEntity{Name: rowName, Driver: "row"}); err != nil {
						return err
					}
					for k := 1; k <= benchRacksPerRow; k++ {
						rackNo++
						rack := fmt.Sprintf("%s-r%04d", dcName, (row-1)*benchRacksPerRow+k)
						if err := createIn(tx, rowName, entity.NewEntity{Name: rack, Driver: "rack", Attrs: []entity.Attr{
							num("row", int64(row)), str("status", "in-service"), str("asset", fmt.Sprintf("RK%06d", rackNo))}}); err != nil {
							return err
						}
						sw := rack + "-sw"
						if err := createIn(tx, rack, entity.NewEntity{Name: sw, Driver: "switch", Attrs: []entity.Attr{
							str("model", "ex4300"), str("serial", fmt.Sprintf("SW%06d", rackNo)), str("asset", fmt.Sprintf("AS%06d", rackNo)),
							ipa("ip", benchAddr(0, rackNo).String()), str("status", "in-service"), str("mac", fmt.Sprintf("02:00:00:%02x:%02x:%02x", rackNo>>16, rackNo>>8&0xff, rackNo&0xff))}}); err != nil {
							return err
						}
						extra, extraDriver := rack+"-con", "console-server"
						if rackNo%2 == 0 {
							extra, extraDriver = rack+"-pdu", "pdu"
						}
						if err := createIn(tx, rack, entity.NewEntity{Name: extra, Driver: extraDriver, Attrs: []entity.Attr{
							str("model", "acs48"), str("serial", fmt.Sprintf("X%06d", rackNo)), ipa("ip", benchAddr(1, rackNo).String())}}); err != nil {
							return err
						}
						for s := 1; s <= benchServersPerRk; s++ {
							server++
							name := fmt.Sprintf("%s-s%02d", rack, s)
							status := "allocated"
							switch {
							case server%1000 == 7:
								status = "broken"
							case server%10 == 3:
								status = "unallocated"
							case server%50 == 11:
								status = "spare"
							}
							if err := createIn(tx, rack, entity.NewEntity{Name: name, Driver: "server", Attrs: []entity.Attr{
								str("status", status), str("serial", fmt.Sprintf("SN%07d", server)),
								str("mac", fmt.Sprintf("02:01:%02x:%02x:%02x:%02x", server>>24, server>>16&0xff, server>>8&0xff, server&0xff)),
								str("model", models[server%len(models)]), str("vendor", vendors[server%len(vendors)]),
								str("asset", fmt.Sprintf("A%07d", server)), str("owner", owners[server%len(owners)]),
								num("memory_gb", memory[server%len(memory)]), num("cpus", int64(16<<(server%3))),
								ipa("ip", benchAddr(2, server).String()), sub("disk", "sda", []string{"ssd", "hdd", "nvme"}[server%3])}}); err != nil {
								return err
							}
							if err := tx.Connect(entity.Endpoint{Name: name, Port: "eth0"}, entity.Endpoint{Name: sw, Port: fmt.Sprint(s)}); err != nil {
								return err
							}
							if extraDriver == "console-server" && s <= 24 {
								if err := tx.Connect(entity.Endpoint{Name: name, Port: "console"}, entity.Endpoint{Name: extra, Port: fmt.Sprint(s)}); err != nil {
									return err
								}
							}
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("build %s: %w", dcName, err)
		}
	}
	// VMs on the first servers of every rack, then the groups.
	err = st.Update(ctx, "bench", func(tx *store.Tx) error {
		racks := benchDCs * benchRoomsPerDC * benchRowsPerRoom * benchRacksPerRow
		for i := 0; i < benchVMs; i++ {
			rack := i % racks
			host := fmt.Sprintf("dc%02d-r%04d-s%02d", rack/500+1, rack%500+1, i/racks+1)
			if err := createIn(tx, host, entity.NewEntity{Name: fmt.Sprintf("%s-vm", host), Driver: "vm", Attrs: []entity.Attr{
				str("status", "allocated"), ipa("ip", benchAddr(3, i).String()), num("memory_gb", 8), str("owner", owners[i%len(owners)])}}); err != nil {
				return err
			}
		}
		groups := []struct {
			driver, prefix string
			n              int
		}{{"pool", "pool", benchPools}, {"role", "role", 100}, {"class", "class", 50}, {"service", "service", 26}}
		member := 0
		for _, g := range groups {
			for i := 1; i <= g.n; i++ {
				name := fmt.Sprintf("%s-%04d", g.prefix, i)
				if err := tx.Create(entity.NewEntity{Name: name, Driver: g.driver}); err != nil {
					return err
				}
				if g.driver != "pool" {
					continue
				}
				for j := 0; j < benchPoolMembers; j++ {
					member++
					s := (member * 7919) % server
					rack := s / benchServersPerRk
					host := fmt.Sprintf("dc%02d-r%04d-s%02d", rack/500+1, rack%500+1, s%benchServersPerRk+1)
					if _, err := tx.Insert(name, host, entity.Placement{}); err != nil && !entity.IsKind(err, entity.KindConflict) {
						return err
					}
				}
				if i == 11 {
					for j := 1; j <= 10; j++ {
						if _, err := tx.Insert(name, fmt.Sprintf("pool-%04d", j), entity.Placement{}); err != nil {
							return err
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("build VMs and groups: %w", err)
	}
	return nil
}

func createIn(tx *store.Tx, parent string, e entity.NewEntity) error {
	if err := tx.Create(e); err != nil {
		return err
	}
	_, err := tx.Insert(parent, e.Name, entity.Placement{})
	return err
}

// benchAddr numbers addresses: 10.<block>.x.y for n < 65536, IPv6 beyond.
func benchAddr(block, n int) netip.Addr {
	if n < 1<<16 {
		return netip.AddrFrom4([4]byte{10, byte(block), byte(n >> 8), byte(n)})
	}
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(block), 14: byte(n >> 8), 15: byte(n)})
}

// benchQuery is one standard question, asked in the query language and
// in the best SQL written by hand for this schema and this inventory.
type benchQuery struct {
	name, query string
	opts        Options
	// page and count are the hand-written statements; args are bound to
	// both. Each is also run as one statement, the page with its total
	// from a window (windowed), and the faster of the two forms counts.
	page, count string
	args        []any
	want        int // matches
}

var benchQueries = []benchQuery{
	{
		name: "name", query: `name:dc04-r0421-s33`,
		page:  `SELECT name, driver, kind, version FROM entities WHERE name = ? AND until IS NULL ORDER BY name LIMIT 101`,
		count: `SELECT count(*) FROM entities WHERE name = ? AND until IS NULL`,
		args:  []any{"dc04-r0421-s33"}, want: 1,
	},
	{
		name: "driver", query: `driver:console-server`,
		page:  `SELECT name, driver, kind, version FROM entities WHERE driver = ? AND until IS NULL ORDER BY name LIMIT 101`,
		count: `SELECT count(*) FROM entities WHERE driver = ? AND until IS NULL`,
		args:  []any{"console-server"}, want: 1000,
	},
	{
		name: "attr", query: `attr:status,broken`,
		page: `SELECT e.name, e.driver, e.kind, e.version FROM attrs a CROSS JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
			WHERE a.key = ? AND a.value = ? AND a.until IS NULL ORDER BY e.name LIMIT 101`,
		count: `SELECT count(*) FROM attrs a CROSS JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
			WHERE a.key = ? AND a.value = ? AND a.until IS NULL`,
		args: []any{"status", "broken"}, want: 80,
	},
	{
		// By hand: from the switch along its connections, both ways.
		name: "connected", query: `driver:server connected to name:dc01-r0007-sw`,
		page: `SELECT name, driver, kind, version FROM (
				SELECT e.name, e.driver, e.kind, e.version FROM entities sw
				CROSS JOIN connections c ON c.a = sw.id AND c.type IN ('contains','member','link') AND c.until IS NULL
				CROSS JOIN entities e ON e.id = c.b AND e.driver = ?1 AND e.until IS NULL
				WHERE sw.name = ?2 AND sw.until IS NULL
				UNION
				SELECT e.name, e.driver, e.kind, e.version FROM entities sw
				CROSS JOIN connections c ON c.b = sw.id AND c.type IN ('contains','member') AND c.until IS NULL
				CROSS JOIN entities e ON e.id = c.a AND e.driver = ?1 AND e.until IS NULL
				WHERE sw.name = ?2 AND sw.until IS NULL)
			ORDER BY name LIMIT 101`,
		count: `SELECT count(*) FROM (
				SELECT e.id FROM entities sw
				CROSS JOIN connections c ON c.a = sw.id AND c.type IN ('contains','member','link') AND c.until IS NULL
				CROSS JOIN entities e ON e.id = c.b AND e.driver = ?1 AND e.until IS NULL
				WHERE sw.name = ?2 AND sw.until IS NULL
				UNION
				SELECT e.id FROM entities sw
				CROSS JOIN connections c ON c.b = sw.id AND c.type IN ('contains','member') AND c.until IS NULL
				CROSS JOIN entities e ON e.id = c.a AND e.driver = ?1 AND e.until IS NULL
				WHERE sw.name = ?2 AND sw.until IS NULL)`,
		args: []any{"server", "dc01-r0007-sw"}, want: 40,
	},
	{
		// Three levels down: row, racks, servers, VMs. By hand the depth
		// is known, so three joins replace the recursion.
		name: "in-3-levels", query: `driver:vm in name:dc02-row013`,
		page: `SELECT e.name, e.driver, e.kind, e.version FROM entities row
			CROSS JOIN connections c1 ON c1.a = row.id AND c1.type = 'contains' AND c1.until IS NULL
			CROSS JOIN connections c2 ON c2.a = c1.b AND c2.type = 'contains' AND c2.until IS NULL
			CROSS JOIN connections c3 ON c3.a = c2.b AND c3.type = 'contains' AND c3.until IS NULL
			CROSS JOIN entities e ON e.id = c3.b AND e.driver = ? AND e.until IS NULL
			WHERE row.name = ? AND row.until IS NULL ORDER BY e.name LIMIT 101`,
		count: `SELECT count(*) FROM entities row
			CROSS JOIN connections c1 ON c1.a = row.id AND c1.type = 'contains' AND c1.until IS NULL
			CROSS JOIN connections c2 ON c2.a = c1.b AND c2.type = 'contains' AND c2.until IS NULL
			CROSS JOIN connections c3 ON c3.a = c2.b AND c3.type = 'contains' AND c3.until IS NULL
			CROSS JOIN entities e ON e.id = c3.b AND e.driver = ? AND e.until IS NULL
			WHERE row.name = ? AND row.until IS NULL`,
		args: []any{"vm", "dc02-row013"}, want: 70,
	},
	{
		// The same shape over a wider subtree: a room holds 5,000 entities.
		name: "in-3-levels-wide", query: `driver:switch in name:dc02-room3`,
		page: `SELECT e.name, e.driver, e.kind, e.version FROM entities room
			CROSS JOIN connections c1 ON c1.a = room.id AND c1.type = 'contains' AND c1.until IS NULL
			CROSS JOIN connections c2 ON c2.a = c1.b AND c2.type = 'contains' AND c2.until IS NULL
			CROSS JOIN connections c3 ON c3.a = c2.b AND c3.type = 'contains' AND c3.until IS NULL
			CROSS JOIN entities e ON e.id = c3.b AND e.driver = ? AND e.until IS NULL
			WHERE room.name = ? AND room.until IS NULL ORDER BY e.name LIMIT 101`,
		count: `SELECT count(*) FROM entities room
			CROSS JOIN connections c1 ON c1.a = room.id AND c1.type = 'contains' AND c1.until IS NULL
			CROSS JOIN connections c2 ON c2.a = c1.b AND c2.type = 'contains' AND c2.until IS NULL
			CROSS JOIN connections c3 ON c3.a = c2.b AND c3.type = 'contains' AND c3.until IS NULL
			CROSS JOIN entities e ON e.id = c3.b AND e.driver = ? AND e.until IS NULL
			WHERE room.name = ? AND room.until IS NULL`,
		args: []any{"switch", "dc02-room3"}, want: 100,
	},
	{
		// The question of in-3-levels answered by hand for any depth, as
		// the language's `in` means: a recursive CTE down from the row.
		name: "in-any-depth", query: `driver:vm in name:dc02-row013`,
		page: `WITH RECURSIVE d(id) AS (
				SELECT c.b FROM entities row CROSS JOIN connections c ON c.a = row.id AND c.type = 'contains' AND c.until IS NULL
				WHERE row.name = ?2 AND row.until IS NULL
				UNION ALL SELECT c.b FROM d CROSS JOIN connections c ON c.a = d.id AND c.type = 'contains' AND c.until IS NULL)
			SELECT e.name, e.driver, e.kind, e.version FROM d CROSS JOIN entities e ON e.id = d.id AND e.driver = ?1 AND e.until IS NULL
			ORDER BY e.name LIMIT 101`,
		count: `WITH RECURSIVE d(id) AS (
				SELECT c.b FROM entities row CROSS JOIN connections c ON c.a = row.id AND c.type = 'contains' AND c.until IS NULL
				WHERE row.name = ?2 AND row.until IS NULL
				UNION ALL SELECT c.b FROM d CROSS JOIN connections c ON c.a = d.id AND c.type = 'contains' AND c.until IS NULL)
			SELECT count(*) FROM d CROSS JOIN entities e ON e.id = d.id AND e.driver = ?1 AND e.until IS NULL`,
		args: []any{"vm", "dc02-row013"}, want: 70,
	},
	{
		// The seed's question: servers in a datacenter with a status. By
		// hand: from the broken servers up four known levels.
		name: "in-anchored", query: `driver:server in name:dc02 and attr:status,broken`,
		page: `SELECT e.name, e.driver, e.kind, e.version FROM attrs a
			CROSS JOIN entities e ON e.id = a.entity_id AND e.driver = ? AND e.until IS NULL
			CROSS JOIN connections c1 ON c1.b = e.id AND c1.type = 'contains' AND c1.until IS NULL
			CROSS JOIN connections c2 ON c2.b = c1.a AND c2.type = 'contains' AND c2.until IS NULL
			CROSS JOIN connections c3 ON c3.b = c2.a AND c3.type = 'contains' AND c3.until IS NULL
			CROSS JOIN connections c4 ON c4.b = c3.a AND c4.type = 'contains' AND c4.until IS NULL
			CROSS JOIN entities dc ON dc.id = c4.a AND dc.name = ? AND dc.until IS NULL
			WHERE a.key = ? AND a.value = ? AND a.until IS NULL ORDER BY e.name LIMIT 101`,
		count: `SELECT count(*) FROM attrs a
			CROSS JOIN entities e ON e.id = a.entity_id AND e.driver = ? AND e.until IS NULL
			CROSS JOIN connections c1 ON c1.b = e.id AND c1.type = 'contains' AND c1.until IS NULL
			CROSS JOIN connections c2 ON c2.b = c1.a AND c2.type = 'contains' AND c2.until IS NULL
			CROSS JOIN connections c3 ON c3.b = c2.a AND c3.type = 'contains' AND c3.until IS NULL
			CROSS JOIN connections c4 ON c4.b = c3.a AND c4.type = 'contains' AND c4.until IS NULL
			CROSS JOIN entities dc ON dc.id = c4.a AND dc.name = ? AND dc.until IS NULL
			WHERE a.key = ? AND a.value = ? AND a.until IS NULL`,
		args: []any{"server", "dc02", "status", "broken"}, want: 20,
	},
	{
		name: "regex", query: `name:/^dc03-r01[0-9]{2}-sw$/`,
		page: `SELECT name, driver, kind, version FROM entities WHERE name >= ? AND name < ? AND name REGEXP ? AND until IS NULL
			ORDER BY name LIMIT 101`,
		count: `SELECT count(*) FROM entities WHERE name >= ? AND name < ? AND name REGEXP ? AND until IS NULL`,
		args:  []any{"dc03-r01", "dc03-r02", "^dc03-r01[0-9]{2}-sw$"}, want: 100,
	},
	{
		// By hand: from the spare servers, whose names are then checked.
		name: "glob-and-attr", query: `name:dc01-r00* attr:status,spare`,
		page: `SELECT e.name, e.driver, e.kind, e.version FROM attrs a CROSS JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
			WHERE a.key = ? AND a.value = ? AND a.until IS NULL AND e.name >= ? AND e.name < ? AND e.name GLOB ? ORDER BY e.name LIMIT 101`,
		count: `SELECT count(*) FROM attrs a CROSS JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
			WHERE a.key = ? AND a.value = ? AND a.until IS NULL AND e.name >= ? AND e.name < ? AND e.name GLOB ?`,
		args: []any{"status", "spare", "dc01-r00", "dc01-r01", "dc01-r00*"}, want: 79,
	},
	{
		name: "pool-nested", query: `pool:pool-0011`,
		page: `WITH RECURSIVE m(id) AS (
				SELECT c.b FROM connections c WHERE c.a = (SELECT id FROM entities WHERE name = ? AND driver = 'pool' AND until IS NULL) AND c.type = 'member' AND c.until IS NULL
				UNION SELECT c.b FROM m CROSS JOIN connections c ON c.a = m.id WHERE c.type = 'member' AND c.until IS NULL)
			SELECT e.name, e.driver, e.kind, e.version FROM m CROSS JOIN entities e ON e.id = m.id AND e.until IS NULL ORDER BY e.name LIMIT 101`,
		count: `WITH RECURSIVE m(id) AS (
				SELECT c.b FROM connections c WHERE c.a = (SELECT id FROM entities WHERE name = ? AND driver = 'pool' AND until IS NULL) AND c.type = 'member' AND c.until IS NULL
				UNION SELECT c.b FROM m CROSS JOIN connections c ON c.a = m.id WHERE c.type = 'member' AND c.until IS NULL)
			SELECT count(*) FROM m CROSS JOIN entities e ON e.id = m.id AND e.until IS NULL`,
		args: []any{"pool-0011"}, want: 230,
	},
	{
		name: "ip-cidr", query: `ip:10.2.1.0/24`,
		page: `SELECT e.name, e.driver, e.kind, e.version FROM entities e WHERE e.until IS NULL AND e.id IN (
				SELECT a.entity_id FROM attrs a WHERE a.ip >= ? AND a.ip <= ? AND a.until IS NULL) ORDER BY e.name LIMIT 101`,
		count: `SELECT count(*) FROM entities e WHERE e.until IS NULL AND e.id IN (
				SELECT a.entity_id FROM attrs a WHERE a.ip >= ? AND a.ip <= ? AND a.until IS NULL)`,
		args: []any{ipBytes("10.2.1.0"), ipBytes("10.2.1.255")}, want: 256,
	},
}

func ipBytes(s string) []byte {
	b := netip.MustParseAddr(s).As16()
	return b[:]
}

// windowed turns a hand-written page statement into one that also
// returns the total, as a fifth column: count(*) OVER () in its first
// select list (which ends in "version FROM").
func windowed(page string) string {
	return strings.Replace(page, "version FROM", "version, count(*) OVER () FROM", 1)
}

// runHand answers a question with its hand-written statements, in one
// read transaction as Run does: the page then the count, or (window) the
// page with the total in one statement.
func runHand(ctx context.Context, st *store.Store, q benchQuery, window bool) (res *Result, err error) {
	err = st.View(ctx, func(tx *store.View) error {
		res, err = runHandIn(ctx, tx, q, window)
		return err
	})
	return res, err
}

func runHandIn(ctx context.Context, tx *store.View, q benchQuery, window bool) (*Result, error) {
	page := q.page
	if window {
		page = windowed(page)
	}
	rows, err := tx.QueryContext(ctx, page, q.args...)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	for rows.Next() {
		var m Match
		dest := []any{&m.Name, &m.Driver, &m.Kind, &m.Version}
		if window {
			dest = append(dest, &res.Total)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, err
		}
		res.Results = append(res.Results, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(res.Results) > DefaultLimit {
		res.Results = res.Results[:DefaultLimit]
	}
	if window {
		return res, nil
	}
	if err := tx.QueryRowContext(ctx, q.count, q.args...).Scan(&res.Total); err != nil {
		return nil, err
	}
	return res, nil
}

// runSQL runs the compiled statements without parsing or compiling, to
// separate the cost of the SQL from that of the front end.
func runSQL(ctx context.Context, st *store.Store, c *Compiled) (res *Result, err error) {
	err = st.View(ctx, func(v *store.View) error {
		res, err = c.Exec(ctx, v)
		return err
	})
	return res, err
}

// Each standard query is timed at least benchReps times and for at least
// benchMinTime (at most benchMaxReps times), whatever b.N, so that `make
// bench` (-benchtime 1x) still measures medians rather than one cold run.
const (
	benchReps    = 31
	benchMinTime = 500 * time.Millisecond
	benchMaxReps = 2000
)

// BenchmarkQuery times each standard query end to end (Run: parse,
// compile, page and count in one read transaction) against the best
// hand-written SQL for the same question, interleaved in the same loop.
// It reports medians: ns/op (Run), sql-ns/op (the compiled statements
// alone), hand2-ns/op (hand-written page and count), hand1-ns/op
// (hand-written page with a window total, one statement), and x-hand: Run
// over the faster hand-written form. Run parses through the parse cache;
// BenchmarkParse measures the parser itself.
func BenchmarkQuery(b *testing.B) {
	st := benchStore(b)
	db := st.Reader()
	ctx := context.Background()
	for _, bq := range benchQueries {
		b.Run(bq.name, func(b *testing.B) {
			q, err := Parse(bq.query)
			if err != nil {
				b.Fatal(err)
			}
			withDB := bq.opts
			withDB.DB = db // as Run compiles: with rarity estimates
			c, err := Compile(q, withDB)
			if err != nil {
				b.Fatal(err)
			}
			// Same answers, first.
			got, err := Run(ctx, db, bq.query, bq.opts)
			if err != nil {
				b.Fatal(err)
			}
			for _, window := range []bool{false, true} {
				hand, err := runHand(ctx, st, bq, window)
				if err != nil {
					b.Fatal(err)
				}
				if got.Total != bq.want || hand.Total != bq.want {
					b.Fatalf("%s: %d matches, hand-written (window %v) %d, want %d", bq.query, got.Total, window, hand.Total, bq.want)
				}
				if diff := cmp.Diff(names(hand.Results), names(got.Results)); diff != "" {
					b.Fatalf("%s: compiled and hand-written pages differ (-hand +compiled):\n%s", bq.query, diff)
				}
			}
			var tRun, tSQL, tHand, tWin []time.Duration
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N+3 || i < benchReps+3 || time.Since(start) < benchMinTime && i < benchMaxReps; i++ {
				t0 := time.Now()
				if _, err := Run(ctx, db, bq.query, bq.opts); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := runSQL(ctx, st, c); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				if _, err := runHand(ctx, st, bq, false); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				if _, err := runHand(ctx, st, bq, true); err != nil {
					b.Fatal(err)
				}
				t4 := time.Now()
				if i >= 3 { // the first runs warm the page cache
					tRun, tSQL = append(tRun, t1.Sub(t0)), append(tSQL, t2.Sub(t1))
					tHand, tWin = append(tHand, t3.Sub(t2)), append(tWin, t4.Sub(t3))
				}
			}
			b.StopTimer()
			mRun, mSQL, mHand := median(tRun), median(tSQL), min(median(tHand), median(tWin))
			b.ReportMetric(float64(mRun.Nanoseconds()), "ns/op")
			b.ReportMetric(float64(mSQL.Nanoseconds()), "sql-ns/op")
			b.ReportMetric(float64(median(tHand).Nanoseconds()), "hand2-ns/op")
			b.ReportMetric(float64(median(tWin).Nanoseconds()), "hand1-ns/op")
			b.ReportMetric(float64(mRun)/float64(mHand), "x-hand")
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestBenchQueriesPlan is a guard for the benchmark's statements: on the
// small fixture, every hand-written statement runs. (The benchmark
// itself checks they agree with the compiled ones on its inventory.)
func TestBenchQueriesPlan(t *testing.T) {
	st, _ := fixture(t)
	for _, bq := range benchQueries {
		for _, window := range []bool{false, true} {
			if _, err := runHand(context.Background(), st, bq, window); err != nil {
				t.Errorf("%s (window %v): %v", bq.name, window, strings.TrimSpace(err.Error()))
			}
		}
	}
}
