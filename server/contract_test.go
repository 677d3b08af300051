package server_test

// The contract between the server and the Go client: the real server, on
// loopback over a real SQLite file, driven through the client with the
// demo inventory, every request and answer recorded on the way. Every
// answer must decode, unknown fields refused, into the client's type for
// its endpoint and encode back to the same JSON; every field those types
// declare must turn up in some answer; every request body the client sends
// must decode, unknown fields refused, into the server's type; and every
// endpoint of the route table must have been answered with JSON.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusto/clusto/client"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/server"
)

// answerTypes is, for every endpoint, the type the client reads its 2xx
// JSON answer into (for a query, which depends on explain, given the
// request). Routes without a client method use the API's type, which is
// what a client would read.
var answerTypes = map[string]func(ex *exchange) any{
	"GET /healthz": func(*exchange) any { return new(client.Health) },

	"POST /api/v1/entities":          func(*exchange) any { return new(client.Entity) },
	"GET /api/v1/entities/{name}":    func(*exchange) any { return new(client.Entity) },
	"PATCH /api/v1/entities/{name}":  func(*exchange) any { return new(client.Entity) },
	"DELETE /api/v1/entities/{name}": func(*exchange) any { return new(client.Deleted) },

	"GET /api/v1/entities/{name}/attrs":          func(*exchange) any { return new(client.Attrs) },
	"POST /api/v1/entities/{name}/attrs":         func(*exchange) any { return new(client.Attrs) },
	"PUT /api/v1/entities/{name}/attrs/{key}":    func(*exchange) any { return new(client.Attrs) },
	"DELETE /api/v1/entities/{name}/attrs/{key}": func(*exchange) any { return new(client.Attrs) },

	"POST /api/v1/entities/{name}/children":           func(*exchange) any { return new(client.Entity) },
	"DELETE /api/v1/entities/{name}/children/{child}": func(*exchange) any { return new(client.Entity) },
	"POST /api/v1/links":                              func(*exchange) any { return new(entity.LinkAnswer) },
	"DELETE /api/v1/links":                            func(*exchange) any { return new(entity.UnlinkAnswer) },

	"GET /api/v1/lookup":                  func(*exchange) any { return new(client.Entity) },
	"GET /api/v1/entities/{name}/locate":  func(*exchange) any { return new(client.Location) },
	"GET /api/v1/entities/{name}/console": func(*exchange) any { return new(client.Consoles) },
	"GET /api/v1/entities/{name}/power":   func(*exchange) any { return new(client.Power) },

	"GET /api/v1/entities/{name}/history": func(*exchange) any { return new(client.Changes) },
	"GET /api/v1/changes":                 func(*exchange) any { return new(client.Changes) },

	"POST /api/v1/ipblocks/{name}/allocate":                func(*exchange) any { return new(entity.Allocations) },
	"DELETE /api/v1/ipblocks/{name}/allocations/{address}": func(*exchange) any { return new(entity.Allocations) },
	"GET /api/v1/ipblocks/{name}":                          func(*exchange) any { return new(client.IPBlock) },
	"POST /api/v1/racks/{name}/allocate":                   func(*exchange) any { return new(entity.EntitiesAnswer) },
	"GET /api/v1/racks/{name}/elevation":                   func(*exchange) any { return new(client.Elevation) },
	"POST /api/v1/names/{manager}/allocate":                func(*exchange) any { return new(entity.EntitiesAnswer) },

	"GET /api/v1/query":     queryAnswer,
	"POST /api/v1/query":    queryAnswer,
	"POST /api/v1/allocate": func(*exchange) any { return new(entity.EntitiesAnswer) },
	"GET /api/v1/export":    func(*exchange) any { return new(client.Export) },

	"POST /api/v1/batch": func(*exchange) any { return new(client.BatchResult) },
	"POST /api/v1/plan":  func(*exchange) any { return new(client.Applied) },
	"POST /api/v1/apply": func(*exchange) any { return new(client.Applied) },

	"GET /api/v1/drivers":                 func(*exchange) any { return new(entity.DriverList) },
	"GET /api/v1/drivers/{driver}":        func(*exchange) any { return new(client.Driver) },
	"POST /api/v1/drivers/reload":         func(*exchange) any { return new(entity.DriversReloaded) },
	"GET /api/v1/whoami":                  func(*exchange) any { return new(client.Whoami) },
	"GET /api/v1/tokens":                  func(*exchange) any { return new(entity.TokenList) },
	"POST /api/v1/tokens":                 func(*exchange) any { return new(client.NewToken) },
	"GET /api/v1/tokens/audit":            func(*exchange) any { return new(client.TokenAudit) },
	"DELETE /api/v1/tokens/{token}":       func(*exchange) any { return new(entity.Revoked) },
	"POST /api/v1/admin/backup":           func(*exchange) any { return new(client.Backup) },
	"GET /api/v1/admin/backups":           func(*exchange) any { return new(client.BackupList) },
	"DELETE /api/v1/admin/backups/{name}": func(*exchange) any { return new(client.BackupFile) },
}

