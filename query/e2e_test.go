package query

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func names(ms []Match) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func split(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Fields(s)
}

// TestEndToEnd runs queries against the fixture inventory, now and as of
// the change before the later edits, and compares the matched names.
func TestEndToEnd(t *testing.T) {
	st, before := fixture(t)
	db := st.Reader()
	ctx := context.Background()
	tests := []struct {
		query string
		want  string // names in order, space-separated
		// asOf is what the query matched before the later edits, when
		// that differs from want.
		asOf *string
	}{
		// The seed's examples. There is no driver named "console": the
		// console server driver is console-server, so the seed's first
		// example matches nothing as written, and works as driver:console-server
		// or the glob driver:console*.
		{query: `driver:Console connected to name:server2`, want: ``},
		{query: `driver:console-server connected to name:server2`, want: `console1`},
		{query: `driver:Console* connected to name:server2`, want: `console1`},
		{query: `driver:Server`, want: `server1 server101 server102 server2 server3 server4 server5 server6 server7b`,
			asOf: p(`server1 server101 server102 server2 server3 server4 server5 server6 server7 server8`)},
		{query: `driver:Server connected to name:rack002`, want: `server3 server4 server5`},
		{query: `attr:foo,12 and driver:Server`, want: `server3`},
		{query: `attr:foo,12`, want: `server3 switch1`},
		{query: `driver:Server connected to name:rack002 and attr:status,unallocated`, want: `server3`,
			asOf: p(`server3 server4`)},
		// "get 4 servers in datacenter Z with status unallocated"
		{query: `driver:server in name:datacenterZ and attr:status,unallocated`, want: `server2 server3 server6 server7b`,
			asOf: p(`server2 server3 server4 server6 server7`)},
		{query: `driver:server attr:status,unallocated in name:datacenterZ`, want: `server2 server3 server6 server7b`, asOf: p(`server2 server3 server4 server6 server7`)},

		// Terms.
		{query: `name:server1`, want: `server1`},
		{query: `name:"web"`, want: `web`},
		{query: `name:rack00*`, want: `rack001 rack002 rack003`},
		{query: `name:server?`, want: `server1 server2 server3 server4 server5 server6`, asOf: p(`server1 server2 server3 server4 server5 server6 server7 server8`)},
		{query: `name:/^server[0-9]{3}$/`, want: `server101 server102`},
		{query: `name:/^(?i)SWITCH1/`, want: `switch1 switch101`},
		{query: `name:/10\.0/`, want: `net-10.0.1.0`},
		{query: `name:"server*"`, want: ``}, // quoted text is exact
		{query: `name:*`, want: strings.Join(allFixtureNames(), " "), asOf: p(strings.Join(allFixtureNamesBefore(), " "))},
		{query: `driver:SWITCH`, want: `switch1 switch101 switch2`},
		{query: `driver:/^con/`, want: `console1`},
		{query: `driver:/^CON/`, want: `console1`},
		{query: `kind:group`, want: `bigmem blog db legacy prod web`},
		{query: `kind:Resource`, want: `net-10.0.1.0`},
		{query: `kind:/^res|^gro/ and name:b*`, want: `bigmem blog`},
		{query: `attr:serial`, want: `server7b`, asOf: p(`server7`)},
		{query: `haskey:serial`, want: `server7b`, asOf: p(`server7`)},
		{query: `attr:status,unallocated`, want: `server101 server2 server3 server6 server7b`, asOf: p(`server101 server2 server3 server4 server6 server7`)},
		{query: `attr:status,un*`, want: `server101 server2 server3 server6 server7b`, asOf: p(`server101 server2 server3 server4 server6 server7`)},
		{query: `attr:status,/^(spare|broken)$/`, want: `server5`, asOf: p(`server5 server8`)},
		{query: `attr:owner,"web 01"`, want: `server6`},
		{query: `attr:disk.sda,hdd`, want: `server2`},
		{query: `attr:disk.sdb`, want: `server1`},
		{query: `haskey:disk.sdb`, want: `server1`},
		{query: `attr:disk,hdd`, want: `server1 server2`},
		{query: `attr:memory_gb>=128`, want: `server1 server5 server6`},
		{query: `attr:memory_gb > 128`, want: `server5 server6`},
		{query: `attr:memory_gb<64`, want: `server3`, asOf: p(`server3 server8`)},
		{query: `attr:memory_gb<=64`, want: `server101 server2 server3 server4`, asOf: p(`server101 server2 server3 server4 server8`)},
		{query: `attr:memory_gb=64`, want: `server101 server2 server4`},
		{query: `attr:memory_gb==64`, want: `server101 server2 server4`},
		{query: `attr:memory_gb!=64 and driver:server`, want: `server1 server3 server5 server6`, asOf: p(`server1 server3 server5 server6 server8`)},
		{query: `attr:row=2`, want: `rack003`},
		{query: `attr:memory_gb,64`, want: `server101 server2 server4`}, // text match on the canonical value
		{query: `pool:web`, want: `server1`, asOf: p(`server1 server2`)},
		{query: `pool:prod`, want: `server1 server5 web`, asOf: p(`server1 server2 server5 web`)},
		{query: `pool:legacy`, want: `prod server1 server5 web`, asOf: p(`prod server1 server2 server5 web`)},
		{query: `pool:p*`, want: `server1 server5 web`, asOf: p(`server1 server2 server5 web`)},
		{query: `pool:db`, want: ``}, // db is a role, not a pool
		{query: `role:db`, want: `server101 server3`},
		{query: `class:bigmem`, want: `server6`},
		{query: `service:blog`, want: `server2`},
		{query: `ip:10.0.1.12`, want: `server2`},
		{query: `ip:10.0.2.12`, want: `server2`},
		{query: `ip:10.0.1.0/24`, want: `net-10.0.1.0 server1 server2 server3 vm1`},
		{query: `ip:10.0.0.0/8 and driver:server`, want: `server1 server101 server2 server3`},
		{query: `ip:::ffff:10.0.1.13`, want: `server3`},
		{query: `ip:2001:db8::/32`, want: `server102 server5`},
		{query: `ip:2001:db8::5`, want: `server5`},
		{query: `ip:"2001:db8:1::2"`, want: `server102`},
		{query: `ip:0.0.0.0/0`, want: `net-10.0.1.0 server1 server101 server2 server3 vm1`},
		{query: `ip:192.168.0.0/16`, want: ``},
		{query: `*`, want: strings.Join(allFixtureNames(), " "), asOf: p(strings.Join(allFixtureNamesBefore(), " "))},

		// Boolean operators and precedence.
		{query: `driver:rack and not attr:row,1`, want: `rack003`},
		{query: `driver:rack not attr:row=1`, want: `rack003`},
		{query: `name:server1 or name:server2 and driver:rack`, want: `server1`},
		{query: `(name:server1 or name:server2) and driver:server`, want: `server1 server2`},
		{query: `not not name:pdu1`, want: `pdu1`},
		{query: `NOT name:server? AND driver:server`, want: `server101 server102 server7b`, asOf: p(`server101 server102`)},
		{query: `not driver:server in name:rack002`, want: strings.Join(without(allFixtureNames(), "server3", "server4", "server5"), " "), asOf: p(strings.Join(without(allFixtureNamesBefore(), "server3", "server4", "server5"), " "))},
		{query: `(not driver:server) in name:rack002`, want: `switch2`},

		// Relations.
		{query: `driver:switch in name:z-room1`, want: `switch1 switch2`},
		{query: `* in name:rack003`, want: `server6 server7b`, asOf: p(`server6 server7 server8`)},
		{query: `driver:vm in name:datacenterZ`, want: `vm1`},
		{query: `driver:vm in driver:rack`, want: `vm1`},
		{query: `name:datacenterZ in *`, want: ``},
		{query: `driver:datacenter contains name:vm1`, want: `datacenterZ`},
		{query: `driver:rack contains attr:status,unallocated`, want: `rack001 rack002 rack003 rack101`, asOf: p(`rack001 rack002 rack003 rack101`)},
		{query: `driver:rack contains (driver:server and attr:status,spare)`, want: `rack002`},
		{query: `driver:rack contains driver:server contains driver:vm`, want: `rack001`},
		{query: `driver:server in name:rack001 in name:datacenterZ`, want: `server1 server2`},
		{query: `driver:server in (driver:rack in name:z-row2)`, want: `server6 server7b`, asOf: p(`server6 server7 server8`)},
		{query: `driver:server and (attr:status,unallocated or attr:status,spare) in (driver:rack and attr:row,1)`, want: `server101 server2 server3 server5`, asOf: p(`server101 server2 server3 server4 server5`)},
		{query: `name:switch1 connected to *`, want: `switch1`},
		{query: `name:server1 connected to * via link`, want: `server1`}, // three links, one match
		{query: `name:server1 connected to *`, want: `server1`},
		{query: `attr:status,broken in name:rack003`, want: ``, asOf: p(`server8`)},
		{query: `name:vm1 in driver:datacenter`, want: `vm1`},
		// Nested right sides: what is inside both is listed once.
		{query: `* in (name:datacenterZ or name:z-room1 or name:rack001)`,
			want: `console1 pdu1 rack001 rack002 rack003 server1 server2 server3 server4 server5 server6 server7b switch1 switch2 vm1 z-room1 z-row1 z-row2`,
			asOf: p(`console1 pdu1 rack001 rack002 rack003 server1 server2 server3 server4 server5 server6 server7 server8 switch1 switch2 vm1 z-room1 z-row1 z-row2`)},
		{query: `(name:vm1 or name:server1 or name:rack001) in driver:datacenter`, want: `rack001 server1 vm1`},
		{query: `driver:server in name:datacenterZ and attr:status,spare`, want: `server5`},
		{query: `name:server* in name:datacenterY`, want: `server101 server102`},
		{query: `not (name:server1 in name:rack001)`, want: strings.Join(without(allFixtureNames(), "server1"), " "),
			asOf: p(strings.Join(without(allFixtureNamesBefore(), "server1"), " "))},
		{query: `* connected to name:switch1`, want: `rack001 server1 server2`, asOf: p(`rack001 server1 server2 switch2`)},
		{query: `* connected to name:switch2 via link`, want: `server3 server4 server5`, asOf: p(`server3 server4 server5 switch1`)},
		{query: `* connected to name:server1`, want: `console1 pdu1 rack001 switch1 vm1 web`},
		{query: `* connected to name:server1 via nic`, want: `switch1`},
		{query: `* connected to name:server1 via CONSOLE`, want: `console1`},
		{query: `* connected to name:server1 via power`, want: `pdu1`},
		{query: `* connected to name:server1 via contains`, want: `rack001 vm1`},
		{query: `* connected to name:server1 via member`, want: `web`},
		{query: `* connected to name:server1 via fiber`, want: ``},
		{query: `name:web connected to *`, want: `web`},
		{query: `* connected to name:web`, want: `prod server1`, asOf: p(`prod server1 server2`)},
		{query: `driver:server connected to (driver:console-server or driver:pdu)`, want: `server1 server2 server3`},
		{query: `driver:server connected to driver:switch in name:rack002`, want: `server3 server4 server5`},
		{query: `driver:server connected to (driver:switch in name:rack001)`, want: `server1 server2`},
		{query: `driver:server and not driver:server connected to driver:console-server`, want: `server101 server102 server4 server5 server6 server7b`,
			asOf: p(`server101 server102 server4 server5 server6 server7 server8`)},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			res, err := Run(ctx, db, tc.query, Options{Limit: MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(split(tc.want), names(res.Results)); diff != "" {
				t.Errorf("now: names differ (-want +got):\n%s", diff)
			}
			if res.Total != len(res.Results) || res.NextCursor != "" {
				t.Errorf("now: total %d, next cursor %q for %d results", res.Total, res.NextCursor, len(res.Results))
			}
			want := tc.want
			if tc.asOf != nil {
				want = *tc.asOf
			}
			res, err = Run(ctx, db, tc.query, Options{Limit: MaxLimit, At: before})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(split(want), names(res.Results)); diff != "" {
				t.Errorf("as of change %d: names differ (-want +got):\n%s\nGOT %q", before, diff, strings.Join(names(res.Results), " "))
			}
		})
	}
}

