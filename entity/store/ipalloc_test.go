package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func block(name, cidr string, attrs ...entity.Attr) entity.NewEntity {
	return entity.NewEntity{Name: name, Driver: "ipblock", Attrs: append([]entity.Attr{str("cidr", cidr)}, attrs...)}
}

func allocate(t testing.TB, s *store.Store, req entity.IPRequest) []string {
	t.Helper()
	var got []entity.Allocation
	write(t, s, func(tx *store.Tx) error {
		var err error
		got, err = tx.AllocateIP(req)
		return err
	})
	var addrs []string
	for _, a := range got {
		addrs = append(addrs, a.Address)
	}
	return addrs
}

func tryAllocate(s *store.Store, req entity.IPRequest) ([]entity.Allocation, error) {
	var got []entity.Allocation
	err := tryWrite(s, func(tx *store.Tx) error {
		var err error
		got, err = tx.AllocateIP(req)
		return err
	})
	return got, err
}

func TestAllocateLowestFree(t *testing.T) {
	tests := []struct {
		name    string
		block   entity.NewEntity
		count   int
		want    []string
		exhaust bool // a further allocation is exhausted
	}{
		{"ipv4 /24 skips network and gateway", block("b", "10.0.3.0/24", str("gateway", "10.0.3.1")), 3, []string{"10.0.3.2", "10.0.3.3", "10.0.3.4"}, false},
		{"ipv4 /30 without gateway: two hosts", block("b", "10.0.0.0/30"), 2, []string{"10.0.0.1", "10.0.0.2"}, true},
		{"ipv4 /30 with gateway: one host", block("b", "10.0.0.0/30", str("gateway", "10.0.0.1")), 1, []string{"10.0.0.2"}, true},
		{"ipv4 /31 uses both addresses", block("b", "192.0.2.0/31"), 2, []string{"192.0.2.0", "192.0.2.1"}, true},
		{"ipv4 /32 is its one address", block("b", "192.0.2.7/32"), 1, []string{"192.0.2.7"}, true},
		{"ipv6 /64 from the bottom", block("b", "2001:db8::/64", str("gateway", "2001:db8::1")), 3, []string{"2001:db8::", "2001:db8::2", "2001:db8::3"}, false},
		{"ipv6 /127", block("b", "2001:db8::/127"), 2, []string{"2001:db8::", "2001:db8::1"}, true},
		{"ipv6 /128", block("b", "2001:db8::5/128"), 1, []string{"2001:db8::5"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			create(t, s, tc.block, entity.NewEntity{Name: "s1", Driver: "server"})
			got := allocate(t, s, entity.IPRequest{Block: "b", Entity: "s1", Count: tc.count, Interface: "eth0"})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			_, err := tryAllocate(s, entity.IPRequest{Block: "b", Entity: "s1"})
			if tc.exhaust {
				wantKind(t, err, entity.KindConflict)
				if e, _ := err.(*entity.Error); e == nil || e.Code != "exhausted" {
					t.Errorf("error code = %v, want exhausted", err)
				}
			} else if err != nil {
				t.Errorf("next allocation: %v", err)
			}
		})
	}
}

