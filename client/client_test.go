package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/client"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/server"
)

// testServer is the real server over a fresh store, wrapped by an optional
// middleware (to inject failures).
type testServer struct {
	store *store.Store
	ts    *httptest.Server
}

func newServer(t *testing.T, wrap func(http.Handler) http.Handler) *testServer {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir()+"/inventory.db", store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	var h http.Handler = server.New(st, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowAnonymous: true})
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &testServer{store: st, ts: ts}
}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// demo loads examples/demo.yaml through the client.
func demo(t *testing.T, c *client.Client) {
	t.Helper()
	raw, err := os.ReadFile("../examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(context.Background(), client.File{Name: "demo.yaml", Content: string(raw)}); err != nil {
		t.Fatalf("apply demo: %v", err)
	}
}

func apiErr(t *testing.T, err error) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	if e.RequestID == "" {
		t.Errorf("error %v has no request id", err)
	}
	return e
}

func TestEntityLifecycle(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, newServer(t, nil).ts.URL)

	e, err := c.Create(ctx, client.NewEntity{Name: "s1", Driver: "server", Attrs: []client.AttrInput{
		{Key: "memory_gb", Value: "64"}, {Key: "serial", Value: "SN1"}, {Key: "mac", Value: "00:1a:2b:3c:4d:5e"},
		{Key: "tags", Value: json.RawMessage(`["a","b"]`)}, {Key: "disk", Subkey: "sda", Value: "ssd"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "s1" || e.Kind != "equipment" || e.Version != 1 || e.Change == 0 {
		t.Errorf("created %+v", e)
	}
	if got := e.AttrValues("memory_gb", ""); len(got) != 1 || got[0] != "64" {
		t.Errorf("memory_gb = %v (a declared int, converted from \"64\")", got)
	}
	if got := e.AttrValues("tags", ""); len(got) != 1 || got[0] != `["a","b"]` {
		t.Errorf("tags = %v", got)
	}
	if got := e.AttrValues("disk", "sda"); len(got) != 1 || got[0] != "ssd" {
		t.Errorf("disk.sda = %v", got)
	}
	for _, n := range []string{"r1", "sw1", "pdu1", "cons1", "dc1"} {
		drv := map[string]string{"r1": "rack", "sw1": "switch", "pdu1": "pdu", "cons1": "console-server", "dc1": "datacenter"}[n]
		if _, err := c.Create(ctx, client.NewEntity{Name: n, Driver: drv}); err != nil {
			t.Fatal(err)
		}
	}

	// Attributes: add with the next number, set, delete, read.
	a, err := c.AddAttr(ctx, "s1", client.AttrInput{Key: "nic", NextNumber: true, Value: "eth0"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Added == nil || a.Added.Number == nil || *a.Added.Number != 0 || a.Change == 0 {
		t.Errorf("added %+v", a)
	}
	a, err = c.AddAttr(ctx, "s1", client.AttrInput{Key: "nic", NextNumber: true, Value: "eth1"}, a.Version)
	if err != nil {
		t.Fatal(err)
	}
	if *a.Added.Number != 1 {
		t.Errorf("second next number = %d", *a.Added.Number)
	}
	if _, err := c.AddAttr(ctx, "s1", client.AttrInput{Key: "x", Value: 1}, 1); apiErr(t, err).Code != client.CodePrecondition {
		t.Errorf("stale If-Match: %v", err)
	} else if e := apiErr(t, err); e.Status != 412 || e.Details["version"] == nil {
		t.Errorf("stale If-Match: %+v", e)
	}
	if _, err := c.SetAttr(ctx, "s1", client.SetAttrRequest{Key: "status", Values: []any{"spare"}}); err != nil {
		t.Fatal(err)
	}
	one := int64(1)
	d, err := c.DelAttr(ctx, "s1", client.DelAttrRequest{Key: "nic", Number: &one})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Removed) != 1 || d.Removed[0].Text() != "eth1" {
		t.Errorf("removed %+v", d.Removed)
	}
	ssd := "hdd"
	if _, err := c.DelAttr(ctx, "s1", client.DelAttrRequest{Key: "disk", Value: &ssd}); apiErr(t, err).Code != client.CodeNotFound {
		t.Errorf("deleting a value it does not have: %v", err)
	}
	got, err := c.Attrs(ctx, "s1", &client.AttrQuery{Key: "status"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Attrs) != 1 || got.Attrs[0].Text() != "spare" {
		t.Errorf("status = %+v", got.Attrs)
	}

	// Containment, links, and what they answer.
	if _, err := c.Insert(ctx, "dc1", "r1", nil); err != nil {
		t.Fatal(err)
	}
	pos := int64(13)
	p, err := c.Insert(ctx, "r1", "s1", &client.Placement{Position: &pos})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "r1" || len(p.Children) != 1 || p.Children[0].Units() != "RU13" {
		t.Errorf("rack after insert: %+v", p.Children)
	}
	two := int64(2)
	if _, err := c.Insert(ctx, "r1", "pdu1", &client.Placement{Position: &one, Height: &two}); err != nil {
		t.Fatal(err)
	}
	for _, cb := range []client.Cable{{A: "s1", APort: "eth0", B: "sw1", BPort: "4"}, {A: "s1", APort: "psu1", B: "pdu1", BPort: "7"}, {A: "s1", APort: "console", B: "cons1", BPort: "2"}} {
		l, err := c.Link(ctx, cb)
		if err != nil {
			t.Fatal(err)
		}
		if l.Change == 0 || l.Cable.Type == "" {
			t.Errorf("link answer %+v", l)
		}
	}
	_, err = c.Link(ctx, client.Cable{A: "pdu1", APort: "mgmt", B: "sw1", BPort: "4"})
	if e := apiErr(t, err); e.Code != client.CodeConflict || e.Status != 409 || e.Details["peer"] != "s1:eth0" {
		t.Errorf("taken port: %+v", e)
	}
	loc, err := c.Locate(ctx, "s1", 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range loc.Lines {
		lines = append(lines, l.Text)
	}
	want := []string{"s1 -> connected to port 4 on sw1", "s1 -> connected to port 2 on cons1", "s1 -> connected to port 7 on pdu1", "s1 -> in RU13 of r1", "r1 -> in datacenter dc1"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("locate:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	con, err := c.Console(ctx, "s1", 0)
	if err != nil || len(con.Consoles) != 1 || con.Consoles[0].ConsoleServer != "cons1" || con.Consoles[0].ConsolePort != "2" {
		t.Errorf("console: %+v %v", con, err)
	}
	pw, err := c.Power(ctx, "s1", 0)
	if err != nil || len(pw.Power) != 1 || pw.Power[0].PDU != "pdu1" || pw.Power[0].Outlet != "7" {
		t.Errorf("power: %+v %v", pw, err)
	}
	for term, by := range map[string]string{"s1": "name", "SN1": "serial", "00-1A-2B-3C-4D-5E": "mac"} {
		e, matched, err := c.Lookup(ctx, term)
		if err != nil || e.Name != "s1" || matched != by {
			t.Errorf("lookup %s = %v %q %v", term, e, matched, err)
		}
	}
	if _, _, err := c.Lookup(ctx, "nothing"); apiErr(t, err).Code != client.CodeNotFound {
		t.Errorf("lookup nothing: %v", err)
	}

	// Reading the past, merged attributes, history.
	e, err = c.Entity(ctx, "s1", &client.GetOptions{At: e.Change})
	if err != nil || e.Version != 1 || len(e.Parents) != 0 {
		t.Errorf("s1 as of its creation: %+v %v", e, err)
	}
	if _, err := c.SetAttr(ctx, "r1", client.SetAttrRequest{Key: "owner", Values: []any{"dcops"}}); err != nil {
		t.Fatal(err)
	}
	e, err = c.Entity(ctx, "s1", &client.GetOptions{Merged: true})
	if err != nil {
		t.Fatal(err)
	}
	inherited := false
	for _, at := range e.Attrs {
		inherited = inherited || (at.Key == "owner" && at.From == "r1")
	}
	if !inherited {
		t.Errorf("merged attrs lack owner from r1: %+v", e.Attrs)
	}
	h, err := c.History(ctx, "s1", client.Page{Limit: 2})
	if err != nil || len(h.Changes) != 2 || h.Changes[0].Op != "create" || h.Next != h.Changes[1].Number {
		t.Errorf("history: %+v %v", h, err)
	}
	all, err := c.Changes(ctx, client.Page{Since: h.Next})
	if err != nil || len(all.Changes) == 0 || all.Changes[0].Number != h.Next+1 {
		t.Errorf("changes since %d: %+v %v", h.Next, all, err)
	}

	// Unlink, remove, rename, delete.
	if u, err := c.Unlink(ctx, client.Cable{A: "s1", B: "sw1"}); err != nil || u.Cable.APort != "eth0" || u.Cable.BPort != "4" {
		t.Errorf("unlink: %+v %v", u, err)
	}
	if _, err := c.Remove(ctx, "r1", "s1", 0); err != nil {
		t.Fatal(err)
	}
	r, err := c.Rename(ctx, "s1", "web/01", 0)
	if err != nil || r.Name != "web/01" || r.Change == 0 {
		t.Fatalf("rename: %+v %v", r, err)
	}
	if e, err := c.Entity(ctx, "web/01", nil); err != nil || e.Name != "web/01" {
		t.Errorf("a name with a slash: %+v %v", e, err)
	}
	if _, err := c.Delete(ctx, "web/01", false, 0); apiErr(t, err).Code != client.CodeConflict {
		t.Errorf("delete with links: %v", err)
	}
	del, err := c.Delete(ctx, "web/01", true, 0)
	if err != nil || del.Deleted != "web/01" || del.Change == 0 {
		t.Errorf("delete --cascade: %+v %v", del, err)
	}
	if _, err := c.Entity(ctx, "web/01", nil); apiErr(t, err).Status != 404 {
		t.Errorf("deleted entity: %v", err)
	}
}

func TestQueries(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, newServer(t, nil).ts.URL)
	demo(t, c)

	page, err := c.Query(ctx, client.Query{Q: "driver:server", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Results) != 5 || page.Total != 32 || page.NextCursor == "" || page.Results[0].Name != "s0001" {
		t.Errorf("first page: %d results, total %d, cursor %q", len(page.Results), page.Total, page.NextCursor)
	}
	all, err := c.QueryAll(ctx, client.Query{Q: "driver:server", Limit: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Results) != 32 || all.Results[31].Name != "s0032" || all.NextCursor != "" {
		t.Errorf("all pages: %d results, last %s", len(all.Results), all.Results[len(all.Results)-1].Name)
	}
	ex, err := c.Explain(ctx, client.Query{Q: "driver:server in name:rack101"})
	if err != nil || !strings.Contains(ex.SQL, "SELECT") || len(ex.Args) == 0 {
		t.Errorf("explain: %+v %v", ex, err)
	}
	_, err = c.Query(ctx, client.Query{Q: "driver:server and"})
	e := apiErr(t, err)
	if e.Code != client.CodeQuerySyntax || e.Status != 400 || e.Position == nil || e.Position.Line != 1 || e.Position.Column != 18 {
		t.Errorf("syntax error: %+v", e)
	}
	empty, err := c.Query(ctx, client.Query{Q: "name:nothing-like-this"})
	if err != nil || empty.Results == nil || len(empty.Results) != 0 {
		t.Errorf("no match: %+v %v", empty, err)
	}
}

func TestAllocations(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, newServer(t, nil).ts.URL)
	demo(t, c)

	key := client.NewIdempotencyKey()
	first, err := c.AllocateIP(ctx, "rack101-net", client.IPRequest{Entity: "s0001", Interface: "eth0", IdempotencyKey: key})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.AllocateIP(ctx, "rack101-net", client.IPRequest{Entity: "s0001", Interface: "eth0", IdempotencyKey: key})
	if err != nil || len(again) != 1 || again[0] != first[0] {
		t.Errorf("a repeat with the same key: %+v %v, want %+v", again, err, first)
	}
	b, err := c.IPBlock(ctx, "rack101-net", client.BlockPage{})
	if err != nil || fmt.Sprint(b.Allocated) != "5" || b.Size.String() != "256" || b.Parent != "sfo1-net" {
		t.Errorf("block: %+v %v", b, err)
	}
	if _, err := c.AllocateIP(ctx, "rack101-net", client.IPRequest{Entity: "s0002", Address: first[0].Address}); apiErr(t, err).Code != client.CodeConflict {
		t.Errorf("a taken address: %v", err)
	}
	rel, err := c.ReleaseIP(ctx, "rack101-net", first[0].Address)
	if err != nil || len(rel) != 1 || rel[0].Entity != "s0001" {
		t.Errorf("release: %+v %v", rel, err)
	}

	if _, err := c.Create(ctx, client.NewEntity{Name: "tiny", Driver: "ipblock", Attrs: []client.AttrInput{{Key: "cidr", Value: "192.168.9.0/30"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AllocateIP(ctx, "tiny", client.IPRequest{Entity: "s0002", Count: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AllocateIP(ctx, "tiny", client.IPRequest{Entity: "s0002"}); apiErr(t, err).Code != client.CodeConflict || apiErr(t, err).Reason != "exhausted" {
		t.Errorf("a full block: %v", err)
	}

	if _, err := c.Create(ctx, client.NewEntity{Name: "s9000", Driver: "server"}); err != nil {
		t.Fatal(err)
	}
	placed, err := c.AllocateRackUnits(ctx, "rack101", client.RackRequest{Entity: "s9000"})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := placed.Parent(); !ok || p.Name != "rack101" || p.Units() != "RU3" || placed.Change == 0 {
		t.Errorf("placed: %+v", placed.Parents)
	}
	el, err := c.Elevation(ctx, "rack101")
	if err != nil || el.Units != 42 || len(el.Rows) != 42 || el.Rows[0].Unit != 42 || el.Rows[0].Device != "switch101" {
		t.Errorf("elevation: %+v %v", el, err)
	}

	named, err := c.AllocateNames(ctx, "servers", client.NameRequest{Driver: "server", Count: 2, Attrs: map[string]any{"status": "unallocated"}})
	if err != nil || len(named) != 2 || named[0].Name != "s0033" || named[1].Name != "s0034" {
		t.Errorf("names: %+v %v", named, err)
	}

	dry, err := c.Allocate(ctx, client.AllocateRequest{Query: "driver:server and attr:status,unallocated in name:sfo1", Count: 2, Distinct: "rack",
		Set: map[string]any{"status": "allocated"}, DryRun: true})
	if err != nil || len(dry) != 2 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if dry[0].AttrValues("status", "")[0] != "allocated" {
		t.Errorf("a dry run shows the result: %+v", dry[0].Attrs)
	}
	if e, _ := c.Entity(ctx, dry[0].Name, nil); e.AttrValues("status", "")[0] != "unallocated" {
		t.Errorf("a dry run changed %s", dry[0].Name)
	}
	_, err = c.Allocate(ctx, client.AllocateRequest{Query: "driver:server and attr:status,unallocated", Count: 99})
	if e := apiErr(t, err); e.Code != client.CodeConflict || e.Reason != "insufficient" || e.Status != 409 || e.Details["available"] == nil {
		t.Errorf("too few: %+v", e)
	}
}

func TestBatchPlanApplyExport(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, newServer(t, nil).ts.URL)
	ops := []client.Op{
		{Op: "create", Name: "dc9", Driver: "datacenter"},
		{Op: "create", Name: "r9", Driver: "rack"},
		{Op: "insert", Parent: "dc9", Child: "r9"},
	}
	dry, err := c.Batch(ctx, ops, true)
	if err != nil || !dry.DryRun || len(dry.Results) != 3 {
		t.Fatalf("dry batch: %+v %v", dry, err)
	}
	if _, err := c.Entity(ctx, "dc9", nil); apiErr(t, err).Code != client.CodeNotFound {
		t.Errorf("a dry run created dc9")
	}
	res, err := c.Batch(ctx, ops, false)
	if err != nil || len(res.Results) != 3 || len(res.Results[2].Changes) != 1 {
		t.Fatalf("batch: %+v %v", res, err)
	}
	_, err = c.Batch(ctx, []client.Op{{Op: "create", Name: "x1", Driver: "server"}, {Op: "create", Name: "dc9", Driver: "datacenter"}}, false)
	if e := apiErr(t, err); e.Code != client.CodeConflict || e.Details["op"] != float64(1) {
		t.Errorf("failing op: %+v", e)
	}
	if _, err := c.Entity(ctx, "x1", nil); err == nil {
		t.Errorf("a failed batch left x1 behind")
	}

	file := client.File{Name: "site.yaml", Content: "version: 1\nentities:\n  r9: {driver: rack, in: dc9, attrs: {owner: dcops}}\n  s9: {driver: server}\n"}
	plan, err := c.Plan(ctx, file)
	if err != nil || plan.Create != 1 || plan.Change != 1 || len(plan.Steps) == 0 || plan.Steps[0].Source == "" {
		t.Fatalf("plan: %+v %v", plan, err)
	}
	applied, err := c.Apply(ctx, file)
	if err != nil || len(applied.Results) == 0 {
		t.Fatalf("apply: %+v %v", applied, err)
	}
	if again, err := c.Plan(ctx, file); err != nil || len(again.Steps) != 0 {
		t.Errorf("plan after apply: %+v %v", again, err)
	}
	_, err = c.Plan(ctx, client.File{Name: "bad.yaml", Content: "version: 1\nentities:\n  t1: {driver: toaster}\n"})
	if e := apiErr(t, err); e.Position == nil || e.Position.Line != 3 || !strings.Contains(e.Message, "bad.yaml") {
		t.Errorf("a bad file: %+v", e)
	}
	ex, err := c.Export(ctx, "name:r9")
	if err != nil || ex.Count != 1 || !strings.Contains(ex.Content, "r9:") || !strings.Contains(ex.Content, "owner: dcops") {
		t.Errorf("export: %+v %v", ex, err)
	}
}

func TestAdmin(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t, nil)
	c := newClient(t, srv.ts.URL)
	h, err := c.Health(ctx)
	if err != nil || h.Status != "ok" {
		t.Errorf("health: %+v %v", h, err)
	}
	ds, err := c.Drivers(ctx)
	if err != nil || len(ds) < 10 {
		t.Errorf("drivers: %d %v", len(ds), err)
	}
	d, err := c.Driver(ctx, "switch")
	if err != nil || len(d.PortList) != 50 || d.PortList[0].Name != "1" {
		t.Errorf("switch: %+v %v", d, err)
	}

	secret, _, err := srv.store.CreateToken(ctx, entity.Caller{Actor: "clustod/test"}, "alice", entity.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Whoami(ctx); apiErr(t, err).Code != client.CodeUnauthorized {
		t.Errorf("no token once one exists: %v", err)
	}
	ac := newClient(t, srv.ts.URL, client.WithToken(secret))
	w, err := ac.Whoami(ctx)
	if err != nil || w.Name != "alice" || w.Role != "admin" {
		t.Errorf("whoami: %+v %v", w, err)
	}
	tok, err := ac.CreateToken(ctx, "robot", "read")
	if err != nil || !strings.HasPrefix(tok.Secret, "clusto_") {
		t.Fatalf("create token: %+v %v", tok, err)
	}
	rc := newClient(t, srv.ts.URL, client.WithToken(tok.Secret))
	if _, err := rc.Create(ctx, client.NewEntity{Name: "x", Driver: "server"}); apiErr(t, err).Code != client.CodeForbidden {
		t.Errorf("a read token writing: %v", err)
	}
	if toks, err := ac.Tokens(ctx); err != nil || len(toks) != 2 {
		t.Errorf("tokens: %+v %v", toks, err)
	}
	if err := ac.RevokeToken(ctx, "robot"); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Whoami(ctx); apiErr(t, err).Status != 401 {
		t.Errorf("a revoked token: %v", err)
	}
	// The audit list has both, paged; the revoked token may not read it.
	audit, err := ac.TokenAudit(ctx, client.Page{Since: 1, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range audit.Events {
		got = append(got, fmt.Sprintf("%d %s %s %s %s", ev.ID, ev.Actor, ev.Action, ev.Token, ev.Role))
		if ev.Time.IsZero() || ev.RequestID == "" {
			t.Errorf("event %d lacks its time or request id: %+v", ev.ID, ev)
		}
	}
	if diff := cmp.Diff([]string{"2 alice create robot read", "3 alice revoke robot read"}, got); diff != "" || audit.Next != 3 {
		t.Errorf("audit after 1 (next %d; -want +got):\n%s", audit.Next, diff)
	}
	if _, err := rc.TokenAudit(ctx, client.Page{}); apiErr(t, err).Status != 401 {
		t.Errorf("the audit with a revoked token: %v", err)
	}
}

// flaky answers 503 to the first n requests of each method, and records
// the Idempotency-Key of every request.
type flaky struct {
	mu    sync.Mutex
	fails map[string]int
	keys  []string
	calls atomic.Int64
}

func (f *flaky) wrap(n int) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.calls.Add(1)
			f.mu.Lock()
			f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
			fail := f.fails[r.Method] < n
			f.fails[r.Method]++
			f.mu.Unlock()
			if fail {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "upstream restarting\n")
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestRetriesOnlyWhenSafe(t *testing.T) {
	ctx := context.Background()
	f := &flaky{fails: map[string]int{}}
	srv := newServer(t, f.wrap(2))
	c := newClient(t, srv.ts.URL, client.WithRetries(3))

	// A read is retried through two 503s.
	if _, err := c.Health(ctx); err != nil {
		t.Fatalf("a read was not retried: %v", err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("read attempts = %d, want 3", n)
	}

	// A create is not: the server may have done it.
	_, err := c.Create(ctx, client.NewEntity{Name: "s1", Driver: "server"})
	e := apiErr2(t, err)
	if e.Status != 503 || !strings.Contains(e.Message, "upstream restarting") {
		t.Errorf("create through a 503: %+v", e)
	}
	if n := f.calls.Load(); n != 4 {
		t.Errorf("attempts after the create = %d, want 4 (no retry)", n)
	}

	// An allocation is retried with the same Idempotency-Key.
	f.mu.Lock()
	f.fails["POST"] = 0
	f.keys = nil
	f.mu.Unlock()
	c2 := newClient(t, srv.ts.URL, client.WithRetries(3))
	if _, err := srv.store.Batch(ctx, "t", []entity.Op{{Op: "create", Name: "r1", Driver: "rack"}, {Op: "create", Name: "s2", Driver: "server"}}, store.BatchOptions{}); err != nil {
		t.Fatal(err)
	}
	placed, err := c2.AllocateRackUnits(ctx, "r1", client.RackRequest{Entity: "s2"})
	if err != nil {
		t.Fatalf("allocation through two 503s: %v", err)
	}
	if p, _ := placed.Parent(); p.Units() != "RU1" {
		t.Errorf("placed at %s", p.Units())
	}
	f.mu.Lock()
	keys := append([]string(nil), f.keys...)
	f.mu.Unlock()
	if len(keys) != 3 || keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("keys sent = %q, want one key three times", keys)
	}
}

func apiErr2(t *testing.T, err error) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	return e
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, addr, client.WithRetries(1))
	_, err = c.Entity(context.Background(), "s1", nil)
	var ue *client.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T) is not an *UnreachableError", err, err)
	}
	if !strings.Contains(err.Error(), "http://"+addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("message %q lacks the address or the reason", err)
	}

	// A server that does not answer in time.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	c = newClient(t, slow.URL, client.WithTimeout(100*time.Millisecond), client.WithRetries(0))
	start := time.Now()
	_, err = c.Health(context.Background())
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "no answer in time") {
		t.Errorf("slow server: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the timeout took %v", d)
	}
}

func TestNew(t *testing.T) {
	for addr, want := range map[string]string{
		"":                        client.DefaultServer,
		"10.0.0.1:8642":           "http://10.0.0.1:8642",
		"https://clusto.example/": "https://clusto.example",
		"http://h:1/prefix/":      "http://h:1/prefix",
	} {
		c, err := client.New(addr)
		if err != nil || c.Server() != want {
			t.Errorf("New(%q) = %v %v, want %s", addr, c.Server(), err, want)
		}
	}
	for _, bad := range []string{"ftp://h", "http://", "http://h/?x=1"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	k1, k2 := client.NewIdempotencyKey(), client.NewIdempotencyKey()
	if len(k1) != 36 || k1 == k2 {
		t.Errorf("keys %q %q", k1, k2)
	}
}

// An answer without the API's error body (a proxy, or not clustod) still
// becomes an *Error with the code its status stands for.
func TestPlainErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{
		{400, client.CodeInvalid},
		{404, client.CodeNotFound},
		{413, client.CodeTooLarge},
		{415, client.CodeUnsupportedMediaType},
		{431, client.CodeInternal},
		{502, client.CodeInternal},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "plain words\nsecond line", tc.status)
			}))
			defer ts.Close()
			_, err := newClient(t, ts.URL, client.WithRetries(0)).Whoami(context.Background())
			e := apiErr2(t, err)
			want := fmt.Sprintf("the server answered %d %s without a clusto error body: plain words", tc.status, http.StatusText(tc.status))
			if e.Status != tc.status || e.Code != tc.code || e.Message != want {
				t.Errorf("got %d %q %q; want %d %q %q", e.Status, e.Code, e.Message, tc.status, tc.code, want)
			}
		})
	}
}

// TestQueryTotals: past 1,000 matches a page's total is, by default, a
// lower bound (TotalAtLeast), exact when asked for; QueryAll's is the
// number of matches it read, exact whatever its pages said.
func TestQueryTotals(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, newServer(t, nil).ts.URL)
	var ops []client.Op
	for i := range 1005 {
		ops = append(ops, client.Op{Op: "create", Name: fmt.Sprintf("p%04d", i), Driver: "pool"})
	}
	if _, err := c.Batch(ctx, ops, false); err != nil {
		t.Fatal(err)
	}
	page, err := c.Query(ctx, client.Query{Q: "driver:pool", Limit: 2})
	if err != nil || page.Total != 1000 || !page.TotalAtLeast {
		t.Errorf("default total: %d (at least %v), %v; want 1000, at least", page.Total, page.TotalAtLeast, err)
	}
	page, err = c.Query(ctx, client.Query{Q: "driver:pool", Limit: 2, Total: entity.TotalExact})
	if err != nil || page.Total != 1005 || page.TotalAtLeast {
		t.Errorf("exact total: %d (at least %v), %v; want 1005", page.Total, page.TotalAtLeast, err)
	}
	all, err := c.QueryAll(ctx, client.Query{Q: "driver:pool", Limit: 400})
	if err != nil || len(all.Results) != 1005 || all.Total != 1005 || all.TotalAtLeast {
		t.Errorf("QueryAll: %d results, total %d (at least %v), %v; want 1005 and 1005", len(all.Results), all.Total, all.TotalAtLeast, err)
	}
}
