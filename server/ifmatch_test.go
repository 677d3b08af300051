package server

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Every write on an entity's own endpoints honours If-Match: a stale
// version gets 412 and changes nothing; the current one goes through.
func TestIfMatch(t *testing.T) {
	writes := []struct {
		name, method, path string
		body               any
		ok                 int
	}{
		{"rename", "PATCH", "/entities/s1", map[string]any{"name": "s9"}, 200},
		{"delete", "DELETE", "/entities/s1?cascade=true", nil, 200},
		{"add attr", "POST", "/entities/s1/attrs", map[string]any{"key": "k", "value": 1}, 201},
		{"set attr", "PUT", "/entities/s1/attrs/status", map[string]any{"values": []any{"x"}}, 200},
		{"del attr", "DELETE", "/entities/s1/attrs/status", nil, 200},
		{"insert child", "POST", "/entities/s1/children", map[string]any{"child": "vm1"}, 201},
		{"remove child", "DELETE", "/entities/s1/children/vm0", nil, 200},
	}
	for i, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.do("POST", api+"/entities", map[string]any{"name": "s1", "driver": "server", "attrs": []map[string]any{{"key": "status", "value": "new"}}}).want(t, 201)
			e.mk("vm0", "vm", "vm1", "vm")
			e.do("POST", api+"/entities/s1/children", map[string]any{"child": "vm0"}).want(t, 201)
			before := e.get("s1") // version 2
			changes := e.changeCount()

			got := e.do(w.method, api+w.path, w.body, "If-Match", `"1"`).wantErr(t, http.StatusPreconditionFailed, "precondition_failed")
			if got.Details["version"] != float64(2) {
				t.Errorf("details %v, want the current version 2", got.Details)
			}
			if diff := cmp.Diff(before, e.get("s1")); diff != "" {
				t.Fatalf("entity changed by a refused write (-before +after):\n%s", diff)
			}
			if n := e.changeCount(); n != changes {
				t.Fatalf("refused write recorded changes: %d -> %d", changes, n)
			}
			for _, bad := range []string{`W/"2"`, `"2", "3"`, `"two"`, `"0"`, `"02"`, `"2-"`, `"2-abc"`, `"2-0123456789ABCDEF"`, `"2-0123456789abcdefg"`} {
				e.do(w.method, api+w.path, w.body, "If-Match", bad).wantErr(t, 400, "invalid")
			}
			// If-Match compares the version an ETag names: the one a read
			// sent, the version alone, or a digest of the current version
			// other than today's (a neighbour renamed since) all match, for
			// the write is about this entity.
			tag := e.do("GET", api+"/entities/s1", nil).want(t, 200).Header.Get("ETag")
			switch i % 3 {
			case 1:
				tag = `"2"`
			case 2:
				tag = `"2-0123456789abcdef"`
			}
			r := e.do(w.method, api+w.path, w.body, "If-Match", tag).want(t, w.ok)
			if r.Header.Get("X-Clusto-Change") != itoa(changes+1) {
				t.Fatalf("X-Clusto-Change %q, want %d", r.Header.Get("X-Clusto-Change"), changes+1)
			}
		})
	}
}

func TestIfMatchChain(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server")
	// Scripts chain writes with the ETag each answer carries; * matches any version.
	tag := e.do("GET", api+"/entities/s1", nil).want(t, 200).Header.Get("ETag")
	for i := range 3 {
		r := e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "n", "value": i}, "If-Match", tag).want(t, 201)
		tag = r.Header.Get("ETag")
	}
	if tagVersionOf(tag) != 4 {
		t.Fatalf("ETag after three writes %s", tag)
	}
	e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "n", "value": 9}, "If-Match", "*").want(t, 201)
	e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "n", "value": 10}, "If-Match", "5").want(t, 201)
}
