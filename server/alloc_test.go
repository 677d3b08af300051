package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func (e *env) block(name, cidr string, extra ...map[string]any) {
	e.t.Helper()
	attrs := []map[string]any{{"key": "cidr", "value": cidr}}
	attrs = append(attrs, extra...)
	e.do("POST", api+"/entities", map[string]any{"name": name, "driver": "ipblock", "attrs": attrs}).want(e.t, http.StatusCreated)
}

func TestAllocateIPOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.block("net", "10.0.3.0/24", map[string]any{"key": "gateway", "value": "10.0.3.1"})
	e.mk("s1", "server", "s2", "server")
	var got entity.Allocations
	e.do("POST", api+"/ipblocks/net/allocate", map[string]any{"entity": "s1", "count": 2, "interface": "eth0"}).want(t, http.StatusCreated).decode(t, &got)
	want := []entity.Allocation{{Address: "10.0.3.2", Block: "net", Entity: "s1", Interface: "eth0"}, {Address: "10.0.3.3", Block: "net", Entity: "s1", Interface: "eth0"}}
	if diff := cmp.Diff(want, got.Allocations); diff != "" {
		t.Errorf("allocations (-want +got):\n%s", diff)
	}
	e.do("POST", api+"/ipblocks/net/allocate", map[string]any{"entity": "s2", "address": "10.0.3.2"}).wantErr(t, http.StatusConflict, "conflict")
	e.do("POST", api+"/ipblocks/net/allocate", map[string]any{"entity": "s2", "address": "10.9.9.9"}).wantErr(t, http.StatusConflict, "conflict")
	e.do("POST", api+"/ipblocks/net/allocate", map[string]any{"entity": "s2", "colour": "red"}).wantErr(t, http.StatusBadRequest, "invalid")
	e.do("POST", api+"/ipblocks/s1/allocate", map[string]any{"entity": "s2"}).wantErr(t, http.StatusBadRequest, "invalid")
	e.do("POST", api+"/ipblocks/nope/allocate", map[string]any{"entity": "s2"}).wantErr(t, http.StatusNotFound, "not_found")

	// Queryable from the holder's side.
	if a := e.get("s1").Attrs; len(a) != 2 || a[0].Key != "ip" || a[0].Subkey != "eth0" {
		t.Errorf("s1 attrs = %+v", a)
	}
	var st struct {
		Size, Reserved, Allocated, Free int64
		Allocations                     []entity.Allocation
	}
	e.do("GET", api+"/ipblocks/net", nil).want(t, http.StatusOK).decode(t, &st)
	if st.Size != 256 || st.Reserved != 3 || st.Allocated != 2 || st.Free != 251 || len(st.Allocations) != 2 {
		t.Errorf("block status = %+v", st)
	}
	e.do("DELETE", api+"/ipblocks/net/allocations/10.0.3.2", nil).want(t, http.StatusOK)
	e.do("DELETE", api+"/ipblocks/net/allocations/10.0.3.2", nil).wantErr(t, http.StatusNotFound, "not_found")
	// Exhaustion of a tiny block answers 409 exhausted.
	e.block("tiny", "192.0.2.0/32")
	e.do("POST", api+"/ipblocks/tiny/allocate", map[string]any{"entity": "s2"}).want(t, http.StatusCreated)
	if er := e.do("POST", api+"/ipblocks/tiny/allocate", map[string]any{"entity": "s2"}).wantErr(t, http.StatusConflict, "conflict"); er.Reason != "exhausted" {
		t.Errorf("reason = %q", er.Reason)
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	e.block("net", "10.0.3.0/24")
	e.mk("s1", "server")
	body := map[string]any{"entity": "s1"}
	first := e.do("POST", api+"/ipblocks/net/allocate", body, "Idempotency-Key", "k-1").want(t, http.StatusCreated)
	changes := e.changeCount()
	again := e.do("POST", api+"/ipblocks/net/allocate", body, "Idempotency-Key", "k-1").want(t, http.StatusCreated)
	if string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry answered %s (replayed %q), first was %s", again.Body, again.Header.Get("Idempotent-Replayed"), first.Body)
	}
	if n := e.changeCount(); n != changes {
		t.Errorf("a replay changed the log from %d to %d", changes, n)
	}
	e.do("POST", api+"/ipblocks/net/allocate", map[string]any{"entity": "s1", "count": 2}, "Idempotency-Key", "k-1").wantErr(t, http.StatusConflict, "conflict")
	// A new key allocates again.
	e.do("POST", api+"/ipblocks/net/allocate", body, "Idempotency-Key", "k-2").want(t, http.StatusCreated)
	e.do("POST", api+"/ipblocks/net/allocate", body, "Idempotency-Key", "has space").wantErr(t, http.StatusBadRequest, "invalid")
}

