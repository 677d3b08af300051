package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func at(p int64) entity.Placement { return entity.Placement{Position: ptr(p)} }

func atH(p, h int64) entity.Placement { return entity.Placement{Position: ptr(p), Height: ptr(h)} }

func TestContainmentPositions(t *testing.T) {
	tests := []struct {
		name    string
		child   string // driver server unless noted
		place   entity.Placement
		wantErr entity.ErrorKind
		want    *entity.Relation
	}{
		{name: "bottom unit", place: at(1), want: &entity.Relation{Type: "contains", Name: "r1", Driver: "rack", Position: ptr(int64(1)), Height: ptr(int64(1))}},
		{name: "top unit of a 42U rack", place: at(42), want: &entity.Relation{Type: "contains", Name: "r1", Driver: "rack", Position: ptr(int64(42)), Height: ptr(int64(1))}},
		{name: "explicit height", place: atH(20, 4), want: &entity.Relation{Type: "contains", Name: "r1", Driver: "rack", Position: ptr(int64(20)), Height: ptr(int64(4))}},
		{name: "no position is allowed (unracked)", place: entity.Placement{}, want: &entity.Relation{Type: "contains", Name: "r1", Driver: "rack"}},
		{name: "position zero", place: at(0), wantErr: entity.KindInvalid},
		{name: "beyond the top", place: at(43), wantErr: entity.KindInvalid},
		{name: "height runs past the top", place: atH(41, 3), wantErr: entity.KindInvalid},
		{name: "zero height", place: atH(5, 0), wantErr: entity.KindInvalid},
		{name: "height without a position", place: entity.Placement{Height: ptr(int64(2))}, wantErr: entity.KindInvalid},
		{name: "overlaps the 2U server at 10-11 from below", place: atH(9, 2), wantErr: entity.KindConflict},
		{name: "overlaps it exactly at its top unit", place: at(11), wantErr: entity.KindConflict},
		{name: "just above it", place: at(12), want: &entity.Relation{Type: "contains", Name: "r1", Driver: "rack", Position: ptr(int64(12)), Height: ptr(int64(1))}},
		{name: "just below it", place: at(9), want: &entity.Relation{Type: "contains", Name: "r1", Driver: "rack", Position: ptr(int64(9)), Height: ptr(int64(1))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			create(t, s, entity.NewEntity{Name: "r1", Driver: "rack"},
				entity.NewEntity{Name: "big", Driver: "server", Attrs: []entity.Attr{num("height", 2)}},
				entity.NewEntity{Name: "s1", Driver: "server"})
			write(t, s, func(tx *store.Tx) error { _, err := tx.Insert("r1", "big", at(10)); return err })
			err := tryWrite(s, func(tx *store.Tx) error { _, err := tx.Insert("r1", "s1", tc.place); return err })
			if tc.wantErr != "" {
				wantKind(t, err, tc.wantErr)
				if got := get(t, s, "s1").Parents; len(got) != 0 {
					t.Errorf("s1 has parents %v after a failed insert", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]entity.Relation{*tc.want}, get(t, s, "s1").Parents); diff != "" {
				t.Errorf("parents (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRackUnitsFromAttribute(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "short", Driver: "rack", Attrs: []entity.Attr{num("units", 10)}},
		entity.NewEntity{Name: "s1", Driver: "server"}, entity.NewEntity{Name: "s2", Driver: "server"})
	err := tryWrite(s, func(tx *store.Tx) error { _, err := tx.Insert("short", "s1", at(11)); return err })
	wantKind(t, err, entity.KindInvalid)
	write(t, s, func(tx *store.Tx) error { _, err := tx.Insert("short", "s1", at(10)); return err })
	// One transaction inserting two overlapping devices rolls back whole.
	create(t, s, entity.NewEntity{Name: "s3", Driver: "server"})
	err = tryWrite(s, func(tx *store.Tx) error {
		if _, err := tx.Insert("short", "s2", atH(1, 3)); err != nil {
			return err
		}
		_, err := tx.Insert("short", "s3", at(3))
		return err
	})
	wantKind(t, err, entity.KindConflict)
	if got := get(t, s, "s2").Parents; len(got) != 0 {
		t.Errorf("s2 was placed although its transaction failed: %v", got)
	}
}

func TestOnePhysicalParentAndDriverRules(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "dc1", Driver: "datacenter"}, entity.NewEntity{Name: "r1", Driver: "rack"},
		entity.NewEntity{Name: "r2", Driver: "rack"}, entity.NewEntity{Name: "s1", Driver: "server"}, entity.NewEntity{Name: "p1", Driver: "pool"},
		block("b1", "10.0.0.0/16"), block("b2", "10.0.5.0/24"))
	write(t, s, func(tx *store.Tx) error { _, err := tx.Insert("r1", "s1", at(1)); return err })
	tests := []struct {
		name          string
		parent, child string
		place         entity.Placement
		want          entity.ErrorKind
	}{
		{"a second physical parent", "r2", "s1", at(1), entity.KindConflict},
		{"a rack cannot go in a server", "s1", "r2", entity.Placement{}, entity.KindInvalid},
		{"a datacenter goes nowhere", "r1", "dc1", entity.Placement{}, entity.KindInvalid},
		{"a datacenter has no units", "dc1", "r2", at(3), entity.KindInvalid},
		{"a member has no position", "p1", "s1", at(3), entity.KindInvalid},
		{"itself", "r1", "r1", entity.Placement{}, entity.KindInvalid},
		{"missing parent", "nowhere", "s1", entity.Placement{}, entity.KindNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tryWrite(s, func(tx *store.Tx) error { _, err := tx.Insert(tc.parent, tc.child, tc.place); return err })
			wantKind(t, err, tc.want)
		})
	}
	// Nested blocks are allowed, loops are not.
	write(t, s, func(tx *store.Tx) error { _, err := tx.Insert("b1", "b2", entity.Placement{}); return err })
	err := tryWrite(s, func(tx *store.Tx) error { _, err := tx.Insert("b2", "b1", entity.Placement{}); return err })
	wantKind(t, err, entity.KindInvalid)
	// Moving: remove, then insert elsewhere.
	write(t, s, func(tx *store.Tx) error {
		if err := tx.Remove("r1", "s1"); err != nil {
			return err
		}
		_, err := tx.Insert("r2", "s1", at(5))
		return err
	})
	if got := get(t, s, "s1").Parents[0].Name; got != "r2" {
		t.Errorf("s1 is in %s, want r2", got)
	}
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { return tx.Remove("r1", "s1") }), entity.KindNotFound)
}