func p(s string) *string { return &s }

func allFixtureNames() []string {
	out := without(allFixtureNamesBefore(), "server7", "server8")
	out = append(out, "server7b")
	return sortedCopy(out)
}

func allFixtureNamesBefore() []string {
	var out []string
	for _, e := range fixtureEntities {
		out = append(out, e.name)
	}
	return sortedCopy(out)
}

func without(list []string, drop ...string) []string {
	var out []string
	for _, s := range list {
		keep := true
		for _, d := range drop {
			if s == d {
				keep = false
			}
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestMatchFields(t *testing.T) {
	st, before := fixture(t)
	ctx := context.Background()
	res, err := Run(ctx, st.Reader(), `name:server4 or name:rack002 or name:web`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := st.Get(ctx, "server4")
	if err != nil {
		t.Fatal(err)
	}
	want := []Match{
		{Name: "rack002", Driver: "rack", Kind: "equipment", Version: mustGet(t, st, "rack002").Version},
		{Name: "server4", Driver: "server", Kind: "equipment", Version: cur.Version},
		{Name: "web", Driver: "pool", Kind: "group", Version: mustGet(t, st, "web").Version},
	}
	if diff := cmp.Diff(want, res.Results); diff != "" {
		t.Errorf("matches differ (-want +got):\n%s", diff)
	}
	// As of before the edits, server4 has its older version.
	old, err := st.GetAt(ctx, "server4", before)
	if err != nil {
		t.Fatal(err)
	}
	res, err = Run(ctx, st.Reader(), `name:server4`, Options{At: before})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Match{{Name: "server4", Driver: "server", Kind: "equipment", Version: old.Version}}, res.Results); diff != "" {
		t.Errorf("as-of match differs (-want +got):\n%s", diff)
	}
	if old.Version >= cur.Version {
		t.Errorf("server4's version as of %d is %d, now %d: expected it to have grown", before, old.Version, cur.Version)
	}
}

func mustGet(t *testing.T, st *store.Store, name string) *entity.Entity {
	t.Helper()
	e, err := st.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
