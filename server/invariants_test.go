package server

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
)

// step is one API call and the status it must get.
type step struct {
	method, path string
	body         any
	status       int
}

func (e *env) run(t *testing.T, steps []step) {
	t.Helper()
	for i, s := range steps {
		r := e.do(s.method, s.path, s.body)
		if r.Status != s.status {
			t.Fatalf("step %d: %s %s: status %d, want %d; body: %s", i+1, s.method, s.path, r.Status, s.status, r.Body)
		}
	}
}

func ent(name, driver string, attrs ...map[string]any) step {
	body := map[string]any{"name": name, "driver": driver}
	if len(attrs) > 0 {
		body["attrs"] = attrs
	}
	return step{"POST", api + "/entities", body, http.StatusCreated}
}

func kv(key string, value any) map[string]any { return map[string]any{"key": key, "value": value} }

func put(parent, child string, position any) step {
	body := map[string]any{"child": child}
	if position != nil {
		body["position"] = position
	}
	return step{"POST", api + "/entities/" + parent + "/children", body, http.StatusCreated}
}

func set(name, key string, values ...any) step {
	return step{"PUT", api + "/entities/" + name + "/attrs/" + key, map[string]any{"values": values}, http.StatusOK}
}

func alloc(block, holder, address string) step {
	return step{"POST", api + "/ipblocks/" + block + "/allocate", map[string]any{"entity": holder, "address": address}, http.StatusCreated}
}