// notJSON are the endpoints that never answer JSON, and why.
var notJSON = map[string]string{
	"GET /metrics": "Prometheus text format",
}

// queryAnswer is a query's answer: an explanation when explain was asked.
func queryAnswer(ex *exchange) any {
	var q entity.QueryRequest
	json.Unmarshal(ex.reqBody, &q)
	if q.Explain || strings.Contains(ex.target, "explain=") {
		return new(client.Explanation)
	}
	if q.View == entity.ViewSummary || strings.Contains(ex.target, "view=summary") {
		return new(entity.SummaryResults)
	}
	return new(client.Results)
}

// requestTypes is, for every endpoint that takes a body, the type the
// server reads it into.
var requestTypes = map[string]func() any{
	"POST /api/v1/entities":                   func() any { return new(entity.CreateRequest) },
	"PATCH /api/v1/entities/{name}":           func() any { return new(entity.RenameRequest) },
	"POST /api/v1/entities/{name}/attrs":      func() any { return new(entity.AttrInput) },
	"PUT /api/v1/entities/{name}/attrs/{key}": func() any { return new(entity.SetAttrRequest) },
	"POST /api/v1/entities/{name}/children":   func() any { return new(entity.InsertRequest) },
	"POST /api/v1/links":                      func() any { return new(entity.Cable) },
	"DELETE /api/v1/links":                    func() any { return new(entity.Cable) },
	"POST /api/v1/ipblocks/{name}/allocate":   func() any { return new(entity.IPAllocateRequest) },
	"POST /api/v1/racks/{name}/allocate":      func() any { return new(entity.RackAllocateRequest) },
	"POST /api/v1/names/{manager}/allocate":   func() any { return new(entity.NamesAllocateRequest) },
	"POST /api/v1/query":                      func() any { return new(entity.QueryRequest) },
	"POST /api/v1/allocate":                   func() any { return new(entity.AllocateRequest) },
	"POST /api/v1/batch":                      func() any { return new(entity.BatchRequest) },
	"POST /api/v1/plan":                       func() any { return new(entity.FileRequest) },
	"POST /api/v1/apply":                      func() any { return new(entity.FileRequest) },
	"POST /api/v1/tokens":                     func() any { return new(entity.TokenRequest) },
	"POST /api/v1/admin/backup":               func() any { return new(entity.BackupRequest) },
}

// neverInAnswers are the fields of the answer types that no answer holds,
// and why.
var neverInAnswers = map[string]string{}

// neverInRequests are the fields of the request types that the client
// never sends, and why.
var neverInRequests = map[string]string{
	"entity.Cable.type": "it is the ports' type, in answers only: the server refuses it in a request",
	"entity.Attr.from":  "it is where a merged view's value comes from, in answers only",
}

// opType is a batch op: a request, which answers hold too (a plan's
// steps), but only the ops a plan makes. Its fields are checked as a
// request's, with the ops of the batch TestContract sends.
var opType = reflect.TypeOf(entity.Op{})

