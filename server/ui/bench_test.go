package ui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
	"github.com/clusto/clusto/server"
)

// benchHandler is the real server (without tokens) over a copy of the
// benchmark inventory (invgen.Bench, 98,712 entities, built once per
// machine by invgen.Cached).
func benchHandler(b *testing.B) http.Handler {
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
	return server.New(st, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), AllowAnonymous: true})
}

// benchPage times one page of the interface, served by the handler
// itself (server time: no network), and fails on anything but 200.
func benchPage(b *testing.B, h http.Handler, path string) {
	b.Helper()
	get := func() {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
		}
	}
	get() // caches warm, statements prepared
	b.ResetTimer()
	for range b.N {
		get()
	}
}

// BenchmarkSearchPage: a search page of 100 full rows (where, groups, a
// column) on the 100k inventory. Run: go test -run '^$' -bench SearchPage
// ./server/ui (the target: under 50 ms of server time a page).
func BenchmarkSearchPage(b *testing.B) {
	h := benchHandler(b)
	for _, q := range []string{"driver:server and attr:status,allocated", "driver:server in name:" + invgen.Rack(1, 500)} {
		b.Run(q, func(b *testing.B) {
			benchPage(b, h, "/ui/?q="+url.QueryEscape(q)+"&cols=status,serial")
		})
	}
}
