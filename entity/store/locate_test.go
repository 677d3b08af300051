package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func TestLocateAndUpstream(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s,
		entity.NewEntity{Name: "dc1", Driver: "datacenter"},
		entity.NewEntity{Name: "room2", Driver: "room"},
		entity.NewEntity{Name: "r1", Driver: "rack"},
		entity.NewEntity{Name: "s1", Driver: "server"},
		entity.NewEntity{Name: "sw1", Driver: "switch"},
		entity.NewEntity{Name: "cs1", Driver: "console-server"},
		entity.NewEntity{Name: "p1", Driver: "pdu"},
		entity.NewEntity{Name: "vm1", Driver: "vm"},
	)
	ep := func(n, p string) entity.Endpoint { return entity.Endpoint{Name: n, Port: p} }
	write(t, s, func(tx *store.Tx) error {
		for _, step := range []func() error{
			func() error { _, err := tx.Insert("dc1", "room2", entity.Placement{}); return err },
			func() error { _, err := tx.Insert("room2", "r1", entity.Placement{}); return err },
			func() error { _, err := tx.Insert("r1", "s1", atH(7, 2)); return err },
			func() error { _, err := tx.Insert("s1", "vm1", entity.Placement{}); return err },
			func() error { return tx.Connect(ep("s1", "eth1"), ep("sw1", "10")) },
			func() error { return tx.Connect(ep("s1", "eth0"), ep("sw1", "9")) },
			func() error { return tx.Connect(ep("s1", "console"), ep("cs1", "3")) },
			func() error { return tx.Connect(ep("s1", "psu1"), ep("p1", "2")) },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	loc, err := s.Locate(ctx, "vm1", 0)
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, l := range loc.Lines {
		text = append(text, l.Text)
	}
	want := []string{"vm1 -> in server s1", "s1 -> in RU7-8 of r1", "r1 -> in room room2", "room2 -> in datacenter dc1"}
	if diff := cmp.Diff(want, text); diff != "" {
		t.Fatalf("vm1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"vm1", "s1", "r1", "room2", "dc1"}, loc.Path); diff != "" {
		t.Fatalf("path (-want +got):\n%s", diff)
	}
	loc, err = s.Locate(ctx, "s1", 0)
	if err != nil {
		t.Fatal(err)
	}
	text = nil
	for _, l := range loc.Lines[:4] {
		text = append(text, l.Text)
	}
	// Links in the driver's port order: eth0, eth1, console, psu1.
	want = []string{"s1 -> connected to port 9 on sw1", "s1 -> connected to port 10 on sw1", "s1 -> connected to port 3 on cs1", "s1 -> connected to port 2 on p1"}
	if diff := cmp.Diff(want, text); diff != "" {
		t.Fatalf("s1 links (-want +got):\n%s", diff)
	}

	cons, err := s.Upstream(ctx, "s1", "console", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]entity.Feed{{Port: "console", Peer: "cs1", PeerDriver: "console-server", PeerPort: "3"}}, cons); diff != "" {
		t.Fatalf("console (-want +got):\n%s", diff)
	}
	pw, err := s.Upstream(ctx, "s1", "power", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]entity.Feed{{Port: "psu1", Peer: "p1", PeerDriver: "pdu", PeerPort: "2"}}, pw); diff != "" {
		t.Fatalf("power (-want +got):\n%s", diff)
	}
	for _, q := range []struct{ name, typ string }{{"cs1", "console"}, {"p1", "power"}, {"sw1", "console"}} {
		got, err := s.Upstream(ctx, q.name, q.typ, 0)
		if err != nil || len(got) != 0 {
			t.Fatalf("%s %s: %+v %v, want none", q.name, q.typ, got, err)
		}
	}
	_, err = s.Locate(ctx, "ghost", 0)
	wantKind(t, err, entity.KindNotFound)
	_, err = s.Upstream(ctx, "s1", "power", -1)
	wantKind(t, err, entity.KindInvalid)

	// As of before the moves, s1 was nowhere.
	loc, err = s.Locate(ctx, "s1", 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(loc.Lines) != 0 {
		t.Fatalf("s1 as of change 8: %+v", loc.Lines)
	}
}

func TestMergedAt(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s,
		entity.NewEntity{Name: "r1", Driver: "rack", Attrs: []entity.Attr{str("status", "live")}},
		entity.NewEntity{Name: "s1", Driver: "server", Attrs: []entity.Attr{str("status", "new")}},
	)
	write(t, s, func(tx *store.Tx) error { _, err := tx.Insert("r1", "s1", at(1)); return err })
	before, _ := s.LatestChange(ctx)
	write(t, s, func(tx *store.Tx) error { _, err := tx.AddAttr("r1", str("owner", "ops")); return err })
	now, err := s.MergedAt(ctx, "s1", 0)
	if err != nil {
		t.Fatal(err)
	}
	then, err := s.MergedAt(ctx, "s1", before)
	if err != nil {
		t.Fatal(err)
	}
	if len(now) != 3 || len(then) != 2 || then[0].From != "s1" || then[1].From != "r1" {
		t.Fatalf("now %+v\nthen %+v", now, then)
	}
	legacy, err := s.Merged(ctx, "s1")
	if err != nil || !cmp.Equal(now, legacy) {
		t.Fatalf("Merged and MergedAt(0) differ: %+v %v", legacy, err)
	}
	e, err := s.GetMergedAt(ctx, "s1", before)
	if err != nil || !cmp.Equal(then, e.Attrs) || e.Version != 2 {
		t.Fatalf("GetMergedAt: %+v %v", e, err)
	}
}