func TestMembership(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "s1", Driver: "server"}, entity.NewEntity{Name: "s2", Driver: "server"},
		entity.NewEntity{Name: "production", Driver: "pool"}, entity.NewEntity{Name: "dbslave", Driver: "pool"},
		entity.NewEntity{Name: "mail", Driver: "role"}, entity.NewEntity{Name: "all", Driver: "pool"},
		entity.NewEntity{Name: "quarantine", Driver: "pool", Attrs: []entity.Attr{{Key: "exclusive", Value: entity.Bool(true)}}},
		entity.NewEntity{Name: "team-a", Driver: "pool", Attrs: []entity.Attr{{Key: "unique", Value: entity.Bool(true)}}},
		entity.NewEntity{Name: "team-b", Driver: "pool", Attrs: []entity.Attr{{Key: "unique", Value: entity.Bool(true)}}})
	write(t, s, func(tx *store.Tx) error {
		for _, g := range []string{"production", "dbslave", "mail", "team-a"} {
			if _, err := tx.Insert(g, "s1", entity.Placement{}); err != nil {
				return err
			}
		}
		_, err := tx.Insert("all", "production", entity.Placement{})
		return err
	})
	want := []entity.Relation{
		{Type: "member", Name: "dbslave", Driver: "pool"}, {Type: "member", Name: "mail", Driver: "role"},
		{Type: "member", Name: "production", Driver: "pool"}, {Type: "member", Name: "team-a", Driver: "pool"},
	}
	if diff := cmp.Diff(want, get(t, s, "s1").Parents); diff != "" {
		t.Errorf("s1 groups (-want +got):\n%s", diff)
	}
	tests := []struct {
		name          string
		group, member string
		want          entity.ErrorKind
	}{
		{"already a member", "production", "s1", entity.KindConflict},
		{"exclusive pool takes no member of another pool", "quarantine", "s1", entity.KindConflict},
		{"a second unique pool", "team-b", "s1", entity.KindConflict},
		{"a loop of nested pools", "production", "all", entity.KindInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tryWrite(s, func(tx *store.Tx) error { _, err := tx.Insert(tc.group, tc.member, entity.Placement{}); return err })
			wantKind(t, err, tc.want)
		})
	}
	// A member of an exclusive pool can join no other pool, but a role is fine.
	write(t, s, func(tx *store.Tx) error { _, err := tx.Insert("quarantine", "s2", entity.Placement{}); return err })
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { _, err := tx.Insert("production", "s2", entity.Placement{}); return err }), entity.KindConflict)
	write(t, s, func(tx *store.Tx) error { _, err := tx.Insert("mail", "s2", entity.Placement{}); return err })
}