func TestIdempotencySurvivesRestart(t *testing.T) {
	path := t.TempDir() + "/inv.db"
	open := func() (*store.Store, *env) {
		st, err := store.Open(context.Background(), path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		srv := New(st, Options{AllowAnonymous: true, Log: discardLog()})
		e := &env{t: t, store: st, srv: srv}
		e.ts = httptest.NewServer(srv)
		return st, e
	}
	st, e := open()
	e.block("net", "10.0.3.0/24")
	e.mk("s1", "server")
	first := e.do("POST", api+"/ipblocks/net/allocate", map[string]any{"entity": "s1"}, "Idempotency-Key", "retry-me").want(t, http.StatusCreated)
	e.ts.Close()
	st.Close()
	st, e = open()
	defer st.Close()
	defer e.ts.Close()
	again := e.do("POST", api+"/ipblocks/net/allocate", map[string]any{"entity": "s1"}, "Idempotency-Key", "retry-me").want(t, http.StatusCreated)
	if string(again.Body) != string(first.Body) {
		t.Errorf("after a restart the retry answered %s, first %s", again.Body, first.Body)
	}
	if n := len(e.get("s1").Attrs); n != 1 {
		t.Errorf("s1 holds %d addresses after a retried allocation", n)
	}
}

// 64 clients each allocating 50 addresses from one block at once: all
// 3,200 distinct, the block's count matches, and the log has 3,200
// allocation records. With -short (make test runs it so under -race), 32
// clients of 4.
func TestConcurrentIPAllocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.block("big", "10.1.0.0/16")
	e.mk("holder", "server")
	clients, each := 64, 50
	if testing.Short() {
		clients, each = 32, 4
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
		errs = make(chan string, clients*each)
	)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := e.doQuiet("POST", api+"/ipblocks/big/allocate", map[string]any{"entity": "holder", "interface": fmt.Sprintf("c%d", c)})
				if r.Status != http.StatusCreated {
					errs <- fmt.Sprintf("status %d: %s", r.Status, r.Body)
					continue
				}
				var got entity.Allocations
				if err := json.Unmarshal(r.Body, &got); err != nil || len(got.Allocations) != 1 {
					errs <- fmt.Sprintf("allocation answered %s (%v), want one allocation", r.Body, err)
					continue
				}
				mu.Lock()
				seen[got.Allocations[0].Address]++
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}
	if len(seen) != clients*each {
		t.Fatalf("%d distinct addresses for %d allocations", len(seen), clients*each)
	}
	var st struct{ Allocated int }
	e.do("GET", api+"/ipblocks/big", nil).want(t, http.StatusOK).decode(t, &st)
	if st.Allocated != clients*each {
		t.Errorf("block counts %d allocations", st.Allocated)
	}
	count := 0
	for since := int64(0); ; {
		changes, err := e.store.Changes(context.Background(), since, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) == 0 {
			break
		}
		for _, c := range changes {
			if c.Op == entity.OpAllocate {
				count++
			}
		}
		since = changes[len(changes)-1].Number
	}
	if count != clients*each {
		t.Errorf("%d allocation records, want %d", count, clients*each)
	}
}

func TestRackAllocationAndElevation(t *testing.T) {
	e := newEnv(t)
	e.do("POST", api+"/entities", map[string]any{"name": "r1", "driver": "rack", "attrs": []map[string]any{{"key": "units", "value": 4}}}).want(t, http.StatusCreated)
	e.do("POST", api+"/entities", map[string]any{"name": "big", "driver": "server", "attrs": []map[string]any{{"key": "height", "value": 2}}}).want(t, http.StatusCreated)
	e.mk("a", "server", "b", "server", "c", "server")
	var got entity.EntitiesAnswer
	e.do("POST", api+"/racks/r1/allocate", map[string]any{"entity": "a", "position": 2}).want(t, http.StatusCreated).decode(t, &got)
	if p := got.Results[0].Parents[0]; p.Name != "r1" || *p.Position != 2 {
		t.Errorf("a placed %+v", p)
	}
	e.do("POST", api+"/racks/r1/allocate", map[string]any{"entity": "big"}).want(t, http.StatusCreated).decode(t, &got)
	if p := got.Results[0].Parents[0]; *p.Position != 3 || *p.Height != 2 {
		t.Errorf("big placed %+v", p)
	}
	e.do("POST", api+"/racks/r1/allocate", map[string]any{"entity": "b", "position": 4}).wantErr(t, http.StatusConflict, "conflict")
	e.do("POST", api+"/racks/r1/allocate", map[string]any{"entity": "b", "position": 5}).wantErr(t, http.StatusConflict, "conflict")
	e.do("POST", api+"/racks/r1/allocate", map[string]any{"entity": "b"}).want(t, http.StatusCreated)
	if er := e.do("POST", api+"/racks/r1/allocate", map[string]any{"entity": "c"}).wantErr(t, http.StatusConflict, "conflict"); er.Reason != "exhausted" {
		t.Errorf("reason %q, want exhausted", er.Reason)
	}
	var el entity.Elevation
	e.do("GET", api+"/racks/r1/elevation", nil).want(t, http.StatusOK).decode(t, &el)
	var drawn []string
	for _, u := range el.Rows {
		drawn = append(drawn, fmt.Sprint(u.Unit, ":", u.Device))
	}
	if diff := cmp.Diff([]string{"4:big", "3:big", "2:a", "1:b"}, drawn); diff != "" {
		t.Errorf("elevation (-want +got):\n%s", diff)
	}
	e.do("GET", api+"/racks/a/elevation", nil).wantErr(t, http.StatusBadRequest, "invalid")
}