func TestContract(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%v\n%s", r, debug.Stack())
		}
	}()
	ctx := context.Background()
	c := startContract(t, server.Options{BackupKeep: 1, Version: "v-contract"})
	anon := c.client(t, "")

	// No token yet: anonymous makes the first one.
	must(anon.Health(ctx))
	admin := must(anon.CreateToken(ctx, "ops", "admin"))
	cl := c.client(t, admin.Secret)
	demo := mustRead(t, "../examples/demo.yaml")
	must(cl.Plan(ctx, client.File{Name: "demo.yaml", Content: demo}))
	must(cl.Apply(ctx, client.File{Name: "demo.yaml", Content: demo, DryRun: true}))
	must(cl.Apply(ctx, client.File{Name: "demo.yaml", Content: demo}))
	must(cl.Plan(ctx, client.File{Name: "demo.yaml", Content: demo + "  s0099: {driver: server, attrs: {status: new}}\n", Prune: true}))

	// Entities and attributes, a json value whose JSON is a string among
	// them (which the request form of Attr does not read back).
	five := int64(5)
	e := must(cl.Create(ctx, client.NewEntity{Name: "web1", Driver: "server", Attrs: []client.AttrInput{
		{Key: "memory_gb", Value: 64}, {Key: "serial", Value: "SN-CONTRACT"}, {Key: "disk", Subkey: "sda", Number: &five, Value: "ssd"},
		{Key: "tags", Value: json.RawMessage(`["a","b"]`)}, {Key: "note", Type: "json", Value: `"a JSON string"`},
		{Key: "born", Type: "time", Value: "2026-11-22T10:00:00Z"}, {Key: "mgmt", Type: "ip", Value: "10.9.9.9"},
	}}))
	must(cl.Entity(ctx, "web1", nil))
	must(cl.Entity(ctx, "s0001", &client.GetOptions{Merged: true}))
	must(cl.Entity(ctx, "web1", &client.GetOptions{At: e.Change}))
	must(cl.AddAttr(ctx, "web1", client.AttrInput{Key: "nic", NextNumber: true, Value: "eth0"}, 0))
	must(cl.AddAttr(ctx, "web1", client.AttrInput{Key: "rack_row", Subkey: "a", Number: &five, Value: "7", Type: "int"}, 0))
	must(cl.SetAttr(ctx, "web1", client.SetAttrRequest{Key: "disk", Subkey: "sda", Number: &five, Values: []any{"nvme", "ssd"}, Type: "string"}))
	must(cl.Attrs(ctx, "web1", &client.AttrQuery{Key: "disk", Subkey: "sda", At: e.Change}))
	ssd := "ssd"
	must(cl.DelAttr(ctx, "web1", client.DelAttrRequest{Key: "disk", Subkey: "sda", Number: &five, Value: &ssd}))
	ru30, two := int64(30), int64(2)
	must(cl.Insert(ctx, "rack101", "web1", &client.Placement{Position: &ru30, Height: &two}))
	must(cl.Insert(ctx, "production", "web1", nil))
	must(cl.Link(ctx, client.Cable{A: "web1", APort: "eth0", B: "switch101", BPort: "30"}))
	must(cl.Link(ctx, client.Cable{A: "web1", APort: "psu1", B: "pdu101", BPort: "20"}))
	must(cl.Link(ctx, client.Cable{A: "web1", B: "cons101"}))
	must(cl.Locate(ctx, "web1", 0))
	must(cl.Console(ctx, "web1", 0))
	must(cl.Power(ctx, "web1", 0))
	must2(cl.Lookup(ctx, "SN-CONTRACT"))
	must(cl.Unlink(ctx, client.Cable{A: "web1", B: "cons101"}))
	must(cl.History(ctx, "web1", client.Page{Limit: 3}))
	must(cl.Changes(ctx, client.Page{Since: e.Change, Limit: 50}))
	must(cl.Remove(ctx, "production", "web1", 0))
	must(cl.Rename(ctx, "web1", "web01", 0))

	// Allocation.
	must(cl.AllocateIP(ctx, "rack101-net", client.IPRequest{Entity: "web01", Interface: "eth0", Count: 2}))
	ip := must(cl.AllocateIP(ctx, "rack101-net", client.IPRequest{Entity: "web01", Interface: "eth1", Address: "10.1.1.200"}))
	must(cl.IPBlock(ctx, "rack101-net", client.BlockPage{Limit: 2}))
	must(cl.IPBlock(ctx, "sfo1-net", client.BlockPage{After: "10.1.0.0"}))
	must(cl.ReleaseIP(ctx, "rack101-net", ip[0].Address))
	must(cl.Create(ctx, client.NewEntity{Name: "db1", Driver: "server"}))
	must(cl.AllocateRackUnits(ctx, "rack102", client.RackRequest{Entity: "db1", Height: &two}))
	must(cl.Create(ctx, client.NewEntity{Name: "db2", Driver: "server"}))
	must(cl.AllocateRackUnits(ctx, "rack102", client.RackRequest{Entity: "db2", Position: &ru30}))
	must(cl.Create(ctx, client.NewEntity{Name: "loose", Driver: "server"}))
	must(cl.Insert(ctx, "rack102", "loose", nil))
	must(cl.Elevation(ctx, "rack102"))
	must(cl.AllocateNames(ctx, "servers", client.NameRequest{Driver: "server", Count: 2, Attrs: map[string]any{"status": "new", "tags": []any{"x", "y"}}}))
	allocate := client.AllocateRequest{Query: "driver:server and attr:status,unallocated", Count: 2, Distinct: "rack", Set: map[string]any{"status": "allocated"}}
	dry := allocate
	dry.DryRun = true
	must(cl.Allocate(ctx, dry))
	must(cl.Allocate(ctx, allocate))

	// Queries, exports, batches.
	page := must(cl.Query(ctx, client.Query{Q: "driver:server", Limit: 3}))
	must(cl.Query(ctx, client.Query{Q: "driver:server", Limit: 3, Cursor: page.NextCursor, At: e.Change}))
	must(cl.Explain(ctx, client.Query{Q: "driver:server and attr:memory_gb>=128 in name:rack101"}))
	c.raw(t, admin.Secret, "GET", "/api/v1/query?q=driver:server&limit=2", "", 200)
	c.raw(t, admin.Secret, "GET", "/api/v1/query?q=driver:server&explain=1", "", 200)
	c.raw(t, admin.Secret, "GET", "/api/v1/query?q=driver:server&limit=2&view=summary", "", 200)
	must(cl.QuerySummary(ctx, client.Query{Q: "driver:server", Limit: 2}))
	// More matches than total=capped counts, for total_at_least.
	var bulk []client.Op
	for i := range 1001 {
		bulk = append(bulk, client.Op{Op: "create", Name: fmt.Sprintf("bulk%04d", i), Driver: "pool"})
	}
	must(cl.Batch(ctx, bulk, false))
	must(cl.Query(ctx, client.Query{Q: "driver:pool", Limit: 2, Total: entity.TotalCapped}))
	must(cl.QuerySummary(ctx, client.Query{Q: "driver:pool", Limit: 2, Total: entity.TotalCapped}))
	must(cl.Export(ctx, "name:rack101"))
	// A batch of every op, each field of an op in one of them.
	sda, three, u34, h1 := "sda", int64(3), int64(34), int64(1)
	ops := []client.Op{
		{Op: "create", Name: "b1", Driver: "server", Attrs: []entity.Attr{{Key: "status", Value: entity.String("new")}, {Key: "slot", Number: &three, Value: entity.Int(7)}, {Key: "disk", Subkey: "sdb", Value: entity.String("hdd")}}},
		{Op: "attr_add", Name: "b1", Key: "disk", Subkey: &sda, Number: &three, Value: json.RawMessage(`"ssd"`), Type: entity.TypeString},
		{Op: "attr_add", Name: "b1", Key: "nic", AutoNumber: true, Value: json.RawMessage(`"eth0"`)},
		{Op: "attr_set", Name: "b1", Key: "status", Values: []json.RawMessage{json.RawMessage(`"ready"`)}, Type: entity.TypeString},
		{Op: "attr_del", Name: "b1", Key: "disk", Subkey: &sda, Number: &three, Value: json.RawMessage(`"ssd"`)},
		{Op: "allocate_ru", Rack: "rack102", Entity: "b1", Position: &u34, Height: &h1},
		{Op: "remove", Parent: "rack102", Child: "b1"},
		{Op: "insert", Parent: "rack102", Child: "b1", Position: &u34, Height: &h1},
		{Op: "link", A: "b1", APort: "eth0", B: "switch102", BPort: "40"},
		{Op: "unlink", A: "b1", APort: "eth0", B: "switch102", BPort: "40"},
		{Op: "allocate_ip", Block: "rack102-net", Entity: "b1", Count: 1, Interface: "eth0"},
		{Op: "allocate_ip", Block: "rack102-net", Entity: "b1", Address: "10.1.2.201", Interface: "eth1"},
		{Op: "release_ip", Block: "rack102-net", Address: "10.1.2.201"},
		{Op: "allocate_name", Manager: "servers", Driver: "server", Count: 1, Attrs: []entity.Attr{{Key: "status", Value: entity.String("new")}}},
		{Op: "rename", Name: "b1", NewName: "b1x"},
		{Op: "create", Name: "b2", Driver: "server"},
		{Op: "insert", Parent: "rack102", Child: "b2"},
		{Op: "delete", Name: "b2", Cascade: true},
	}
	must(cl.Batch(ctx, ops, true))
	must(cl.Batch(ctx, ops, false))

	// Administration.
	must(cl.Whoami(ctx))
	must(cl.Drivers(ctx))
	must(cl.Driver(ctx, "switch"))
	must(cl.Driver(ctx, "namemanager"))
	c.raw(t, admin.Secret, "POST", "/api/v1/drivers/reload", "", 200)
	robot := must(cl.CreateToken(ctx, "robot", "read"))
	must(cl.Tokens(ctx))
	if err := cl.RevokeToken(ctx, "robot"); err != nil {
		t.Fatal(err)
	}
	must(cl.TokenAudit(ctx, client.Page{Limit: 10}))
	must(cl.Backup(ctx, ""))
	must(cl.Backup(ctx, "")) // a second automatic name, which prunes the first (BackupKeep)
	must(cl.Backup(ctx, "named.db"))
	must(cl.Backups(ctx))
	must(cl.DeleteBackup(ctx, "named.db"))
	var buf bytes.Buffer
	must(cl.DownloadBackup(ctx, "", &buf))
	must(cl.Delete(ctx, "loose", false, 0))
	must(cl.Delete(ctx, "db2", true, 0))

	// Errors, each answered with the error body.
	for i, err := range []error{
		failed(cl.Entity(ctx, "nothing", nil)),                                                   // not_found
		failed(cl.Create(ctx, client.NewEntity{Name: "web01", Driver: "server"})),                // conflict
		failed(cl.AllocateIP(ctx, "rack101-net", client.IPRequest{Entity: "web01", Count: 999})), // reason exhausted
		failed(cl.Query(ctx, client.Query{Q: "driver:server and"})),                              // position
		failed(cl.AddAttr(ctx, "web01", client.AttrInput{Key: "x", Value: 1}, 1)),                // precondition_failed
		failed(c.client(t, robot.Secret).Whoami(ctx)),                                            // unauthorized: revoked
		failed(cl.Plan(ctx, client.File{Name: "bad.yaml", Content: "version: 1\nentities:\n  t1: {driver: blender}\n"})),
	} {
		if _, ok := err.(*client.Error); !ok {
			t.Fatalf("call #%d: want an API error, got %v", i+1, err)
		}
	}
	reader := must(cl.CreateToken(ctx, "viewer", "read"))
	if _, err := c.client(t, reader.Secret).Create(ctx, client.NewEntity{Name: "x", Driver: "server"}); err == nil {
		t.Fatal("a read token created an entity") // forbidden
	}
	c.raw(t, admin.Secret, "GET", "/api/v1/nowhere", "", 404)
	c.raw(t, admin.Secret, "PUT", "/api/v1/entities", "", 405)
	c.raw(t, admin.Secret, "GET", "/api/v1/entities/web01?cascade=1", "", 400)
	c.raw(t, admin.Secret, "POST", "/api/v1/entities", "not json", 415)
	c.raw(t, "", "GET", "/api/v1/whoami", "", 401)
	c.raw(t, admin.Secret, "GET", "/metrics", "", 200)

	c.check(t)

	// An error the server answers before any handler: a malformed request.
	c.malformed(t)

	// The 503 of /healthz, from a server whose database is gone.
	sick := startContract(t, server.Options{})
	sick.store.Close()
	sick.raw(t, "", "GET", "/healthz", "", 503)
	var h entity.HealthUnavailable
	sick.log[0].decodeStrict(t, &h)
	sick.log[0].roundTrip(t, &h)
	if h.Status != "unavailable" || h.RequestID == "" {
		t.Errorf("/healthz on a closed store: %s", sick.log[0].body)
	}
}

