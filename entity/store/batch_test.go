package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

const batchJSON = `[
 {"op":"create","name":"r1","driver":"rack"},
 {"op":"create","name":"s1","driver":"server","attrs":[{"key":"status","value":"new"}]},
 {"op":"create","name":"sw1","driver":"switch"},
 {"op":"create","name":"net","driver":"ipblock","attrs":[{"key":"cidr","value":"10.0.0.0/24"}]},
 {"op":"insert","parent":"r1","child":"s1","position":10},
 {"op":"link","a":"s1","a_port":"eth0","b":"sw1","b_port":"3"},
 {"op":"attr_set","name":"s1","key":"status","values":["live"]},
 {"op":"attr_add","name":"s1","key":"disk","value":"sda","auto_number":true},
 {"op":"allocate_ip","block":"net","entity":"s1","interface":"eth0"},
 {"op":"allocate_ru","rack":"r1","entity":"sw1"}
]`

func TestBatchAppliesInOrder(t *testing.T) {
	s := newStore(t)
	ops, err := entity.DecodeOps([]byte(batchJSON))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Batch(context.Background(), "ops", ops, store.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var perOp []int
	for _, r := range res {
		perOp = append(perOp, len(r.Changes))
	}
	if diff := cmp.Diff([]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, perOp); diff != "" {
		t.Errorf("changes per op (-want +got):\n%s", diff)
	}
	if got := res[8].Result.([]entity.Allocation)[0].Address; got != "10.0.0.1" {
		t.Errorf("allocated %s", got)
	}
	if got := *res[9].Result.(entity.Relation).Position; got != 1 {
		t.Errorf("switch placed at %d, want 1", got)
	}
	e := get(t, s, "s1")
	if len(e.Links) != 1 || len(e.Parents) != 1 || len(e.Attrs) != 3 {
		t.Errorf("s1 after the batch: %+v", e)
	}
}

func TestBatchIsAllOrNothing(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ops, err := entity.DecodeOps([]byte(`[
		{"op":"create","name":"r1","driver":"rack"},
		{"op":"create","name":"a","driver":"server"},
		{"op":"create","name":"b","driver":"server"},
		{"op":"insert","parent":"r1","child":"a","position":5,"height":2},
		{"op":"insert","parent":"r1","child":"b","position":6}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Batch(ctx, "ops", ops, store.BatchOptions{})
	wantKind(t, err, entity.KindConflict)
	if d := err.(*entity.Error).Details["op"]; d != 4 {
		t.Errorf("failing op reported as %v, want 4", d)
	}
	for _, n := range []string{"r1", "a", "b"} {
		if ok, _ := s.Exists(ctx, n); ok {
			t.Errorf("%s exists after a failed batch", n)
		}
	}
	if n, _ := s.LatestChange(ctx); n != 0 {
		t.Errorf("a failed batch left %d changes", n)
	}
}

func TestBatchDryRun(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ops, _ := entity.DecodeOps([]byte(batchJSON))
	plan, err := s.Batch(ctx, "ops", ops, store.BatchOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan) != len(ops) {
		t.Fatalf("dry run planned %d ops", len(plan))
	}
	if n, _ := s.LatestChange(ctx); n != 0 {
		t.Errorf("a dry run recorded %d changes", n)
	}
	// Running it for real gives the same plan.
	real, err := s.Batch(ctx, "ops", ops, store.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(plan, real, cmpopts.IgnoreFields(entity.Change{}, "Time")); diff != "" {
		t.Errorf("dry run and real run differ (-dry +real):\n%s", diff)
	}
}

func TestBatchRejectsBadOps(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct{ name, body string }{
		{"unknown field", `[{"op":"create","name":"a","driver":"server","colour":"red"}]`},
		{"unknown op", `[{"op":"explode","name":"a"}]`},
		{"missing field", `[{"op":"create","name":"a"}]`},
		{"empty", `[]`},
		{"bad value", `[{"op":"create","name":"a","driver":"server"},{"op":"attr_add","name":"a","key":"k","value":1.5}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := entity.DecodeOps([]byte(tc.body))
			if err == nil {
				_, err = s.Batch(context.Background(), "ops", ops, store.BatchOptions{})
			}
			wantKind(t, err, entity.KindInvalid)
		})
	}
}

// TestBatchStream: ops handed over a slice at a time apply as one batch
// of the same ops: results are numbered across the stream, a failing op
// in a later slice is named by its index in the whole stream and rolls
// back the slices before it, a dry run stores nothing, and a stream of
// no ops is not an error.
func TestBatchStream(t *testing.T) {
	ops, err := entity.DecodeOps([]byte(batchJSON))
	if err != nil {
		t.Fatal(err)
	}
	bad := append(append([]entity.Op{}, ops...), entity.Op{Op: "insert", Parent: "r1", Child: "nobody"})
	ctx := context.Background()
	tests := []struct {
		name    string
		ops     []entity.Op
		opts    store.BatchOptions
		wantErr int // index of the failing op, -1 for none
		stored  bool
	}{
		{"applies", ops, store.BatchOptions{}, -1, true},
		{"no results", ops, store.BatchOptions{NoResults: true}, -1, true},
		{"dry run", ops, store.BatchOptions{DryRun: true}, -1, false},
		{"late failure", bad, store.BatchOptions{}, len(ops), false},
		{"nothing", nil, store.BatchOptions{}, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			var indexes []int
			err := s.BatchStream(ctx, "ops", tc.opts, func(st *store.OpStream) error {
				for start := 0; start < len(tc.ops); start += 3 {
					res, err := st.Apply(tc.ops[start:min(start+3, len(tc.ops))])
					if err != nil {
						return err
					}
					for _, r := range res {
						indexes = append(indexes, r.Index)
					}
				}
				if st.Applied() != len(tc.ops) {
					t.Errorf("Applied() = %d, want %d", st.Applied(), len(tc.ops))
				}
				return nil
			})
			if tc.wantErr >= 0 {
				var e *entity.Error
				if !errors.As(err, &e) || e.Details["op"] != tc.wantErr {
					t.Fatalf("err = %v, want one naming op %d", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.wantErr < 0 && !tc.opts.NoResults && len(tc.ops) > 0 {
				want := make([]int, len(tc.ops))
				for i := range want {
					want[i] = i
				}
				if diff := cmp.Diff(want, indexes); diff != "" {
					t.Errorf("result indexes (-want +got):\n%s", diff)
				}
			}
			if tc.opts.NoResults && len(indexes) != 0 {
				t.Errorf("NoResults returned %d results", len(indexes))
			}
			n, err := s.LatestChange(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if stored := n > 0; stored != tc.stored {
				t.Errorf("stored: %v (latest change %d), want %v", stored, n, tc.stored)
			}
		})
	}
}
