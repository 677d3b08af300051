package server

import (
	"net/http"
	"testing"
)

// TestIfNoneMatch: every answer that shows an entity (now, as of a
// change, merged, its attributes) is answered 304 without a body when
// If-None-Match names its ETag, in any of the forms RFC 9110 allows, and
// anew once the bytes change.
func TestIfNoneMatch(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server", "s2", "server")
	e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "status", "value": "new"}).want(t, 201)
	e.do("POST", api+"/links", map[string]any{"a": "s1", "b": "s2"}).want(t, 201)
	at := e.changeCount()
	paths := []string{
		"/entities/s1",
		"/entities/s1?at=" + itoa(at),
		"/entities/s1?merged=true",
		"/entities/s1/attrs",
		"/entities/s1/attrs?key=status",
	}
	tags := map[string]string{}
	for _, p := range paths {
		r := e.do("GET", api+p, nil).want(t, http.StatusOK)
		tag := r.Header.Get("ETag")
		tags[p] = tag
		for _, inm := range []string{tag, "W/" + tag, `"1-0000000000000000", ` + tag, "*"} {
			got := e.do("GET", api+p, nil, "If-None-Match", inm)
			if got.Status != http.StatusNotModified || len(got.Body) != 0 || got.Header.Get("ETag") != tag {
				t.Errorf("GET %s with If-None-Match %s: %d, ETag %q, body %q; want 304, %s, no body", p, inm, got.Status, got.Header.Get("ETag"), got.Body, tag)
			}
		}
		if got := e.do("GET", api+p, nil, "If-None-Match", `"1-0000000000000000"`); got.Status != http.StatusOK {
			t.Errorf("GET %s with another tag: %d, want 200", p, got.Status)
		}
	}
	if tags["/entities/s1"] == tags["/entities/s1/attrs"] {
		t.Errorf("an entity and its attributes share the ETag %s though their bytes differ", tags["/entities/s1"])
	}

	// Renaming s2 changes the peer s1's links show but not s1's version:
	// the tag moves, the version it names does not.
	e.do("PATCH", api+"/entities/s2", map[string]any{"name": "s3"}).want(t, 200)
	r := e.do("GET", api+"/entities/s1", nil, "If-None-Match", tags["/entities/s1"]).want(t, http.StatusOK)
	if tagVersionOf(r.Header.Get("ETag")) != tagVersionOf(tags["/entities/s1"]) {
		t.Errorf("the peer's rename moved s1's version (%s -> %s)", tags["/entities/s1"], r.Header.Get("ETag"))
	}
	// The past does not change: its tag still holds.
	p := "/entities/s1?at=" + itoa(at)
	if got := e.do("GET", api+p, nil, "If-None-Match", tags[p]); got.Status != http.StatusNotModified {
		t.Errorf("GET %s after a later write: %d, want 304", p, got.Status)
	}
	// A write refuses If-None-Match rather than ignore it, and changes
	// nothing.
	changes := e.changeCount()
	e.do("PUT", api+"/entities/s1/attrs/status", map[string]any{"values": []any{"old"}}, "If-None-Match", "*").wantErr(t, http.StatusBadRequest, "invalid")
	if n := e.changeCount(); n != changes {
		t.Errorf("a refused write recorded changes %d-%d", changes+1, n)
	}
}