func TestLinks(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "s1", Driver: "server"}, entity.NewEntity{Name: "s2", Driver: "server"},
		entity.NewEntity{Name: "switch2a", Driver: "switch"}, entity.NewEntity{Name: "cons1", Driver: "console-server"},
		entity.NewEntity{Name: "pdu3", Driver: "pdu"})
	ep := func(n, p string) entity.Endpoint { return entity.Endpoint{Name: n, Port: p} }
	write(t, s, func(tx *store.Tx) error {
		for _, l := range [][2]entity.Endpoint{{ep("s1", "eth0"), ep("switch2a", "4")}, {ep("s1", "console"), ep("cons1", "7")}, {ep("s1", "psu1"), ep("pdu3", "12")}} {
			if err := tx.Connect(l[0], l[1]); err != nil {
				return err
			}
		}
		return nil
	})
	want := []entity.Link{
		{Port: "eth0", Type: "nic", Peer: "switch2a", PeerPort: "4"},
		{Port: "console", Type: "console", Peer: "cons1", PeerPort: "7"},
		{Port: "psu1", Type: "power", Peer: "pdu3", PeerPort: "12"},
	}
	if diff := cmp.Diff(want, get(t, s, "s1").Links); diff != "" {
		t.Errorf("s1 links (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]entity.Link{{Port: "4", Type: "nic", Peer: "s1", PeerPort: "eth0"}}, get(t, s, "switch2a").Links); diff != "" {
		t.Errorf("switch links (-want +got):\n%s", diff)
	}
	tests := []struct {
		name string
		a, b entity.Endpoint
		want entity.ErrorKind
	}{
		{"the switch port is taken", ep("s2", "eth0"), ep("switch2a", "4"), entity.KindConflict},
		{"the server port is taken", ep("s1", "eth0"), ep("switch2a", "5"), entity.KindConflict},
		{"taken seen from the other side", ep("switch2a", "4"), ep("s2", "eth1"), entity.KindConflict},
		{"a port the driver lacks", ep("s2", "eth9"), ep("switch2a", "5"), entity.KindInvalid},
		{"a switch port past 48", ep("s2", "eth0"), ep("switch2a", "49"), entity.KindInvalid},
		{"ports of different types", ep("s2", "console"), ep("switch2a", "5"), entity.KindInvalid},
		{"to itself", ep("s2", "eth0"), ep("s2", "eth1"), entity.KindInvalid},
		{"a missing entity", ep("s9", "eth0"), ep("switch2a", "5"), entity.KindNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantKind(t, tryWrite(s, func(tx *store.Tx) error { return tx.Connect(tc.a, tc.b) }), tc.want)
		})
	}
	var free string
	write(t, s, func(tx *store.Tx) error {
		var err error
		free, err = tx.FreePort("switch2a", "nic")
		return err
	})
	if free != "1" {
		t.Errorf("first free nic port of switch2a = %q, want 1", free)
	}
	// Unplug by naming one side's port only; the port is then free again.
	write(t, s, func(tx *store.Tx) error { return tx.Disconnect(ep("switch2a", "4"), ep("s1", "")) })
	write(t, s, func(tx *store.Tx) error { return tx.Connect(ep("s2", "eth0"), ep("switch2a", "4")) })
	if got := len(get(t, s, "s1").Links); got != 2 {
		t.Errorf("s1 has %d links after unplugging one of three", got)
	}
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { return tx.Disconnect(ep("s1", "eth0"), ep("switch2a", "")) }), entity.KindNotFound)
}

