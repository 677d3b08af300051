package query

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
)

// scaleQueries are typical questions whose page of 100 should cost the
// same on a small inventory and a large one (issue 15): every name they
// use exists at each of invgen.BenchScales's sizes.
var scaleQueries = []string{
	`attr:status,broken`,
	`driver:server and attr:status,spare`,
	`driver:console-server`,
	`driver:server connected to name:production`,
	`driver:vm in name:` + invgen.Row(1, 40),
	`driver:server in name:` + invgen.DC(0) + ` and attr:status,broken`,
}

// BenchmarkPageScale times the first page of 100 of each scaleQueries at
// the three sizes of invgen.BenchScales (10k, 100k, 300k entities), the
// sizes interleaved in each loop so that the machine's noise falls on
// all three alike. For each size it reports medians: ns/op (Run with the
// total the API answers by default, capped at 1,000), exact-ns (Run
// counting every match, total=exact), page-ns and count-ns (the page
// statement and the capped count statement alone, each in its own read
// transaction); and x-10k and exact-x-10k, the largest size's ns/op and
// exact-ns over the smallest's. The inventories are built once per
// machine (invgen.Cached: the 300k one in a few minutes). Run it alone
// with
//
//	go test -run '^$' -bench PageScale -benchtime 1x ./query
func BenchmarkPageScale(b *testing.B) {
	ctx := context.Background()
	var stores []*store.Store
	for _, sp := range invgen.BenchScales {
		start := time.Now()
		path, err := invgen.Cached(ctx, sp, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		st, err := store.Open(ctx, path, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		b.Logf("%d entities ready in %s", sp.Entities(), time.Since(start).Round(time.Millisecond))
		stores = append(stores, st)
	}
	capped, exact := Options{TotalCap: scaleTotalCap}, Options{}
	for _, text := range scaleQueries {
		b.Run(text, func(b *testing.B) {
			n := len(stores)
			compiled := make([]*Compiled, n)
			for i, st := range stores {
				q, err := Parse(text)
				if err != nil {
					b.Fatal(err)
				}
				opts := capped
				opts.DB = st.Reader()
				if compiled[i], err = Compile(q, opts); err != nil {
					b.Fatal(err)
				}
				res, err := Run(ctx, st.Reader(), text, exact)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Results) < DefaultLimit {
					b.Fatalf("%s: %d matches at %d entities, not a page of %d", text, res.Total, invgen.BenchScales[i].Entities(), DefaultLimit)
				}
				b.Logf("%d entities: %d matches; page in name-order form: %v", invgen.BenchScales[i].Entities(), res.Total, compiled[i].walk)
			}
			// What is timed, in this order, at each size, in two rounds:
			// the exact count's, whose work at 300k (hundreds of ms)
			// slowed whatever ran after it, in a round of its own.
			steps := []struct {
				metric string
				round  int
				run    func(i int) error
			}{
				{"ns/op", 0, func(i int) error { _, err := Run(ctx, stores[i].Reader(), text, capped); return err }},
				{"page-ns", 0, func(i int) error { s, args := compiled[i].statementFor(); return drain(ctx, stores[i], s, args) }},
				{"count-ns", 0, func(i int) error { s, args := compiled[i].Count(); return drain(ctx, stores[i], s, args) }},
				{"exact-ns", 1, func(i int) error { _, err := Run(ctx, stores[i].Reader(), text, exact); return err }},
			}
			times := make([][][]time.Duration, len(steps)) // step, size, repetition
			for k := range steps {
				times[k] = make([][]time.Duration, n)
			}
			b.ResetTimer()
			for round := range 2 {
				start := time.Now()
				for rep := 0; rep < b.N+3 || rep < 15+3 || time.Since(start) < benchMinTime && rep < 200; rep++ {
					for i := range stores {
						for k, step := range steps {
							if step.round != round {
								continue
							}
							t0 := time.Now()
							if err := step.run(i); err != nil {
								b.Fatal(err)
							}
							if rep >= 3 { // the first runs warm the caches
								times[k][i] = append(times[k][i], time.Since(t0))
							}
						}
					}
				}
			}
			b.StopTimer()
			for i, sp := range invgen.BenchScales {
				size := fmt.Sprintf("%dk", (sp.Entities()+500)/1000)
				for k, step := range steps {
					b.ReportMetric(float64(median(times[k][i]).Nanoseconds()), size+"-"+step.metric)
				}
			}
			b.ReportMetric(float64(median(times[0][n-1]))/float64(median(times[0][0])), "x-10k")
			b.ReportMetric(float64(median(times[3][n-1]))/float64(median(times[3][0])), "exact-x-10k")
		})
	}
}

// scaleTotalCap is the API's cap on counting (server.totalCap).
const scaleTotalCap = 1000

// drain runs one statement in a read transaction and reads every row.
func drain(ctx context.Context, st *store.Store, s string, args []any) error {
	return st.View(ctx, func(v *store.View) error {
		rows, err := v.QueryContext(ctx, s, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
		}
		return rows.Err()
	})
}
