package store_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
)

func TestResolveAndLookup(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ip := func(a string) entity.Attr {
		return entity.Attr{Key: "ip", Value: entity.IP(netip.MustParseAddr(a))}
	}
	create(t, s,
		entity.NewEntity{Name: "s1", Driver: "server", Attrs: []entity.Attr{ip("10.0.0.1"), str("mac", "AA:BB:CC:00:11:22"), str("serial", "XY-1")}},
		entity.NewEntity{Name: "s2", Driver: "server", Attrs: []entity.Attr{ip("10.0.0.2"), str("serial", "s1")}},
		entity.NewEntity{Name: "net", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.0.0/24"), {Key: "gateway", Value: entity.IP(netip.MustParseAddr("10.0.0.2"))}}},
		entity.NewEntity{Name: "10.9.9.9", Driver: "server"},
	)
	tests := []struct {
		term string
		want []entity.Match
	}{
		{"10.0.0.1", []entity.Match{{Name: "s1", Driver: "server", By: "ip", Key: "ip", Value: "10.0.0.1"}}},
		{"aabb.cc00.1122", []entity.Match{{Name: "s1", Driver: "server", By: "mac", Key: "mac", Value: "AA:BB:CC:00:11:22"}}},
		{"aa-bb-cc-00-11-22", []entity.Match{{Name: "s1", Driver: "server", By: "mac", Key: "mac", Value: "AA:BB:CC:00:11:22"}}},
		{"xy-1", []entity.Match{{Name: "s1", Driver: "server", By: "serial", Key: "serial", Value: "XY-1"}}},
		// Any attribute of type ip counts: the block's gateway too.
		{"10.0.0.2", []entity.Match{
			{Name: "net", Driver: "ipblock", By: "ip", Key: "gateway", Value: "10.0.0.2"},
			{Name: "s2", Driver: "server", By: "ip", Key: "ip", Value: "10.0.0.2"},
		}},
		// A name and another entity's serial: both, each once.
		{"s1", []entity.Match{
			{Name: "s1", Driver: "server", By: "name"},
			{Name: "s2", Driver: "server", By: "serial", Key: "serial", Value: "s1"},
		}},
		// An address-looking name is found by name.
		{"10.9.9.9", []entity.Match{{Name: "10.9.9.9", Driver: "server", By: "name"}}},
		{"nothing", []entity.Match{}},
		// Not a valid name (a space), still a possible serial.
		{"a b", []entity.Match{}},
	}
	for _, tc := range tests {
		t.Run(tc.term, func(t *testing.T) {
			got, err := s.Resolve(ctx, tc.term)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
	e, m, err := s.Lookup(ctx, "AABBCC001122")
	if err != nil || e.Name != "s1" || m.By != entity.MatchMAC {
		t.Fatalf("lookup by bare MAC: %v %+v %v", e, m, err)
	}
	_, _, err = s.Lookup(ctx, "nothing")
	wantKind(t, err, entity.KindNotFound)
	_, _, err = s.Lookup(ctx, "s1")
	wantKind(t, err, entity.KindConflict)
	var ee *entity.Error
	if !asError(err, &ee) || len(ee.Details["candidates"].([]entity.Match)) != 2 {
		t.Fatalf("conflict without candidates: %#v", err)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", entity.MaxLookupTermLen+1), "a\x00b"} {
		_, err := s.Resolve(ctx, bad)
		wantKind(t, err, entity.KindInvalid)
	}
}
