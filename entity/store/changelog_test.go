package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// numbers is the change numbers of changes, in their order.
func numbers(cs []entity.Change) []int64 {
	out := []int64{}
	for _, c := range cs {
		out = append(out, c.Number)
	}
	return out
}

// TestChangeLogFiltersNewestFirst: the change log filtered by entity (as
// subject or peer), actor and operation, newest first, paged with Before
// and bounded with After.
func TestChangeLogFiltersNewestFirst(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	by := func(actor string, fn func(tx *store.Tx) error) {
		t.Helper()
		if err := s.Update(ctx, actor, fn); err != nil {
			t.Fatal(err)
		}
	}
	by("alice", func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: "r1", Driver: "rack"}) })   // 1
	by("alice", func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: "s1", Driver: "server"}) }) // 2
	by("bob", func(tx *store.Tx) error { _, err := tx.AddAttr("s1", str("status", "spare")); return err })     // 3
	by("bob", func(tx *store.Tx) error { _, err := tx.Insert("r1", "s1", entity.Placement{}); return err })    // 4
	by("alice", func(tx *store.Tx) error { _, err := tx.AddAttr("r1", str("note", "a")); return err })         // 5
	by("bob", func(tx *store.Tx) error { return tx.Rename("s1", "s1-old") })                                   // 6

	for _, c := range []struct {
		name string
		f    store.ChangeFilter
		want []int64
	}{
		{"all", store.ChangeFilter{}, []int64{6, 5, 4, 3, 2, 1}},
		{"entity as subject or peer", store.ChangeFilter{Entity: "r1"}, []int64{5, 4, 1}},
		{"a renamed entity by its old name", store.ChangeFilter{Entity: "s1"}, []int64{6, 4, 3, 2}},
		{"actor", store.ChangeFilter{Actor: "bob"}, []int64{6, 4, 3}},
		{"operation", store.ChangeFilter{Op: entity.OpAttrAdd}, []int64{5, 3}},
		{"all three", store.ChangeFilter{Entity: "r1", Actor: "alice", Op: entity.OpAttrAdd}, []int64{5}},
		{"a page", store.ChangeFilter{Before: 5, Limit: 2}, []int64{4, 3}},
		{"the entity's page", store.ChangeFilter{Entity: "s1", Before: 4, Limit: 1}, []int64{3}},
		{"after", store.ChangeFilter{Entity: "s1", After: 3}, []int64{6, 4}},
		{"nothing", store.ChangeFilter{Actor: "carol"}, []int64{}},
	} {
		got, err := s.ChangeLog(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if diff := cmp.Diff(c.want, numbers(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	if _, err := s.ChangeLog(ctx, store.ChangeFilter{Entity: "nobody"}); entity.KindOf(err) != entity.KindNotFound {
		t.Errorf("an unknown entity: %v, want not found", err)
	}
	if _, err := s.ChangeLog(ctx, store.ChangeFilter{Entity: "a b"}); entity.KindOf(err) != entity.KindInvalid {
		t.Errorf("a bad name: %v, want invalid", err)
	}
	// A filter full of SQL is a value like any other.
	got, err := s.ChangeLog(ctx, store.ChangeFilter{Actor: "' OR 1=1 --"})
	if err != nil || len(got) != 0 {
		t.Errorf("an actor of SQL: %v %v", numbers(got), err)
	}
}

// TestVersionEndFindsWhatChangedSince: the change that ended a version is
// where the changes a stale writer missed begin.
func TestVersionEndFindsWhatChangedSince(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "s1", Driver: "server"})
	v1 := get(t, s, "s1").Version
	write(t, s, func(tx *store.Tx) error { _, err := tx.AddAttr("s1", str("a", "1")); return err })
	create(t, s, entity.NewEntity{Name: "other", Driver: "server"})
	write(t, s, func(tx *store.Tx) error { _, err := tx.AddAttr("s1", str("b", "2")); return err })
	end, ok, err := s.VersionEnd(ctx, "s1", v1)
	if err != nil || !ok {
		t.Fatalf("VersionEnd: %d %v %v", end, ok, err)
	}
	since, err := s.ChangeLog(ctx, store.ChangeFilter{Entity: "s1", After: end - 1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{4, 2}, numbers(since)); diff != "" {
		t.Errorf("changes since version %d (-want +got):\n%s", v1, diff)
	}
	if _, ok, err := s.VersionEnd(ctx, "s1", get(t, s, "s1").Version); ok || err != nil {
		t.Errorf("the current version has no end: %v %v", ok, err)
	}
	if _, ok, err := s.VersionEnd(ctx, "s1", 99); ok || err != nil {
		t.Errorf("a version that never was: %v %v", ok, err)
	}
}

// TestCheckAtAndAllocationsAt: a change number still to come is refused;
// the addresses an entity held are read as of a change.
func TestCheckAtAndAllocationsAt(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "s1", Driver: "server"}, block("b1", "10.0.0.0/24"))
	var first int64
	write(t, s, func(tx *store.Tx) error {
		_, err := tx.AllocateIP(entity.IPRequest{Block: "b1", Entity: "s1", Interface: "eth0"})
		if err == nil {
			first, err = tx.LastChange()
		}
		return err
	})
	write(t, s, func(tx *store.Tx) error { _, err := tx.ReleaseIP("b1", "10.0.0.1"); return err })
	latest, _ := s.LatestChange(ctx)
	if err := s.CheckAt(ctx, latest); err != nil {
		t.Errorf("the latest change: %v", err)
	}
	if err := s.CheckAt(ctx, latest+1); entity.KindOf(err) != entity.KindInvalid {
		t.Errorf("a change to come: %v, want invalid", err)
	}
	then, err := s.AllocationsAt(ctx, "s1", first)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]entity.Allocation{{Address: "10.0.0.1", Block: "b1", Entity: "s1", Interface: "eth0"}}, then); diff != "" {
		t.Errorf("as of change %d (-want +got):\n%s", first, diff)
	}
	if now, err := s.AllocationsAt(ctx, "s1", 0); err != nil || len(now) != 0 {
		t.Errorf("now: %v %v, want none", now, err)
	}
}
