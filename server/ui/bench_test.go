package ui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/server"
)

// bigSpec is the 100k inventory: 2 datacenters of 1,163 racks of
// 38 servers (100,148 entities), the same as invgen's BenchmarkBuild100k.
var bigSpec = invgen.Spec{Datacenters: 2, RacksPerDC: 1163, ServersPerRack: 38, Seed: 1}

// BenchmarkPages renders the interface's pages of the 100k inventory
// through the whole server (gate, routes, templates) on a copy of the
// cached inventory, and reports the server time per page in ms (the time
// in ServeHTTP; the "cold" cases make a change, untimed, before each
// request, so that the sites tree is read anew rather than from its cache
// for the newest change). The target is under 50 ms a page.
func BenchmarkPages(b *testing.B) {
	ctx := context.Background()
	path, err := invgen.Cached(ctx, bigSpec, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h := server.New(st, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowAnonymous: true})
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