func TestAllocateExactAndRelease(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s, block("net", "10.0.3.0/24", str("gateway", "10.0.3.1")),
		entity.NewEntity{Name: "s1", Driver: "server"}, entity.NewEntity{Name: "s2", Driver: "server"})
	if got := allocate(t, s, entity.IPRequest{Block: "net", Entity: "s1", Address: "10.0.3.50", Interface: "eth0"}); got[0] != "10.0.3.50" {
		t.Fatalf("exact allocation gave %v", got)
	}
	bad := []struct {
		name, addr string
		want       entity.ErrorKind
	}{
		{"taken", "10.0.3.50", entity.KindConflict},
		{"outside", "10.0.4.1", entity.KindConflict},
		{"gateway", "10.0.3.1", entity.KindConflict},
		{"network", "10.0.3.0", entity.KindConflict},
		{"broadcast", "10.0.3.255", entity.KindConflict},
		{"not an address", "10.0.3", entity.KindInvalid},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tryAllocate(s, entity.IPRequest{Block: "net", Entity: "s2", Address: tc.addr})
			wantKind(t, err, tc.want)
		})
	}
	// IPv4-mapped IPv6 is the same address.
	_, err := tryAllocate(s, entity.IPRequest{Block: "net", Entity: "s2", Address: "::ffff:10.0.3.50"})
	wantKind(t, err, entity.KindConflict)

	allocate(t, s, entity.IPRequest{Block: "net", Entity: "s2", Count: 3}) // .2 .3 .4
	var released entity.Allocation
	write(t, s, func(tx *store.Tx) error {
		var err error
		released, err = tx.ReleaseIP("net", "10.0.3.3")
		return err
	})
	if released.Entity != "s2" {
		t.Errorf("released %+v", released)
	}
	// A freed address below the last one handed out is reused first.
	if got := allocate(t, s, entity.IPRequest{Block: "net", Entity: "s1"}); got[0] != "10.0.3.3" {
		t.Errorf("after release the lowest free is %v, want 10.0.3.3", got)
	}
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { _, err := tx.ReleaseIP("net", "10.0.3.99"); return err }), entity.KindNotFound)

	// The holder carries the addresses as ip attributes (subkey: interface).
	var ips []string
	for _, a := range get(t, s, "s1").Attrs {
		if a.Key == "ip" {
			ips = append(ips, a.Subkey+"="+a.Value.Text)
		}
	}
	if diff := cmp.Diff([]string{"=10.0.3.3", "eth0=10.0.3.50"}, ips); diff != "" {
		t.Errorf("s1 ip attributes (-want +got):\n%s", diff)
	}
	var st *entity.BlockStatus
	if err := s.View(ctx, func(tx *store.View) error { var err error; st, err = tx.BlockStatus("net", "", 0); return err }); err != nil {
		t.Fatal(err)
	}
	if st.Size.Int64() != 256 || st.Reserved.Int64() != 3 || st.Allocated != 4 || st.Free.Int64() != 249 || len(st.Allocs) != 4 {
		t.Errorf("status = size %v reserved %v allocated %d free %v allocs %d", st.Size, st.Reserved, st.Allocated, st.Free, len(st.Allocs))
	}
	// Each allocation and release is one change.
	changes, _ := s.Changes(ctx, 0, 1000)
	count := map[string]int{}
	for _, c := range changes {
		count[c.Op]++
	}
	if count[entity.OpAllocate] != 5 || count[entity.OpRelease] != 1 {
		t.Errorf("change log has %d allocate and %d release records, want 5 and 1", count[entity.OpAllocate], count[entity.OpRelease])
	}
}

func TestNestedBlocks(t *testing.T) {
	s := newStore(t)
	create(t, s, block("site", "10.0.0.0/16"), block("rackA", "10.0.0.0/24"), block("rackB", "10.0.1.0/25"),
		block("stray", "10.9.0.0/24"), block("overlap", "10.0.1.0/26"), entity.NewEntity{Name: "s1", Driver: "server"})
	write(t, s, func(tx *store.Tx) error {
		for _, c := range []string{"rackA", "rackB"} {
			if _, err := tx.Insert("site", c, entity.Placement{}); err != nil {
				return err
			}
		}
		return nil
	})
	// The parent skips its children's ranges: 10.0.0.0/24 and 10.0.1.0/25.
	if got := allocate(t, s, entity.IPRequest{Block: "site", Entity: "s1", Count: 2}); !cmp.Equal(got, []string{"10.0.1.128", "10.0.1.129"}) {
		t.Errorf("parent allocation = %v", got)
	}
	_, err := tryAllocate(s, entity.IPRequest{Block: "site", Entity: "s1", Address: "10.0.0.7"})
	wantKind(t, err, entity.KindConflict)
	if !strings.Contains(err.Error(), "inside child block rackA") {
		t.Errorf("a child's address: %v", err)
	}
	// Network and gateway merge into one reserved span; it is still
	// reported as reserved, not as a child block.
	create(t, s, block("gw", "10.5.0.0/24", str("gateway", "10.5.0.1")))
	_, err = tryAllocate(s, entity.IPRequest{Block: "gw", Entity: "s1", Address: "10.5.0.1"})
	wantKind(t, err, entity.KindConflict)
	if !strings.Contains(err.Error(), "reserved") {
		t.Errorf("the gateway: %v", err)
	}
	if got := allocate(t, s, entity.IPRequest{Block: "rackA", Entity: "s1"}); got[0] != "10.0.0.1" {
		t.Errorf("child allocation = %v", got)
	}
	for _, tc := range []struct {
		child string
		want  entity.ErrorKind
	}{{"stray", entity.KindInvalid}, {"overlap", entity.KindConflict}} {
		wantKind(t, tryWrite(s, func(tx *store.Tx) error { _, err := tx.Insert("site", tc.child, entity.Placement{}); return err }), tc.want)
	}
	// A child cannot be carved out of addresses the parent already handed out.
	create(t, s, block("late", "10.0.1.128/28"))
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { _, err := tx.Insert("site", "late", entity.Placement{}); return err }), entity.KindConflict)
	// Nor can a block in use change its cidr.
	wantKind(t, tryWrite(s, func(tx *store.Tx) error {
		_, err := tx.SetAttr("site", entity.AttrSelector{Key: "cidr"}, []entity.Value{entity.String("10.1.0.0/16")})
		return err
	}), entity.KindConflict)
}

