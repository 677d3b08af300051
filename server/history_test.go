package server

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
)

func TestChangesPaging(t *testing.T) {
	e := newEnv(t)
	e.mk("a", "server", "b", "server", "c", "server", "d", "server", "e", "server")
	var p entity.Changes
	e.do("GET", api+"/changes?limit=2", nil).want(t, http.StatusOK).decode(t, &p)
	if len(p.Changes) != 2 || p.Changes[0].Number != 1 || p.Next != 2 {
		t.Fatalf("first page: %+v", p)
	}
	var seen []string
	since := int64(0)
	for range 10 {
		e.do("GET", api+"/changes?limit=2&since="+itoa(since), nil).want(t, http.StatusOK).decode(t, &p)
		for _, c := range p.Changes {
			seen = append(seen, c.Entity)
		}
		if len(p.Changes) == 0 {
			break
		}
		since = p.Next
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "e"}, seen); diff != "" {
		t.Fatalf("paged through (-want +got):\n%s", diff)
	}
	// An empty page hands back since, so a poller can keep sending it.
	if p.Next != 5 || p.Changes == nil {
		t.Fatalf("empty page: %+v (changes must be [], next 5)", p)
	}
	want := entity.Change{Number: 1, Time: changeTime(t, e, 1), Actor: "anonymous", Op: "create", Entity: "a",
		Before: json.RawMessage("null"), After: json.RawMessage(`{"attrs":[],"driver":"server","kind":"equipment","name":"a"}`)}
	var first entity.Changes
	e.do("GET", api+"/changes?limit=1", nil).want(t, 200).decode(t, &first)
	if diff := cmp.Diff(want, first.Changes[0]); diff != "" {
		t.Fatalf("change record (-want +got):\n%s", diff)
	}
	raw := e.do("GET", api+"/changes?limit=1", nil).obj(t)["changes"].([]any)[0].(map[string]any)
	for _, k := range []string{"change", "time", "actor", "op", "entity", "before", "after"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("change record lacks %q: %v", k, raw)
		}
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "since=-1", "since=x", "page=2"} {
		e.do("GET", api+"/changes?"+q, nil).wantErr(t, 400, "invalid")
	}
}

// changeTime reads the time of change n from the store, the reference the
// API must agree with.
func changeTime(t *testing.T, e *env, n int64) time.Time {
	t.Helper()
	cs, err := e.store.Changes(t.Context(), n-1, 1)
	if err != nil || len(cs) != 1 {
		t.Fatalf("store changes: %v %v", cs, err)
	}
	return cs[0].Time
}

func TestEntityHistory(t *testing.T) {
	e := newEnv(t)
	e.dc()
	var p entity.Changes
	e.do("GET", api+"/entities/switch2a/history", nil).want(t, http.StatusOK).decode(t, &p)
	var ops []string
	for _, c := range p.Changes {
		ops = append(ops, c.Op+":"+c.Entity+"/"+c.Peer)
	}
	// Its own changes and those where it is the other side.
	want := []string{"create:switch2a/", "insert:switch2a/rack101", "link:server1/switch2a"}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Fatalf("history (-want +got):\n%s", diff)
	}
	e.do("GET", api+"/entities/switch2a/history?since="+itoa(p.Changes[1].Number), nil).want(t, 200).decode(t, &p)
	if len(p.Changes) != 1 {
		t.Fatalf("since: %+v", p.Changes)
	}
	e.do("GET", api+"/entities/switch2a/history?limit=1", nil).want(t, 200).decode(t, &p)
	if len(p.Changes) != 1 || p.Next != p.Changes[0].Number {
		t.Fatalf("limit: %+v", p)
	}
	// A deleted entity's history is still there, by its last name.
	e.do("DELETE", api+"/entities/switch2a?cascade=true", nil).want(t, 200)
	e.do("GET", api+"/entities/switch2a/history", nil).want(t, 200).decode(t, &p)
	if last := p.Changes[len(p.Changes)-1]; last.Op != "delete" {
		t.Fatalf("last change %+v", last)
	}
	e.do("GET", api+"/entities/never/history", nil).wantErr(t, 404, "not_found")
	e.do("GET", api+"/entities/switch2a/history?limit=5000", nil).wantErr(t, 400, "invalid")
}

func TestReadAsOfChange(t *testing.T) {
	e := newEnv(t)
	e.mk("r1", "rack")
	e.do("POST", api+"/entities", map[string]any{"name": "s1", "driver": "server", "attrs": []map[string]any{{"key": "status", "value": "new"}}}).want(t, 201)
	at := e.changeCount()
	then := e.get("s1")

	// Later edits of every kind.
	e.do("PUT", api+"/entities/s1/attrs/status", map[string]any{"values": []any{"live"}}).want(t, 200)
	e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "owner", "value": "ops"}).want(t, 201)
	e.do("POST", api+"/entities/r1/children", map[string]any{"child": "s1", "position": 3}).want(t, 201)
	e.do("PATCH", api+"/entities/s1", map[string]any{"name": "s1-renamed"}).want(t, 200)

	r := e.do("GET", api+"/entities/s1?at="+itoa(at), nil).want(t, http.StatusOK)
	if diff := cmp.Diff(then, r.entity(t)); diff != "" {
		t.Fatalf("s1 as of change %d (-then +read):\n%s", at, diff)
	}
	if tagVersionOf(r.Header.Get("ETag")) != 1 {
		t.Fatalf("ETag of the old version %q", r.Header.Get("ETag"))
	}
	var attrs attrsBody
	e.do("GET", api+"/entities/s1/attrs?at="+itoa(at), nil).want(t, 200).decode(t, &attrs)
	if diff := cmp.Diff(then.Attrs, attrs.Attrs); diff != "" {
		t.Fatalf("attrs as of change %d (-then +read):\n%s", at, diff)
	}
	// Now, it is known only by its new name.
	e.do("GET", api+"/entities/s1", nil).wantErr(t, 404, "not_found")
	now := e.get("s1-renamed")
	if now.Version != 5 || len(now.Attrs) != 2 || len(now.Parents) != 1 {
		t.Fatalf("now: %+v", now)
	}
	// Before it existed it was not there.
	e.do("GET", api+"/entities/s1?at=1", nil).wantErr(t, 404, "not_found")
	e.do("GET", api+"/entities/s1?at="+itoa(e.changeCount()+1), nil).wantErr(t, 400, "invalid")
}
