package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func sitesOf(t *testing.T, s *store.Store, parent string) []entity.Site {
	t.Helper()
	var out []entity.Site
	if err := s.View(context.Background(), func(v *store.View) error {
		var err error
		out, err = v.Sites(parent)
		return err
	}); err != nil {
		t.Fatalf("sites %q: %v", parent, err)
	}
	return out
}

func TestSitesCountsWhatLiesUnderEachPlace(t *testing.T) {
	s := newStore(t)
	create(t, s,
		entity.NewEntity{Name: "dc1", Driver: "datacenter"}, entity.NewEntity{Name: "dc2", Driver: "datacenter"},
		entity.NewEntity{Name: "room", Driver: "room"}, entity.NewEntity{Name: "row", Driver: "row"},
		entity.NewEntity{Name: "r1", Driver: "rack"},
		entity.NewEntity{Name: "r2", Driver: "rack", Attrs: []entity.Attr{num("units", 12)}},
		entity.NewEntity{Name: "lone", Driver: "rack", Attrs: []entity.Attr{num("units", 4)}},
		entity.NewEntity{Name: "ch", Driver: "chassis"},
		entity.NewEntity{Name: "blade", Driver: "server"},
		entity.NewEntity{Name: "a", Driver: "server", Attrs: []entity.Attr{num("height", 2)}},
		entity.NewEntity{Name: "b", Driver: "server"},
		entity.NewEntity{Name: "c", Driver: "server"},
		entity.NewEntity{Name: "d", Driver: "server"},
		entity.NewEntity{Name: "nowhere", Driver: "server"},
		entity.NewEntity{Name: "web", Driver: "pool"},
	)
	at := func(u int64) entity.Placement { return entity.Placement{Position: &u} }
	write(t, s, func(tx *store.Tx) error {
		for _, in := range []struct {
			p, c string
			pl   entity.Placement
		}{
			{"dc1", "room", entity.Placement{}}, {"room", "row", entity.Placement{}},
			{"row", "r1", entity.Placement{}}, {"row", "r2", entity.Placement{}},
			// r1: a at U1-2, the chassis (10U) at U10-19 with a blade in
			// it, c without a position; r2: b at U12; lone: d at U1.
			{"r1", "a", at(1)}, {"r1", "ch", at(10)}, {"ch", "blade", at(1)}, {"r1", "c", entity.Placement{}},
			{"r2", "b", at(12)}, {"lone", "d", at(1)},
		} {
			if _, err := tx.Insert(in.p, in.c, in.pl); err != nil {
				return err
			}
		}
		_, err := tx.Insert("web", "a", entity.Placement{})
		return err
	})
	// r1: 42 units, 12 used (a 2 + the chassis 10), 3 things in it (the
	// blade is in the chassis, not counted again); r2: 12 units, 1 used.
	r1 := entity.Site{Name: "r1", Driver: "rack", Rack: true, Children: true, Racks: 1, Devices: 3, Units: 42, Used: 12}
	r2 := entity.Site{Name: "r2", Driver: "rack", Rack: true, Children: true, Racks: 1, Devices: 1, Units: 12, Used: 1}
	sum := func(name, driver string) entity.Site {
		return entity.Site{Name: name, Driver: driver, Children: true, Racks: 2, Devices: 4, Units: 54, Used: 13}
	}
	for _, c := range []struct {
		parent string
		want   []entity.Site
	}{
		// The tops: the sites and the rack standing in no place; not the
		// server without a place, nor the pool.
		{"", []entity.Site{sum("dc1", "datacenter"), {Name: "dc2", Driver: "datacenter"},
			{Name: "lone", Driver: "rack", Rack: true, Children: true, Racks: 1, Devices: 1, Units: 4, Used: 1}}},
		{"dc1", []entity.Site{sum("room", "room")}},
		{"room", []entity.Site{sum("row", "row")}},
		{"row", []entity.Site{r1, r2}},
		{"dc2", []entity.Site{}},
		// Inside a rack: its things, none of them a rack of its own.
		{"r1", []entity.Site{
			{Name: "a", Driver: "server"}, {Name: "c", Driver: "server"},
			{Name: "ch", Driver: "chassis", Rack: true, Children: true, Racks: 1, Devices: 1, Units: 16, Used: 1},
		}},
	} {
		if diff := cmp.Diff(c.want, sitesOf(t, s, c.parent)); diff != "" {
			t.Errorf("sites of %q (-want +got):\n%s", c.parent, diff)
		}
	}
	// The used units are what the elevation does not show free.
	for _, r := range []string{"r1", "r2", "lone"} {
		var el *entity.Elevation
		if err := s.View(context.Background(), func(v *store.View) error { var err error; el, err = v.Elevation(r); return err }); err != nil {
			t.Fatal(err)
		}
		var used int64
		for _, site := range append(sitesOf(t, s, "row"), sitesOf(t, s, "")...) {
			if site.Name == r {
				used = site.Used
			}
		}
		if used != el.Units-el.Free {
			t.Errorf("%s: %d used, the elevation shows %d of %d free", r, used, el.Free, el.Units)
		}
	}
	err := s.View(context.Background(), func(v *store.View) error { _, err := v.Sites("nosuch"); return err })
	wantKind(t, err, entity.KindNotFound)
}

