package store

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
)

// TestSmallSet: the set answers the same as a map while a list and after
// it has grown into one.
func TestSmallSet(t *testing.T) {
	var s smallSet[int]
	want := map[int]bool{}
	for i := range 3 * smallSetMax {
		k := (i * 7) % (2 * smallSetMax) // repeats, to add some twice
		s.add(k)
		want[k] = true
		for j := -1; j <= 2*smallSetMax; j++ {
			if s.has(j) != want[j] {
				t.Fatalf("after adding %d (%d added): has(%d) = %v, want %v", k, i+1, j, s.has(j), want[j])
			}
		}
	}
	if s.m == nil {
		t.Error("the set never became a map")
	}
}

// TestFreshKeepsConsultedAttributes: of an entity created in the
// transaction, only the attributes writes consult are kept in memory,
// and knownAttr answers for those alone, sending other keys to a query.
func TestFreshKeepsConsultedAttributes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir()+"/inv.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Update(ctx, "test", func(tx *Tx) error {
		if err := tx.Create(entity.NewEntity{Name: "r1", Driver: "rack", Attrs: []entity.Attr{
			{Key: "units", Value: entity.Int(42)}, {Key: "status", Value: entity.String("live")}}}); err != nil {
			return err
		}
		r, err := tx.row("r1")
		if err != nil {
			return err
		}
		var kept []string
		for _, a := range tx.freshOf(r.id).attrs {
			kept = append(kept, a.Key)
		}
		if diff := cmp.Diff([]string{"units"}, kept); diff != "" {
			t.Errorf("kept attributes (-want +got):\n%s", diff)
		}
		if v, found, known := tx.knownAttr(r.id, "units", true); !known || !found || v.Text != "42" {
			t.Errorf("knownAttr(units) = %v, %v, %v; want 42, found, known", v, found, known)
		}
		if _, _, known := tx.knownAttr(r.id, "status", false); known {
			t.Error("knownAttr(status) claims to know an attribute it does not keep")
		}
		n, ok, err := tx.intAttr(r.id, "units")
		if err != nil || !ok || n != 42 {
			t.Errorf("intAttr(units) = %d, %v, %v", n, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
