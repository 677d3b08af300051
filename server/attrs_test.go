package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
)

type attrsBody struct {
	Entity  string        `json:"entity"`
	Version int64         `json:"version"`
	Attrs   []entity.Attr `json:"attrs"`
	Added   *entity.Attr  `json:"added"`
	Removed []entity.Attr `json:"removed"`
}

func TestAttributes(t *testing.T) {
	e := newEnv(t)
	e.do("POST", api+"/entities", map[string]any{"name": "s1", "driver": "server", "attrs": []map[string]any{
		{"key": "role", "value": "web"}, {"key": "role", "subkey": "tier", "value": "front"}, {"key": "cpus", "value": 8},
	}}).want(t, 201)

	var all attrsBody
	e.do("GET", api+"/entities/s1/attrs", nil).want(t, 200).decode(t, &all)
	if all.Entity != "s1" || all.Version != 1 || len(all.Attrs) != 3 {
		t.Fatalf("all attrs: %+v", all)
	}
	var roles attrsBody
	e.do("GET", api+"/entities/s1/attrs?key=role", nil).want(t, 200).decode(t, &roles)
	if diff := cmp.Diff([]entity.Attr{
		{Key: "role", Value: entity.String("web")},
		{Key: "role", Subkey: "tier", Value: entity.String("front")},
	}, roles.Attrs); diff != "" {
		t.Fatalf("?key=role (-want +got):\n%s", diff)
	}
	var tier attrsBody
	e.do("GET", api+"/entities/s1/attrs?key=role&subkey=tier", nil).want(t, 200).decode(t, &tier)
	if len(tier.Attrs) != 1 || tier.Attrs[0].Value.Text != "front" {
		t.Fatalf("?key=role&subkey=tier: %+v", tier.Attrs)
	}
	var none attrsBody
	e.do("GET", api+"/entities/s1/attrs?key=absent", nil).want(t, 200).decode(t, &none)
	if none.Attrs == nil || len(none.Attrs) != 0 {
		t.Fatalf("absent key: want an empty list, got %s", e.do("GET", api+"/entities/s1/attrs?key=absent", nil).Body)
	}

	// Add keeps JSON types; "next" numbers 0, 1, ...
	var added attrsBody
	r := e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "disk", "number": "next", "value": 512}).want(t, 201)
	r.decode(t, &added)
	if diff := cmp.Diff(&entity.Attr{Key: "disk", Number: entity.N(0), Value: entity.Int(512)}, added.Added); diff != "" {
		t.Fatalf("added (-want +got):\n%s", diff)
	}
	if tagVersionOf(r.Header.Get("ETag")) != 2 || added.Version != 2 {
		t.Fatalf("version after add: %d, ETag %s", added.Version, r.Header.Get("ETag"))
	}
	e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "disk", "number": "next", "value": 1024}).want(t, 201).decode(t, &added)
	if *added.Added.Number != 1 {
		t.Fatalf("second next number: %d", *added.Added.Number)
	}
	e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "managed", "value": true}).want(t, 201).decode(t, &added)
	if added.Added.Value != entity.Bool(true) {
		t.Fatalf("bool value: %+v", added.Added.Value)
	}
	// Adding what is there is a conflict.
	e.do("POST", api+"/entities/s1/attrs", map[string]any{"key": "role", "value": "web"}).wantErr(t, 409, "conflict")

	// PUT replaces every value of the key (all subkeys unless one is given).
	var set attrsBody
	e.do("PUT", api+"/entities/s1/attrs/role", map[string]any{"values": []any{"db", "cache"}}).want(t, 200).decode(t, &set)
	var gotRoles []string
	for _, a := range set.Attrs {
		if a.Key == "role" {
			gotRoles = append(gotRoles, a.Subkey+"="+a.Value.Text)
		}
	}
	if diff := cmp.Diff([]string{"=db", "=cache"}, gotRoles); diff != "" {
		t.Fatalf("after PUT (-want +got):\n%s", diff)
	}
	e.do("PUT", api+"/entities/s1/attrs/cpus", map[string]any{"values": []any{"16"}, "type": "int"}).want(t, 200).decode(t, &set)
	for _, a := range set.Attrs {
		if a.Key == "cpus" && a.Value != entity.Int(16) {
			t.Fatalf("cpus: %+v", a.Value)
		}
	}

	// DELETE one value, then the key.
	var del attrsBody
	e.do("DELETE", api+"/entities/s1/attrs/role?value=db", nil).want(t, 200).decode(t, &del)
	if len(del.Removed) != 1 || del.Removed[0].Value.Text != "db" {
		t.Fatalf("removed: %+v", del.Removed)
	}
	e.do("DELETE", api+"/entities/s1/attrs/disk?number=1", nil).want(t, 200).decode(t, &del)
	if len(del.Removed) != 1 || del.Removed[0].Value != entity.Int(1024) {
		t.Fatalf("removed by number: %+v", del.Removed)
	}
	e.do("DELETE", api+"/entities/s1/attrs/role", nil).want(t, 200)
	e.do("DELETE", api+"/entities/s1/attrs/role", nil).wantErr(t, 404, "not_found")

	history := e.do("GET", api+"/entities/s1/history", nil).want(t, 200)
	var h entity.Changes
	history.decode(t, &h)
	var ops []string
	for _, c := range h.Changes {
		ops = append(ops, c.Op)
	}
	want := []string{"create", "attr_add", "attr_add", "attr_add", "attr_set", "attr_set", "attr_del", "attr_del", "attr_del"}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Fatalf("history ops (-want +got):\n%s", diff)
	}
}