// TestKnownHolesAreClosed tries each way found of bringing the inventory
// into a state its rules forbid. Each attack must be refused with the
// status given, name the rule when it is a rule's refusal, store nothing
// (no new change), and leave clustod check clean.
func TestKnownHolesAreClosed(t *testing.T) {
	const maxInt64 = int64(9223372036854775807)
	rack := []step{ent("r1", "rack"), ent("s1", "server"), ent("s2", "server"), put("r1", "s1", 10), put("r1", "s2", 11)}
	nested := []step{
		ent("net", "ipblock", kv("cidr", "10.0.0.0/16")), ent("h1", "server"), ent("h2", "server"),
		ent("sub", "ipblock", kv("cidr", "10.0.2.0/24")), put("net", "sub", nil),
		alloc("net", "h1", "10.0.1.5"), alloc("sub", "h2", "10.0.2.7"),
		ent("empty", "ipblock", kv("cidr", "10.0.3.0/24")), put("net", "empty", nil),
	}
	pools := []step{ent("a", "pool"), ent("b", "pool"), ent("m", "server"), put("a", "m", nil), put("b", "m", nil)}
	cases := []struct {
		name   string
		setup  []step
		attack step
		status int
		rule   string // the rule named, for a rule's refusal
	}{
		{name: "a height of 2^63-1 at position 2", setup: append(append([]step{}, rack...), ent("x", "server")),
			attack: step{"POST", api + "/entities/r1/children", map[string]any{"child": "x", "position": 2, "height": maxInt64}, 0},
			status: http.StatusBadRequest},
		{name: "a position of 2^63-1", setup: append(append([]step{}, rack...), ent("x", "server")),
			attack: step{"POST", api + "/entities/r1/children", map[string]any{"child": "x", "position": maxInt64, "height": 2}, 0},
			status: http.StatusBadRequest},
		{name: "rack allocation at 2^63-1", setup: append(append([]step{}, rack...), ent("x", "server")),
			attack: step{"POST", api + "/racks/r1/allocate", map[string]any{"entity": "x", "position": maxInt64, "height": 2}, 0},
			status: http.StatusConflict},
		{name: "a rack shrunk below its devices", setup: rack, attack: set("r1", "units", 10), status: http.StatusConflict, rule: "rack-fit"},
		{name: "a second units value", setup: append(append([]step{}, rack...), set("r1", "units", 42)),
			attack: step{"POST", api + "/entities/r1/attrs", kv("units", 12), 0}, status: http.StatusConflict, rule: "single-value"},
		{name: "a device grown into its neighbour", setup: rack, attack: set("s1", "height", 2), status: http.StatusConflict, rule: "rack-overlap"},
		{name: "a device grown past the top", setup: rack, attack: set("s2", "height", 40), status: http.StatusConflict, rule: "rack-fit"},
		{name: "a nested block moved over its parent's allocation", setup: nested,
			attack: set("empty", "cidr", "10.0.1.0/24"), status: http.StatusConflict, rule: "allocation-in-child"},
		{name: "a nested block moved outside its parent", setup: nested,
			attack: set("empty", "cidr", "192.168.0.0/24"), status: http.StatusConflict, rule: "block-inside-parent"},
		{name: "a nested block moved over a sibling", setup: nested,
			attack: set("empty", "cidr", "10.0.2.0/25"), status: http.StatusConflict, rule: "block-siblings"},
		{name: "a second cidr on a nested block", setup: nested,
			attack: step{"POST", api + "/entities/empty/attrs", kv("cidr", "10.0.4.0/24"), 0}, status: http.StatusConflict, rule: "single-value"},
		{name: "the cidr of a nested block deleted", setup: nested,
			attack: step{"DELETE", api + "/entities/empty/attrs/cidr", nil, 0}, status: http.StatusConflict, rule: "block-cidr"},
		{name: "a gateway on an allocated address", setup: nested, attack: set("net", "gateway", "10.0.1.5"), status: http.StatusConflict, rule: "allocation-reserved"},
		{name: "a gateway outside the block", setup: nested, attack: set("sub", "gateway", "10.9.9.1"), status: http.StatusConflict, rule: "block-gateway"},
		{name: "the ip attribute of an allocation deleted", setup: nested,
			attack: step{"DELETE", api + "/entities/h1/attrs/ip", nil, 0}, status: http.StatusConflict, rule: "allocation-attribute"},
		{name: "another entity given an allocated address", setup: nested,
			attack: step{"POST", api + "/entities/h2/attrs", map[string]any{"key": "ip", "subkey": "eth9", "value": "10.0.1.5", "type": "ip"}, 0},
			status: http.StatusConflict, rule: "address-one-holder"},
		{name: "an IPv6 block over the IPv4-mapped range", setup: nil,
			attack: step{"POST", api + "/entities", map[string]any{"name": "v6", "driver": "ipblock", "attrs": []any{kv("cidr", "::/80")}}, 0},
			status: http.StatusBadRequest},
		{name: "exclusive set on a pool whose member is in another", setup: pools, attack: set("a", "exclusive", true), status: http.StatusConflict, rule: "pool-exclusive"},
		{name: "unique set on a second pool of a member", setup: append(append([]step{}, pools...), set("a", "unique", true)),
			attack: set("b", "unique", true), status: http.StatusConflict, rule: "pool-unique"},
		{name: "a name counter set back", setup: []step{ent("nm", "namemanager", kv("basename", "web"), kv("next", 5)),
			{"POST", api + "/names/nm/allocate", map[string]any{"driver": "server", "count": 2}, http.StatusCreated}},
			attack: set("nm", "next", 3), status: http.StatusConflict, rule: "name-counter"},
		{name: "a name counter deleted", setup: []step{ent("nm", "namemanager", kv("next", 5)), set("nm", "next", 6)},
			attack: step{"DELETE", api + "/entities/nm/attrs/next", nil, 0}, status: http.StatusConflict, rule: "name-counter"},
		{name: "a query allocation that grows devices into each other", setup: append(append([]step{}, rack...), set("s1", "status", "spare"), set("s2", "status", "spare")),
			attack: step{"POST", api + "/allocate", map[string]any{"query": "attr:status,spare", "count": 2, "set": map[string]any{"height": 3}}, 0},
			status: http.StatusConflict, rule: "rack-overlap"},
		{name: "a batch whose ops each pass but whose end state does not", setup: rack,
			attack: step{"POST", api + "/batch", map[string]any{"ops": []map[string]any{
				{"op": "attr_set", "name": "s1", "key": "status", "values": []any{"ok"}},
				{"op": "attr_set", "name": "r1", "key": "units", "values": []any{10}},
			}}, 0}, status: http.StatusConflict, rule: "rack-fit"},
		{name: "a dry run judged as its commit would be", setup: rack,
			attack: step{"POST", api + "/batch", map[string]any{"dry_run": true, "ops": []map[string]any{
				{"op": "attr_set", "name": "r1", "key": "units", "values": []any{10}},
			}}, 0}, status: http.StatusConflict, rule: "rack-fit"},
		{name: "an inventory file that shrinks a rack", setup: rack,
			attack: step{"POST", api + "/apply", map[string]any{"file": "dc.yaml", "content": "entities:\n  r1: {attrs: {units: 10}}\n"}, 0},
			status: http.StatusConflict, rule: "rack-fit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.run(t, tc.setup)
			before := e.changeCount()
			r := e.do(tc.attack.method, tc.attack.path, tc.attack.body)
			code := map[int]string{http.StatusBadRequest: "invalid", http.StatusConflict: "conflict"}[tc.status]
			got := r.wantErr(t, tc.status, code)
			if tc.rule != "" {
				if got.Reason != "invariant" || got.Details["rule"] != tc.rule {
					t.Errorf("refused with reason %q rule %v, want rule %s: %s", got.Reason, got.Details["rule"], tc.rule, got.Message)
				}
				if !strings.Contains(got.Message, tc.rule) {
					t.Errorf("the message does not name the rule %s: %s", tc.rule, got.Message)
				}
			}
			if after := e.changeCount(); after != before {
				t.Errorf("the refused request recorded changes %d-%d", before+1, after)
			}
			if problems, err := e.store.Check(context.Background()); err != nil || len(problems) > 0 {
				t.Errorf("check after the refusal: %v %+v", err, problems)
			}
		})
	}
}

