package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/clusto/clusto/entity"
)

var ignoreTimes = cmpopts.IgnoreFields(entity.Entity{}, "CreatedAt", "UpdatedAt")

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	e.mk("dc1", "datacenter")
	got := e.do("GET", "/healthz", nil).want(t, http.StatusOK).obj(t)
	if diff := cmp.Diff(map[string]any{"status": "ok", "change": float64(1)}, got); diff != "" {
		t.Fatalf("healthz (-want +got):\n%s", diff)
	}
}

func TestCreateAndGetEntity(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", api+"/entities", `{"name":"server1","driver":"server","attrs":[
		{"key":"memory_gb","value":64},
		{"key":"ip","value":"10.0.3.17"},
		{"key":"virtual","value":false},
		{"key":"disk","subkey":"size","number":0,"value":"2TB"},
		{"key":"rack_row","value":"7","type":"int"}]}`).want(t, http.StatusCreated)
	if got := r.Header.Get("Location"); got != "/api/v1/entities/server1" {
		t.Errorf("Location %q", got)
	}
	if got := r.Header.Get("ETag"); tagVersionOf(got) != 1 {
		t.Errorf("ETag %q, want one of version 1", got)
	}
	if r.Header.Get("X-Clusto-Change") != "1" {
		t.Errorf("X-Clusto-Change %q, want 1", r.Header.Get("X-Clusto-Change"))
	}
	want := &entity.Entity{Name: "server1", Driver: "server", Kind: "equipment", Version: 1,
		Attrs: []entity.Attr{
			{Key: "disk", Subkey: "size", Number: entity.N(0), Value: entity.String("2TB")},
			{Key: "ip", Value: entity.Value{Type: entity.TypeIP, Text: "10.0.3.17"}},
			{Key: "memory_gb", Value: entity.Int(64)},
			{Key: "rack_row", Value: entity.Int(7)},
			{Key: "virtual", Value: entity.Bool(false)},
		},
		Parents: []entity.Relation{}, Children: []entity.Relation{}, Links: []entity.Link{}}
	if diff := cmp.Diff(want, r.entity(t), ignoreTimes); diff != "" {
		t.Fatalf("created entity (-want +got):\n%s", diff)
	}
	g := e.do("GET", api+"/entities/server1", nil).want(t, http.StatusOK)
	if diff := cmp.Diff(want, g.entity(t), ignoreTimes); diff != "" {
		t.Fatalf("read entity (-want +got):\n%s", diff)
	}
	if tagVersionOf(g.Header.Get("ETag")) != 1 {
		t.Errorf("GET ETag %q", g.Header.Get("ETag"))
	}
	// Numbers and booleans keep their JSON type on the way out.
	body := string(g.Body)
	for _, frag := range []string{`"value":64,"type":"int"`, `"value":false,"type":"bool"`, `"value":"10.0.3.17","type":"ip"`} {
		if !strings.Contains(body, frag) {
			t.Errorf("body lacks %s: %s", frag, body)
		}
	}
	if ent := g.entity(t); !ent.CreatedAt.Equal(time.Date(2026, 11, 22, 10, 0, 1, 0, time.UTC)) {
		t.Errorf("created_at %v", ent.CreatedAt)
	}
}

func TestCreateEntityRefusals(t *testing.T) {
	e := newEnv(t)
	e.mk("dup", "server")
	before := e.changeCount()
	big := strings.Repeat("x", entity.MaxNameLen+1)
	tests := []struct {
		name, body string
		hdr        []string
		status     int
		code, msg  string
	}{
		{"empty body", ``, nil, 400, "invalid", "request body is empty"},
		{"not json", `{"name":`, nil, 400, "invalid", "ends in the middle"},
		{"syntax", `{"name" "x"}`, nil, 400, "invalid", "not valid JSON at byte"},
		{"array", `[]`, nil, 400, "invalid", "must be a JSON object, not a JSON array"},
		{"two values", `{"name":"a","driver":"server"} {}`, nil, 400, "invalid", "more than one JSON value"},
		{"unknown field", `{"name":"a","driver":"server","colour":"red"}`, nil, 400, "invalid", `unknown field "colour"`},
		{"unknown attr field", `{"name":"a","driver":"server","attrs":[{"key":"k","value":1,"colour":"red"}]}`, nil, 400, "invalid", `unknown field "colour"`},
		{"wrong field type", `{"name":1,"driver":"server"}`, nil, 400, "invalid", `field "name" must be a JSON string, not a JSON number`},
		{"no name", `{"driver":"server"}`, nil, 400, "invalid", "name is empty"},
		{"name with space", `{"name":"a b","driver":"server"}`, nil, 400, "invalid", "whitespace"},
		{"name too long", `{"name":"` + big + `","driver":"server"}`, nil, 400, "invalid", "the limit is 255"},
		{"no driver", `{"name":"a"}`, nil, 400, "invalid", "driver is required"},
		{"unknown driver", `{"name":"a","driver":"toaster"}`, nil, 400, "invalid", `unknown driver "toaster"`},
		{"bad key", `{"name":"a","driver":"server","attrs":[{"key":"9lives","value":1}]}`, nil, 400, "invalid", "attrs[0]: key"},
		{"missing value", `{"name":"a","driver":"server","attrs":[{"key":"k"}]}`, nil, 400, "invalid", "value is missing"},
		{"bad typed value", `{"name":"a","driver":"server","attrs":[{"key":"k","value":"x","type":"int"}]}`, nil, 400, "invalid", "not an integer"},
		{"declared type", `{"name":"a","driver":"server","attrs":[{"key":"ip","value":"not-an-ip"}]}`, nil, 400, "invalid", "must be ip"},
		{"negative number", `{"name":"a","driver":"server","attrs":[{"key":"k","number":-1,"value":1}]}`, nil, 400, "invalid", "number must be"},
		{"next on create", `{"name":"a","driver":"server","attrs":[{"key":"k","number":"next","value":1}]}`, nil, 400, "invalid", "number must be"},
		{"if-match", `{"name":"a","driver":"server"}`, []string{"If-Match", `"1"`}, 400, "invalid", "If-Match is not supported"},
		{"duplicate", `{"name":"dup","driver":"rack"}`, nil, 409, "conflict", `"dup" already exists`},
		{"duplicate attribute", `{"name":"a","driver":"server","attrs":[{"key":"k","value":1},{"key":"k","value":1}]}`, nil, 409, "conflict", "given twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := e.do("POST", api+"/entities", tc.body, tc.hdr...).wantErr(t, tc.status, tc.code)
			if !strings.Contains(got.Message, tc.msg) {
				t.Errorf("message %q does not mention %q", got.Message, tc.msg)
			}
		})
	}
	if after := e.changeCount(); after != before {
		t.Fatalf("refused creates wrote changes: %d -> %d", before, after)
	}
}

func TestGetEntityRefusals(t *testing.T) {
	e := newEnv(t)
	e.mk("server1", "server")
	tests := []struct {
		path, code string
		status     int
		msg        string
	}{
		{"/entities/nobody", "not_found", 404, `no entity named "nobody"`},
		{"/entities/a%20b", "invalid", 400, "name in the path"},
		{"/entities/server1?merged=perhaps", "invalid", 400, "merged"},
		{"/entities/server1?at=0", "invalid", 400, "change number"},
		{"/entities/server1?at=x", "invalid", 400, "change number"},
		{"/entities/server1?at=99", "invalid", 400, "has not happened yet"},
		{"/entities/server1?at=1&at=1", "invalid", 400, "given 2 times"},
		{"/entities/server1?cascade=true", "invalid", 400, `unknown query parameter "cascade"`},
		{"/nothing-here", "not_found", 404, "no endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got := e.do("GET", api+tc.path, nil).wantErr(t, tc.status, tc.code)
			if !strings.Contains(got.Message, tc.msg) {
				t.Errorf("message %q does not mention %q", got.Message, tc.msg)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	r := e.do("PUT", api+"/entities/server1", `{}`)
	got := r.wantErr(t, http.StatusMethodNotAllowed, "invalid")
	if allow := r.Header.Get("Allow"); allow != "DELETE, GET, PATCH" {
		t.Errorf("Allow %q, want DELETE, GET, PATCH", allow)
	}
	if !strings.Contains(got.Message, "allowed: DELETE, GET, PATCH") {
		t.Errorf("message %q", got.Message)
	}
}

func TestNamesWithSlashes(t *testing.T) {
	e := newEnv(t)
	e.mk("ge-0/0/1", "server")
	got := e.do("GET", api+"/entities/ge-0%2F0%2F1", nil).want(t, http.StatusOK).entity(t)
	if got.Name != "ge-0/0/1" {
		t.Fatalf("name %q", got.Name)
	}
	r := e.do("PATCH", api+"/entities/ge-0%2F0%2F1", map[string]any{"name": "a/b"}).want(t, http.StatusOK)
	if loc := r.Header.Get("Location"); loc != "/api/v1/entities/a%2Fb" {
		t.Fatalf("Location %q", loc)
	}
}

func TestRename(t *testing.T) {
	e := newEnv(t)
	e.mk("old", "server", "taken", "server")
	r := e.do("PATCH", api+"/entities/old", map[string]any{"name": "new"}).want(t, http.StatusOK)
	if got := r.entity(t); got.Name != "new" || got.Version != 2 {
		t.Fatalf("renamed entity: %+v", got)
	}
	if tagVersionOf(r.Header.Get("ETag")) != 2 || r.Header.Get("Location") != "/api/v1/entities/new" {
		t.Fatalf("headers: %v", r.Header)
	}
	e.do("GET", api+"/entities/old", nil).wantErr(t, 404, "not_found")
	e.do("PATCH", api+"/entities/new", map[string]any{"name": "taken"}).wantErr(t, 409, "conflict")
	e.do("PATCH", api+"/entities/new", map[string]any{}).wantErr(t, 400, "invalid")
	e.do("PATCH", api+"/entities/new", map[string]any{"name": "x y"}).wantErr(t, 400, "invalid")
	e.do("PATCH", api+"/entities/new", map[string]any{"name": "z", "driver": "rack"}).wantErr(t, 400, "invalid")
	e.do("PATCH", api+"/entities/ghost", map[string]any{"name": "z"}).wantErr(t, 404, "not_found")
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	e.dc()
	// rack101 still holds things.
	got := e.do("DELETE", api+"/entities/rack101", nil).wantErr(t, 409, "conflict")
	if got.Details["children"] != float64(4) {
		t.Errorf("details %v, want 4 children", got.Details)
	}
	e.do("DELETE", api+"/entities/rack101?cascade=maybe", nil).wantErr(t, 400, "invalid")
	e.do("DELETE", api+"/entities/rack101?cascde=true", nil).wantErr(t, 400, "invalid")
	e.get("rack101")
	r := e.do("DELETE", api+"/entities/rack101?cascade=true", nil).want(t, http.StatusOK).obj(t)
	if diff := cmp.Diff(map[string]any{"deleted": "rack101", "change": float64(e.changeCount())}, r); diff != "" {
		t.Fatalf("delete answer (-want +got):\n%s", diff)
	}
	e.do("GET", api+"/entities/rack101", nil).wantErr(t, 404, "not_found")
	if got := e.get("server1"); len(got.Parents) != 0 {
		t.Fatalf("server1 still has parents: %+v", got.Parents)
	}
	e.do("DELETE", api+"/entities/rack101", nil).wantErr(t, 404, "not_found")
	// Without children it goes without cascade.
	e.mk("lonely", "server")
	e.do("DELETE", api+"/entities/lonely", nil).want(t, http.StatusOK)
}

func TestLookup(t *testing.T) {
	e := newEnv(t)
	e.dc()
	e.do("POST", api+"/entities", map[string]any{"name": "twin-a", "driver": "server", "attrs": []map[string]any{{"key": "serial", "value": "DUP1"}}}).want(t, 201)
	e.do("POST", api+"/entities", map[string]any{"name": "twin-b", "driver": "server", "attrs": []map[string]any{{"key": "serial", "value": "DUP1"}}}).want(t, 201)
	e.do("POST", api+"/entities", map[string]any{"name": "v6", "driver": "server", "attrs": []map[string]any{{"key": "ip", "value": "2001:db8::1"}}}).want(t, 201)
	for _, tc := range []struct{ term, want, by string }{
		{"server1", "server1", "name"},
		{"10.0.3.17", "server1", "ip"},
		{"::ffff:10.0.3.17", "server1", "ip"},
		{"2001:0db8:0:0::1", "v6", "ip"},
		{"00:1a:2b:3c:4d:5e", "server1", "mac"},
		{"00-1A-2B-3C-4D-5E", "server1", "mac"},
		{"001a.2b3c.4d5e", "server1", "mac"},
		{"001A2B3C4D5E", "server1", "mac"},
		{"SN-0042", "server1", "serial"},
		{"sn-0042", "server1", "serial"},
		{" SN-0042 ", "server1", "serial"},
	} {
		t.Run(tc.term, func(t *testing.T) {
			r := e.do("GET", api+"/lookup?term="+urlQuery(tc.term), nil).want(t, http.StatusOK)
			if got := r.entity(t); got.Name != tc.want {
				t.Fatalf("found %s, want %s", got.Name, tc.want)
			}
			if r.Header.Get("X-Clusto-Matched-By") != tc.by {
				t.Fatalf("matched by %q, want %q", r.Header.Get("X-Clusto-Matched-By"), tc.by)
			}
			if r.Header.Get("ETag") == "" {
				t.Fatal("no ETag")
			}
		})
	}
	got := e.do("GET", api+"/lookup?term=nothing-like-it", nil).wantErr(t, 404, "not_found")
	if !strings.Contains(got.Message, "nothing matches") {
		t.Errorf("message %q", got.Message)
	}
	amb := e.do("GET", api+"/lookup?term=DUP1", nil).wantErr(t, 409, "conflict")
	want := []any{
		map[string]any{"name": "twin-a", "driver": "server", "matched_by": "serial", "key": "serial", "value": "DUP1"},
		map[string]any{"name": "twin-b", "driver": "server", "matched_by": "serial", "key": "serial", "value": "DUP1"},
	}
	if diff := cmp.Diff(want, amb.Details["candidates"]); diff != "" {
		t.Fatalf("candidates (-want +got):\n%s", diff)
	}
	e.do("GET", api+"/lookup", nil).wantErr(t, 400, "invalid")
	e.do("GET", api+"/lookup?term=", nil).wantErr(t, 400, "invalid")
	e.do("GET", api+"/lookup?term="+strings.Repeat("x", 2000), nil).wantErr(t, 400, "invalid")
}

func urlQuery(s string) string {
	return strings.NewReplacer(" ", "%20", ":", "%3A").Replace(s)
}

func TestMergedView(t *testing.T) {
	e := newEnv(t)
	e.dc()
	e.mk("web", "pool")
	e.do("POST", api+"/entities/web/children", map[string]any{"child": "server1"}).want(t, 201)
	for _, a := range []struct{ ent, key, val string }{
		{"rack101", "status", "live"}, {"dc1", "region", "eu-west"}, {"web", "owner", "web-team"},
	} {
		e.do("POST", api+"/entities/"+a.ent+"/attrs", map[string]any{"key": a.key, "value": a.val}).want(t, 201)
	}
	got := e.do("GET", api+"/entities/server1?merged=true", nil).want(t, http.StatusOK).entity(t)
	var from []string
	for _, a := range got.Attrs {
		from = append(from, a.From+":"+a.Key)
	}
	want := []string{"server1:ip", "server1:mac", "server1:serial", "rack101:status", "web:owner", "dc1:region"}
	if diff := cmp.Diff(want, from); diff != "" {
		t.Fatalf("merged attrs, nearest first (-want +got):\n%s", diff)
	}
	// Without merged, only its own.
	if n := len(e.get("server1").Attrs); n != 3 {
		t.Fatalf("own attrs: %d, want 3", n)
	}
	// As of a change before the pool attribute, the merged view lacks it.
	at := e.changeCount() - 1
	old := e.do("GET", api+"/entities/server1?merged=true&at="+itoa(at), nil).want(t, 200).entity(t)
	if n := len(old.Attrs); n != 5 {
		t.Fatalf("merged attrs at %d: %d, want 5: %+v", at, n, old.Attrs)
	}
}

func TestBodyTypeErrors(t *testing.T) {
	e := newEnv(t)
	e.mk("rack1", "rack", "s1", "server")
	got := e.do("POST", api+"/entities/rack1/children", `{"child":"s1","position":13.5}`).wantErr(t, 400, "invalid")
	if got.Message != `field "position" must be a whole number, not a JSON number 13.5` {
		t.Fatalf("message %q", got.Message)
	}
	got = e.do("PUT", api+"/entities/s1/attrs/k", `{"values":"x"}`).wantErr(t, 400, "invalid")
	if got.Message != `field "values" must be a JSON array, not a JSON string` {
		t.Fatalf("message %q", got.Message)
	}
}