func TestAttributeRefusals(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server")
	before := e.changeCount()
	tests := []struct {
		method, path string
		body         any
		status       int
		code, msg    string
	}{
		{"GET", "/entities/s1/attrs?subkey=x", nil, 400, "invalid", "subkey needs a key"},
		{"GET", "/entities/s1/attrs?key=a.b", nil, 400, "invalid", "key"},
		{"GET", "/entities/s1/attrs?key=ok&subkey=b%20c", nil, 400, "invalid", "subkey"},
		{"GET", "/entities/s1/attrs?colour=red", nil, 400, "invalid", "unknown query parameter"},
		{"GET", "/entities/ghost/attrs", nil, 404, "not_found", "ghost"},
		{"POST", "/entities/s1/attrs", `{"key":"k"}`, 400, "invalid", "value is missing"},
		{"POST", "/entities/s1/attrs", `{"key":"","value":1}`, 400, "invalid", "key is empty"},
		{"POST", "/entities/s1/attrs", `{"key":"k","value":1.5}`, 400, "invalid", "64-bit integer"},
		{"POST", "/entities/s1/attrs", `{"key":"k","value":{"a":1},"type":"int"}`, 400, "invalid", "give type json"},
		{"POST", "/entities/s1/attrs", `{"key":"k","value":1,"number":"later"}`, 400, "invalid", `or "next"`},
		{"POST", "/entities/s1/attrs", `{"key":"k","value":1,"extra":true}`, 400, "invalid", `unknown field "extra"`},
		{"POST", "/entities/s1/attrs", `{"key":"memory_gb","value":-4}`, 400, "invalid", "at least 0"},
		{"POST", "/entities/s1/attrs", `{"key":"k","value":"` + strings.Repeat("v", entity.MaxValueLen+1) + `"}`, 400, "invalid", "the limit is"},
		{"POST", "/entities/ghost/attrs", `{"key":"k","value":1}`, 404, "not_found", "ghost"},
		{"PUT", "/entities/s1/attrs/k", `{"values":[]}`, 400, "invalid", "at least one value"},
		{"PUT", "/entities/s1/attrs/k", `{}`, 400, "invalid", "values is required"},
		{"PUT", "/entities/s1/attrs/k", `{"values":[1,1]}`, 400, "invalid", "given twice"},
		{"PUT", "/entities/s1/attrs/k", `{"values":[1],"number":-2}`, 400, "invalid", "number"},
		{"PUT", "/entities/s1/attrs/k", `{"values":["x"],"type":"bool"}`, 400, "invalid", "values[0]"},
		{"PUT", "/entities/s1/attrs/bad%20key", `{"values":[1]}`, 400, "invalid", "key"},
		{"DELETE", "/entities/s1/attrs/k?number=x", nil, 400, "invalid", "number"},
		{"DELETE", "/entities/s1/attrs/k", nil, 404, "not_found", "has no attribute k"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			got := e.do(tc.method, api+tc.path, tc.body).wantErr(t, tc.status, tc.code)
			if !strings.Contains(got.Message, tc.msg) {
				t.Errorf("message %q does not mention %q", got.Message, tc.msg)
			}
		})
	}
	if after := e.changeCount(); after != before {
		t.Fatalf("refused writes wrote changes: %d -> %d", before, after)
	}
	if got := e.get("s1"); got.Version != 1 {
		t.Fatalf("s1 at version %d after refused writes", got.Version)
	}
}

