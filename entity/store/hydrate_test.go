package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
)

// TestGetManyIsGetAtForEach: reading a page of entities at once gives
// exactly what reading each one alone gives, now and as of every change of
// a history with renames, deletes, moves, attribute edits and cable
// changes; names without an entity at that change are left out, and a
// name given twice is read once.
func TestGetManyIsGetAtForEach(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := invgen.Build(ctx, s, invgen.Spec{Datacenters: 1, RacksPerDC: 3, ServersPerRack: 4, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	names, err := s.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := invgen.Server(0, 0, 0)
	rack := invgen.Rack(0, 1)
	var changes []int64
	note := func() {
		t.Helper()
		n, err := s.LatestChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, n)
	}
	note()
	write(t, s, func(tx *store.Tx) error {
		_, err := tx.SetAttr(srv, entity.AttrSelector{Key: "status"}, []entity.Value{entity.String("broken")})
		return err
	})
	note()
	write(t, s, func(tx *store.Tx) error { return tx.Rename(srv, "renamed1") })
	note()
	names = append(names, "renamed1")
	victim := invgen.Server(0, 2, 3)
	write(t, s, func(tx *store.Tx) error { return tx.Delete(victim, true) })
	note()
	write(t, s, func(tx *store.Tx) error {
		if err := tx.Create(entity.NewEntity{Name: "newbox", Driver: "server"}); err != nil {
			return err
		}
		_, err := tx.Insert(rack, "newbox", entity.Placement{})
		return err
	})
	note()
	names = append(names, "newbox", "nobody", names[0]) // one never was, one twice
	changes = append(changes, 0)

	for _, at := range changes {
		got, err := s.GetMany(ctx, names, at)
		if err != nil {
			t.Fatalf("GetMany at %d: %v", at, err)
		}
		var want []*entity.Entity
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			e, err := s.GetAt(ctx, n, at)
			if entity.IsKind(err, entity.KindNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("GetAt(%s, %d): %v", n, at, err)
			}
			want = append(want, e)
		}
		if len(want) < 10 {
			t.Fatalf("at %d only %d entities: the fixture is not what this test needs", at, len(want))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("at change %d, GetMany differs from GetAt one by one (-want +got):\n%s", at, diff)
		}
	}
	if _, err := s.GetMany(ctx, []string{"ok", "bad name\x00"}, 0); !entity.IsKind(err, entity.KindInvalid) {
		t.Errorf("an invalid name: %v, want invalid", err)
	}
	if got, err := s.GetMany(ctx, nil, 0); err != nil || len(got) != 0 {
		t.Errorf("no names: %v, %v", got, err)
	}
}

// TestTxGetManyIsGetForEach: inside a write, after writes the
// transaction keeps partly in memory until commit (versions), reading
// many entities at once gives what reading each gives; a name that does
// not exist fails the read.
func TestTxGetManyIsGetForEach(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := invgen.Build(ctx, s, invgen.Spec{Datacenters: 1, RacksPerDC: 2, ServersPerRack: 4, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	names, err := s.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv, rack := invgen.Server(0, 0, 1), invgen.Rack(0, 1)
	err = s.Update(ctx, "t", func(tx *store.Tx) error {
		if _, err := tx.SetAttr(srv, entity.AttrSelector{Key: "status"}, []entity.Value{entity.String("repair")}); err != nil {
			return err
		}
		if err := tx.Rename(rack, rack+"-new"); err != nil {
			return err
		}
		for i, n := range names {
			if n == rack {
				names[i] = rack + "-new"
			}
		}
		many, err := tx.GetMany(names)
		if err != nil {
			return err
		}
		var each []*entity.Entity
		for _, n := range names {
			e, err := tx.Get(n)
			if err != nil {
				return err
			}
			each = append(each, e)
		}
		if diff := cmp.Diff(each, many); diff != "" {
			t.Errorf("inside a write (-Get each +GetMany):\n%s", diff)
		}
		if _, err := tx.GetMany([]string{srv, "nobody"}); !entity.IsKind(err, entity.KindNotFound) {
			t.Errorf("GetMany with a missing name: %v, want not found", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