// contractServer is the real server behind a recorder.
type contractServer struct {
	store *store.Store
	srv   *server.Server
	ts    *httptest.Server

	mu  sync.Mutex
	log []*exchange
}

// exchange is one request and its answer, as the recorder saw them.
type exchange struct {
	route, method, target string
	// fromClient says the Go client sent it (by its User-Agent).
	fromClient bool
	reqBody    []byte
	status     int
	header     http.Header
	body       []byte
}

func startContract(t *testing.T, opts server.Options) *contractServer {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), dir+"/inventory.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	drivers := dir + "/drivers.json"
	if err := os.WriteFile(drivers, []byte(`{"drivers":[{"name":"toaster","kind":"equipment","parents":["rack"],"height":1,"ports":[{"type":"power","names":["plug"]}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.AllowAnonymous = true
	opts.DriversFile = drivers
	opts.BackupDir = t.TempDir()
	c := &contractServer{store: st, srv: server.New(st, opts)}
	c.ts = httptest.NewUnstartedServer(c)
	c.ts.Listener = c.srv.Listener(c.ts.Listener)
	c.ts.Start()
	t.Cleanup(c.ts.Close)
	return c
}

func (c *contractServer) client(t *testing.T, token string) *client.Client {
	t.Helper()
	cl, err := client.New(c.ts.URL, client.WithToken(token), client.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// ServeHTTP records the exchange.
func (c *contractServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := &exchange{route: server.RouteOf(c.srv, r), method: r.Method, target: r.URL.String(),
		fromClient: strings.HasPrefix(r.Header.Get("User-Agent"), "clusto-client/")}
	ex.reqBody, _ = io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(ex.reqBody))
	rec := &capture{ResponseWriter: w, status: http.StatusOK}
	c.srv.ServeHTTP(rec, r)
	ex.status, ex.header, ex.body = rec.status, w.Header().Clone(), rec.body.Bytes()
	c.mu.Lock()
	c.log = append(c.log, ex)
	c.mu.Unlock()
}

// capture keeps what a handler writes.
type capture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *capture) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *capture) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *capture) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// raw sends a request the client has no method for (or one it would not
// send) and checks its status.
func (c *contractServer) raw(t *testing.T, token, method, path, body string, status int) {
	t.Helper()
	req, err := http.NewRequest(method, c.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain")
	}
	res, err := c.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d", method, path, res.StatusCode, status)
	}
}

// malformed sends a request line net/http refuses before any handler; the
// server's listener answers it with the error body.
func (c *contractServer) malformed(t *testing.T) {
	t.Helper()
	conn, err := net.Dial("tcp", c.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	ex := &exchange{route: "(listener)", method: "GET", status: res.StatusCode, header: res.Header, body: body}
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed request: %d %s", res.StatusCode, body)
	}
	var e entity.ErrorBody
	ex.decodeStrict(t, &e)
	ex.roundTrip(t, &e)
	if e.Error.Code != string(entity.KindInvalid) || e.Error.RequestID == "" {
		t.Errorf("malformed request: %s", body)
	}
}

// check runs the contract over everything recorded.
func (c *contractServer) check(t *testing.T) {
	t.Helper()
	routes := server.Routes(c.srv)
	for _, r := range routes {
		_, isJSON := answerTypes[r]
		if _, skip := notJSON[r]; isJSON == skip {
			t.Errorf("route %s needs an entry in answerTypes (its client type) or notJSON (why it answers no JSON)", r)
		}
	}
	for r := range answerTypes {
		if !slices.Contains(routes, r) {
			t.Errorf("answerTypes names %s, which is no route", r)
		}
	}
	for r := range requestTypes {
		if !slices.Contains(routes, r) {
			t.Errorf("requestTypes names %s, which is no route", r)
		}
	}

	answers, requests := newPresence(), newPresence()
	answered := map[string]bool{}
	errorCodes := map[string]bool{}
	for _, ex := range c.log {
		name := ex.method + " " + ex.target
		if ex.fromClient && ex.route != "" {
			ex.checkRequest(t, requests)
		}
		if _, skip := notJSON[ex.route]; skip {
			answered[ex.route] = true
			continue
		}
		if ct := ex.header.Get("Content-Type"); ct != "application/json" {
			if ex.route == "POST /api/v1/admin/backup" && strings.Contains(ex.target, "download=true") && ex.status == http.StatusOK {
				continue // a download: the snapshot itself
			}
			t.Errorf("%s: %d answered as %q, not JSON", name, ex.status, ct)
			continue
		}
		var v any
		switch {
		case ex.status >= 200 && ex.status < 300:
			newAnswer, ok := answerTypes[ex.route]
			if !ok {
				t.Errorf("%s: no answer type for route %q", name, ex.route)
				continue
			}
			v = newAnswer(ex)
			answered[ex.route] = true
		default:
			v = new(entity.ErrorBody)
		}
		ex.decodeStrict(t, v)
		ex.roundTrip(t, v)
		answers.walk(t, name, ex.body, reflect.TypeOf(v).Elem())
		if e, ok := v.(*entity.ErrorBody); ok {
			errorCodes[fmt.Sprint(ex.status, " ", e.Error.Code)] = true
			if e.Error.RequestID == "" || e.Error.RequestID != ex.header.Get("X-Request-Id") {
				t.Errorf("%s: error body request_id %q, header %q", name, e.Error.RequestID, ex.header.Get("X-Request-Id"))
			}
		}
	}
	for _, r := range routes {
		if !answered[r] {
			t.Errorf("route %s was never answered: drive it in TestContract", r)
		}
	}
	for _, want := range []string{"400 invalid", "400 query_syntax", "401 unauthorized", "403 forbidden", "404 not_found", "405 invalid", "409 conflict", "412 precondition_failed", "415 unsupported_media_type"} {
		if !errorCodes[want] {
			t.Errorf("no %s error body was checked (checked: %v)", want, keys(errorCodes))
		}
	}

	var answerRoots []reflect.Type
	for _, r := range routes {
		if newAnswer, ok := answerTypes[r]; ok {
			answerRoots = append(answerRoots, reflect.TypeOf(newAnswer(&exchange{})).Elem())
		}
	}
	answerRoots = append(answerRoots, reflect.TypeOf(client.Explanation{}), reflect.TypeOf(entity.ErrorBody{}))
	answers.report(t, "answer", answerRoots, neverInAnswers, opType)
	requestRoots := []reflect.Type{opType}
	for _, newReq := range requestTypes {
		requestRoots = append(requestRoots, reflect.TypeOf(newReq()).Elem())
	}
	requests.report(t, "request", requestRoots, neverInRequests)
}

// checkRequest decodes a body the client sent into the server's type for
// the route, refusing unknown fields, and notes its fields.
func (ex *exchange) checkRequest(t *testing.T, p *presence) {
	t.Helper()
	name := ex.method + " " + ex.target
	newReq, ok := requestTypes[ex.route]
	if !ok {
		if len(bytes.TrimSpace(ex.reqBody)) != 0 {
			t.Errorf("%s: the client sent a body (%s) to a route that takes none (or add it to requestTypes)", name, ex.reqBody)
		}
		return
	}
	if len(bytes.TrimSpace(ex.reqBody)) == 0 {
		return
	}
	v := newReq()
	dec := json.NewDecoder(bytes.NewReader(ex.reqBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("%s: the client's request %s does not decode into %T: %v", name, ex.reqBody, v, err)
		return
	}
	if b, ok := v.(*entity.BatchRequest); ok {
		if _, err := entity.DecodeOps(b.Ops); err != nil {
			t.Errorf("%s: the client's ops: %v", name, err)
		}
		p.walk(t, name, b.Ops, reflect.TypeOf([]entity.Op{}))
	}
	p.walk(t, name, ex.reqBody, reflect.TypeOf(v).Elem())
}

// decodeStrict decodes the answer into v, refusing unknown fields and
// anything after the one value.
func (ex *exchange) decodeStrict(t *testing.T, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(ex.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("%s %s: %d answer does not decode into %T: %v\n%s", ex.method, ex.target, ex.status, v, err, ex.body)
		return
	}
	if dec.More() {
		t.Errorf("%s %s: more than one JSON value in the answer", ex.method, ex.target)
	}
}

// roundTrip checks that v, decoded from the answer, encodes back to the
// same JSON: nothing was dropped (the unknown fields a custom UnmarshalJSON
// would skip, which DisallowUnknownFields does not reach), changed or
// added.
func (ex *exchange) roundTrip(t *testing.T, v any) {
	t.Helper()
	again, err := json.Marshal(v)
	if err != nil {
		t.Errorf("%s %s: encode %T: %v", ex.method, ex.target, v, err)
		return
	}
	if diffs := jsonDiff("", generic(t, ex.body), generic(t, again)); len(diffs) > 0 {
		t.Errorf("%s %s: %T does not encode back to the answer:\n  %s\nanswer: %s\nagain:  %s", ex.method, ex.target, v,
			strings.Join(diffs[:min(len(diffs), 10)], "\n  "), clip(ex.body), clip(again))
	}
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

// generic is JSON as maps, lists and json.Numbers.
func generic(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return v
}

// jsonDiff lists where two generic JSON values differ; numbers are equal
// when their values are.
func jsonDiff(path string, a, b any) []string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v, then %v", path, a, b)}
		}
		var out []string
		for _, k := range keys(x) {
			if yv, ok := y[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: dropped", path, k))
			} else {
				out = append(out, jsonDiff(path+"."+k, x[k], yv)...)
			}
		}
		for _, k := range keys(y) {
			if _, ok := x[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: added (%v)", path, k, y[k]))
			}
		}
		return out
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return []string{fmt.Sprintf("%s: %v, then %v", path, a, b)}
		}
		var out []string
		for i := range x {
			out = append(out, jsonDiff(fmt.Sprintf("%s[%d]", path, i), x[i], y[i])...)
		}
		return out
	case json.Number:
		y, ok := b.(json.Number)
		if ok && x == y {
			return nil
		}
		xr, xok := new(big.Rat).SetString(string(x))
		if yr, yok := new(big.Rat).SetString(string(y)); ok && xok && yok && xr.Cmp(yr) == 0 {
			return nil
		}
	default:
		if reflect.DeepEqual(a, b) {
			return nil
		}
	}
	return []string{fmt.Sprintf("%s: %v, then %v", path, a, b)}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// presence notes which JSON fields of which Go types the recorded bodies
// held (with a value other than null).
type presence struct{ seen map[string]bool }

func newPresence() *presence { return &presence{seen: map[string]bool{}} }

// attrShape is entity.Attr's JSON (Attr.MarshalJSON writes it), whose Go
// fields have no tags.
type attrShape struct {
	Key    string `json:"key"`
	Subkey string `json:"subkey,omitempty"`
	Number *int64 `json:"number"`
	Value  any    `json:"value"`
	Type   string `json:"type,omitempty"`
	From   string `json:"from,omitempty"`
}

var (
	attrType      = reflect.TypeOf(entity.Attr{})
	attrShapeType = reflect.TypeOf(attrShape{})
	marshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	// leaves are the types whose JSON is not looked into.
	leaves = map[reflect.Type]bool{
		reflect.TypeOf(time.Time{}): true, reflect.TypeOf(big.Int{}): true,
		reflect.TypeOf(json.RawMessage{}): true, reflect.TypeOf(json.Number("")): true,
	}
)

// jsonField is a field as encoding/json sees it; owner is the struct type
// that declares it (through embedding, a field is its declarer's).
type jsonField struct {
	name  string
	typ   reflect.Type
	owner string
}

// fields are the JSON fields of struct type t, embedded structs' promoted.
func fields(st reflect.Type) []jsonField {
	owner := st.String()
	if st == attrShapeType {
		owner = attrType.String()
	}
	var out []jsonField
	for i := range st.NumField() {
		f := st.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		ft := f.Type
		if f.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, fields(ft)...)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, typ: ft, owner: owner})
	}
	return out
}

// shape is the struct type whose fields are t's JSON: t itself, or for a
// type with its own JSON encoding, a stand-in.
func shape(t *testing.T, typ reflect.Type) reflect.Type {
	if typ == attrType {
		return attrShapeType
	}
	if typ.Implements(marshalerType) || reflect.PointerTo(typ).Implements(marshalerType) {
		t.Fatalf("%s encodes itself: give the contract test a stand-in for its JSON, as attrShape is for entity.Attr", typ)
	}
	return typ
}

// walk notes the fields of body, JSON of Go type typ.
func (p *presence) walk(t *testing.T, name string, body []byte, typ reflect.Type) {
	p.value(t, generic(t, body), typ)
}

func (p *presence) value(t *testing.T, v any, typ reflect.Type) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if v == nil || leaves[typ] || typ.Kind() == reflect.Interface {
		return
	}
	switch typ.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for _, f := range fields(shape(t, typ)) {
			if fv, ok := m[f.name]; ok && fv != nil {
				p.seen[f.owner+"."+f.name] = true
				p.value(t, fv, f.typ)
			}
		}
	case reflect.Slice, reflect.Array:
		list, _ := v.([]any)
		for _, x := range list {
			p.value(t, x, typ.Elem())
		}
	case reflect.Map:
		m, _ := v.(map[string]any)
		for _, x := range m {
			p.value(t, x, typ.Elem())
		}
	}
}

// report fails for every JSON field reachable from roots (but not through
// the types skipped) that no body held, unless never says why none can;
// and for reasons given for fields that did turn up.
func (p *presence) report(t *testing.T, what string, roots []reflect.Type, never map[string]string, skip ...reflect.Type) {
	t.Helper()
	declared := map[string]bool{}
	var visit func(reflect.Type)
	visited := map[reflect.Type]bool{}
	visit = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || leaves[typ] || visited[typ] || slices.Contains(skip, typ) {
			return
		}
		visited[typ] = true
		for _, f := range fields(shape(t, typ)) {
			declared[f.owner+"."+f.name] = true
			visit(f.typ)
		}
	}
	for _, r := range roots {
		visit(r)
	}
	for _, k := range keys(declared) {
		reason, excused := never[k]
		switch {
		case !p.seen[k] && !excused:
			t.Errorf("%s field %s is in no %s the contract test saw: drive an endpoint that sends it, or say in neverIn%ss why none does", what, k, what, title(what))
		case p.seen[k] && excused:
			t.Errorf("%s field %s turned up, though neverIn%ss says %q", what, k, title(what), reason)
		}
	}
	for k := range never {
		if !declared[k] {
			t.Errorf("neverIn%ss names %s, which no %s type declares", title(what), k, what)
		}
	}
}

// must is v, or a panic that TestContract reports with the call's stack.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func must2[T, U any](v T, u U, err error) (T, U) {
	if err != nil {
		panic(err)
	}
	return v, u
}

// failed is the error of a call that must fail.
func failed[T any](_ T, err error) error { return err }

func mustRead(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// title is s with its first letter upper case.
func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }
