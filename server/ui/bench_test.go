package ui_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/server"
)

// The page benchmarks draw pages of the interface on the benchmark
// inventory (invgen.Bench: 98,712 entities, a copy of invgen.Cached's), in
// process: the server's whole handler (gate, viewer check, reads,
// template) into a recorder, so the figure is server time without the
// network. They report ms per page; the target is under 50.

// benchStore opens a copy of the benchmark inventory.
func benchStore(b *testing.B) *store.Store {
	b.Helper()
	path, err := invgen.Cached(context.Background(), invgen.Bench, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// benchServer is the real server over st, without tokens.
func benchServer(st *store.Store) http.Handler {
	return server.New(st, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowAnonymous: true})
}

// benchPage times one page, failing on anything but 200.
func benchPage(b *testing.B, h http.Handler, path string) {
	b.Helper()
	get := func() {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8642"+path, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
		}
	}
	get() // caches warm, statements prepared
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		get()
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/page")
}

// BenchmarkSearchPage: a search page of 100 full rows (where, groups, two
// columns), and one rack's servers.
//
//	go test ./server/ui -run '^$' -bench SearchPage -benchtime 20x
func BenchmarkSearchPage(b *testing.B) {
	h := benchServer(benchStore(b))
	for _, q := range []string{"driver:server and attr:status,allocated", "driver:server in name:" + invgen.Rack(1, 500)} {
		b.Run(q, func(b *testing.B) {
			benchPage(b, h, "/ui/?q="+url.QueryEscape(q)+"&cols=status,serial")
		})
	}
}

// BenchmarkPages: the entity page (of a server given a history of 60 more
// changes first, so that its timeline is full), as of a past change, a
// rack's entity page and the change log, filtered and not.
//
//	go test ./server/ui -run '^$' -bench Pages -benchtime 200x
func BenchmarkPages(b *testing.B) {
	ctx := context.Background()
	st := benchStore(b)
	name := invgen.Server(1, 517, 20)
	for i := range 60 {
		if err := st.Update(ctx, "bench", func(tx *store.Tx) error {
			_, err := tx.SetAttr(name, entity.AttrSelector{Key: "note"}, []entity.Value{entity.String(fmt.Sprintf("note %d", i))})
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	latest, err := st.LatestChange(ctx)
	if err != nil {
		b.Fatal(err)
	}
	srv := benchServer(st)
	for _, p := range []struct{ name, path string }{
		{"entity", "/ui/entity?name=" + url.QueryEscape(name)},
		{"entity-as-of", fmt.Sprintf("/ui/entity?name=%s&at=%d", url.QueryEscape(name), latest-30)},
		{"rack-entity", "/ui/entity?name=" + url.QueryEscape(invgen.Rack(1, 517))},
		{"changes", "/ui/changes"},
		{"changes-by-entity", "/ui/changes?entity=" + url.QueryEscape(name)},
		{"changes-by-op", "/ui/changes?op=attr_set"},
		{"changes-by-actor", "/ui/changes?actor=bench"},
		// A filter that matches nothing (without the indexes of
		// migration 0008 it read the whole log: 94 ms).
		{"changes-by-absent-actor", "/ui/changes?actor=nobody"},
		{"changes-by-entity-and-op", "/ui/changes?op=insert&entity=" + url.QueryEscape(name)},
		{"changes-by-entity-and-absent-op", "/ui/changes?op=rename&entity=" + url.QueryEscape(name)},
	} {
		b.Run(p.name, func(b *testing.B) { benchPage(b, srv, p.path) })
	}
}
