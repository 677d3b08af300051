package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// blocks builds net (10.0.0.0/24, gateway .1) with a child block sub
// (10.0.0.128/26), 100 addresses for h1 and 20 for h2; and tiny, a /30
// whose two addresses h2 holds.
func blocks(e *env) {
	str := func(k, v string) entity.Attr { return entity.Attr{Key: k, Value: entity.String(v)} }
	e.write(func(tx *store.Tx) error {
		for _, n := range []entity.NewEntity{
			{Name: "net", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.0.0/24"), str("gateway", "10.0.0.1")}},
			{Name: "sub", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "10.0.0.128/26")}},
			{Name: "tiny", Driver: "ipblock", Attrs: []entity.Attr{str("cidr", "192.168.9.0/30")}},
			{Name: "h1", Driver: "server"}, {Name: "h2", Driver: "server"},
		} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		if _, err := tx.Insert("net", "sub", entity.Placement{}); err != nil {
			return err
		}
		for _, r := range []entity.IPRequest{
			{Block: "net", Entity: "h1", Count: 100, Interface: "eth0"},
			{Block: "net", Entity: "h2", Count: 20, Interface: "eth1"},
			{Block: "tiny", Entity: "h2", Count: 2},
		} {
			if _, err := tx.AllocateIP(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// facts is the block page's numbers, by their class.
func facts(p *page) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"size", "used", "reserved", "free", "nextfree", "gateway", "cidr"} {
		for _, n := range p.byClass(k) {
			if n.Data == "dd" {
				out[k] = strings.TrimSpace(text(n))
			}
		}
	}
	return out
}

func TestBlockPageShowsUseChildrenAndNextFree(t *testing.T) {
	e := newEnv(t, false)
	blocks(e)
	p := e.ok("/ui/block?name=net")
	// 256 addresses: 120 used; reserved the network, broadcast and
	// gateway addresses and sub's 64.
	want := map[string]string{"size": "256", "used": "120", "reserved": "67", "free": "69", "nextfree": "10.0.0.122",
		"gateway": "10.0.0.1", "cidr": "10.0.0.0/24"}
	if diff := cmp.Diff(want, facts(p)); diff != "" {
		t.Errorf("facts (-want +got):\n%s", diff)
	}
	// The bar: its parts drawn with width attributes, in thousandths.
	widths := map[string]string{}
	for _, s := range p.byClass("bar") {
		for _, r := range (&page{Doc: s}).all("rect") {
			widths[attr(r, "class")] = attr(r, "width")
		}
	}
	if diff := cmp.Diff(map[string]string{"all": "1000", "used": "468", "reserved": "261"}, widths); diff != "" {
		t.Errorf("bar widths (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"sub"}, innerTexts(p.byClass("children"), "a")); diff != "" {
		t.Errorf("child blocks (-want +got):\n%s", diff)
	}
	// The child's page links back to its parent.
	sp := e.get("/ui/block?name=sub")
	if !hrefs(sp)["/ui/block?name=net"] || !hrefs(p)["/ui/block?name=sub"] {
		t.Errorf("sub's page has no link to net")
	}
}

func TestBlockPageAllocationsArePaged(t *testing.T) {
	e := newEnv(t, false)
	blocks(e)
	p := e.get("/ui/block?name=net")
	r := rows(p)
	if len(r) != 100 {
		t.Fatalf("%d allocations on the first page, want 100", len(r))
	}
	if diff := cmp.Diff([]string{"10.0.0.2", "h1", "eth0"}, r[0]); diff != "" {
		t.Errorf("first allocation (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"10.0.0.101", "h1", "eth0"}, r[99]); diff != "" {
		t.Errorf("last allocation of page 1 (-want +got):\n%s", diff)
	}
	var next string
	for _, a := range p.all("a") {
		if attr(a, "rel") == "next" {
			next = attr(a, "href")
		}
	}
	want := "/ui/block?" + url.Values{"after": {"10.0.0.101"}, "name": {"net"}}.Encode()
	if next != want {
		t.Fatalf("next page %q, want %q", next, want)
	}
	p = e.get(next)
	r = rows(p)
	if len(r) != 20 {
		t.Fatalf("%d allocations on the second page, want 20", len(r))
	}
	if diff := cmp.Diff([]string{"10.0.0.102", "h2", "eth1"}, r[0]); diff != "" {
		t.Errorf("first of page 2 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"10.0.0.121", "h2", "eth1"}, r[19]); diff != "" {
		t.Errorf("last of page 2 (-want +got):\n%s", diff)
	}
	for _, a := range p.all("a") {
		if attr(a, "rel") == "next" {
			t.Errorf("a next page after the last: %s", attr(a, "href"))
		}
	}
	if !hrefs(p)["/ui/entity?name=h2"] {
		t.Errorf("the holder is not a link")
	}
	for _, c := range []struct{ after, says string }{
		{"nonsense", "not an IP address"},
		{"10.9.9.9", "outside block"},
	} {
		p := e.get("/ui/block?name=net&after=" + c.after)
		msg := problem(p)
		if p.Status != http.StatusBadRequest || !strings.Contains(msg, c.says) {
			t.Errorf("after=%s: %d %q, want 400 saying %q", c.after, p.Status, msg, c.says)
		}
	}
}

func TestBlockPageOfAFullBlock(t *testing.T) {
	e := newEnv(t, false)
	blocks(e)
	p := e.ok("/ui/block?name=tiny")
	f := facts(p)
	if f["size"] != "4" || f["used"] != "2" || f["free"] != "0" || !strings.HasPrefix(f["nextfree"], "none") {
		t.Errorf("full block: %v", f)
	}
}

func TestBlockPageOfAnIPv6Block(t *testing.T) {
	e := newEnv(t, false)
	e.write(func(tx *store.Tx) error {
		for _, n := range []entity.NewEntity{
			{Name: "v6", Driver: "ipblock", Attrs: []entity.Attr{{Key: "cidr", Value: entity.String("2001:db8::/64")}}},
			{Name: "h", Driver: "server"},
		} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		_, err := tx.AllocateIP(entity.IPRequest{Block: "v6", Entity: "h"})
		return err
	})
	p := e.ok("/ui/block?name=v6")
	want := map[string]string{"size": "18446744073709551616", "used": "1", "reserved": "0", "free": "18446744073709551615",
		"nextfree": "2001:db8::1", "cidr": "2001:db8::/64"}
	if diff := cmp.Diff(want, facts(p)); diff != "" {
		t.Errorf("facts (-want +got):\n%s", diff)
	}
	// One address in 2^64 is still drawn, one thousandth wide.
	for _, s := range p.byClass("bar") {
		for _, r := range (&page{Doc: s}).all("rect") {
			if attr(r, "class") == "used" && attr(r, "width") != "1" {
				t.Errorf("used width %s, want 1", attr(r, "width"))
			}
		}
	}
	if got := rows(p); len(got) != 1 || got[0][0] != "2001:db8::" {
		t.Errorf("allocations %v", got)
	}
}
