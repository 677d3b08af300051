package server

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
)

func TestLocate(t *testing.T) {
	e := newEnv(t)
	e.dc()
	e.mk("room1", "room")
	var loc entity.Location
	e.do("GET", api+"/entities/server1/locate", nil).want(t, http.StatusOK).decode(t, &loc)
	var text []string
	for _, l := range loc.Lines {
		text = append(text, l.Text)
	}
	want := []string{
		"server1 -> connected to port 4 on switch2a",
		"server1 -> connected to port 12 on console1",
		"server1 -> connected to port 4 on pdu1",
		"server1 -> in RU13 of rack101",
		"rack101 -> in datacenter dc1",
	}
	if diff := cmp.Diff(want, text); diff != "" {
		t.Fatalf("locate text (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"server1", "rack101", "dc1"}, loc.Path); diff != "" {
		t.Fatalf("path (-want +got):\n%s", diff)
	}
	wantFirst := entity.LocationLine{Entity: "server1", Relation: "connected", Port: "eth0", PortType: "nic", Peer: "switch2a",
		PeerDriver: "switch", PeerPort: "4", Text: "server1 -> connected to port 4 on switch2a"}
	if diff := cmp.Diff(wantFirst, loc.Lines[0]); diff != "" {
		t.Fatalf("first line (-want +got):\n%s", diff)
	}
	wantIn := entity.LocationLine{Entity: "server1", Relation: "in", Peer: "rack101", PeerDriver: "rack",
		Position: entity.N(13), Height: entity.N(1), Text: "server1 -> in RU13 of rack101"}
	if diff := cmp.Diff(wantIn, loc.Lines[3]); diff != "" {
		t.Fatalf("containment line (-want +got):\n%s", diff)
	}
	// A multi-unit device names its units; the past is readable with ?at=.
	before := e.changeCount()
	e.do("DELETE", api+"/entities/rack101/children/switch2a", nil).want(t, 200)
	e.do("POST", api+"/entities/rack101/children", map[string]any{"child": "switch2a", "position": 20, "height": 2}).want(t, 201)
	e.do("GET", api+"/entities/switch2a/locate", nil).want(t, 200).decode(t, &loc)
	if got := loc.Lines[1].Text; got != "switch2a -> in RU20-21 of rack101" {
		t.Fatalf("multi-unit line %q", got)
	}
	e.do("GET", api+"/entities/switch2a/locate?at="+itoa(before), nil).want(t, 200).decode(t, &loc)
	if got := loc.Lines[1].Text; got != "switch2a -> in RU40 of rack101" {
		t.Fatalf("line as of change %d: %q", before, got)
	}
	// A thing that is nowhere has no lines; an unknown one is 404.
	e.do("GET", api+"/entities/room1/locate", nil).want(t, 200).decode(t, &loc)
	if len(loc.Lines) != 0 || len(loc.Path) != 1 {
		t.Fatalf("room1: %+v", loc)
	}
	e.do("GET", api+"/entities/ghost/locate", nil).wantErr(t, 404, "not_found")
	e.do("GET", api+"/entities/server1/locate?at=-1", nil).wantErr(t, 400, "invalid")
}

func TestConsoleAndPower(t *testing.T) {
	e := newEnv(t)
	e.dc()
	e.mk("pdu2", "pdu")
	e.do("POST", api+"/entities", map[string]any{"name": "chassis1", "driver": "chassis"}).want(t, 201)
	e.do("POST", api+"/links", map[string]any{"a": "chassis1", "a_port": "1", "b": "pdu1", "b_port": "7"}).want(t, 201)
	e.do("POST", api+"/links", map[string]any{"a": "chassis1", "a_port": "2", "b": "pdu2", "b_port": "7"}).want(t, 201)

	tests := []struct {
		path string
		want map[string]any
	}{
		{"/entities/server1/console", map[string]any{"entity": "server1", "consoles": []any{
			map[string]any{"port": "console", "console_server": "console1", "console_port": "12", "driver": "console-server"}}}},
		{"/entities/server1/power", map[string]any{"entity": "server1", "power": []any{
			map[string]any{"port": "psu1", "pdu": "pdu1", "outlet": "4", "driver": "pdu"}}}},
		{"/entities/chassis1/power", map[string]any{"entity": "chassis1", "power": []any{
			map[string]any{"port": "1", "pdu": "pdu1", "outlet": "7", "driver": "pdu"},
			map[string]any{"port": "2", "pdu": "pdu2", "outlet": "7", "driver": "pdu"}}}},
		// The console server serves consoles; it is not served by the server on its port 12.
		{"/entities/console1/console", map[string]any{"entity": "console1", "consoles": []any{}}},
		{"/entities/pdu1/power", map[string]any{"entity": "pdu1", "power": []any{}}},
		{"/entities/switch2a/console", map[string]any{"entity": "switch2a", "consoles": []any{}}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got := e.do("GET", api+tc.path, nil).want(t, http.StatusOK).obj(t)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
	// As of before the console cable, there was none.
	e.do("GET", api+"/entities/server1/console?at=8", nil).want(t, 200)
	old := e.do("GET", api+"/entities/server1/console?at=12", nil).want(t, 200).obj(t)
	if n := len(old["consoles"].([]any)); n != 0 {
		t.Fatalf("consoles as of change 12: %v", old)
	}
	e.do("GET", api+"/entities/ghost/power", nil).wantErr(t, 404, "not_found")
	e.do("GET", api+"/entities/server1/power?port=1", nil).wantErr(t, 400, "invalid")
}
