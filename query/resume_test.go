package query_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/query"
)

// TestResumePointsNeverChangeCandidates: random streams of allocations
// (candidates read with resume points, then taken on the writer as the
// server does) and of the writes that could make an entity before a point
// match again (a status set back to spare, a rename to an earlier name, a
// new entity with an early name, a delete, a numeric attribute), and after
// each, for every query, the candidates read with the points are those
// read from the first name without them.
func TestResumePointsNeverChangeCandidates(t *testing.T) {
	steps := 300
	if testing.Short() {
		steps = 80
	}
	queries := []query.AllocateRequest{
		{Query: "driver:server and attr:status,spare", Count: 1},
		{Query: "attr:status,spare", Count: 2},
		{Query: "driver:server and not attr:status,allocated and not attr:status,broken", Count: 1},
		{Query: "name:s* and attr:rank>3 and attr:status,spare", Count: 1},
		{Query: "driver:server and attr:status,spare", Count: 2, Distinct: "rack"},
		// Not own rows only: never resumed. A rack moved between
		// datacenters changes what these match without a row of the
		// servers changing.
		{Query: "attr:status,spare in name:dc1", Count: 1},
		{Query: "driver:server and not attr:status,allocated in name:dc0", Count: 1},
	}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ctx := context.Background()
			r := rand.New(rand.NewPCG(seed, 77))
			s, err := store.Open(ctx, t.TempDir()+"/resume.db", store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			status := func(v string) entity.Attr { return entity.Attr{Key: "status", Value: entity.String(v)} }
			statuses := []string{"spare", "spare", "allocated", "broken"}
			names := []string{}
			err = s.Update(ctx, "t", func(tx *store.Tx) error {
				for _, dc := range []string{"dc0", "dc1"} {
					if err := tx.Create(entity.NewEntity{Name: dc, Driver: "datacenter"}); err != nil {
						return err
					}
				}
				for k := range 4 {
					if err := tx.Create(entity.NewEntity{Name: fmt.Sprintf("r%d", k), Driver: "rack"}); err != nil {
						return err
					}
					if _, err := tx.Insert(fmt.Sprintf("dc%d", k%2), fmt.Sprintf("r%d", k), entity.Placement{}); err != nil {
						return err
					}
				}
				for i := range 60 {
					n := fmt.Sprintf("s%02d", i)
					names = append(names, n)
					attrs := []entity.Attr{status(statuses[r.IntN(len(statuses))]), {Key: "rank", Value: entity.Int(int64(r.IntN(8)))}}
					if err := tx.Create(entity.NewEntity{Name: n, Driver: "server", Attrs: attrs}); err != nil {
						return err
					}
					if _, err := tx.Insert(fmt.Sprintf("r%d", i%4), n, entity.Placement{}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			points := query.NewResumePoints()
			allocated := 0
			for step := range steps {
				name := names[r.IntN(len(names))]
				var what string
				err := s.Update(ctx, "t", func(tx *store.Tx) error {
					switch k := r.IntN(11); {
					case k < 5: // an allocation, as the server makes it
						req := queries[r.IntN(len(queries))]
						req.Set = []entity.Attr{status("allocated")}
						what = "allocate " + req.Query
						cands, err := query.Candidates(ctx, s.Reader(), req, 2, points)
						if err != nil {
							return err
						}
						if _, err := query.AllocateFrom(tx, req, cands); err != nil && entity.KindOf(err) != entity.KindConflict {
							return err
						}
						allocated++
						return nil
					case k < 7:
						what = "status of " + name
						_, err := tx.SetAttr(name, entity.AttrSelector{Key: "status"}, []entity.Value{entity.String(statuses[r.IntN(len(statuses))])})
						return err
					case k == 7:
						what = "rank of " + name
						_, err := tx.SetAttr(name, entity.AttrSelector{Key: "rank"}, []entity.Value{entity.Int(int64(r.IntN(8)))})
						return err
					case k == 8: // an early name: renamed to it, or new
						early := fmt.Sprintf("a%03d", step)
						if r.IntN(2) == 0 {
							what = "rename " + name + " to " + early
							if err := tx.Rename(name, early); err != nil {
								return err
							}
							names = replace(names, name, early)
							return nil
						}
						what = "create " + early
						names = append(names, early)
						return tx.Create(entity.NewEntity{Name: early, Driver: "server", Attrs: []entity.Attr{status("spare"), {Key: "rank", Value: entity.Int(5)}}})
					case k == 9: // a rack to the other datacenter
						rack := fmt.Sprintf("r%d", r.IntN(4))
						what = "move " + rack
						e, err := tx.Get(rack)
						if err != nil {
							return err
						}
						from := e.Parents[0].Name
						if err := tx.Remove(from, rack); err != nil {
							return err
						}
						to := map[string]string{"dc0": "dc1", "dc1": "dc0"}[from]
						_, err = tx.Insert(to, rack, entity.Placement{})
						return err
					default:
						what = "delete " + name
						names = replace(names, name, "")
						return tx.Delete(name, true)
					}
				})
				if err != nil {
					t.Fatalf("step %d (%s): %v", step, what, err)
				}
				for _, req := range queries {
					with, err := query.Candidates(ctx, s.Reader(), req, 3, points)
					if err != nil {
						t.Fatal(err)
					}
					without, err := query.Candidates(ctx, s.Reader(), req, 3, nil)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(without, with); diff != "" {
						t.Fatalf("step %d (after %s): candidates of %q distinct %q (-from the first name +from the point):\n%s", step, what, req.Query, req.Distinct, diff)
					}
				}
			}
			if points.Used() == 0 || allocated == 0 {
				t.Fatalf("%d walks started at a point, %d allocations: this test proves nothing", points.Used(), allocated)
			}
		})
	}
}

// replace swaps old for new in names ("" drops it).
func replace(names []string, old, new string) []string {
	out := names[:0]
	for _, n := range names {
		switch {
		case n != old:
			out = append(out, n)
		case new != "":
			out = append(out, new)
		}
	}
	return out
}
