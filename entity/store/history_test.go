package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func TestHistoryRecordsEveryKindOfChange(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ep := func(n, p string) entity.Endpoint { return entity.Endpoint{Name: n, Port: p} }
	ops := []struct {
		op     string
		do     func(tx *store.Tx) error
		entity string
		peer   string
		before string
		after  string
	}{
		{entity.OpCreate, func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: "r1", Driver: "rack"}) }, "r1", "", `null`,
			`{"attrs":[],"driver":"rack","kind":"equipment","name":"r1"}`},
		{entity.OpCreate, func(tx *store.Tx) error {
			return tx.Create(entity.NewEntity{Name: "s1", Driver: "server", Attrs: []entity.Attr{str("status", "new")}})
		}, "s1", "", `null`, `{"attrs":[{"key":"status","number":null,"value":"new","type":"string"}],"driver":"server","kind":"equipment","name":"s1"}`},
		{entity.OpCreate, func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: "sw1", Driver: "switch"}) }, "sw1", "", `null`,
			`{"attrs":[],"driver":"switch","kind":"equipment","name":"sw1"}`},
		{entity.OpAttrAdd, func(tx *store.Tx) error { _, err := tx.AddAttr("s1", str("role", "web")); return err }, "s1", "", `null`,
			`{"key":"role","number":null,"value":"web","type":"string"}`},
		{entity.OpAttrSet, func(tx *store.Tx) error {
			_, err := tx.SetAttr("s1", entity.AttrSelector{Key: "status"}, []entity.Value{entity.String("live")})
			return err
		}, "s1", "", `[{"key":"status","number":null,"value":"new","type":"string"}]`, `[{"key":"status","number":null,"value":"live","type":"string"}]`},
		{entity.OpAttrDel, func(tx *store.Tx) error { _, err := tx.DelAttr("s1", entity.AttrSelector{Key: "role"}); return err }, "s1", "",
			`[{"key":"role","number":null,"value":"web","type":"string"}]`, `null`},
		{entity.OpInsert, func(tx *store.Tx) error { _, err := tx.Insert("r1", "s1", at(13)); return err }, "s1", "r1", `null`,
			`{"child":"s1","height":1,"parent":"r1","position":13,"type":"contains"}`},
		{entity.OpLink, func(tx *store.Tx) error { return tx.Connect(ep("s1", "eth0"), ep("sw1", "4")) }, "s1", "sw1", `null`,
			`{"a":"s1","a_port":"eth0","b":"sw1","b_port":"4","type":"nic"}`},
		{entity.OpUnlink, func(tx *store.Tx) error { return tx.Disconnect(ep("s1", "eth0"), ep("sw1", "4")) }, "s1", "sw1",
			`{"a":"s1","a_port":"eth0","b":"sw1","b_port":"4","type":"nic"}`, `null`},
		{entity.OpRemove, func(tx *store.Tx) error { return tx.Remove("r1", "s1") }, "s1", "r1",
			`{"child":"s1","height":1,"parent":"r1","position":13,"type":"contains"}`, `null`},
		{entity.OpRename, func(tx *store.Tx) error { return tx.Rename("s1", "s2") }, "s1", "", `{"name":"s1"}`, `{"name":"s2"}`},
		{entity.OpDelete, func(tx *store.Tx) error { return tx.Delete("sw1", false) }, "sw1", "", "", `null`},
	}
	for i, o := range ops {
		if err := s.Update(ctx, "alice", o.do); err != nil {
			t.Fatalf("op %d (%s): %v", i, o.op, err)
		}
	}
	changes, err := s.Changes(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != len(ops) {
		t.Fatalf("got %d changes, want %d", len(changes), len(ops))
	}
	for i, c := range changes {
		o := ops[i]
		if c.Number != int64(i+1) || c.Op != o.op || c.Entity != o.entity || c.Peer != o.peer || c.Actor != "alice" {
			t.Errorf("change %d = #%d %s %s/%s by %s, want #%d %s %s/%s by alice", i, c.Number, c.Op, c.Entity, c.Peer, c.Actor, i+1, o.op, o.entity, o.peer)
		}
		if o.before != "" && string(c.Before) != o.before {
			t.Errorf("change %d (%s) before = %s, want %s", i, o.op, c.Before, o.before)
		}
		if string(c.After) != o.after {
			t.Errorf("change %d (%s) after = %s, want %s", i, o.op, c.After, o.after)
		}
		if c.Time.IsZero() {
			t.Errorf("change %d has no time", i)
		}
	}
	// The delete's before is the whole entity.
	var before entity.Entity
	if err := json.Unmarshal(changes[len(changes)-1].Before, &before); err != nil || before.Name != "sw1" {
		t.Errorf("delete before = %s (%v)", changes[len(changes)-1].Before, err)
	}
	// Per-entity history includes changes where it is the other side, and follows renames.
	hist, err := s.History(ctx, "s2", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range hist {
		got = append(got, c.Op)
	}
	want := []string{"create", "attr_add", "attr_set", "attr_del", "insert", "link", "unlink", "remove", "rename"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history of s2 (-want +got):\n%s", diff)
	}
	hist, err = s.History(ctx, "sw1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(hist); n != 4 { // create, link, unlink, delete
		t.Errorf("history of deleted sw1 has %d changes, want 4", n)
	}
	// Paging: since and limit.
	page, err := s.Changes(ctx, 10, 1)
	if err != nil || len(page) != 1 || page[0].Number != 11 {
		t.Errorf("Changes(since 10, limit 1) = %v, %v", page, err)
	}
	// A failed write records nothing.
	latest, _ := s.LatestChange(ctx)
	wantKind(t, s.Update(ctx, "alice", func(tx *store.Tx) error {
		if _, err := tx.AddAttr("s2", str("x", "1")); err != nil {
			return err
		}
		_, err := tx.AddAttr("nobody", str("x", "1"))
		return err
	}), entity.KindNotFound)
	if now, _ := s.LatestChange(ctx); now != latest {
		t.Errorf("a rolled-back write moved the change log from %d to %d", latest, now)
	}
}

func TestReadAsOfChange(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "rack12", Driver: "rack"}, entity.NewEntity{Name: "s1", Driver: "server", Attrs: []entity.Attr{str("status", "spare")}},
		entity.NewEntity{Name: "sw1", Driver: "switch"})
	write(t, s, func(tx *store.Tx) error {
		if _, err := tx.Insert("rack12", "s1", at(7)); err != nil {
			return err
		}
		return tx.Connect(entity.Endpoint{Name: "s1", Port: "eth0"}, entity.Endpoint{Name: "sw1", Port: "1"})
	})
	tuesday, _ := s.LatestChange(ctx)
	then := get(t, s, "s1")
	rackThen := get(t, s, "rack12")

	write(t, s, func(tx *store.Tx) error {
		if _, err := tx.SetAttr("s1", entity.AttrSelector{Key: "status"}, []entity.Value{entity.String("allocated")}); err != nil {
			return err
		}
		if err := tx.Remove("rack12", "s1"); err != nil {
			return err
		}
		if err := tx.Disconnect(entity.Endpoint{Name: "s1"}, entity.Endpoint{Name: "sw1"}); err != nil {
			return err
		}
		return tx.Rename("s1", "s1-old")
	})
	write(t, s, func(tx *store.Tx) error { return tx.Delete("rack12", false) })

	past, err := s.GetAt(ctx, "s1", tuesday)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(then, past); diff != "" {
		t.Errorf("s1 as of change %d differs from what was read then (-then +as-of):\n%s", tuesday, diff)
	}
	pastRack, err := s.GetAt(ctx, "rack12", tuesday)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rackThen, pastRack); diff != "" {
		t.Errorf("deleted rack12 as of change %d (-then +as-of):\n%s", tuesday, diff)
	}
	now := get(t, s, "s1-old")
	if len(now.Parents) != 0 || len(now.Links) != 0 || now.Attrs[0].Value.Text != "allocated" {
		t.Errorf("current s1-old = %+v", now)
	}
	if _, err := s.GetAt(ctx, "s1-old", tuesday); !entity.IsKind(err, entity.KindNotFound) {
		t.Errorf("s1-old existed as of change %d? err = %v", tuesday, err)
	}
	if _, err := s.Get(ctx, "rack12"); !entity.IsKind(err, entity.KindNotFound) {
		t.Errorf("deleted rack12 still readable now: %v", err)
	}
	// Before its creation nothing is there.
	if _, err := s.GetAt(ctx, "s1", 1); !entity.IsKind(err, entity.KindNotFound) {
		t.Errorf("s1 as of change 1 (before its creation): %v", err)
	}
}

