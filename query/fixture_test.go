package query

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// The fixture inventory, small enough to reason about by hand:
//
//	datacenterZ                         datacenterY
//	  z-room1                             y-room1
//	    z-row1                              y-row1
//	      rack001 (row=1)                     rack101 (row=1)
//	        switch1, console1, pdu1             switch101
//	        server1 (+ vm1), server2            server101, server102
//	      rack002 (row=1)
//	        switch2, server3, server4, server5
//	    z-row2
//	      rack003 (row=2)
//	        server6, server7, server8
//
// Links: every server's eth0 to its rack's switch (server1 port 1, ...);
// console1 ports 1-3 to the console of server1, server2, server3; pdu1
// port 1 to server1's psu1; switch1 port 48 to switch2 port 48.
//
// Groups: pool web {server1, server2}; pool prod {web, server5}; pool
// legacy {prod} (nesting two deep); role db {server3, server101}; class
// bigmem {server6}; service blog {server2}.
type fixtureEntity struct {
	name, driver, parent string
	attrs                []entity.Attr
}

func str(k, v string) entity.Attr { return entity.Attr{Key: k, Value: entity.String(v)} }
func num(k string, v int64) entity.Attr {
	return entity.Attr{Key: k, Value: entity.Int(v)}
}
func ipa(k, v string) entity.Attr {
	a, err := entity.ParseValue(entity.TypeIP, v)
	if err != nil {
		panic(err)
	}
	return entity.Attr{Key: k, Value: a}
}
func sub(k, s, v string) entity.Attr { return entity.Attr{Key: k, Subkey: s, Value: entity.String(v)} }

var fixtureEntities = []fixtureEntity{
	{"datacenterZ", "datacenter", "", []entity.Attr{str("region", "eu-west")}},
	{"datacenterY", "datacenter", "", []entity.Attr{str("region", "us-east")}},
	{"z-room1", "room", "datacenterZ", nil},
	{"y-room1", "room", "datacenterY", nil},
	{"z-row1", "row", "z-room1", nil},
	{"z-row2", "row", "z-room1", nil},
	{"y-row1", "row", "y-room1", nil},
	{"rack001", "rack", "z-row1", []entity.Attr{num("row", 1)}},
	{"rack002", "rack", "z-row1", []entity.Attr{num("row", 1), str("status", "full")}},
	{"rack003", "rack", "z-row2", []entity.Attr{num("row", 2)}},
	{"rack101", "rack", "y-row1", []entity.Attr{num("row", 1)}},
	{"switch1", "switch", "rack001", []entity.Attr{str("model", "ex4200"), str("foo", "12")}},
	{"switch2", "switch", "rack002", []entity.Attr{str("model", "ex4200")}},
	{"switch101", "switch", "rack101", []entity.Attr{str("model", "qfx5100")}},
	{"console1", "console-server", "rack001", []entity.Attr{str("model", "cm4148")}},
	{"pdu1", "pdu", "rack001", nil},
	{"server1", "server", "rack001", []entity.Attr{str("status", "allocated"), num("memory_gb", 128), num("cpus", 32), ipa("ip", "10.0.1.11"), sub("disk", "sda", "ssd"), sub("disk", "sdb", "hdd")}},
	{"server2", "server", "rack001", []entity.Attr{str("status", "unallocated"), num("memory_gb", 64), ipa("ip", "10.0.1.12"), ipa("ip", "10.0.2.12"), sub("disk", "sda", "hdd")}},
	{"server3", "server", "rack002", []entity.Attr{str("status", "unallocated"), num("memory_gb", 32), str("foo", "12"), ipa("ip", "10.0.1.13")}},
	{"server4", "server", "rack002", []entity.Attr{str("status", "unallocated"), num("memory_gb", 64), str("foo", "13")}},
	{"server5", "server", "rack002", []entity.Attr{str("status", "spare"), num("memory_gb", 256), ipa("ip", "2001:db8::5")}},
	{"server6", "server", "rack003", []entity.Attr{str("status", "unallocated"), num("memory_gb", 512), str("owner", "web 01")}},
	{"server7", "server", "rack003", []entity.Attr{str("status", "unallocated"), str("serial", "SN-0007")}},
	{"server8", "server", "rack003", []entity.Attr{str("status", "broken"), num("memory_gb", 16)}},
	{"server101", "server", "rack101", []entity.Attr{str("status", "unallocated"), num("memory_gb", 64), ipa("ip", "10.1.0.1")}},
	{"server102", "server", "rack101", []entity.Attr{str("status", "allocated"), ipa("ip", "2001:db8:1::2")}},
	{"vm1", "vm", "server1", []entity.Attr{str("status", "allocated"), ipa("ip", "10.0.1.111")}},
	{"net-10.0.1.0", "ipblock", "", []entity.Attr{str("cidr", "10.0.1.0/24"), ipa("gateway", "10.0.1.1")}},
	{"web", "pool", "", nil},
	{"prod", "pool", "", nil},
	{"legacy", "pool", "", nil},
	{"db", "role", "", nil},
	{"bigmem", "class", "", nil},
	{"blog", "service", "", nil},
}