// TestIPv4MappedBlockIsStoredAsIPv4: an IPv4-mapped IPv6 network is the
// IPv4 network it maps, so it hands out the same addresses as one, and is
// stored as one.
func TestIPv4MappedBlockIsStoredAsIPv4(t *testing.T) {
	e := newEnv(t)
	e.run(t, []step{ent("m", "ipblock", kv("cidr", "::ffff:10.0.0.0/104")), ent("h", "server")})
	var got []string
	for _, a := range e.get("m").Attrs {
		if a.Key == "cidr" {
			got = append(got, a.Value.Text)
		}
	}
	if diff := cmp.Diff([]string{"10.0.0.0/8"}, got); diff != "" {
		t.Errorf("cidr (-want +got):\n%s", diff)
	}
	var ans entity.Allocations
	e.do("POST", api+"/ipblocks/m/allocate", map[string]any{"entity": "h"}).want(t, http.StatusCreated).decode(t, &ans)
	if len(ans.Allocations) != 1 || ans.Allocations[0].Address != "10.0.0.1" {
		t.Errorf("first allocation %+v, want 10.0.0.1 (never the network address)", ans.Allocations)
	}
}

// TestHeightFollowsTheAttribute: writing a placed device's height moves
// its placement with it, so that the elevation draws what the attribute
// says, and deleting it falls back to the driver's default.
func TestHeightFollowsTheAttribute(t *testing.T) {
	e := newEnv(t)
	e.run(t, []step{ent("r1", "rack"), ent("s1", "server"), put("r1", "s1", 10), set("s1", "height", 3)})
	var el entity.Elevation
	e.do("GET", api+"/racks/r1/elevation", nil).want(t, http.StatusOK).decode(t, &el)
	held := func() []int64 {
		var units []int64
		for _, u := range el.Rows {
			if u.Device == "s1" {
				units = append(units, u.Unit)
			}
		}
		return units
	}
	if diff := cmp.Diff([]int64{12, 11, 10}, held()); diff != "" {
		t.Errorf("units of s1 after height 3 (-want +got):\n%s", diff)
	}
	e.do("DELETE", api+"/entities/s1/attrs/height", nil).want(t, http.StatusOK)
	el = entity.Elevation{}
	e.do("GET", api+"/racks/r1/elevation", nil).want(t, http.StatusOK).decode(t, &el)
	if diff := cmp.Diff([]int64{10}, held()); diff != "" {
		t.Errorf("units of s1 after its height is deleted (-want +got):\n%s", diff)
	}
}

// TestSettingTheSameValuesRecordsNothing is Clusto's testSetAttrAlreadySet:
// a set to exactly the values a key has answers 200 with no new change and
// no new version.
func TestSettingTheSameValuesRecordsNothing(t *testing.T) {
	e := newEnv(t)
	e.run(t, []step{ent("s1", "server", kv("role", "web"), kv("role", "mail"), kv("memory_gb", 64))})
	v := e.get("s1").Version
	before := e.changeCount()
	for _, s := range []step{set("s1", "role", "mail", "web"), set("s1", "memory_gb", "64")} {
		r := e.do(s.method, s.path, s.body).want(t, http.StatusOK)
		if got := r.Header.Get("ETag"); tagVersionOf(got) != v {
			t.Errorf("%s: ETag %s, want version %d (no new version)", s.path, got, v)
		}
	}
	if after := e.changeCount(); after != before {
		t.Errorf("no-op sets recorded changes %d-%d", before+1, after)
	}
	// A real change still is one.
	e.run(t, []step{set("s1", "role", "web")})
	if e.changeCount() != before+1 || e.get("s1").Version != v+1 {
		t.Errorf("a real set: changes %d (want %d), version %d (want %d)", e.changeCount(), before+1, e.get("s1").Version, v+1)
	}
}

