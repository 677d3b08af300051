package invfile

import (
	"testing"

	"github.com/clusto/clusto/entity"
)

// TestBlockIndexPicksTheMostSpecificBlock: an address of a file's ips
// section belongs to the longest prefix that holds it, the first block
// listed winning between two of the same prefix.
func TestBlockIndexPicksTheMostSpecificBlock(t *testing.T) {
	ix := newBlockIndex([]entity.BlockCIDR{
		{Name: "site", CIDR: "10.0.0.0/8"},
		{Name: "dc1", CIDR: "10.1.0.0/16"},
		{Name: "rack1", CIDR: "10.1.2.0/24"},
		{Name: "rack1-again", CIDR: "10.1.2.0/24"},
		{Name: "v6", CIDR: "2001:db8::/48"},
		{Name: "v6-rack", CIDR: "2001:db8:0:7::/64"},
		{Name: "broken", CIDR: "not a cidr"},
	})
	cases := []struct {
		addr, want string
		ok         bool
	}{
		{"10.1.2.7", "rack1", true},
		{"10.1.3.7", "dc1", true},
		{"10.200.0.1", "site", true},
		{"11.0.0.1", "", false},
		{"2001:db8:0:7::9", "v6-rack", true},
		{"2001:db8:0:8::9", "v6", true},
		{"2001:db9::1", "", false},
		{"::ffff:10.1.2.7", "", false}, // an IPv6 address, even if it maps an IPv4 one
		{"not an address", "", false},
	}
	for _, tc := range cases {
		got, ok := ix.blockFor(tc.addr)
		if got != tc.want || ok != tc.ok {
			t.Errorf("blockFor(%q) = %q, %v; want %q, %v", tc.addr, got, ok, tc.want, tc.ok)
		}
	}
}