var fixtureMembers = [][2]string{
	{"web", "server1"}, {"web", "server2"},
	{"prod", "web"}, {"prod", "server5"},
	{"legacy", "prod"},
	{"db", "server3"}, {"db", "server101"},
	{"bigmem", "server6"},
	{"blog", "server2"},
}

var fixtureLinks = [][2]entity.Endpoint{
	{{Name: "server1", Port: "eth0"}, {Name: "switch1", Port: "1"}},
	{{Name: "server2", Port: "eth0"}, {Name: "switch1", Port: "2"}},
	{{Name: "server3", Port: "eth0"}, {Name: "switch2", Port: "1"}},
	{{Name: "server4", Port: "eth0"}, {Name: "switch2", Port: "2"}},
	{{Name: "server5", Port: "eth0"}, {Name: "switch2", Port: "3"}},
	{{Name: "server101", Port: "eth0"}, {Name: "switch101", Port: "1"}},
	{{Name: "console1", Port: "1"}, {Name: "server1", Port: "console"}},
	{{Name: "console1", Port: "2"}, {Name: "server2", Port: "console"}},
	{{Name: "console1", Port: "3"}, {Name: "server3", Port: "console"}},
	{{Name: "pdu1", Port: "1"}, {Name: "server1", Port: "psu1"}},
	{{Name: "switch1", Port: "48"}, {Name: "switch2", Port: "48"}},
}

// fixture builds the inventory in a new file and returns the store and
// the number of the last change of the build (the "before" state of the
// as-of tests). Then it makes later edits: server4 is allocated, server7
// renamed to server7b, server8 deleted, server2 leaves pool web, switch1
// and switch2 are unlinked.
func fixture(t testing.TB) (*store.Store, int64) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "fixture.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	err = st.Update(ctx, "fixture", func(tx *store.Tx) error {
		for _, e := range fixtureEntities {
			if err := tx.Create(entity.NewEntity{Name: e.name, Driver: e.driver, Attrs: e.attrs}); err != nil {
				return err
			}
			if e.parent != "" {
				if _, err := tx.Insert(e.parent, e.name, entity.Placement{}); err != nil {
					return err
				}
			}
		}
		for _, m := range fixtureMembers {
			if _, err := tx.Insert(m[0], m[1], entity.Placement{}); err != nil {
				return err
			}
		}
		for _, l := range fixtureLinks {
			if err := tx.Connect(l[0], l[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(ctx, "fixture", func(tx *store.Tx) error {
		if _, err := tx.SetAttr("server4", entity.AttrSelector{Key: "status"}, []entity.Value{entity.String("allocated")}); err != nil {
			return err
		}
		if err := tx.Rename("server7", "server7b"); err != nil {
			return err
		}
		if err := tx.Delete("server8", true); err != nil {
			return err
		}
		if err := tx.Remove("web", "server2"); err != nil {
			return err
		}
		return tx.Disconnect(entity.Endpoint{Name: "switch1"}, entity.Endpoint{Name: "switch2"})
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, before
}
