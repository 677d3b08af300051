package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// syncBuffer is a log sink safe for the server's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines decodes the JSON log lines.
func (b *syncBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

type env struct {
	t     testing.TB
	store *store.Store
	srv   *Server
	ts    *httptest.Server
	logs  *syncBuffer
	// token is sent as the bearer token when set.
	token string
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// newEnv starts a server over a fresh database on loopback. Unless opts
// says otherwise it allows anonymous access (no token exists).
func newEnv(t testing.TB, opts ...func(*Options)) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	st, err := store.Open(context.Background(), t.TempDir()+"/inventory.db", store.Options{Now: c.now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &syncBuffer{}
	o := Options{Log: slog.New(slog.NewJSONHandler(logs, nil)), AllowAnonymous: true}
	for _, f := range opts {
		f(&o)
	}
	srv := New(st, o)
	// Behind the server's own listener, as clustod serves it.
	ts := httptest.NewUnstartedServer(srv)
	ts.Listener = srv.Listener(ts.Listener)
	ts.Start()
	t.Cleanup(ts.Close)
	return &env{t: t, store: st, srv: srv, ts: ts, logs: logs}
}

type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request; body is JSON-encoded unless it is a string or []byte,
// and declared as application/json. hdr is name, value pairs, set last:
// "Host" sets the Host the request is sent with, an empty value removes
// the header.
func (e *env) do(method, path string, body any, hdr ...string) *resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("encode request: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	if body != nil {
		// As every client must; a test of other types says so in hdr.
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		switch {
		case hdr[i] == "Host":
			req.Host = hdr[i+1]
		case hdr[i+1] == "":
			req.Header.Del(hdr[i])
		default:
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// want fails the test unless the response has the status.
func (r *resp) want(t testing.TB, status int) *resp {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body: %s", ct, r.Body)
	}
	return r
}

func (r *resp) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r *resp) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

func (r *resp) entity(t testing.TB) *entity.Entity {
	t.Helper()
	var e entity.Entity
	r.decode(t, &e)
	return &e
}

// apiErr is the error body.
type apiErr struct {
	Code      string           `json:"code"`
	Message   string           `json:"message"`
	Reason    string           `json:"reason"`
	Position  *entity.Position `json:"position"`
	Details   map[string]any   `json:"details"`
	RequestID string           `json:"request_id"`
}

// wantErr checks the status and the error code and returns the error.
func (r *resp) wantErr(t testing.TB, status int, code string) apiErr {
	t.Helper()
	r.want(t, status)
	var body struct {
		Error apiErr `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("error body %s: %v", r.Body, err)
	}
	if body.Error.Code != code {
		t.Fatalf("error code %q, want %q; body: %s", body.Error.Code, code, r.Body)
	}
	if body.Error.Message == "" {
		t.Fatalf("error without a message: %s", r.Body)
	}
	if id := r.Header.Get("X-Request-Id"); id == "" || body.Error.RequestID != id {
		t.Fatalf("error request_id %q, header X-Request-Id %q: they must be equal and set", body.Error.RequestID, id)
	}
	return body.Error
}

const api = APIPrefix

// mk creates entities through the API: name, driver pairs.
func (e *env) mk(pairs ...string) {
	e.t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		e.do("POST", api+"/entities", map[string]any{"name": pairs[i], "driver": pairs[i+1]}).want(e.t, http.StatusCreated)
	}
}

func (e *env) get(name string) *entity.Entity {
	e.t.Helper()
	return e.do("GET", api+"/entities/"+name, nil).want(e.t, http.StatusOK).entity(e.t)
}

// dc builds a small datacenter: dc1 > rack101 > server1 (RU13) cabled to
// switch2a port 4 (in RU40), console1 port 12, pdu1 outlet 4.
func (e *env) dc() {
	e.t.Helper()
	e.mk("dc1", "datacenter", "rack101", "rack", "switch2a", "switch", "console1", "console-server", "pdu1", "pdu")
	e.do("POST", api+"/entities", map[string]any{"name": "server1", "driver": "server", "attrs": []map[string]any{
		{"key": "ip", "value": "10.0.3.17"}, {"key": "mac", "value": "00:1A:2B:3C:4D:5E"}, {"key": "serial", "value": "SN-0042"},
	}}).want(e.t, http.StatusCreated)
	for _, c := range []map[string]any{
		{"child": "server1", "position": 13},
		{"child": "switch2a", "position": 40},
		{"child": "console1", "position": 39},
		{"child": "pdu1", "position": 1},
	} {
		e.do("POST", api+"/entities/rack101/children", c).want(e.t, http.StatusCreated)
	}
	e.do("POST", api+"/entities/dc1/children", map[string]any{"child": "rack101"}).want(e.t, http.StatusCreated)
	for _, l := range []map[string]any{
		{"a": "server1", "a_port": "eth0", "b": "switch2a", "b_port": "4"},
		{"a": "server1", "a_port": "console", "b": "console1", "b_port": "12"},
		{"a": "server1", "a_port": "psu1", "b": "pdu1", "b_port": "4"},
	} {
		e.do("POST", api+"/links", l).want(e.t, http.StatusCreated)
	}
}

// changeCount is the number of changes in the log.
func (e *env) changeCount() int64 {
	e.t.Helper()
	n, err := e.store.LatestChange(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// handEdit runs SQL on the store's file through a connection of its own,
// behind the store's back, as an operator editing the file would.
func handEdit(t testing.TB, st *store.Store, queries ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+st.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range queries {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("hand edit %s: %v", q, err)
		}
	}
}

// tagVersionOf is the entity version an ETag names (0 when it names none).
func tagVersionOf(tag string) int64 {
	v, ok := tagVersion(tag)
	if !ok {
		return 0
	}
	return v
}