func TestChildren(t *testing.T) {
	e := newEnv(t)
	e.mk("rack1", "rack", "s1", "server", "s2", "server", "db", "pool", "dc1", "datacenter")
	r := e.do("POST", api+"/entities/rack1/children", map[string]any{"child": "s1", "position": 10, "height": 2}).want(t, http.StatusCreated)
	rack := r.entity(t)
	if diff := cmp.Diff([]entity.Relation{{Type: "contains", Name: "s1", Driver: "server", Position: entity.N(10), Height: entity.N(2)}}, rack.Children); diff != "" {
		t.Fatalf("rack children (-want +got):\n%s", diff)
	}
	if tagVersionOf(r.Header.Get("ETag")) != 2 {
		t.Fatalf("parent ETag %q", r.Header.Get("ETag"))
	}
	// Overlapping units.
	got := e.do("POST", api+"/entities/rack1/children", map[string]any{"child": "s2", "position": 11}).wantErr(t, 409, "conflict")
	if got.Details["occupant"] != "s1" {
		t.Fatalf("details %v", got.Details)
	}
	// Membership for a group parent.
	pool := e.do("POST", api+"/entities/db/children", map[string]any{"child": "s1"}).want(t, http.StatusCreated).entity(t)
	if len(pool.Children) != 1 || pool.Children[0].Type != "member" {
		t.Fatalf("pool children %+v", pool.Children)
	}
	if s1 := e.get("s1"); len(s1.Parents) != 2 {
		t.Fatalf("s1 parents %+v", s1.Parents)
	}
	e.do("POST", api+"/entities/db/children", map[string]any{"child": "s1"}).wantErr(t, 409, "conflict")
	e.do("POST", api+"/entities/db/children", map[string]any{"child": "s2", "position": 1}).wantErr(t, 400, "invalid")
	e.do("POST", api+"/entities/rack1/children", map[string]any{"child": "s2", "position": 0}).wantErr(t, 400, "invalid")
	e.do("POST", api+"/entities/rack1/children", map[string]any{"child": "s2", "height": 0, "position": 1}).wantErr(t, 400, "invalid")
	e.do("POST", api+"/entities/rack1/children", map[string]any{"child": "s2", "position": 42, "height": 2}).wantErr(t, 400, "invalid")
	e.do("POST", api+"/entities/rack1/children", map[string]any{"child": "dc1"}).wantErr(t, 400, "invalid")
	e.do("POST", api+"/entities/rack1/children", map[string]any{}).wantErr(t, 400, "invalid")
	e.do("POST", api+"/entities/rack1/children", map[string]any{"child": "ghost"}).wantErr(t, 404, "not_found")

	out := e.do("DELETE", api+"/entities/rack1/children/s1", nil).want(t, http.StatusOK).entity(t)
	if len(out.Children) != 0 {
		t.Fatalf("rack children after remove: %+v", out.Children)
	}
	e.do("DELETE", api+"/entities/rack1/children/s1", nil).wantErr(t, 404, "not_found")
	e.do("DELETE", api+"/entities/db/children/s1", nil).want(t, http.StatusOK)
}

