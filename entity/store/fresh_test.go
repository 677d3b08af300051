package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// TestRulesHoldForEntitiesCreatedInTheSameTransaction covers the checks
// that, for an entity created earlier in the same transaction, answer from
// what the transaction knows instead of querying (entity/fresh.go) and the
// per-transaction cache of child blocks. Each case breaks a rule inside
// one transaction after the knowledge was built up, and must be refused
// exactly as it is across transactions.
func TestRulesHoldForEntitiesCreatedInTheSameTransaction(t *testing.T) {
	at := func(u int64) entity.Placement { return entity.Placement{Position: &u} }
	ep := func(name, port string) entity.Endpoint { return entity.Endpoint{Name: name, Port: port} }
	cases := []struct {
		name     string
		steps    func(tx *store.Tx) error
		wantKind entity.ErrorKind
		wantMsg  string
	}{
		{
			name: "second physical parent",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{{Name: "r1", Driver: "rack"}, {Name: "r2", Driver: "rack"}, {Name: "s1", Driver: "server"}}); err != nil {
					return err
				}
				if _, err := tx.Insert("r1", "s1", at(3)); err != nil {
					return err
				}
				_, err := tx.Insert("r2", "s1", at(3))
				return err
			},
			wantKind: entity.KindConflict, wantMsg: "s1 is already in r1",
		},
		{
			name: "containment loop through new entities",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{
					{Name: "outer", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.0.0/16")}},
					{Name: "inner", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.1.0/24")}},
				}); err != nil {
					return err
				}
				if _, err := tx.Insert("outer", "inner", entity.Placement{}); err != nil {
					return err
				}
				_, err := tx.Insert("inner", "outer", entity.Placement{})
				return err
			},
			wantKind: entity.KindInvalid, wantMsg: "inner is inside outer; putting outer in it would make a loop",
		},
		{
			name: "membership loop through new groups",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{{Name: "g1", Driver: "class"}, {Name: "g2", Driver: "class"}}); err != nil {
					return err
				}
				if _, err := tx.Insert("g1", "g2", entity.Placement{}); err != nil {
					return err
				}
				_, err := tx.Insert("g2", "g1", entity.Placement{})
				return err
			},
			wantKind: entity.KindInvalid, wantMsg: "would make a loop",
		},
		{
			name: "same group twice",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{{Name: "web", Driver: "pool"}, {Name: "s1", Driver: "server"}}); err != nil {
					return err
				}
				if _, err := tx.Insert("web", "s1", entity.Placement{}); err != nil {
					return err
				}
				_, err := tx.Insert("web", "s1", entity.Placement{})
				return err
			},
			wantKind: entity.KindConflict, wantMsg: "s1 is already a member of web",
		},
		{
			name: "exclusive pool after another pool",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{
					{Name: "web", Driver: "pool"},
					{Name: "quarantine", Driver: "pool", Attrs: []entity.Attr{str("exclusive", "true")}},
					{Name: "s1", Driver: "server"},
				}); err != nil {
					return err
				}
				if _, err := tx.Insert("web", "s1", entity.Placement{}); err != nil {
					return err
				}
				_, err := tx.Insert("quarantine", "s1", entity.Placement{})
				return err
			},
			wantKind: entity.KindConflict, wantMsg: "quarantine is an exclusive pool and s1 is already in pool web",
		},
		{
			name: "pool made exclusive after it was read",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{{Name: "a", Driver: "pool"}, {Name: "b", Driver: "pool"}, {Name: "s1", Driver: "server"}, {Name: "s2", Driver: "server"}}); err != nil {
					return err
				}
				// s2 in a then b reads b's flags as not exclusive.
				for _, step := range [][2]string{{"a", "s2"}, {"b", "s2"}, {"a", "s1"}} {
					if _, err := tx.Insert(step[0], step[1], entity.Placement{}); err != nil {
						return err
					}
				}
				if _, err := tx.SetAttr("b", entity.AttrSelector{Key: "exclusive"}, []entity.Value{entity.String("true")}); err != nil {
					return err
				}
				_, err := tx.Insert("b", "s1", entity.Placement{})
				return err
			},
			wantKind: entity.KindConflict, wantMsg: "b is an exclusive pool and s1 is already in pool a",
		},
		{
			name: "port cabled twice",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{{Name: "sw1", Driver: "switch"}, {Name: "s1", Driver: "server"}}); err != nil {
					return err
				}
				if err := tx.Connect(ep("s1", "eth0"), ep("sw1", "1")); err != nil {
					return err
				}
				return tx.Connect(ep("s1", "eth0"), ep("sw1", "2"))
			},
			wantKind: entity.KindConflict, wantMsg: "port s1:eth0 is in use: it is linked to sw1:1",
		},
		{
			name: "switch port cabled twice",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{{Name: "sw1", Driver: "switch"}, {Name: "s1", Driver: "server"}, {Name: "s2", Driver: "server"}}); err != nil {
					return err
				}
				if err := tx.Connect(ep("s1", "eth0"), ep("sw1", "1")); err != nil {
					return err
				}
				return tx.Connect(ep("s2", "eth0"), ep("sw1", "1"))
			},
			wantKind: entity.KindConflict, wantMsg: "port sw1:1 is in use: it is linked to s1:eth0",
		},
		{
			name: "height changed after create",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{{Name: "r1", Driver: "rack"}, {Name: "s1", Driver: "server"}, {Name: "s2", Driver: "server", Attrs: []entity.Attr{num("height", 1)}}}); err != nil {
					return err
				}
				if _, err := tx.Insert("r1", "s1", at(10)); err != nil {
					return err
				}
				if _, err := tx.SetAttr("s2", entity.AttrSelector{Key: "height"}, []entity.Value{entity.Int(2)}); err != nil {
					return err
				}
				_, err := tx.Insert("r1", "s2", at(9)) // units 9-10 with the new height
				return err
			},
			wantKind: entity.KindConflict, wantMsg: "units 9-10 of r1 overlap s1",
		},
		{
			name: "child block prefix changed after the siblings were read",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{
					{Name: "site", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.0.0/16")}},
					{Name: "n1", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.1.0/24")}},
					{Name: "n2", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.2.0/24")}},
				}); err != nil {
					return err
				}
				if _, err := tx.Insert("site", "n1", entity.Placement{}); err != nil {
					return err
				}
				if _, err := tx.SetAttr("n1", entity.AttrSelector{Key: "cidr"}, []entity.Value{entity.String("10.0.2.0/23")}); err != nil {
					return err
				}
				_, err := tx.Insert("site", "n2", entity.Placement{})
				return err
			},
			wantKind: entity.KindConflict, wantMsg: "n2 (10.0.2.0/24) overlaps sibling block n1 (10.0.2.0/23)",
		},
		{
			name: "sibling block added in the same transaction",
			steps: func(tx *store.Tx) error {
				if err := createAll(tx, []entity.NewEntity{
					{Name: "site", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.0.0/16")}},
					{Name: "n1", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.1.0/24")}},
					{Name: "n2", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.0.0/23")}},
				}); err != nil {
					return err
				}
				if _, err := tx.Insert("site", "n1", entity.Placement{}); err != nil {
					return err
				}
				_, err := tx.Insert("site", "n2", entity.Placement{})
				return err
			},
			wantKind: entity.KindConflict, wantMsg: "n2 (10.0.0.0/23) overlaps sibling block n1 (10.0.1.0/24)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			err := tryWrite(s, tc.steps)
			wantKind(t, err, tc.wantKind)
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
			// The transaction rolled back: none of its entities exist.
			names, err := s.Names(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 0 {
				t.Errorf("after a failed transaction the store holds %v", names)
			}
		})
	}
}

// TestRemovedThingsCanBeReusedInTheSameTransaction: the knowledge of a new
// entity's connections must follow removals, or a valid batch is refused.
func TestRemovedThingsCanBeReusedInTheSameTransaction(t *testing.T) {
	s := newStore(t)
	at := func(u int64) entity.Placement { return entity.Placement{Position: &u} }
	ep := func(name, port string) entity.Endpoint { return entity.Endpoint{Name: name, Port: port} }
	write(t, s, func(tx *store.Tx) error {
		if err := createAll(tx, []entity.NewEntity{{Name: "r1", Driver: "rack"}, {Name: "r2", Driver: "rack"}, {Name: "s1", Driver: "server"}, {Name: "sw1", Driver: "switch"}, {Name: "web", Driver: "pool"}}); err != nil {
			return err
		}
		steps := []func() error{
			func() error { _, err := tx.Insert("r1", "s1", at(3)); return err },
			func() error { return tx.Remove("r1", "s1") },
			func() error { _, err := tx.Insert("r2", "s1", at(3)); return err },
			func() error { return tx.Connect(ep("s1", "eth0"), ep("sw1", "1")) },
			func() error { return tx.Disconnect(ep("s1", "eth0"), ep("sw1", "1")) },
			func() error { return tx.Connect(ep("s1", "eth0"), ep("sw1", "2")) },
			func() error { _, err := tx.Insert("web", "s1", entity.Placement{}); return err },
			func() error { return tx.Remove("web", "s1") },
			func() error { _, err := tx.Insert("web", "s1", entity.Placement{}); return err },
		}
		for i, step := range steps {
			if err := step(); err != nil {
				t.Errorf("step %d: %v", i+1, err)
				return err
			}
		}
		return nil
	})
	e := get(t, s, "s1")
	var parents []string
	for _, p := range e.Parents {
		parents = append(parents, p.Name)
	}
	if got := strings.Join(parents, ","); !strings.Contains(got, "r2") || strings.Contains(got, "r1") || !strings.Contains(got, "web") {
		t.Errorf("s1's parents are %q, want r2 and web", got)
	}
}

// TestAllocationsInANewBlockAgreeWithTheDatabase: a block created in a
// transaction keeps its runs of allocated addresses in memory; allocating
// and releasing in it in the same transaction must hand out the lowest
// free addresses and leave ip_runs exactly in step (Check verifies it).
func TestAllocationsInANewBlockAgreeWithTheDatabase(t *testing.T) {
	s := newStore(t)
	var got []string
	write(t, s, func(tx *store.Tx) error {
		if err := createAll(tx, []entity.NewEntity{
			{Name: "net", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.9.0.0/28"), str("gateway", "10.9.0.1")}},
			{Name: "s1", Driver: "server"},
		}); err != nil {
			return err
		}
		alloc := func(n int) error { return allocInto(tx, &got, "net", "s1", n) }
		if err := alloc(6); err != nil { // .2-.7
			return err
		}
		for _, a := range []string{"10.9.0.3", "10.9.0.5", "10.9.0.2"} {
			if _, err := tx.ReleaseIP("net", a); err != nil {
				return err
			}
		}
		// .3 joins the run on its right only, .9 starts a run of its own.
		for _, a := range []string{"10.9.0.3", "10.9.0.9"} {
			as, err := tx.AllocateIP(entity.IPRequest{Block: "net", Entity: "s1", Address: a})
			if err != nil {
				return err
			}
			got = append(got, as[0].Address)
		}
		return alloc(4) // .2, .5 and .8 join runs on both sides, .10 the one on its left
	})
	want := []string{"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6", "10.9.0.7", "10.9.0.3", "10.9.0.9", "10.9.0.2", "10.9.0.5", "10.9.0.8", "10.9.0.10"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addresses handed out (-want +got):\n%s", diff)
	}
	problems, err := s.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Errorf("check found problems: %+v", problems)
	}
	// The next transaction reads ip_runs from the database: .11 is next.
	write(t, s, func(tx *store.Tx) error {
		as, err := tx.AllocateIP(entity.IPRequest{Block: "net", Entity: "s1"})
		if err == nil && as[0].Address != "10.9.0.11" {
			t.Errorf("next address after the transaction is %s, want 10.9.0.11", as[0].Address)
		}
		return err
	})
}

// TestFreePortsOfNewEntities: cabling entities created in the same
// transaction without naming ports takes the next free port each time.
func TestFreePortsOfNewEntities(t *testing.T) {
	s := newStore(t)
	var got []string
	write(t, s, func(tx *store.Tx) error {
		if err := createAll(tx, []entity.NewEntity{{Name: "sw1", Driver: "switch"}, {Name: "s1", Driver: "server"}, {Name: "s2", Driver: "server"}}); err != nil {
			return err
		}
		for _, pair := range [][2]string{{"s1", "sw1"}, {"s2", "sw1"}, {"s1", "sw1"}} {
			a, b, err := tx.ConnectAuto(entity.Endpoint{Name: pair[0]}, entity.Endpoint{Name: pair[1]})
			if err != nil {
				return err
			}
			got = append(got, a.String()+"-"+b.String())
		}
		return nil
	})
	want := []string{"s1:eth0-sw1:1", "s2:eth0-sw1:2", "s1:eth1-sw1:3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("links made (-want +got):\n%s", diff)
	}
}

// TestRefusedCreateLeavesNothing: a create refused because the name is
// taken (found by the unique index, not a lookup first) leaves no change
// record behind, even when the transaction goes on and commits.
func TestRefusedCreateLeavesNothing(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "a", Driver: "server"})
	write(t, s, func(tx *store.Tx) error {
		err := tx.Create(entity.NewEntity{Name: "a", Driver: "rack"})
		wantKind(t, err, entity.KindConflict)
		if err != nil && err.Error() != `an entity named "a" already exists` {
			t.Errorf("conflict says %q", err)
		}
		return tx.Create(entity.NewEntity{Name: "b", Driver: "server"})
	})
	changes, err := s.Changes(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Op+" "+c.Entity)
	}
	if diff := cmp.Diff([]string{"create a", "create b"}, got); diff != "" {
		t.Errorf("change log (-want +got):\n%s", diff)
	}
	if e := get(t, s, "a"); e.Driver != "server" {
		t.Errorf("a is a %s now", e.Driver)
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) != 0 {
		t.Errorf("check: %v %+v", err, problems)
	}
}

