package query

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
)

// The benchmark inventory is invgen.Bench (98,712 entities: 2 datacenters
// of 1,000 racks of 38 servers, 6 VMs a rack, 600 small pools, one server
// in 1,000 decommissioned), built once and cached by invgen.Cached. The
// questions below name its entities through invgen's names, and what
// each must match follows from the spec.
var bench = invgen.Bench

// benchStore opens a copy of the benchmark inventory, building it first
// if no run on this machine has.
func benchStore(b *testing.B) *store.Store {
	b.Helper()
	start := time.Now()
	path, err := invgen.Cached(context.Background(), bench, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("benchmark inventory ready in %s (a copy of %s)", time.Since(start).Round(time.Millisecond), filepath.Base(path))
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
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
		name: "name", query: `name:` + invgen.Server(1, 420, 32),
		page:  `SELECT name, driver, kind, version FROM entities WHERE name = ? AND until IS NULL ORDER BY name LIMIT 101`,
		count: `SELECT count(*) FROM entities WHERE name = ? AND until IS NULL`,
		args:  []any{invgen.Server(1, 420, 32)}, want: 1,
	},
	{
		name: "driver", query: `driver:console-server`,
		page:  `SELECT name, driver, kind, version FROM entities WHERE driver = ? AND until IS NULL ORDER BY name LIMIT 101`,
		count: `SELECT count(*) FROM entities WHERE driver = ? AND until IS NULL`,
		args:  []any{"console-server"}, want: bench.Datacenters * bench.RacksPerDC, // one a rack
	},
	{
		name: "attr", query: `attr:status,decommissioned`,
		page: `SELECT e.name, e.driver, e.kind, e.version FROM attrs a CROSS JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
			WHERE a.key = ? AND a.value = ? AND a.until IS NULL ORDER BY e.name LIMIT 101`,
		count: `SELECT count(*) FROM attrs a CROSS JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
			WHERE a.key = ? AND a.value = ? AND a.until IS NULL`,
		args: []any{"status", "decommissioned"}, want: bench.Servers() / bench.DecommissionedEvery,
	},
	{
		// By hand: from the switch along its connections, both ways.
		name: "connected", query: `driver:server connected to name:` + invgen.Switch(0, 6),
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
		args: []any{"server", invgen.Switch(0, 6)}, want: bench.ServersPerRack, // their eth0
	},
	{
		// Three levels down: row, racks, servers, VMs. By hand the depth
		// is known, so three joins replace the recursion.
		name: "in-3-levels", query: `driver:vm in name:` + invgen.Row(1, 240),
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
		args: []any{"vm", invgen.Row(1, 240)}, want: invgen.RacksPerRow * bench.VMsPerRack,
	},
	{
		// The same shape over a wider subtree: a room holds its
		// datacenter's 49,050 racks, devices, rows and VMs.
		name: "in-3-levels-wide", query: `driver:switch in name:` + invgen.Room(1),
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
		args: []any{"switch", invgen.Room(1)}, want: bench.RacksPerDC,
	},
	{
		// The question of in-3-levels answered by hand for any depth, as
		// the language's `in` means: a recursive CTE down from the row.
		name: "in-any-depth", query: `driver:vm in name:` + invgen.Row(1, 240),
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
		args: []any{"vm", invgen.Row(1, 240)}, want: invgen.RacksPerRow * bench.VMsPerRack,
	},
	{
		// The seed's question: servers in a datacenter with a status. By
		// hand: from the decommissioned servers up four known levels.
		name: "in-anchored", query: `driver:server in name:` + invgen.DC(1) + ` and attr:status,decommissioned`,
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
		args: []any{"server", invgen.DC(1), "status", "decommissioned"}, want: bench.Servers() / bench.DecommissionedEvery / bench.Datacenters,
	},
	{
		name: "regex", query: `name:/^dc2-sw01[0-9]{2}$/`,
		page: `SELECT name, driver, kind, version FROM entities WHERE name >= ? AND name < ? AND name REGEXP ? AND until IS NULL
			ORDER BY name LIMIT 101`,
		count: `SELECT count(*) FROM entities WHERE name >= ? AND name < ? AND name REGEXP ? AND until IS NULL`,
		args:  []any{"dc2-sw01", "dc2-sw02", "^dc2-sw01[0-9]{2}$"}, want: 100, // dc2-sw0100 to dc2-sw0199
	},
	{
		// By hand: from the holders of the model, whose names are then
		// checked.
		name: "glob-and-attr", query: `name:dc1-sw00* attr:model,7050SX`,
		page: `SELECT e.name, e.driver, e.kind, e.version FROM attrs a CROSS JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
			WHERE a.key = ? AND a.value = ? AND a.until IS NULL AND e.name >= ? AND e.name < ? AND e.name GLOB ? ORDER BY e.name LIMIT 101`,
		count: `SELECT count(*) FROM attrs a CROSS JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
			WHERE a.key = ? AND a.value = ? AND a.until IS NULL AND e.name >= ? AND e.name < ? AND e.name GLOB ?`,
		args: []any{"model", "7050SX", "dc1-sw00", "dc1-sw01", "dc1-sw00*"}, want: 99, // dc1-sw0001 to dc1-sw0099, every switch that model
	},
	{
		name: "pool-nested", query: `pool:` + invgen.Pool(11),
		page: `WITH RECURSIVE m(id) AS (
				SELECT c.b FROM connections c WHERE c.a = (SELECT id FROM entities WHERE name = ? AND driver = 'pool' AND until IS NULL) AND c.type = 'member' AND c.until IS NULL
				UNION SELECT c.b FROM m CROSS JOIN connections c ON c.a = m.id WHERE c.type = 'member' AND c.until IS NULL)
			SELECT e.name, e.driver, e.kind, e.version FROM m CROSS JOIN entities e ON e.id = m.id AND e.until IS NULL ORDER BY e.name LIMIT 101`,
		count: `WITH RECURSIVE m(id) AS (
				SELECT c.b FROM connections c WHERE c.a = (SELECT id FROM entities WHERE name = ? AND driver = 'pool' AND until IS NULL) AND c.type = 'member' AND c.until IS NULL
				UNION SELECT c.b FROM m CROSS JOIN connections c ON c.a = m.id WHERE c.type = 'member' AND c.until IS NULL)
			SELECT count(*) FROM m CROSS JOIN entities e ON e.id = m.id AND e.until IS NULL`,
		args: []any{invgen.Pool(11)}, want: 11*bench.PoolMembers + 10, // its servers, pools 1-10 and theirs
	},
	{
		name: "ip-cidr", query: `ip:10.0.0.0/22`,
		page: `SELECT e.name, e.driver, e.kind, e.version FROM entities e WHERE e.until IS NULL AND e.id IN (
				SELECT a.entity_id FROM attrs a WHERE a.ip >= ? AND a.ip <= ? AND a.until IS NULL) ORDER BY e.name LIMIT 101`,
		count: `SELECT count(*) FROM entities e WHERE e.until IS NULL AND e.id IN (
				SELECT a.entity_id FROM attrs a WHERE a.ip >= ? AND a.ip <= ? AND a.until IS NULL)`,
		args: []any{ipBytes("10.0.0.0"), ipBytes("10.0.3.255")}, want: 4 * (bench.ServersPerRack + 1), // the blocks of racks 1-4 of dc1: their servers and gateways
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