func TestLinks(t *testing.T) {
	e := newEnv(t)
	e.mk("s1", "server", "sw1", "switch", "s2", "server")
	r := e.do("POST", api+"/links", map[string]any{"a": "s1", "a_port": "eth0", "b": "sw1", "b_port": "4"}).want(t, http.StatusCreated).obj(t)
	want := map[string]any{"link": map[string]any{"a": "s1", "a_port": "eth0", "b": "sw1", "b_port": "4", "type": "nic"}, "change": float64(e.changeCount())}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Fatalf("link answer (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]entity.Link{{Port: "4", Type: "nic", Peer: "s1", PeerPort: "eth0"}}, e.get("sw1").Links); diff != "" {
		t.Fatalf("switch links (-want +got):\n%s", diff)
	}
	busy := e.do("POST", api+"/links", map[string]any{"a": "s2", "a_port": "eth0", "b": "sw1", "b_port": "4"}).wantErr(t, 409, "conflict")
	if busy.Details["peer"] != "s1:eth0" {
		t.Fatalf("details %v", busy.Details)
	}
	for _, body := range []string{
		`{"a":"s2","a_port":"eth9","b":"sw1","b_port":"5"}`,
		`{"a":"s2","a_port":"eth0","b":"sw1","b_port":"console"}`,
		`{"a":"s2","a_port":"eth 0","b":"sw1","b_port":"5"}`,
		`{"a":"s2","a_port":"eth0","b":"sw1","b_port":"5","type":"nic"}`,
		`{"a_port":"eth0","b":"sw1","b_port":"5"}`,
		`{"a":"s2","a_port":"eth0","b":"s2","b_port":"eth1"}`,
	} {
		e.do("POST", api+"/links", body).wantErr(t, 400, "invalid")
	}
	e.do("POST", api+"/links", `{"a":"ghost","a_port":"eth0","b":"sw1","b_port":"5"}`).wantErr(t, 404, "not_found")

	// A port left out is the first free port of the other side's type,
	// chosen in the same transaction as the link.
	var auto struct{ Link entity.Cable }
	e.do("POST", api+"/links", `{"a":"s2","a_port":"eth1","b":"sw1"}`).want(t, http.StatusCreated).decode(t, &auto)
	if auto.Link.BPort == "" || auto.Link.Type != "nic" {
		t.Errorf("auto port link = %+v", auto.Link)
	}
	e.do("DELETE", api+"/links", `{"a":"s2","a_port":"eth1","b":"sw1"}`).want(t, http.StatusOK)
	e.do("POST", api+"/links", `{"a":"s2","a_port":"eth0","b":"sw1","b_port":"5"}`, "If-Match", `"1"`).wantErr(t, 400, "invalid")

	// Unlink without naming ports, when there is one link.
	u := e.do("DELETE", api+"/links", map[string]any{"a": "sw1", "b": "s1"}).want(t, http.StatusOK).obj(t)
	wantU := map[string]any{"unlinked": map[string]any{"a": "sw1", "a_port": "4", "b": "s1", "b_port": "eth0", "type": "nic"}, "change": float64(e.changeCount())}
	if diff := cmp.Diff(wantU, u); diff != "" {
		t.Fatalf("unlink answer (-want +got):\n%s", diff)
	}
	e.do("DELETE", api+"/links", map[string]any{"a": "sw1", "b": "s1"}).wantErr(t, 404, "not_found")
	e.do("DELETE", api+"/links", `{"a":"sw1"}`).wantErr(t, 400, "invalid")
}
