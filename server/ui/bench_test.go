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

// benchStore opens a copy of the inventory of spec, as clustod serve
// opens it (its readers map the file).
func benchStore(b *testing.B, spec invgen.Spec) *store.Store {
	b.Helper()
	path, err := invgen.Cached(context.Background(), spec, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(context.Background(), path, store.Options{File: store.FileOptions{MapBytes: 4 << 30}})
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
	h := benchServer(benchStore(b, invgen.Bench))
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
	st := benchStore(b, invgen.Bench)
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

// bigSpec is the 100k inventory: 2 datacenters of 1,163 racks of
// 38 servers (100,148 entities), the same as invgen's BenchmarkBuild100k.
var bigSpec = invgen.Spec{Datacenters: 2, RacksPerDC: 1163, ServersPerRack: 38, Seed: 1}

// BenchmarkPlacePages renders the sites tree, racks, rows and blocks:
//
//	go test ./server/ui -run '^$' -bench PlacePages -benchtime 20x -count 2
//
// It renders the interface's pages of the 100k inventory
// through the whole server (gate, routes, templates) on a copy of the
// cached inventory, and reports the server time per page in ms (the time
// in ServeHTTP; the "cold" cases make a change, untimed, before each
// request, so that the sites tree is read anew rather than from its cache
// for the newest change). The target is under 50 ms a page.
func BenchmarkPlacePages(b *testing.B) {
	ctx := context.Background()
	st := benchStore(b, bigSpec)
	h := benchServer(st)
	// change makes a change (untimed) before a cold request: the sites
	// tree, cached for the newest change, is then read anew.
	change := func(i int) {
		err := st.Update(ctx, "bench", func(tx *store.Tx) error {
			_, err := tx.SetAttr(invgen.Server(0, 0, 0), entity.AttrSelector{Key: "note"}, []entity.Value{entity.Int(int64(i))})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name, path string
		before     func(int)
	}{
		{"sites", "/ui/sites", nil},
		{"sites-cold", "/ui/sites", change},
		{"sites-open-row", "/ui/sites?open=" + invgen.Row(1, 500), nil},
		{"sites-open-row-cold", "/ui/sites?open=" + invgen.Row(1, 500), change},
		{"sites-fragment-room", "/ui/sites?open=" + invgen.Room(0) + "&fragment=1", nil},
		{"rack", "/ui/rack?name=" + invgen.Rack(1, 700), nil},
		{"row", "/ui/row?name=" + invgen.Row(0, 0), nil},
		{"block", "/ui/block?name=" + invgen.Block(0, 3), nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				if bc.before != nil {
					bc.before(i)
				}
				req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+bc.path, nil)
				req.RemoteAddr = "127.0.0.1:1234"
				w := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(w, req)
				total += time.Since(start)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", bc.path, w.Code, w.Body.String())
				}
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}
