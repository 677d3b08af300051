package drivers_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/drivers"
)

func TestBuiltinDefaults(t *testing.T) {
	r := drivers.Builtin()
	for _, name := range []string{"datacenter", "room", "row", "rack", "server", "switch", "router", "pdu", "console-server",
		"chassis", "vm", "ipblock", "vlan", "namemanager", "pool", "class", "role", "service"} {
		if _, ok := r.Lookup(name); !ok {
			t.Errorf("built-in driver %s missing", name)
		}
	}
	ports := func(name string) []drivers.Port {
		d, _ := r.Lookup(name)
		return d.PortList()
	}
	if diff := cmp.Diff([]drivers.Port{{"eth0", "nic"}, {"eth1", "nic"}, {"console", "console"}, {"psu1", "power"}}, ports("server")); diff != "" {
		t.Errorf("server ports (-want +got):\n%s", diff)
	}
	sw := ports("switch")
	if len(sw) != 50 || sw[0] != (drivers.Port{Name: "1", Type: "nic"}) || sw[47] != (drivers.Port{Name: "48", Type: "nic"}) || sw[48].Name != "console" {
		t.Errorf("switch ports: %d, first %v, 48th %v", len(sw), sw[0], sw[47])
	}
	cs, _ := r.Lookup("console-server")
	if p, ok := cs.Port("48"); !ok || p.Type != "console" {
		t.Errorf("console-server port 48 = %v %v", p, ok)
	}
	if _, ok := cs.Port("49"); ok {
		t.Error("console-server has a port 49")
	}
	if _, ok := cs.Port("07"); ok {
		t.Error("port 07 resolved; only the canonical spelling 7 should")
	}
	pdu, _ := r.Lookup("pdu")
	if p, ok := pdu.Port("24"); !ok || p.Type != "power" {
		t.Errorf("pdu outlet 24 = %v %v", p, ok)
	}
	rack, _ := r.Lookup("RACK")
	if rack == nil || rack.Units != 42 {
		t.Errorf("rack (case-insensitive lookup) = %+v", rack)
	}
	srv, _ := r.Lookup("server")
	if srv.Height != 1 || !rack.MayContain(srv) || srv.MayContain(rack) {
		t.Errorf("server height %d / rack may contain server / not the reverse", srv.Height)
	}
	for _, k := range []string{"cidr", "gateway"} {
		if _, ok := mustLookup(r, "ipblock").Attrs[k]; !ok {
			t.Errorf("ipblock lacks attribute %s", k)
		}
	}
	for _, k := range []string{"basename", "digits", "next"} {
		if _, ok := mustLookup(r, "namemanager").Attrs[k]; !ok {
			t.Errorf("namemanager lacks attribute %s", k)
		}
	}
}

func mustLookup(r *drivers.Registry, n string) *drivers.Driver {
	d, _ := r.Lookup(n)
	return d
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"drivers":[
		{"name":"Storage-Array","kind":"equipment","parents":["rack"],"height":4,
		 "ports":[{"type":"nic","prefix":"ctl","from":0,"to":3},{"type":"power","names":["psu1","psu2"]}],
		 "attrs":{"capacity_tb":{"type":"int","min":1}}}]}`), 0o644)
	r := drivers.Builtin()
	if err := r.LoadFile(good); err != nil {
		t.Fatal(err)
	}
	d, ok := r.Lookup("storage-array")
	if !ok || d.Height != 4 || len(d.PortList()) != 6 {
		t.Fatalf("loaded driver = %+v", d)
	}
	if p, ok := d.Port("ctl3"); !ok || p.Type != "nic" {
		t.Errorf("port ctl3 = %v %v", p, ok)
	}
	bad := []struct{ name, body, want string }{
		{"not json", `{`, "unexpected EOF"},
		{"unknown field", `{"drivers":[{"name":"x","kind":"equipment","colour":"red"}]}`, "unknown field"},
		{"bad kind", `{"drivers":[{"name":"x","kind":"gadget"}]}`, "kind"},
		{"bad name", `{"drivers":[{"name":"9lives","kind":"equipment"}]}`, "driver name"},
		{"unknown parent", `{"drivers":[{"name":"x","kind":"equipment","parents":["shelf"]}]}`, "shelf"},
		{"bad attr type", `{"drivers":[{"name":"x","kind":"equipment","attrs":{"a":{"type":"float"}}}]}`, "float"},
		{"duplicate port", `{"drivers":[{"name":"x","kind":"equipment","ports":[{"type":"nic","names":["a","a"]}]}]}`, "twice"},
		{"empty", `{"drivers":[]}`, "no drivers"},
		{"second bad, first not applied", `{"drivers":[{"name":"okay","kind":"equipment"},{"name":"x","kind":"nope"}]}`, "driver #2"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.json")
			os.WriteFile(p, []byte(tc.body), 0o644)
			err := r.LoadFile(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if _, ok := r.Lookup("okay"); ok {
				t.Error("a driver from a refused file was registered")
			}
		})
	}
}