// TestRunsOfANewBlockSurviveLosingTrack: a new block's runs live in memory
// until commit; a removal that drops the transaction's knowledge of the
// block must write them out first, so that later allocations, read from
// ip_runs, go on from the right place.
func TestRunsOfANewBlockSurviveLosingTrack(t *testing.T) {
	s := newStore(t)
	var got []string
	write(t, s, func(tx *store.Tx) error {
		if err := createAll(tx, []entity.NewEntity{
			{Name: "site", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.8.0.0/16")}},
			{Name: "net", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.8.1.0/24")}},
			{Name: "s1", Driver: "server"},
		}); err != nil {
			return err
		}
		alloc := func(n int) error { return allocInto(tx, &got, "net", "s1", n) }
		if _, err := tx.Insert("site", "net", entity.Placement{}); err != nil {
			return err
		}
		if err := alloc(3); err != nil { // .1-.3, in memory
			return err
		}
		if err := tx.Remove("site", "net"); err != nil { // the block is no longer tracked
			return err
		}
		if _, err := tx.ReleaseIP("net", "10.8.1.2"); err != nil {
			return err
		}
		return alloc(2) // .2 again, then .4, read from ip_runs
	})
	want := []string{"10.8.1.1", "10.8.1.2", "10.8.1.3", "10.8.1.2", "10.8.1.4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addresses handed out (-want +got):\n%s", diff)
	}
	if problems, err := s.Check(context.Background()); err != nil || len(problems) != 0 {
		t.Errorf("check: %v %+v", err, problems)
	}
}

func createAll(tx *store.Tx, ents []entity.NewEntity) error {
	for _, n := range ents {
		if err := tx.Create(n); err != nil {
			return err
		}
	}
	return nil
}

// allocInto allocates n addresses of block to ent, noting them in got.
func allocInto(tx *store.Tx, got *[]string, block, ent string, n int) error {
	as, err := tx.AllocateIP(entity.IPRequest{Block: block, Entity: ent, Count: n})
	for _, a := range as {
		*got = append(*got, a.Address)
	}
	return err
}
