package entity_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
)

// shown are values of every type, as answers write them, json values
// whose JSON is a string among them: Attr.UnmarshalJSON (the request form)
// reads "value":"abc" of type json as the JSON text abc, which fails, and
// "value":"[1]" as the list [1].
func shown(t *testing.T) []entity.Attr {
	t.Helper()
	var out []entity.Attr
	for i, v := range []struct {
		typ  entity.ValueType
		text string
	}{
		{entity.TypeString, "ssd"}, {entity.TypeString, "42"}, {entity.TypeInt, "-7"}, {entity.TypeBool, "true"},
		{entity.TypeTime, "2026-11-22T10:00:00.5Z"}, {entity.TypeIP, "10.0.3.17"}, {entity.TypeRef, "rack101"},
		{entity.TypeJSON, `{"b":1,"a":[true,null]}`}, {entity.TypeJSON, `"abc"`}, {entity.TypeJSON, `"[1]"`}, {entity.TypeJSON, `12`},
	} {
		val, err := entity.ParseValue(v.typ, v.text)
		if err != nil {
			t.Fatalf("%s %s: %v", v.typ, v.text, err)
		}
		out = append(out, entity.Attr{Key: "k", Subkey: "s", Number: entity.N(int64(i)), Value: val, From: "r1"})
	}
	return out
}

// roundTrip encodes v and decodes it into a new value of its type.
func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back T
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return back
}

func TestAnswersReadBackWithoutLoss(t *testing.T) {
	attrs := shown(t)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	e := entity.Entity{Name: "s1", Driver: "server", Kind: "equipment", Version: 3, CreatedAt: now, UpdatedAt: now, Attrs: attrs,
		Parents:  []entity.Relation{{Type: entity.Contains, Name: "r1", Driver: "rack", Position: entity.N(13), Height: entity.N(2)}},
		Children: []entity.Relation{}, Links: []entity.Link{{Port: "eth0", Type: "nic", Peer: "sw1", PeerPort: "4"}}}
	if diff := cmp.Diff(e, roundTrip(t, e)); diff != "" {
		t.Errorf("entity (-sent +read):\n%s", diff)
	}
	if got := roundTrip(t, entity.Entity{Name: "x"}); got.Attrs != nil {
		t.Errorf("no attrs read back as %#v, not nil", got.Attrs)
	}

	a := entity.AttrsAnswer{Entity: "s1", Version: 3, Attrs: attrs, Added: &attrs[8], Removed: attrs[9:]}
	if diff := cmp.Diff(a, roundTrip(t, a)); diff != "" {
		t.Errorf("attrs answer (-sent +read):\n%s", diff)
	}

	p := entity.PlanAnswer{Plan: entity.Plan{Steps: []entity.PlanStep{
		{Action: "create", Entity: "s1", Summary: "server", Op: &entity.Op{Op: "create", Name: "s1", Driver: "server", Attrs: attrs}, Source: "f.yaml:3:3"},
		{Action: "delete", Entity: "s2", Summary: "server"},
	}, Create: 1, Delete: 1}, Results: entity.OpResults{
		{Index: 0, Op: "allocate_ip", Changes: []entity.Change{}, Result: json.RawMessage(`[{"address":"10.0.0.2","n":9007199254740993}]`)},
		{Index: 1, Op: "create", Changes: nil},
	}}
	if diff := cmp.Diff(p, roundTrip(t, p)); diff != "" {
		t.Errorf("plan answer (-sent +read):\n%s", diff)
	}
}

// An attribute's Text is its value's canonical text; a Relation's Units
// name the rack units it takes.
func TestAnswerHelpers(t *testing.T) {
	e := entity.Entity{Attrs: []entity.Attr{
		{Key: "disk", Subkey: "sda", Value: entity.String("ssd")}, {Key: "disk", Subkey: "sdb", Value: entity.String("hdd")}, {Key: "memory_gb", Value: entity.Int(64)},
	}, Parents: []entity.Relation{{Type: entity.Member, Name: "web"}, {Type: entity.Contains, Name: "r1", Position: entity.N(20), Height: entity.N(2)}, {Type: entity.Member, Name: "db"}}}
	if got := e.AttrValues("disk", ""); !cmp.Equal(got, []string{"ssd", "hdd"}) {
		t.Errorf("disk = %v", got)
	}
	if got := e.AttrValues("disk", "sdb"); !cmp.Equal(got, []string{"hdd"}) {
		t.Errorf("disk.sdb = %v", got)
	}
	if got := e.AttrValues("memory_gb", ""); !cmp.Equal(got, []string{"64"}) {
		t.Errorf("memory_gb = %v", got)
	}
	if got := e.Attrs[1].FullKey() + " " + e.Attrs[2].FullKey(); got != "disk.sdb memory_gb" {
		t.Errorf("full keys %q", got)
	}
	p, ok := e.Parent()
	if !ok || p.Name != "r1" || p.Units() != "RU20-21" {
		t.Errorf("parent %+v %v, units %q", p, ok, p.Units())
	}
	if g := e.Groups(); len(g) != 2 || g[0].Name != "web" || g[1].Name != "db" {
		t.Errorf("groups %+v", g)
	}
	if u := (entity.Relation{Position: entity.N(13)}).Units(); u != "RU13" {
		t.Errorf("one unit: %q", u)
	}
	if u := (entity.Relation{Position: entity.N(13), Height: entity.N(1)}).Units(); u != "RU13" {
		t.Errorf("height 1: %q", u)
	}
	if u := (entity.Relation{}).Units(); u != "" {
		t.Errorf("no position: %q", u)
	}
	if _, ok := (&entity.Entity{}).Parent(); ok {
		t.Error("an entity without parents has a parent")
	}
}
