package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func TestAllocateRackUnits(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "r1", Driver: "rack", Attrs: []entity.Attr{num("units", 10)}},
		entity.NewEntity{Name: "a", Driver: "server"}, entity.NewEntity{Name: "b", Driver: "server", Attrs: []entity.Attr{num("height", 2)}},
		entity.NewEntity{Name: "c", Driver: "server"}, entity.NewEntity{Name: "d", Driver: "server"},
		entity.NewEntity{Name: "big", Driver: "server", Attrs: []entity.Attr{num("height", 6)}},
		entity.NewEntity{Name: "huge", Driver: "server", Attrs: []entity.Attr{num("height", 8)}})
	alloc := func(req entity.RackRequest) (entity.Relation, error) {
		var rel entity.Relation
		err := tryWrite(s, func(tx *store.Tx) error {
			var err error
			rel, err = tx.AllocateRackUnits(req)
			return err
		})
		return rel, err
	}
	steps := []struct {
		req     entity.RackRequest
		wantPos int64
		wantErr entity.ErrorKind
		code    string
	}{
		{req: entity.RackRequest{Rack: "r1", Entity: "a", Position: ptr(int64(2))}, wantPos: 2},
		{req: entity.RackRequest{Rack: "r1", Entity: "b"}, wantPos: 3},                                                                    // unit 1 is too small for 2U: 3-4
		{req: entity.RackRequest{Rack: "r1", Entity: "c"}, wantPos: 1},                                                                    // 1U fits the hole at 1
		{req: entity.RackRequest{Rack: "r1", Entity: "d", Position: ptr(int64(4))}, wantErr: entity.KindConflict},                         // overlaps b
		{req: entity.RackRequest{Rack: "r1", Entity: "d", Position: ptr(int64(10)), Height: ptr(int64(2))}, wantErr: entity.KindConflict}, // off the top
		{req: entity.RackRequest{Rack: "r1", Entity: "big"}, wantPos: 5},                                                                  // 5-10
		{req: entity.RackRequest{Rack: "r1", Entity: "huge"}, wantErr: entity.KindConflict, code: "exhausted"},
		{req: entity.RackRequest{Rack: "a", Entity: "d"}, wantErr: entity.KindInvalid},
	}
	for i, st := range steps {
		rel, err := alloc(st.req)
		if st.wantErr != "" {
			wantKind(t, err, st.wantErr)
			if st.code != "" && err.(*entity.Error).Code != st.code {
				t.Errorf("step %d: code %q, want %q", i, err.(*entity.Error).Code, st.code)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if *rel.Position != st.wantPos {
			t.Errorf("step %d: %s placed at %d, want %d", i, st.req.Entity, *rel.Position, st.wantPos)
		}
	}
	var el *entity.Elevation
	if err := s.View(context.Background(), func(tx *store.View) error { var err error; el, err = tx.Elevation("r1"); return err }); err != nil {
		t.Fatal(err)
	}
	var drawn []string
	for _, u := range el.Rows {
		drawn = append(drawn, u.Device)
	}
	want := []string{"big", "big", "big", "big", "big", "big", "b", "b", "a", "c"}
	if diff := cmp.Diff(want, drawn); diff != "" || el.Free != 0 || el.Units != 10 {
		t.Errorf("elevation from the top (-want +got):\n%s free=%d units=%d", diff, el.Free, el.Units)
	}
	changes, _ := s.Changes(context.Background(), 0, 100)
	var allocs int
	for _, c := range changes {
		if c.Op == entity.OpAllocate {
			allocs++
		}
	}
	if allocs != 4 {
		t.Errorf("%d allocate changes, want 4", allocs)
	}
}

func TestAllocateNames(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "servers", Driver: "namemanager", Attrs: []entity.Attr{str("basename", "server"), num("digits", 4)}},
		entity.NewEntity{Name: "server0002", Driver: "server"},
		entity.NewEntity{Name: "tiny", Driver: "namemanager", Attrs: []entity.Attr{str("basename", "t"), num("digits", 1), num("next", 8)}})
	names := func(m string, n int, attrs ...entity.Attr) ([]string, error) {
		var got []string
		err := tryWrite(s, func(tx *store.Tx) error {
			var err error
			got, err = tx.AllocateNames(entity.NameRequest{Manager: m, Driver: "server", Count: n, Attrs: attrs})
			return err
		})
		return got, err
	}
	got, err := names("servers", 3, str("status", "new"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"server0001", "server0003", "server0004"}, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if a := get(t, s, "server0003").Attrs; len(a) != 1 || a[0].Value.Text != "new" {
		t.Errorf("server0003 attrs = %v", a)
	}
	// Deleting a named entity does not make its number available again.
	write(t, s, func(tx *store.Tx) error { return tx.Delete("server0004", false) })
	if got, _ := names("servers", 1); !cmp.Equal(got, []string{"server0005"}) {
		t.Errorf("after a delete, next name = %v", got)
	}
	if got, _ := names("tiny", 2); !cmp.Equal(got, []string{"t8", "t9"}) {
		t.Errorf("tiny = %v", got)
	}
	_, err = names("tiny", 1)
	wantKind(t, err, entity.KindConflict)
	if !strings.Contains(err.Error(), "exhausted") || err.(*entity.Error).Code != "exhausted" {
		t.Errorf("exhausted error = %v", err)
	}
	// A failing batch creates nothing and does not move the counter.
	_, err = names("servers", 2, str("bad key", "x"))
	wantKind(t, err, entity.KindInvalid)
	if ok, _ := s.Exists(context.Background(), "server0006"); ok {
		t.Error("server0006 exists after a failed allocation")
	}
	if got, _ := names("servers", 1); !cmp.Equal(got, []string{"server0006"}) {
		t.Errorf("after a failed batch, next name = %v", got)
	}
}

func TestIdempotencyKeys(t *testing.T) {
	s := newStore(t)
	write(t, s, func(tx *store.Tx) error {
		if r, err := tx.IdempotencyLookup("alice", "k1"); err != nil || r != nil {
			t.Errorf("unknown key: %v %v", r, err)
		}
		return tx.IdempotencySave("alice", "k1", entity.Replay{RequestHash: "h1", Status: 201, Body: []byte(`{"ok":1}`)})
	})
	write(t, s, func(tx *store.Tx) error {
		r, err := tx.IdempotencyLookup("alice", "k1")
		if err != nil || r == nil || r.RequestHash != "h1" || r.Status != 201 || string(r.Body) != `{"ok":1}` {
			t.Errorf("replay = %+v %v", r, err)
		}
		if r, _ := tx.IdempotencyLookup("bob", "k1"); r != nil {
			t.Error("another actor sees alice's key")
		}
		return nil
	})
}
