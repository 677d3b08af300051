package query_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/query"
)

// dcZ: three racks; rack A has three unallocated servers, rack B two, rack C
// one allocated; another datacenter has unallocated servers too.
func allocInventory(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, t.TempDir()+"/alloc.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	err = s.Update(ctx, "t", func(tx *store.Tx) error {
		mk := func(name, driver string, attrs ...entity.Attr) error {
			return tx.Create(entity.NewEntity{Name: name, Driver: driver, Attrs: attrs})
		}
		in := func(p, c string) error { _, err := tx.Insert(p, c, entity.Placement{}); return err }
		for _, dc := range []string{"dcZ", "dcY"} {
			if err := mk(dc, "datacenter"); err != nil {
				return err
			}
		}
		status := func(v string) entity.Attr { return entity.Attr{Key: "status", Value: entity.String(v)} }
		layout := []struct {
			dc, rack string
			servers  map[string]string
		}{
			{"dcZ", "rackA", map[string]string{"a1": "unallocated", "a2": "unallocated", "a3": "unallocated"}},
			{"dcZ", "rackB", map[string]string{"b1": "unallocated", "b2": "unallocated"}},
			{"dcZ", "rackC", map[string]string{"c1": "allocated"}},
			{"dcY", "rackY", map[string]string{"y1": "unallocated", "y2": "unallocated"}},
		}
		for _, l := range layout {
			if err := mk(l.rack, "rack"); err != nil {
				return err
			}
			if err := in(l.dc, l.rack); err != nil {
				return err
			}
			for name, st := range l.servers {
				if err := mk(name, "server", status(st)); err != nil {
					return err
				}
				if err := in(l.rack, name); err != nil {
					return err
				}
			}
		}
		return mk("loose", "server", status("unallocated")) // in no rack
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const inZ = "driver:server and attr:status,unallocated in name:dcZ"

func allocate(s *store.Store, req query.AllocateRequest) ([]string, error) {
	var got []string
	err := s.Update(context.Background(), "t", func(tx *store.Tx) error {
		var err error
		got, err = query.Allocate(tx, req)
		return err
	})
	return got, err
}

func TestAllocateByQuery(t *testing.T) {
	set := []entity.Attr{{Key: "status", Value: entity.String("allocated")}, {Key: "owner", Value: entity.String("ticket-123")}}
	tests := []struct {
		name      string
		req       query.AllocateRequest
		want      []string
		available int // when the request cannot be met
	}{
		{"first in name order", query.AllocateRequest{Query: inZ, Count: 2}, []string{"a1", "a2"}, 0},
		{"each in a different rack", query.AllocateRequest{Query: inZ, Count: 2, Distinct: "rack"}, []string{"a1", "b1"}, 0},
		{"more racks than there are", query.AllocateRequest{Query: inZ, Count: 3, Distinct: "rack"}, nil, 2},
		{"more servers than there are", query.AllocateRequest{Query: inZ, Count: 6}, nil, 5},
		{"distinct datacenter, anywhere", query.AllocateRequest{Query: "driver:server and attr:status,unallocated", Count: 2, Distinct: "datacenter"}, []string{"a1", "y1"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := allocInventory(t)
			before, _ := s.LatestChange(context.Background())
			tc.req.Set = set
			got, err := allocate(s, tc.req)
			if tc.available > 0 {
				if entity.KindOf(err) != entity.KindConflict || err.(*entity.Error).Code != "insufficient" || err.(*entity.Error).Details["available"] != tc.available {
					t.Fatalf("err = %#v, want insufficient with %d available", err, tc.available)
				}
				if n, _ := s.LatestChange(context.Background()); n != before {
					t.Errorf("a refused allocation changed the log from %d to %d changes", before, n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("picked (-want +got):\n%s", diff)
			}
			for _, n := range got {
				e, _ := s.Get(context.Background(), n)
				if diff := cmp.Diff([]entity.Attr{set[1], set[0]}, e.Attrs); diff != "" {
					t.Errorf("%s attrs (-want +got):\n%s", n, diff)
				}
			}
			// The picked ones no longer match: the next allocation takes others.
			again, err := allocate(s, query.AllocateRequest{Query: inZ, Count: 1, Set: set})
			if err != nil || again[0] == got[0] {
				t.Errorf("second allocation = %v, %v", again, err)
			}
		})
	}
	s := allocInventory(t)
	for _, bad := range []query.AllocateRequest{{Query: inZ, Count: 0}, {Query: inZ, Count: 1, Distinct: "toaster"}, {Query: "driver:", Count: 1}} {
		var syntax *query.SyntaxError
		if _, err := allocate(s, bad); err == nil || (entity.KindOf(err) == entity.KindInternal && !errors.As(err, &syntax)) {
			t.Errorf("%+v: err = %v", bad, err)
		}
	}
}

// Concurrent allocations each get distinct entities.
func TestAllocateByQueryConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := store.Open(ctx, t.TempDir()+"/c.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 20 goroutines of 5 allocations of 2; with -short (make test runs it
	// so under -race), of 2.
	const goroutines = 20
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	n := goroutines * rounds * 2
	err = s.Update(ctx, "t", func(tx *store.Tx) error {
		for i := 0; i < n; i++ {
			if err := tx.Create(entity.NewEntity{Name: fmt.Sprintf("s%03d", i), Driver: "server",
				Attrs: []entity.Attr{{Key: "status", Value: entity.String("unallocated")}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				got, err := allocate(s, query.AllocateRequest{Query: "driver:server attr:status,unallocated", Count: 2,
					Set: []entity.Attr{{Key: "status", Value: entity.String("allocated")}}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, x := range got {
					if seen[x] {
						t.Errorf("%s handed out twice", x)
					}
					seen[x] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d distinct entities handed out, want %d", len(seen), n)
	}
}

// TestDistinctAllocationReadsPastTheFirstBatch: a distinct allocation
// reads candidates a batch at a time and stops once it has enough; when
// the ancestors it needs come after hundreds of candidates under one rack
// (more than a batch), it still finds them, in name order, and when too
// few exist it reports exactly how many ancestors could be had.
func TestDistinctAllocationReadsPastTheFirstBatch(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, t.TempDir()+"/wide.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const crowd = 600 // candidates under rack "ra", more than two batches
	err = s.Update(ctx, "t", func(tx *store.Tx) error {
		for _, r := range []string{"ra", "rb", "rc"} {
			if err := tx.Create(entity.NewEntity{Name: r, Driver: "rack"}); err != nil {
				return err
			}
		}
		add := func(name, rack string) error {
			if err := tx.Create(entity.NewEntity{Name: name, Driver: "server", Attrs: []entity.Attr{{Key: "status", Value: entity.String("spare")}}}); err != nil {
				return err
			}
			_, err := tx.Insert(rack, name, entity.Placement{})
			return err
		}
		for i := range crowd {
			if err := add(fmt.Sprintf("a%04d", i), "ra"); err != nil {
				return err
			}
		}
		if err := add("b0000", "rb"); err != nil {
			return err
		}
		return add("c0000", "rc")
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := allocate(s, query.AllocateRequest{Query: "attr:status,spare", Count: 3, Distinct: "rack", Set: []entity.Attr{{Key: "status", Value: entity.String("taken")}}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a0000", "b0000", "c0000"}, got); diff != "" {
		t.Errorf("picks (-want +got):\n%s", diff)
	}
	_, err = allocate(s, query.AllocateRequest{Query: "attr:status,spare", Count: 2, Distinct: "rack"})
	var e *entity.Error
	if !errors.As(err, &e) || e.Code != entity.ReasonInsufficient || e.Details["available"] != 1 {
		t.Errorf("two more under different racks: %v (details %v), want insufficient with 1 available", err, e)
	}
}

// TestAllocateFromCandidates: candidates read outside the writer are
// taken as Allocate would take them when nothing changed since; one taken
// meanwhile is passed over for the next; too few left falls back to a
// fresh look inside the writer.
func TestAllocateFromCandidates(t *testing.T) {
	ctx := context.Background()
	s := allocInventory(t)
	taken := []entity.Attr{{Key: "status", Value: entity.String("allocated")}}
	inZ := "attr:status,unallocated in name:dcZ"
	from := func(req query.AllocateRequest, cands []string) ([]string, error) {
		var got []string
		err := s.Update(ctx, "t", func(tx *store.Tx) error {
			var err error
			got, err = query.AllocateFrom(tx, req, cands)
			return err
		})
		return got, err
	}
	for _, req := range []query.AllocateRequest{
		{Query: inZ, Count: 2, Set: taken},
		{Query: inZ, Count: 2, Distinct: "rack", Set: taken},
	} {
		cands, err := query.Candidates(ctx, s.Reader(), req, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		err = s.DryRun(ctx, "t", func(tx *store.Tx) error {
			var err error
			want, err = query.Allocate(tx, req)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := from(req, cands)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%+v from fresh candidates %v (-Allocate +AllocateFrom):\n%s", req, cands, diff)
		}
	}
	// On a fresh inventory, the first candidate is taken behind the
	// allocator's back.
	s = allocInventory(t)
	one := query.AllocateRequest{Query: inZ, Count: 1, Set: taken}
	cands, err := query.Candidates(ctx, s.Reader(), one, 2, nil)
	if err != nil || len(cands) != 3 {
		t.Fatalf("candidates %v, %v", cands, err)
	}
	if _, err := allocate(s, one); err != nil {
		t.Fatal(err)
	}
	got, err := from(one, cands)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cands[1:2], got); diff != "" {
		t.Errorf("with the first candidate taken meanwhile (-want +got):\n%s", diff)
	}
	// Candidates that no longer match at all: a fresh look inside the writer.
	got, err = from(one, []string{"nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cands[2:3], got); diff != "" {
		t.Errorf("with no candidate left (-want +got):\n%s", diff)
	}
}
