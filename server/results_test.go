package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
)

// writeResults is what the query endpoints answer with.
func TestWriteResults(t *testing.T) {
	e := newEnv(t)
	e.mk("a", "server", "b", "server", "c", "server")
	at := e.changeCount()
	e.do("DELETE", api+"/entities/b", nil).want(t, 200)

	call := func(names []string, at int64) (*resp, entity.Results) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if err := e.srv.writeResults(rec, req, names, at, 3, false, "next-page"); err != nil {
			e.srv.writeError(rec, req, err)
		}
		r := &resp{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
		var p entity.Results
		if r.Status == http.StatusOK {
			r.decode(t, &p)
		}
		return r, p
	}
	names := func(p entity.Results) []string {
		var out []string
		for _, e := range p.Results {
			out = append(out, e.Name)
		}
		return out
	}
	// As of a change, exactly those entities, in the order given.
	r, p := call([]string{"c", "b", "a"}, at)
	r.want(t, http.StatusOK)
	if diff := cmp.Diff([]string{"c", "b", "a"}, names(p)); diff != "" || p.Total != 3 || p.NextCursor != "next-page" {
		t.Fatalf("results as of %d: %v total %d cursor %q %s", at, names(p), p.Total, p.NextCursor, diff)
	}
	// Now, one deleted since is left out.
	_, p = call([]string{"c", "b", "a"}, 0)
	if diff := cmp.Diff([]string{"c", "a"}, names(p)); diff != "" {
		t.Fatalf("results now (-want +got):\n%s", diff)
	}
	// An empty page is an empty list, not null.
	r, p = call(nil, 0)
	if p.Results == nil || string(r.Body) != `{"results":[],"total":3,"next_cursor":"next-page"}`+"\n" {
		t.Fatalf("empty page: %s", r.Body)
	}
}
