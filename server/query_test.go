package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func names(es []entity.Entity) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestQueryEndpoints(t *testing.T) {
	e := newEnv(t)
	e.dc()
	e.mk("rack102", "rack", "server2", "server", "server3", "server")
	e.do("POST", api+"/entities/rack102/children", map[string]any{"child": "server2", "position": 5}).want(t, http.StatusCreated)
	e.do("POST", api+"/entities/server3/attrs", map[string]any{"key": "status", "value": "unallocated"}).want(t, http.StatusCreated)
	var page entity.Results
	e.do("GET", api+"/query?q="+url.QueryEscape("driver:Server connected to name:rack101"), nil).want(t, http.StatusOK).decode(t, &page)
	if diff := cmp.Diff([]string{"server1"}, names(page.Results)); diff != "" || page.Total != 1 {
		t.Errorf("connected to (-want +got):\n%s total %d", diff, page.Total)
	}
	if len(page.Results[0].Links) != 3 {
		t.Errorf("results are not full entities: %+v", page.Results[0])
	}
	// Pages with a cursor.
	e.do("GET", api+"/query?q=driver:server&limit=2", nil).want(t, http.StatusOK).decode(t, &page)
	if diff := cmp.Diff([]string{"server1", "server2"}, names(page.Results)); diff != "" || page.Total != 3 || page.NextCursor == "" {
		t.Fatalf("page 1 (-want +got):\n%s total %d cursor %q", diff, page.Total, page.NextCursor)
	}
	e.do("GET", api+"/query?q=driver:server&limit=2&cursor="+url.QueryEscape(page.NextCursor), nil).want(t, http.StatusOK).decode(t, &page)
	if diff := cmp.Diff([]string{"server3"}, names(page.Results)); diff != "" || page.NextCursor != "" {
		t.Errorf("page 2 (-want +got):\n%s cursor %q", diff, page.NextCursor)
	}
	// POST with the same fields.
	e.do("POST", api+"/query", map[string]any{"q": "attr:status,unallocated"}).want(t, http.StatusOK).decode(t, &page)
	if diff := cmp.Diff([]string{"server3"}, names(page.Results)); diff != "" {
		t.Errorf("POST query (-want +got):\n%s", diff)
	}
	// As of a past change.
	before := e.changeCount()
	e.do("DELETE", api+"/entities/server3?cascade=true", nil).want(t, http.StatusOK)
	e.do("GET", api+fmt.Sprintf("/query?q=attr:status,unallocated&at=%d", before), nil).want(t, http.StatusOK).decode(t, &page)
	if diff := cmp.Diff([]string{"server3"}, names(page.Results)); diff != "" {
		t.Errorf("as of %d (-want +got):\n%s", before, diff)
	}
	// Explain shows SQL with bound parameters, never the query text spliced in.
	var ex entity.Explanation
	e.do("GET", api+"/query?explain=1&q="+url.QueryEscape("name:\"x'; DROP TABLE entities; --\""), nil).want(t, http.StatusOK).decode(t, &ex)
	if strings.Contains(ex.SQL, "DROP") || len(ex.Args) == 0 || len(ex.Plan) == 0 {
		t.Errorf("explain = %+v", ex)
	}
	// A syntax error carries its position.
	er := e.do("GET", api+"/query?q="+url.QueryEscape("driver:server and"), nil).wantErr(t, http.StatusBadRequest, "query_syntax")
	if er.Position == nil || er.Position.Line != 1 || er.Position.Column < 15 {
		t.Errorf("syntax error position = %+v (%s)", er.Position, er.Message)
	}
	e.do("GET", api+"/query?q=", nil).wantErr(t, http.StatusBadRequest, "query_syntax")
	e.do("GET", api+"/query?q=*&cursor=bogus", nil).wantErr(t, http.StatusBadRequest, "invalid")
	e.do("GET", api+"/query?q=*&at=99999", nil).wantErr(t, http.StatusBadRequest, "invalid")
	e.do("GET", api+"/query?q="+url.QueryEscape("name:/[/"), nil).want(t, http.StatusBadRequest)
}

func TestAllocateByQueryOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.mk("dcZ", "datacenter", "r1", "rack", "r2", "rack")
	for _, rk := range []string{"r1", "r2"} {
		e.do("POST", api+"/entities/dcZ/children", map[string]any{"child": rk}).want(t, http.StatusCreated)
		for i := 1; i <= 3; i++ {
			n := fmt.Sprintf("%s-s%d", rk, i)
			e.do("POST", api+"/entities", map[string]any{"name": n, "driver": "server", "attrs": []map[string]any{{"key": "status", "value": "unallocated"}}}).want(t, http.StatusCreated)
			e.do("POST", api+"/entities/"+rk+"/children", map[string]any{"child": n}).want(t, http.StatusCreated)
		}
	}
	body := map[string]any{"query": "driver:server and attr:status,unallocated in name:dcZ", "count": 2, "distinct": "rack",
		"set": map[string]any{"status": "allocated", "owner": "ticket-123"}}
	var got entity.EntitiesAnswer
	before := e.changeCount()
	dry := map[string]any{}
	for k, v := range body {
		dry[k] = v
	}
	dry["dry_run"] = true
	e.do("POST", api+"/allocate", dry).want(t, http.StatusOK).decode(t, &got)
	if diff := cmp.Diff([]string{"r1-s1", "r2-s1"}, names(got.Results)); diff != "" || e.changeCount() != before {
		t.Fatalf("dry run (-want +got):\n%s changes %d -> %d", diff, before, e.changeCount())
	}
	e.do("POST", api+"/allocate", body).want(t, http.StatusOK).decode(t, &got)
	if diff := cmp.Diff([]string{"r1-s1", "r2-s1"}, names(got.Results)); diff != "" {
		t.Fatalf("allocation (-want +got):\n%s", diff)
	}
	if a := e.get("r1-s1").Attrs; len(a) != 2 || a[1].Value.Text != "allocated" {
		t.Errorf("r1-s1 attrs = %+v", a)
	}
	body["count"] = 3
	er := e.do("POST", api+"/allocate", body).wantErr(t, http.StatusConflict, "conflict")
	if er.Reason != "insufficient" {
		t.Errorf("reason %q, want insufficient", er.Reason)
	}
	if er.Details["available"] != float64(2) {
		t.Errorf("details = %v", er.Details)
	}
}