func TestAllocateNamesOverHTTP(t *testing.T) {
	e := newEnv(t)
	e.do("POST", api+"/entities", map[string]any{"name": "servers", "driver": "namemanager", "attrs": []map[string]any{
		{"key": "basename", "value": "server"}, {"key": "digits", "value": 4}}}).want(t, http.StatusCreated)
	var got entity.EntitiesAnswer
	e.do("POST", api+"/names/servers/allocate", map[string]any{"driver": "server", "count": 2, "attrs": map[string]any{"status": "new", "memory_gb": 64}}).
		want(t, http.StatusCreated).decode(t, &got)
	if len(got.Results) != 2 || got.Results[0].Name != "server0001" || got.Results[1].Name != "server0002" || len(got.Results[1].Attrs) != 2 {
		t.Fatalf("names = %+v", got.Results)
	}
	e.do("POST", api+"/names/servers/allocate", map[string]any{"count": 1}).wantErr(t, http.StatusBadRequest, "invalid")
	e.do("POST", api+"/names/servers/allocate", map[string]any{"driver": "server", "count": 100000}).wantErr(t, http.StatusBadRequest, "invalid")
}

func TestBatchOverHTTP(t *testing.T) {
	e := newEnv(t)
	ops := []map[string]any{
		{"op": "create", "name": "r1", "driver": "rack"},
		{"op": "create", "name": "s1", "driver": "server"},
		{"op": "insert", "parent": "r1", "child": "s1", "position": 3},
	}
	var dry entity.BatchAnswer
	e.do("POST", api+"/batch", map[string]any{"ops": ops, "dry_run": true}).want(t, http.StatusOK).decode(t, &dry)
	if !dry.DryRun || len(dry.Results) != 3 || e.changeCount() != 0 {
		t.Fatalf("dry run = %+v, %d changes", dry, e.changeCount())
	}
	var real entity.BatchAnswer
	r := e.do("POST", api+"/batch", map[string]any{"ops": ops}).want(t, http.StatusOK)
	r.decode(t, &real)
	if real.DryRun || len(real.Results) != 3 || r.Header.Get("X-Clusto-Change") != "3" {
		t.Fatalf("batch = %+v, change header %q", real, r.Header.Get("X-Clusto-Change"))
	}
	bad := []map[string]any{{"op": "create", "name": "s2", "driver": "server"}, {"op": "insert", "parent": "r1", "child": "s2", "position": 3}}
	er := e.do("POST", api+"/batch", map[string]any{"ops": bad}).wantErr(t, http.StatusConflict, "conflict")
	if er.Details["op"] != float64(1) {
		t.Errorf("failing op = %v", er.Details["op"])
	}
	e.do("GET", api+"/entities/s2", nil).wantErr(t, http.StatusNotFound, "not_found")
}

func TestPlanAndApplyOverHTTP(t *testing.T) {
	e := newEnv(t)
	file := "entities:\n  r1: {driver: rack, devices: {3: s1}}\n  s1: {driver: server, attrs: {status: new}}\n"
	var p entity.PlanAnswer
	e.do("POST", api+"/plan", map[string]any{"file": "dc.yaml", "content": file}).want(t, http.StatusOK).decode(t, &p)
	if p.Plan.Create != 2 || e.changeCount() != 0 {
		t.Fatalf("plan = %+v, %d changes", p.Plan, e.changeCount())
	}
	e.do("POST", api+"/apply", map[string]any{"file": "dc.yaml", "content": file}).want(t, http.StatusOK).decode(t, &p)
	if len(p.Results) != 3 || e.get("s1").Parents[0].Name != "r1" {
		t.Fatalf("apply = %+v", p)
	}
	e.do("POST", api+"/plan", map[string]any{"file": "dc.yaml", "content": file}).want(t, http.StatusOK).decode(t, &p)
	if len(p.Plan.Steps) != 0 {
		t.Errorf("second plan = %+v", p.Plan.Steps)
	}
	er := e.do("POST", api+"/plan", map[string]any{"file": "bad.yaml", "content": "entities:\n  x: {driver: toaster}\n"}).wantErr(t, http.StatusBadRequest, "invalid")
	if er.Position == nil || er.Position.Line != 2 || er.Details["file"] != "bad.yaml" {
		t.Errorf("plan error = %+v", er)
	}
}

