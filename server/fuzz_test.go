package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// fuzzEnv is a server over a small inventory, called in-process.
func fuzzEnv(f *testing.F) (*Server, *store.Store) {
	st, err := store.Open(context.Background(), f.TempDir()+"/fuzz.db", store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	err = st.Update(context.Background(), "fuzz", func(tx *store.Tx) error {
		for _, n := range []entity.NewEntity{{Name: "r1", Driver: "rack"}, {Name: "s1", Driver: "server"},
			{Name: "net", Driver: "ipblock", Attrs: []entity.Attr{{Key: "cidr", Value: entity.String("10.0.0.0/24")}}}} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	return New(st, Options{AllowAnonymous: true, Log: discardLog()}), st
}

// checkAnswer holds for every answer: never a 500, always JSON, and a
// refused write stores nothing.
func checkAnswer(t *testing.T, st *store.Store, before int64, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("answer is not JSON: %q", rec.Body)
	}
	if rec.Code >= 400 {
		if after, _ := st.LatestChange(context.Background()); after != before {
			t.Fatalf("a refused request (%d) changed the log from %d to %d: %s", rec.Code, before, after, rec.Body)
		}
	}
}

func fuzzBody(f *testing.F, method, path string, seeds ...string) {
	srv, st := fuzzEnv(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		before, _ := st.LatestChange(context.Background())
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Host = "127.0.0.1" // what a client on loopback sends, not httptest's example.com
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		checkAnswer(t, st, before, rec)
	})
}

func FuzzCreateEntity(f *testing.F) {
	fuzzBody(f, "POST", APIPrefix+"/entities",
		`{"name":"s2","driver":"server","attrs":[{"key":"memory_gb","value":64}]}`,
		`{"name":"b2","driver":"ipblock","attrs":[{"key":"cidr","value":"10.1.0.0/16"},{"key":"gateway","value":"10.1.0.1","type":"ip"}]}`,
		`{"name":"x","driver":"server","attrs":[{"key":"k","value":{"a":[1,2]},"type":"json"}]}`)
}

func FuzzAddAttr(f *testing.F) {
	fuzzBody(f, "POST", APIPrefix+"/entities/s1/attrs",
		`{"key":"disk","number":"next","value":"sda"}`, `{"key":"ip","subkey":"eth0","value":"10.0.0.9","type":"ip"}`,
		`{"key":"when","value":"2026-01-01T00:00:00Z","type":"time"}`, `{"key":"home","value":"r1","type":"ref"}`)
}

func FuzzInsertChild(f *testing.F) {
	fuzzBody(f, "POST", APIPrefix+"/entities/r1/children", `{"child":"s1","position":3,"height":2}`, `{"child":"s1"}`)
}

func FuzzAllocateIP(f *testing.F) {
	fuzzBody(f, "POST", APIPrefix+"/ipblocks/net/allocate", `{"entity":"s1","count":2,"interface":"eth0"}`, `{"entity":"s1","address":"10.0.0.7"}`)
}

func FuzzBatch(f *testing.F) {
	fuzzBody(f, "POST", APIPrefix+"/batch",
		`{"ops":[{"op":"create","name":"a","driver":"server"},{"op":"insert","parent":"r1","child":"a","position":4}]}`,
		`{"ops":[{"op":"attr_set","name":"s1","key":"status","values":["live"]}],"dry_run":true}`)
}

func FuzzPlan(f *testing.F) {
	fuzzBody(f, "POST", APIPrefix+"/plan",
		`{"file":"f.yaml","content":"entities:\n  r2: {driver: rack, devices: {3: s9}}\n  s9: {driver: server}\n"}`,
		`{"content":"entities:\n  s[1-3]: {driver: server, groups: [p]}\n  p: {driver: pool}\n"}`)
}

func FuzzQueryEndpoint(f *testing.F) {
	srv, st := fuzzEnv(f)
	for _, s := range []string{"driver:server", "name:/^s[0-9]+$/ or attr:memory_gb>=64", "* connected to name:r1 via contains",
		`not (driver:rack) in name:"r 1"`, "ip:10.0.0.0/24", "pool:web and role:db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		before, _ := st.LatestChange(context.Background())
		req := httptest.NewRequest("GET", APIPrefix+"/query?q="+url.QueryEscape(q), nil)
		req.Host = "127.0.0.1"
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		checkAnswer(t, st, before, rec)
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("query %q: status %d: %s", q, rec.Code, rec.Body)
		}
	})
}

func discardLog() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }
