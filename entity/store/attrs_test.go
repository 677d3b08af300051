package store_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func TestAttributeOperations(t *testing.T) {
	type step struct {
		op      func(tx *store.Tx) error
		wantErr entity.ErrorKind
	}
	add := func(a entity.Attr) func(tx *store.Tx) error {
		return func(tx *store.Tx) error { _, err := tx.AddAttr("s1", a); return err }
	}
	set := func(sel entity.AttrSelector, vs ...entity.Value) func(tx *store.Tx) error {
		return func(tx *store.Tx) error { _, err := tx.SetAttr("s1", sel, vs); return err }
	}
	del := func(sel entity.AttrSelector) func(tx *store.Tx) error {
		return func(tx *store.Tx) error { _, err := tx.DelAttr("s1", sel); return err }
	}
	tests := []struct {
		name  string
		steps []step
		want  []entity.Attr
	}{
		{
			name:  "add appends values of one key",
			steps: []step{{op: add(str("role", "web"))}, {op: add(str("role", "mail"))}},
			want:  []entity.Attr{str("role", "web"), str("role", "mail")},
		},
		{
			name:  "adding the same value twice is a conflict",
			steps: []step{{op: add(str("role", "web"))}, {op: add(str("role", "web")), wantErr: entity.KindConflict}},
			want:  []entity.Attr{str("role", "web")},
		},
		{
			name: "set replaces every value of the key",
			steps: []step{{op: add(str("role", "web"))}, {op: add(str("role", "mail"))},
				{op: set(entity.AttrSelector{Key: "role"}, entity.String("db"), entity.String("cache"))}},
			want: []entity.Attr{str("role", "db"), str("role", "cache")},
		},
		{
			name:  "set with no values is invalid",
			steps: []step{{op: add(str("role", "web"))}, {op: set(entity.AttrSelector{Key: "role"}), wantErr: entity.KindInvalid}},
			want:  []entity.Attr{str("role", "web")},
		},
		{
			name: "set with a subkey leaves other subkeys alone",
			steps: []step{
				{op: add(entity.Attr{Key: "nic", Subkey: "eth0", Value: entity.String("aa:bb")})},
				{op: add(entity.Attr{Key: "nic", Subkey: "eth1", Value: entity.String("cc:dd")})},
				{op: set(entity.AttrSelector{Key: "nic", Subkey: ptr("eth1")}, entity.String("ee:ff"))},
			},
			want: []entity.Attr{{Key: "nic", Subkey: "eth0", Value: entity.String("aa:bb")}, {Key: "nic", Subkey: "eth1", Value: entity.String("ee:ff")}},
		},
		{
			name:  "del removes a whole key",
			steps: []step{{op: add(str("role", "web"))}, {op: add(str("role", "mail"))}, {op: add(str("os", "debian"))}, {op: del(entity.AttrSelector{Key: "role"})}},
			want:  []entity.Attr{str("os", "debian")},
		},
		{
			name:  "del with a value removes just that value",
			steps: []step{{op: add(str("role", "web"))}, {op: add(str("role", "mail"))}, {op: del(entity.AttrSelector{Key: "role", Value: ptr("web")})}},
			want:  []entity.Attr{str("role", "mail")},
		},
		{
			name:  "del of a missing key is not found",
			steps: []step{{op: del(entity.AttrSelector{Key: "nope"}), wantErr: entity.KindNotFound}},
			want:  []entity.Attr{},
		},
		{
			name: "auto numbering counts 0, 1, 2 and never reuses",
			steps: []step{
				{op: func(tx *store.Tx) error { _, err := tx.AddNumberedAttr("s1", str("disk", "sda")); return err }},
				{op: func(tx *store.Tx) error { _, err := tx.AddNumberedAttr("s1", str("disk", "sdb")); return err }},
				{op: del(entity.AttrSelector{Key: "disk", Number: ptr(int64(1))})},
				{op: func(tx *store.Tx) error { _, err := tx.AddNumberedAttr("s1", str("disk", "sdc")); return err }},
			},
			want: []entity.Attr{{Key: "disk", Number: ptr(int64(0)), Value: entity.String("sda")}, {Key: "disk", Number: ptr(int64(2)), Value: entity.String("sdc")}},
		},
		{
			name: "an explicit number moves auto numbering past it",
			steps: []step{
				{op: add(entity.Attr{Key: "disk", Number: ptr(int64(5)), Value: entity.String("sdf")})},
				{op: func(tx *store.Tx) error { _, err := tx.AddNumberedAttr("s1", str("disk", "sdg")); return err }},
			},
			want: []entity.Attr{{Key: "disk", Number: ptr(int64(5)), Value: entity.String("sdf")}, {Key: "disk", Number: ptr(int64(6)), Value: entity.String("sdg")}},
		},
		{
			name: "a key declared int by the driver converts a numeric string",
			steps: []step{
				{op: add(str("memory_gb", "64"))},
				{op: add(str("height", "tall")), wantErr: entity.KindInvalid},
				{op: add(num("height", 0)), wantErr: entity.KindInvalid},
			},
			want: []entity.Attr{num("memory_gb", 64)},
		},
		{
			name: "bad keys are invalid",
			steps: []step{
				{op: add(str("", "x")), wantErr: entity.KindInvalid},
				{op: add(str("has space", "x")), wantErr: entity.KindInvalid},
				{op: add(str("a,b", "x")), wantErr: entity.KindInvalid},
				{op: add(entity.Attr{Key: "ok", Subkey: "bad.sub", Value: entity.String("x")}), wantErr: entity.KindInvalid},
				{op: add(entity.Attr{Key: "ok", Number: ptr(int64(-1)), Value: entity.String("x")}), wantErr: entity.KindInvalid},
			},
			want: []entity.Attr{},
		},
		{
			name:  "attributes of a missing entity are not found",
			steps: []step{{op: func(tx *store.Tx) error { _, err := tx.AddAttr("ghost", str("a", "b")); return err }, wantErr: entity.KindNotFound}},
			want:  []entity.Attr{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			create(t, s, entity.NewEntity{Name: "s1", Driver: "server"})
			for i, st := range tc.steps {
				err := tryWrite(s, st.op)
				if st.wantErr == "" && err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if st.wantErr != "" {
					wantKind(t, err, st.wantErr)
				}
			}
			got := get(t, s, "s1").Attrs
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("attrs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTypedValues(t *testing.T) {
	tm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	tests := []struct {
		name     string
		typ      entity.ValueType
		in       string
		want     entity.Value
		wantJSON string
		wantErr  bool
	}{
		{name: "string", typ: entity.TypeString, in: "web 01", want: entity.String("web 01"), wantJSON: `"web 01"`},
		{name: "int", typ: entity.TypeInt, in: " 42 ", want: entity.Int(42), wantJSON: `42`},
		{name: "int overflow", typ: entity.TypeInt, in: "99999999999999999999", wantErr: true},
		{name: "bool", typ: entity.TypeBool, in: "true", want: entity.Bool(true), wantJSON: `true`},
		{name: "bad bool", typ: entity.TypeBool, in: "yes please", wantErr: true},
		{name: "time in UTC", typ: entity.TypeTime, in: tm.Format(time.RFC3339), want: entity.Value{Type: entity.TypeTime, Text: "2026-01-02T02:04:05Z"}, wantJSON: `"2026-01-02T02:04:05Z"`},
		{name: "bad time", typ: entity.TypeTime, in: "yesterday", wantErr: true},
		{name: "ipv4", typ: entity.TypeIP, in: "10.0.3.7", want: entity.IP(netip.MustParseAddr("10.0.3.7")), wantJSON: `"10.0.3.7"`},
		{name: "ipv4-mapped ipv6 is stored as ipv4", typ: entity.TypeIP, in: "::ffff:10.0.3.7", want: entity.Value{Type: entity.TypeIP, Text: "10.0.3.7"}, wantJSON: `"10.0.3.7"`},
		{name: "ipv6 canonical", typ: entity.TypeIP, in: "2001:DB8:0:0::1", want: entity.Value{Type: entity.TypeIP, Text: "2001:db8::1"}, wantJSON: `"2001:db8::1"`},
		{name: "bad ip", typ: entity.TypeIP, in: "10.0.3", wantErr: true},
		{name: "json compacted", typ: entity.TypeJSON, in: `{ "a": [1, 2] }`, want: entity.Value{Type: entity.TypeJSON, Text: `{"a":[1,2]}`}, wantJSON: `{"a":[1,2]}`},
		{name: "bad json", typ: entity.TypeJSON, in: `{"a":`, wantErr: true},
		{name: "ref", typ: entity.TypeRef, in: "rack1", want: entity.Ref("rack1"), wantJSON: `"rack1"`},
		{name: "NUL byte", typ: entity.TypeString, in: "a\x00b", wantErr: true},
		{name: "invalid UTF-8", typ: entity.TypeString, in: "a\xffb", wantErr: true},
		{name: "unknown type", typ: "float", in: "1.5", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := entity.ParseValue(tc.typ, tc.in)
			if tc.wantErr {
				wantKind(t, err, entity.KindInvalid)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.wantJSON {
				t.Errorf("JSON = %s, want %s", b, tc.wantJSON)
			}
		})
	}
}

func TestAttrJSONRoundTrip(t *testing.T) {
	tests := []struct {
		in   string
		want entity.Attr
	}{
		{`{"key":"memory_gb","value":64}`, num("memory_gb", 64)},
		{`{"key":"spare","value":true}`, entity.Attr{Key: "spare", Value: entity.Bool(true)}},
		{`{"key":"tag","value":"x","subkey":"a","number":3}`, entity.Attr{Key: "tag", Subkey: "a", Number: ptr(int64(3)), Value: entity.String("x")}},
		{`{"key":"ip","value":"10.0.0.1","type":"ip"}`, entity.Attr{Key: "ip", Value: entity.IP(netip.MustParseAddr("10.0.0.1"))}},
		{`{"key":"meta","value":{"a":1}}`, entity.Attr{Key: "meta", Value: entity.Value{Type: entity.TypeJSON, Text: `{"a":1}`}}},
		{`{"key":"zip","value":"02134","type":"string"}`, str("zip", "02134")},
	}
	for _, tc := range tests {
		var got entity.Attr
		if err := json.Unmarshal([]byte(tc.in), &got); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.in, diff)
		}
		b, _ := json.Marshal(got)
		var again entity.Attr
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("round trip of %s: %v", b, err)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Errorf("round trip of %s (-first +second):\n%s", b, diff)
		}
	}
	for _, bad := range []string{`{"key":"a"}`, `{"key":"a","value":1.5}`, `{"key":"a","value":"x","extra":1}`, `{"key":"a","value":true,"type":"int"}`, `{"key":"a","value":1e400}`} {
		var a entity.Attr
		if err := json.Unmarshal([]byte(bad), &a); err == nil {
			t.Errorf("%s: decoded without error to %v", bad, a)
		}
	}
}

func TestTypedValuesStoredAndValidatedByDriver(t *testing.T) {
	s := newStore(t)
	create(t, s, entity.NewEntity{Name: "r1", Driver: "rack"},
		entity.NewEntity{Name: "net1", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.3.0/24"), str("gateway", "10.0.3.1")}},
		entity.NewEntity{Name: "s1", Driver: "server", Attrs: []entity.Attr{
			{Key: "installed", Value: entity.Time(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))},
			{Key: "rack", Value: entity.Ref("r1")},
			{Key: "ip", Subkey: "eth0", Value: entity.String("10.0.3.5")},
		}})
	want := []entity.Attr{
		{Key: "installed", Value: entity.Value{Type: entity.TypeTime, Text: "2026-03-01T00:00:00Z"}},
		{Key: "ip", Subkey: "eth0", Value: entity.Value{Type: entity.TypeIP, Text: "10.0.3.5"}},
		{Key: "rack", Value: entity.Ref("r1")},
	}
	if diff := cmp.Diff(want, get(t, s, "s1").Attrs); diff != "" {
		t.Errorf("s1 attrs (-want +got):\n%s", diff)
	}
	wantNet := []entity.Attr{str("cidr", "10.0.3.0/24"), {Key: "gateway", Value: entity.Value{Type: entity.TypeIP, Text: "10.0.3.1"}}}
	if diff := cmp.Diff(wantNet, get(t, s, "net1").Attrs); diff != "" {
		t.Errorf("net1 attrs (-want +got):\n%s", diff)
	}
	bad := []struct {
		name string
		e    entity.NewEntity
	}{
		{"cidr must parse", entity.NewEntity{Name: "b1", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.3.0/33")}}},
		{"cidr must have no host bits", entity.NewEntity{Name: "b2", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.3.5/24")}}},
		{"units must be positive", entity.NewEntity{Name: "r2", Driver: "rack", Attrs: []entity.Attr{num("units", 0)}}},
		{"units must be an integer", entity.NewEntity{Name: "r3", Driver: "rack", Attrs: []entity.Attr{str("units", "forty")}}},
		{"gateway must be an address", entity.NewEntity{Name: "b3", Driver: "ipblock", Attrs: []entity.Attr{str("gateway", "router")}}},
		{"a ref must name an entity", entity.NewEntity{Name: "s2", Driver: "server", Attrs: []entity.Attr{{Key: "rack", Value: entity.Ref("nowhere")}}}},
		{"a bool key refuses a number", entity.NewEntity{Name: "p1", Driver: "pool", Attrs: []entity.Attr{num("exclusive", 3)}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := tryWrite(s, func(tx *store.Tx) error { return tx.Create(tc.e) })
			wantKind(t, err, entity.KindInvalid)
			if ok, _ := s.Exists(context.Background(), tc.e.Name); ok {
				t.Errorf("%s was stored despite the error", tc.e.Name)
			}
		})
	}
}