// 64 clients at once, each allocating servers by query: all distinct.
// With -short (make test runs it so under -race), 32 clients.
func TestConcurrentQueryAllocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clients := 64
	if testing.Short() {
		clients = 32
	}
	total := clients * 2 * 2 // two allocations of two each
	err := e.store.Update(context.Background(), "t", func(tx *store.Tx) error {
		for i := 0; i < total; i++ {
			if err := tx.Create(entity.NewEntity{Name: fmt.Sprintf("s%04d", i), Driver: "server",
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
	errs := make(chan string, total+clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2; i++ {
				r := e.doQuiet("POST", api+"/allocate", map[string]any{"query": "driver:server attr:status,unallocated", "count": 2, "set": map[string]any{"status": "allocated"}})
				if r.Status != http.StatusOK {
					errs <- fmt.Sprintf("status %d: %s", r.Status, r.Body)
					return
				}
				var got entity.EntitiesAnswer
				if err := json.Unmarshal(r.Body, &got); err != nil {
					errs <- fmt.Sprintf("decode %s: %v", r.Body, err)
					return
				}
				mu.Lock()
				for _, x := range got.Results {
					if seen[x.Name] {
						errs <- x.Name + " handed out twice"
					}
					seen[x.Name] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for m := range errs {
		t.Fatal(m)
	}
	if len(seen) != total {
		t.Errorf("%d distinct servers allocated, want %d", len(seen), total)
	}
}

func TestExportEndpoint(t *testing.T) {
	e := newEnv(t)
	e.dc()
	var all, some entity.Export
	e.do("GET", api+"/export", nil).want(t, http.StatusOK).decode(t, &all)
	e.do("GET", api+"/export?q=driver:server", nil).want(t, http.StatusOK).decode(t, &some)
	if all.Count != 6 || some.Count != 1 || !strings.Contains(some.Content, "server1:") || strings.Contains(some.Content, "switch2a:\n") {
		t.Errorf("export all %d, servers %d:\n%s", all.Count, some.Count, some.Content)
	}
	// The export applies to an empty server and plans nothing afterwards.
	e2 := newEnv(t)
	e2.do("POST", api+"/apply", map[string]any{"file": "export.yaml", "content": all.Content}).want(t, http.StatusOK)
	var p entity.PlanAnswer
	e2.do("POST", api+"/plan", map[string]any{"content": all.Content}).want(t, http.StatusOK).decode(t, &p)
	if len(p.Plan.Steps) != 0 {
		t.Errorf("re-plan after import: %+v", p.Plan.Steps)
	}
}

// TestQuerySummaryView: view=summary answers each match's name, driver,
// kind and version (those of the full view), with the same total and
// cursor, on GET and POST, now and as of a past change; another view is
// refused.
func TestQuerySummaryView(t *testing.T) {
	e := newEnv(t)
	e.dc()
	e.mk("rack102", "rack", "server2", "server", "server3", "server")
	e.do("POST", api+"/entities/server3/attrs", map[string]any{"key": "status", "value": "spare"}).want(t, http.StatusCreated)
	before := e.changeCount()
	e.do("DELETE", api+"/entities/server2?cascade=true", nil).want(t, http.StatusOK)
	summarize := func(full entity.Results) entity.SummaryResults {
		out := entity.SummaryResults{Results: []entity.Summary{}, Total: full.Total, NextCursor: full.NextCursor}
		for _, en := range full.Results {
			out.Results = append(out.Results, entity.Summary{Name: en.Name, Driver: en.Driver, Kind: en.Kind, Version: en.Version})
		}
		return out
	}
	for _, q := range []string{"driver:server&limit=1", "driver:server", fmt.Sprintf("driver:server&at=%d", before), "*"} {
		var full entity.Results
		var sum entity.SummaryResults
		e.do("GET", api+"/query?q="+q, nil).want(t, http.StatusOK).decode(t, &full)
		e.do("GET", api+"/query?view=summary&q="+q, nil).want(t, http.StatusOK).decode(t, &sum)
		if len(full.Results) == 0 {
			t.Fatalf("%s: no results to compare", q)
		}
		if diff := cmp.Diff(summarize(full), sum); diff != "" {
			t.Errorf("GET %s: summary differs from the full view (-want +got):\n%s", q, diff)
		}
	}
	var sum entity.SummaryResults
	e.do("POST", api+"/query", map[string]any{"q": "attr:status,spare", "view": "summary"}).want(t, http.StatusOK).decode(t, &sum)
	if diff := cmp.Diff([]entity.Summary{{Name: "server3", Driver: "server", Kind: "equipment", Version: 2}}, sum.Results); diff != "" || sum.Total != 1 {
		t.Errorf("POST summary (-want +got):\n%s total %d", diff, sum.Total)
	}
	er := e.do("GET", api+"/query?view=brief&q=*", nil).wantErr(t, http.StatusBadRequest, "invalid")
	if !strings.Contains(er.Message, `view "brief"`) {
		t.Errorf("bad view: %s", er.Message)
	}
}

// TestCappedTotal: total=capped, the default, counts up to 1,000 matches:
// past that the answer says total_at_least with total 1,000, in both
// views and on later pages; under it the total is exact and
// total_at_least absent; total=exact counts every match.
func TestCappedTotal(t *testing.T) {
	e := newEnv(t)
	ops := []entity.Op{}
	for i := range 1100 {
		ops = append(ops, entity.Op{Op: "create", Name: fmt.Sprintf("s%04d", i), Driver: "server"})
	}
	e.do("POST", api+"/batch", map[string]any{"ops": ops}).want(t, http.StatusOK)
	type page struct {
		Total        int  `json:"total"`
		TotalAtLeast bool `json:"total_at_least"`
	}
	for _, tc := range []struct {
		q    string
		want page
	}{
		{"driver:server&limit=10&total=capped", page{1000, true}},
		{"driver:server&limit=10&total=capped&view=summary", page{1000, true}},
		{"driver:server&limit=10", page{1000, true}},
		{"driver:server&limit=10&view=summary", page{1000, true}},
		{"driver:server&limit=10&total=exact", page{1100, false}},
		{"driver:server&limit=10&total=exact&view=summary", page{1100, false}},
		{"name:s00*&limit=10&total=capped", page{100, false}},
		{"name:s00*&limit=10", page{100, false}},
	} {
		var got page
		r := e.do("GET", api+"/query?q="+tc.q, nil).want(t, http.StatusOK)
		r.decode(t, &got)
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.q, got, tc.want)
		}
		if !tc.want.TotalAtLeast && strings.Contains(string(r.Body), "total_at_least") {
			t.Errorf("%s: total_at_least in an exact answer: %s", tc.q, r.Body)
		}
	}
	var got page
	e.do("POST", api+"/query", map[string]any{"q": "driver:server", "limit": 5, "total": "capped"}).want(t, http.StatusOK).decode(t, &got)
	if got != (page{1000, true}) {
		t.Errorf("POST capped: %+v", got)
	}
	got = page{}
	e.do("POST", api+"/query", map[string]any{"q": "driver:server", "limit": 5}).want(t, http.StatusOK).decode(t, &got)
	if got != (page{1000, true}) {
		t.Errorf("POST, default total: %+v", got)
	}
	// A later page is counted the same way.
	var first struct {
		NextCursor string `json:"next_cursor"`
	}
	e.do("GET", api+"/query?q=driver:server&limit=10", nil).want(t, http.StatusOK).decode(t, &first)
	got = page{}
	e.do("GET", api+"/query?q=driver:server&limit=10&cursor="+first.NextCursor, nil).want(t, http.StatusOK).decode(t, &got)
	if first.NextCursor == "" || got != (page{1000, true}) {
		t.Errorf("second page, default total: %+v (cursor %q)", got, first.NextCursor)
	}
	got = page{}
	e.do("POST", api+"/query", map[string]any{"q": "driver:server", "limit": 5, "total": "exact"}).want(t, http.StatusOK).decode(t, &got)
	if got != (page{1100, false}) {
		t.Errorf("POST exact: %+v", got)
	}
	er := e.do("GET", api+"/query?q=*&total=roughly", nil).wantErr(t, http.StatusBadRequest, "invalid")
	if !strings.Contains(er.Message, `total "roughly"`) {
		t.Errorf("bad total: %s", er.Message)
	}
}
