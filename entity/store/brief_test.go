package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func TestGetBriefReadsOnlyTheKeysAskedFor(t *testing.T) {
	s := newStore(t)
	create(t, s,
		entity.NewEntity{Name: "r", Driver: "rack"},
		entity.NewEntity{Name: "a", Driver: "server", Attrs: []entity.Attr{str("status", "spare"), str("model", "R640"), str("serial", "SN1"), str("model", "R650")}},
		entity.NewEntity{Name: "b", Driver: "switch"},
	)
	write(t, s, func(tx *store.Tx) error {
		_, err := tx.Insert("r", "a", entity.Placement{Position: ptr(int64(3))})
		return err
	})
	var got []*entity.Entity
	brief := func(names, keys []string) {
		t.Helper()
		if err := s.View(context.Background(), func(v *store.View) error {
			var err error
			got, err = v.GetBrief(names, keys)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	brief([]string{"b", "gone", "a", "a"}, []string{"status", "model"})
	full := get(t, s, "a")
	var want []entity.Attr
	for _, a := range full.Attrs {
		if a.Key == "status" || a.Key == "model" {
			want = append(want, a)
		}
	}
	if len(got) != 2 || got[0].Name != "b" || got[1].Name != "a" {
		t.Fatalf("got %d entities %v, want b then a", len(got), got)
	}
	if diff := cmp.Diff(entity.Entity{Name: "b", Driver: "switch", Kind: entity.Kind("equipment"), Version: get(t, s, "b").Version,
		Attrs: []entity.Attr{}, Parents: []entity.Relation{}, Children: []entity.Relation{}, Links: []entity.Link{}}, *got[0]); diff != "" {
		t.Errorf("b (-want +got):\n%s", diff)
	}
	// a's attributes: the two models and the status, as Get orders
	// them; not the serial, nor its place in the rack.
	if diff := cmp.Diff(want, got[1].Attrs); diff != "" || len(want) != 3 {
		t.Errorf("a's attributes (-want +got):\n%s", diff)
	}
	if got[1].Driver != "server" || got[1].Version != full.Version || len(got[1].Parents) != 0 {
		t.Errorf("a: %+v", got[1])
	}
	brief([]string{"a"}, nil)
	if len(got) != 1 || len(got[0].Attrs) != 0 {
		t.Errorf("no keys: %+v", got)
	}
	err := s.View(context.Background(), func(v *store.View) error { _, err := v.GetBrief([]string{"bad name"}, nil); return err })
	wantKind(t, err, entity.KindInvalid)
}