// Sites keeps what racks hold between views; every kind of write that
// changes it is seen by the next view.
func TestSitesSeeEveryChangeToARack(t *testing.T) {
	s := newStore(t)
	create(t, s,
		entity.NewEntity{Name: "dc", Driver: "datacenter"}, entity.NewEntity{Name: "r", Driver: "rack"},
		entity.NewEntity{Name: "a", Driver: "server"}, entity.NewEntity{Name: "b", Driver: "server"},
	)
	write(t, s, func(tx *store.Tx) error {
		if _, err := tx.Insert("dc", "r", entity.Placement{}); err != nil {
			return err
		}
		_, err := tx.Insert("r", "a", entity.Placement{Position: ptr(int64(1))})
		return err
	})
	type use struct{ Devices, Units, Used int64 }
	now := func() use {
		t.Helper()
		l := sitesOf(t, s, "")
		if len(l) != 1 {
			t.Fatalf("tops: %+v", l)
		}
		return use{l[0].Devices, l[0].Units, l[0].Used}
	}
	step := func(what string, fn func(tx *store.Tx) error, want use) {
		t.Helper()
		now() // read, and so keep, the rack as it is
		write(t, s, fn)
		if got := now(); got != want {
			t.Errorf("after %s: %+v, want %+v", what, got, want)
		}
	}
	if got := now(); got != (use{1, 42, 1}) {
		t.Fatalf("at first: %+v", got)
	}
	step("a server racked", func(tx *store.Tx) error {
		_, err := tx.Insert("r", "b", entity.Placement{Position: ptr(int64(5))})
		return err
	}, use{2, 42, 2})
	step("a height set", func(tx *store.Tx) error {
		_, err := tx.SetAttr("b", entity.AttrSelector{Key: "height"}, []entity.Value{entity.Int(4)})
		return err
	}, use{2, 42, 5})
	step("the rack's units set", func(tx *store.Tx) error {
		_, err := tx.SetAttr("r", entity.AttrSelector{Key: "units"}, []entity.Value{entity.Int(20)})
		return err
	}, use{2, 20, 5})
	step("a server deleted", func(tx *store.Tx) error { return tx.Delete("a", false) }, use{1, 20, 4})
	step("a server taken out", func(tx *store.Tx) error {
		return tx.Remove("r", "b")
	}, use{0, 20, 0})
}

// A view that began before a commit reads the racks as they were; what it
// read must not be kept for the views after the commit.
func TestSitesKeepNothingReadBeforeACommit(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "r", Driver: "rack"}, entity.NewEntity{Name: "a", Driver: "server"})
	err := s.View(context.Background(), func(v *store.View) error {
		if _, err := v.LastChange(); err != nil { // the snapshot begins
			return err
		}
		write(t, s, func(tx *store.Tx) error {
			_, err := tx.Insert("r", "a", entity.Placement{Position: ptr(int64(1))})
			return err
		})
		old, err := v.Sites("")
		if err != nil {
			return err
		}
		if len(old) != 1 || old[0].Devices != 0 {
			t.Errorf("the old snapshot: %+v", old)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := sitesOf(t, s, ""); len(got) != 1 || got[0].Devices != 1 || got[0].Used != 1 {
		t.Errorf("after the commit: %+v, want the server counted", got)
	}
}