// doQuiet is do for goroutines: transport errors become status 0 instead
// of failing the test from the wrong goroutine.
func (e *env) doQuiet(method, path string, body any) *resp {
	j, _ := json.Marshal(body)
	req, err := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(j))
	if err != nil {
		return &resp{Body: []byte(err.Error())}
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := e.ts.Client().Do(req)
	if err != nil {
		return &resp{Body: []byte(err.Error())}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return &resp{Body: []byte(fmt.Sprintf("status %d, then reading the body: %v", res.StatusCode, err))}
	}
	return &resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// 64 clients each placing 50 servers in the lowest free units of 80 shared
// racks at once: every placement lands, none overlaps another, and the log
// has one allocation record each. With -short (make test runs it so under
// -race), 32 clients of 5 into 4 racks: 40 servers a rack all the same.
func TestConcurrentRackAllocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clients, each, racks := 64, 50, 80
	if testing.Short() {
		clients, each, racks = 32, 5, 4
	}
	err := e.store.Update(context.Background(), "t", func(tx *store.Tx) error {
		for r := 0; r < racks; r++ {
			if err := tx.Create(entity.NewEntity{Name: fmt.Sprintf("rack%02d", r), Driver: "rack"}); err != nil {
				return err
			}
		}
		for i := 0; i < clients*each; i++ {
			if err := tx.Create(entity.NewEntity{Name: fmt.Sprintf("s%04d", i), Driver: "server"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before := e.changeCount()
	var wg sync.WaitGroup
	errs := make(chan string, clients*each)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				n := c*each + i
				r := e.doQuiet("POST", api+fmt.Sprintf("/racks/rack%02d/allocate", n%racks), map[string]any{"entity": fmt.Sprintf("s%04d", n)})
				if r.Status != http.StatusCreated {
					errs <- fmt.Sprintf("s%04d: status %d: %s", n, r.Status, r.Body)
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for m := range errs {
		t.Fatal(m)
	}
	if problems, err := e.store.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
	var el entity.Elevation
	e.do("GET", api+"/racks/rack00/elevation", nil).want(t, http.StatusOK).decode(t, &el)
	if el.Free != 2 {
		t.Errorf("rack00 has %d free units, want 2 (40 servers in 42U)", el.Free)
	}
	if got := e.changeCount() - before; got != int64(clients*each) {
		t.Errorf("%d changes for %d placements", got, clients*each)
	}
}

// TestPlanLimits: a file sent to the server may not expand beyond
// MaxFileNames, and a caller with only the read role may not make the
// server dry-run (on the single writer) a plan longer than a batch.
func TestPlanLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reader := e.newToken("reader", entity.RoleRead)
	writer := e.newToken("writer", entity.RoleWrite)
	big := fmt.Sprintf("entities:\n  p[1-%d]: {driver: pool}\n", entity.MaxBatchOps+1)

	e.token = reader
	er := e.do("POST", api+"/plan", map[string]any{"content": big}).wantErr(t, http.StatusBadRequest, "invalid")
	if !strings.Contains(er.Message, "the plan has 10001 steps; a token with the read role may check plans of at most 10000") {
		t.Errorf("read-role plan refusal = %q", er.Message)
	}
	small := "entities:\n  p[1-50]: {driver: pool}\n"
	e.do("POST", api+"/plan", map[string]any{"content": small}).want(t, http.StatusOK)

	e.token = writer
	var p entity.PlanAnswer
	e.do("POST", api+"/plan", map[string]any{"content": big}).want(t, http.StatusOK).decode(t, &p)
	if p.Plan.Create != entity.MaxBatchOps+1 {
		t.Errorf("write-role plan creates %d, want %d", p.Plan.Create, entity.MaxBatchOps+1)
	}

	huge := fmt.Sprintf("entities:\n  a[1-%d]: {driver: pool}\n  b[1-2]: {driver: pool}\n", MaxFileNames)
	for _, path := range []string{"/plan", "/apply"} {
		er := e.do("POST", api+path, map[string]any{"file": "huge.yaml", "content": huge}).wantErr(t, http.StatusBadRequest, "invalid")
		if !strings.Contains(er.Message, "huge.yaml:3:3") || !strings.Contains(er.Message, "more than 100000") || er.Position == nil || er.Position.Line != 3 {
			t.Errorf("POST %s of a file past the limit: %+v", path, er)
		}
	}
	if n := e.changeCount(); n != 0 {
		t.Errorf("%d changes stored by refused or planned files", n)
	}
}