func TestDeleteAndCascade(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "r1", Driver: "rack"}, entity.NewEntity{Name: "s1", Driver: "server"},
		entity.NewEntity{Name: "sw1", Driver: "switch"}, entity.NewEntity{Name: "p1", Driver: "pool"},
		entity.NewEntity{Name: "s2", Driver: "server", Attrs: []entity.Attr{{Key: "peer", Value: entity.Ref("s1")}, str("status", "up")}})
	write(t, s, func(tx *store.Tx) error {
		if _, err := tx.Insert("r1", "s1", at(3)); err != nil {
			return err
		}
		if _, err := tx.Insert("p1", "s1", entity.Placement{}); err != nil {
			return err
		}
		return tx.Connect(entity.Endpoint{Name: "s1", Port: "eth0"}, entity.Endpoint{Name: "sw1", Port: "1"})
	})
	for _, name := range []string{"r1", "s1", "p1"} {
		err := tryWrite(s, func(tx *store.Tx) error { return tx.Delete(name, false) })
		wantKind(t, err, entity.KindConflict)
		if ok, _ := s.Exists(context.Background(), name); !ok {
			t.Fatalf("%s is gone after a refused delete", name)
		}
	}
	write(t, s, func(tx *store.Tx) error { return tx.Delete("s1", true) })
	if ok, _ := s.Exists(context.Background(), "s1"); ok {
		t.Fatal("s1 still exists after a cascade delete")
	}
	// The rack, switch and pool remain and no longer show s1; s2's reference went with it.
	for _, n := range []string{"r1", "sw1", "p1"} {
		e := get(t, s, n)
		if len(e.Children) != 0 || len(e.Links) != 0 {
			t.Errorf("%s still shows children %v links %v", n, e.Children, e.Links)
		}
	}
	if diff := cmp.Diff([]entity.Attr{str("status", "up")}, get(t, s, "s2").Attrs); diff != "" {
		t.Errorf("s2 attrs after its reference was deleted (-want +got):\n%s", diff)
	}
	// An empty rack deletes without cascade; the name is free again.
	write(t, s, func(tx *store.Tx) error { return tx.Delete("r1", false) })
	create(t, s, entity.NewEntity{Name: "s1", Driver: "server"})
	if e := get(t, s, "s1"); e.Version != 1 || len(e.Attrs) != 0 {
		t.Errorf("a new s1 inherited the old one's state: %+v", e)
	}
}