func TestDeleteHolderOrBlock(t *testing.T) {
	s := newStore(t)
	create(t, s, block("net", "10.0.3.0/24"), entity.NewEntity{Name: "s1", Driver: "server"}, entity.NewEntity{Name: "s2", Driver: "server"})
	allocate(t, s, entity.IPRequest{Block: "net", Entity: "s1", Count: 2})
	allocate(t, s, entity.IPRequest{Block: "net", Entity: "s2"})
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { return tx.Delete("s1", false) }), entity.KindConflict)
	write(t, s, func(tx *store.Tx) error { return tx.Delete("s1", true) })
	// s1's addresses are free again and the lowest is reused.
	if got := allocate(t, s, entity.IPRequest{Block: "net", Entity: "s2"}); got[0] != "10.0.3.1" {
		t.Errorf("after deleting the holder the lowest free is %v", got)
	}
	wantKind(t, tryWrite(s, func(tx *store.Tx) error { return tx.Delete("net", false) }), entity.KindConflict)
	write(t, s, func(tx *store.Tx) error { return tx.Delete("net", true) })
	for _, a := range get(t, s, "s2").Attrs {
		if a.Key == "ip" {
			t.Errorf("s2 still has %v after its block was deleted", a)
		}
	}
}

// BenchmarkNextFreeAddress measures finding and taking the lowest free
// address in a /16 holding 60,000 allocations and an IPv6 /64 holding
// 100,000, with a few holes released low in the block.
func BenchmarkNextFreeAddress(b *testing.B) {
	for _, tc := range []struct {
		name, cidr string
		n          int
	}{{"ipv4-16-60000", "10.0.0.0/16", 60000}, {"ipv6-64-100000", "2001:db8::/64", 100000}} {
		b.Run(tc.name, func(b *testing.B) {
			s := newStore(b)
			create(b, s, block("big", tc.cidr), entity.NewEntity{Name: "holder", Driver: "server"})
			for done := 0; done < tc.n; done += entity.MaxIPCount {
				allocate(b, s, entity.IPRequest{Block: "big", Entity: "holder", Count: min(entity.MaxIPCount, tc.n-done)})
			}
			ctx := context.Background()
			// A hole low in the block, so the search passes runs on both sides.
			write(b, s, func(tx *store.Tx) error {
				st, err := tx.BlockStatus("big", "", 101)
				if err != nil {
					return err
				}
				_, err = tx.ReleaseIP("big", st.Allocs[100].Address)
				return err
			})
			b.Run("find", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := s.View(ctx, func(tx *store.View) error { _, err := tx.NextFreeIP("big"); return err }); err != nil {
						b.Fatal(err)
					}
				}
			})
			allocate(b, s, entity.IPRequest{Block: "big", Entity: "holder"}) // fill the hole
			b.Run("allocate-and-release", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					var got []entity.Allocation
					if err := s.Update(ctx, "bench", func(tx *store.Tx) error {
						var err error
						got, err = tx.AllocateIP(entity.IPRequest{Block: "big", Entity: "holder"})
						if err != nil {
							return err
						}
						// Put it back so every iteration searches the same full block.
						_, err = tx.ReleaseIP("big", got[0].Address)
						return err
					}); err != nil {
						b.Fatal(err)
					}
				}
			})
			var st *entity.BlockStatus
			s.View(ctx, func(tx *store.View) error { var err error; st, err = tx.BlockStatus("big", "", 1); return err })
			if st.Allocated != int64(tc.n) {
				b.Fatalf("block holds %d allocations, want %d", st.Allocated, tc.n)
			}
		})
	}
}