// TestDriverReloadMustFitTheInventory: a drivers file whose new defaults
// or ports break the inventory's rules is refused, and the drivers stay as
// they were; one that fits is taken.
func TestDriverReloadMustFitTheInventory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "drivers.json")
	write := func(units int, ports string) {
		t.Helper()
		doc := `{"drivers": [{"name": "tallrack", "kind": "equipment", "units": ` + itoa(int64(units)) + `},
			{"name": "widget", "kind": "equipment", "parents": ["tallrack"], "ports": [{"type": "nic", "names": [` + ports + `]}]}]}`
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(48, `"n0", "n1"`)
	e := newEnv(t, func(o *Options) { o.DriversFile = file })
	e.run(t, []step{{"POST", api + "/drivers/reload", nil, http.StatusOK}, ent("t1", "tallrack"), ent("w1", "widget"), ent("w2", "widget"), put("t1", "w1", 45),
		{"POST", api + "/links", map[string]any{"a": "w1", "a_port": "n1", "b": "w2", "b_port": "n0"}, http.StatusCreated}})
	for _, tc := range []struct {
		name  string
		units int
		ports string
		rule  string
	}{
		{"default units shrunk below a device", 40, `"n0", "n1"`, "rack-fit"},
		{"a port dropped that carries a link", 48, `"n0"`, "link-ports"},
	} {
		write(tc.units, tc.ports)
		got := e.do("POST", api+"/drivers/reload", nil).wantErr(t, http.StatusConflict, "conflict")
		if got.Details["rule"] != tc.rule {
			t.Errorf("%s: refused by %v, want %s: %s", tc.name, got.Details["rule"], tc.rule, got.Message)
		}
		if d, _ := e.store.Drivers().Lookup("tallrack"); d.Units != 48 {
			t.Errorf("%s: the refused file was taken: tallrack has %d units", tc.name, d.Units)
		}
	}
	write(46, `"n0", "n1", "n2"`)
	e.do("POST", api+"/drivers/reload", nil).want(t, http.StatusOK)
	if d, _ := e.store.Drivers().Lookup("tallrack"); d.Units != 46 {
		t.Errorf("a fitting file was not taken: tallrack has %d units", d.Units)
	}
}

// TestAddressesHeldByHandAreNotHandedOut: an address an entity has as its
// ip attribute, set by hand, is in use though no block handed it out. The
// next free address passes it by, and asking for it exactly is refused,
// naming who has it (before, it was handed out and lookup found two).
func TestAddressesHeldByHandAreNotHandedOut(t *testing.T) {
	e := newEnv(t)
	e.run(t, []step{ent("b", "ipblock", kv("cidr", "10.0.1.0/24")), ent("h", "server"),
		ent("old", "server", map[string]any{"key": "ip", "value": "10.0.1.1", "type": "ip"})})
	var ans entity.Allocations
	e.do("POST", api+"/ipblocks/b/allocate", map[string]any{"entity": "h"}).want(t, http.StatusCreated).decode(t, &ans)
	if len(ans.Allocations) != 1 || ans.Allocations[0].Address != "10.0.1.2" {
		t.Errorf("next free allocation %+v, want 10.0.1.2 (10.0.1.1 is old's)", ans.Allocations)
	}
	got := e.do("POST", api+"/ipblocks/b/allocate", map[string]any{"entity": "h", "address": "10.0.1.1"}).wantErr(t, http.StatusConflict, "conflict")
	if got.Details["holder"] != "old" {
		t.Errorf("refusal %q names holder %v, want old", got.Message, got.Details["holder"])
	}
	// The entity that has it by hand may have it allocated.
	e.do("POST", api+"/ipblocks/b/allocate", map[string]any{"entity": "old", "address": "10.0.1.1"}).want(t, http.StatusCreated)
}