func TestRename(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "rack1", Driver: "rack"}, entity.NewEntity{Name: "rack2", Driver: "rack"},
		entity.NewEntity{Name: "s1", Driver: "server", Attrs: []entity.Attr{{Key: "home", Value: entity.Ref("rack1")}}})
	write(t, s, func(tx *store.Tx) error { _, err := tx.Insert("rack1", "s1", at(1)); return err })
	write(t, s, func(tx *store.Tx) error { return tx.Rename("rack1", "rack101") })
	e := get(t, s, "s1")
	if diff := cmp.Diff([]entity.Attr{{Key: "home", Value: entity.Ref("rack101")}}, e.Attrs); diff != "" {
		t.Errorf("reference after rename (-want +got):\n%s", diff)
	}
	if e.Parents[0].Name != "rack101" {
		t.Errorf("parent after rename = %s", e.Parents[0].Name)
	}
	if _, err := s.Get(context.Background(), "rack1"); !entity.IsKind(err, entity.KindNotFound) {
		t.Errorf("old name still resolves: %v", err)
	}
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { return tx.Rename("rack101", "rack2") }), entity.KindConflict)
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { return tx.Rename("rack101", "bad name") }), entity.KindInvalid)
}

func TestNames(t *testing.T) {
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"s1", true}, {"Server-01.example.com", true}, {"rack/12@dc1", true}, {"ünïcödé", true}, {string(long[:255]), true},
		{"", false}, {"web 01", false}, {"tab\there", false}, {"nl\n", false}, {"nul\x00", false}, {"\xff", false}, {string(long), false},
	}
	s := newStore(t)
	for _, tc := range tests {
		err := tryWrite(s, func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: tc.name, Driver: "server"}) })
		if tc.ok && err != nil {
			t.Errorf("name %q refused: %v", tc.name, err)
		}
		if !tc.ok {
			wantKind(t, err, entity.KindInvalid)
		}
	}
	// Names are case-sensitive.
	create(t, s, entity.NewEntity{Name: "S1", Driver: "server"})
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: "s1", Driver: "server"}) }), entity.KindConflict)
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: "x1", Driver: "toaster"}) }), entity.KindInvalid)
	// Driver names are case-insensitive and stored lowercase.
	create(t, s, entity.NewEntity{Name: "x2", Driver: "Server"})
	if d := get(t, s, "x2").Driver; d != "server" {
		t.Errorf("driver stored as %q", d)
	}
}

func TestConnectAutoChoosesPorts(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "s1", Driver: "server"}, entity.NewEntity{Name: "sw", Driver: "switch"},
		entity.NewEntity{Name: "pdu", Driver: "pdu"}, entity.NewEntity{Name: "cons", Driver: "console-server"}, entity.NewEntity{Name: "r", Driver: "rack"})
	ep := func(n, p string) entity.Endpoint { return entity.Endpoint{Name: n, Port: p} }
	tests := []struct {
		a, b         entity.Endpoint
		wantA, wantB string
		err          entity.ErrorKind
	}{
		{a: ep("s1", ""), b: ep("pdu", ""), wantA: "psu1", wantB: "1"},
		{a: ep("s1", ""), b: ep("sw", ""), wantA: "eth0", wantB: "1"},
		{a: ep("s1", "eth1"), b: ep("sw", ""), wantA: "eth1", wantB: "2"},
		{a: ep("cons", ""), b: ep("s1", "console"), wantA: "1", wantB: "console"},
		{a: ep("s1", ""), b: ep("sw", ""), err: entity.KindConflict}, // no free nic left on s1
		{a: ep("s1", ""), b: ep("r", ""), err: entity.KindInvalid},   // a rack has no ports
	}
	for i, tc := range tests {
		var a, b entity.Endpoint
		err := tryWrite(s, func(tx *store.Tx) error {
			var err error
			a, b, err = tx.ConnectAuto(tc.a, tc.b)
			return err
		})
		if tc.err != "" {
			wantKind(t, err, tc.err)
			continue
		}
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if a.Port != tc.wantA || b.Port != tc.wantB {
			t.Errorf("case %d: linked %s to %s, want ports %s and %s", i, a, b, tc.wantA, tc.wantB)
		}
	}
}