func TestMergedAttributes(t *testing.T) {
	s := newStore(t)
	create(t, s,
		entity.NewEntity{Name: "dc1", Driver: "datacenter", Attrs: []entity.Attr{str("dns", "10.0.0.53"), str("region", "eu")}},
		entity.NewEntity{Name: "r1", Driver: "rack", Attrs: []entity.Attr{str("dns", "10.1.0.53")}},
		entity.NewEntity{Name: "web", Driver: "role", Attrs: []entity.Attr{str("packages", "nginx")}},
		entity.NewEntity{Name: "prod", Driver: "pool", Attrs: []entity.Attr{str("env", "production")}},
		entity.NewEntity{Name: "s1", Driver: "server", Attrs: []entity.Attr{str("status", "live")}})
	write(t, s, func(tx *store.Tx) error {
		for _, p := range [][2]string{{"dc1", "r1"}, {"r1", "s1"}, {"web", "s1"}, {"prod", "web"}} {
			if _, err := tx.Insert(p[0], p[1], entity.Placement{}); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.Merged(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	from := func(a entity.Attr, f string) entity.Attr { a.From = f; return a }
	want := []entity.Attr{
		from(str("status", "live"), "s1"),
		from(str("dns", "10.1.0.53"), "r1"),
		from(str("packages", "nginx"), "web"),
		from(str("dns", "10.0.0.53"), "dc1"),
		from(str("region", "eu"), "dc1"),
		from(str("env", "production"), "prod"),
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
}
