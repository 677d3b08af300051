package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"

	"github.com/clusto/clusto/entity"
)

// Address blocks. A block's cidr is the frame every other fact about it is
// measured in (allocations are offsets from its network address), so the
// rules read it first: one canonical network, child blocks inside it and
// apart, allocations inside it, never on a reserved address or inside a
// child, and each address held once across the hierarchy.
//
// At commit a rule looks at what the transaction could have moved: a
// block whose cidr changed, or that was put in a parent, has its place
// checked again and all its allocations; otherwise only the allocations
// the transaction made are checked. Which inputs changed is read from the
// rows the transaction wrote (their since and until), not from the path
// that wrote them.

// blockInfo is a block as the rules see it.
type blockInfo struct {
	id              int64
	name            string
	cidrs, gateways []string
	prefix          netip.Prefix
	valid           bool  // prefix is its one canonical network
	parent          int64 // the block it is in; 0 for none
	cidrChanged     bool  // by this transaction (always, for a whole check)
	gatewayChanged  bool
	placedChanged   bool
	inScope         bool
	children        []*blockInfo // loaded on demand, valid ones only, by first address
	childrenLoaded  bool
}

// mapped4 is the IPv4-mapped IPv6 range: an IPv6 block over it would hand
// out the very addresses (stored alike) that an IPv4 block hands out.
var mapped4 = netip.MustParsePrefix("::ffff:0.0.0.0/96")

// canonicalPrefix is the network a block stores for p: an IPv4-mapped
// IPv6 network (::ffff:10.0.0.0/104) is the IPv4 network it maps
// (10.0.0.0/8), since addresses are stored alike; an IPv6 network that
// takes in part of the mapped range but is not inside it is refused.
func canonicalPrefix(p netip.Prefix) (netip.Prefix, error) {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96), nil
	}
	if p.Addr().Is6() && p.Overlaps(mapped4) {
		return p, fmt.Errorf("%s takes in the IPv4-mapped range %s, whose addresses are IPv4 addresses; give IPv4 networks as IPv4 (10.0.0.0/8)", p, mapped4)
	}
	return p, nil
}

// cidrProblem says what is wrong with a stored cidr value, if anything.
func cidrProblem(v string) (netip.Prefix, string) {
	p, err := netip.ParsePrefix(v)
	switch {
	case err != nil:
		return p, fmt.Sprintf("cidr %q is not a network", v)
	case p.Masked() != p:
		return p, fmt.Sprintf("cidr %s has host bits set (the network is %s)", v, p.Masked())
	case p.Addr().Is4In6() && p.Bits() >= 96:
		return p, fmt.Sprintf("cidr %s is an IPv4-mapped IPv6 network; it is the IPv4 network %s", v, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96))
	case p.Addr().Is6() && p.Overlaps(mapped4):
		return p, fmt.Sprintf("cidr %s takes in the IPv4-mapped range %s, whose addresses are IPv4 addresses", v, mapped4)
	case p.String() != v:
		return p, fmt.Sprintf("cidr %q is not written canonically (%s)", v, p)
	}
	return p, ""
}

const blockCols = `e.id, e.name,
	(SELECT json_group_array(a.value) FROM attrs a INDEXED BY attrs_cur_entity WHERE a.entity_id = e.id AND a.key = 'cidr' AND a.until IS NULL),
	(SELECT json_group_array(a.value) FROM attrs a INDEXED BY attrs_cur_entity WHERE a.entity_id = e.id AND a.key = 'gateway' AND a.until IS NULL),
	coalesce((SELECT x.a FROM connections x JOIN entities p ON p.id = x.a AND p.until IS NULL AND p.driver = 'ipblock'
		WHERE x.b = e.id AND x.type = 'contains' AND x.until IS NULL LIMIT 1), 0),
	EXISTS (SELECT 1 FROM attrs a INDEXED BY attrs_hist WHERE a.entity_id = e.id AND a.key = 'cidr' AND (a.since >= ?1 OR a.until >= ?1)),
	EXISTS (SELECT 1 FROM attrs a INDEXED BY attrs_hist WHERE a.entity_id = e.id AND a.key = 'gateway' AND (a.since >= ?1 OR a.until >= ?1)),
	EXISTS (SELECT 1 FROM connections x WHERE x.b = e.id AND x.type = 'contains' AND (x.since >= ?1 OR x.until >= ?1))`

// blocksSQL selects blockCols of the blocks cond selects, by id. A
// condition on ids is a handful of blocks: the unary + keeps SQLite from
// walking every block by the driver index and testing each id against the
// condition (1.5 ms per address allocated among 2,300 blocks), so that it
// looks the ids up instead; "1", every block, walks the driver index.
func blocksSQL(cond string) string {
	driver := "+e.driver"
	if cond == "1" {
		driver = "e.driver"
	}
	return `SELECT ` + blockCols + ` FROM entities e WHERE ` + driver + ` = 'ipblock' AND e.until IS NULL AND ` + cond + ` ORDER BY e.id`
}

// loadBlocks reads the blocks cond selects (cond binds ?2 onwards) into
// the cache and returns them in id order.
func (c *checker) loadBlocks(cond string, args ...any) ([]*blockInfo, error) {
	if c.blockCache == nil {
		c.blockCache = map[int64]*blockInfo{}
	}
	from := c.firstCid
	if !c.scoped {
		from = 0 // every row counts as changed
	}
	var out []*blockInfo
	err := c.rows(blocksSQL(cond),
		append([]any{from}, args...), func(r *sql.Rows) error {
			b := &blockInfo{}
			var cidrs, gws string
			if err := r.Scan(&b.id, &b.name, &cidrs, &gws, &b.parent, &b.cidrChanged, &b.gatewayChanged, &b.placedChanged); err != nil {
				return err
			}
			if old, ok := c.blockCache[b.id]; ok {
				out = append(out, old)
				return nil
			}
			if err := json.Unmarshal([]byte(cidrs), &b.cidrs); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(gws), &b.gateways); err != nil {
				return err
			}
			if len(b.cidrs) == 1 {
				if p, why := cidrProblem(b.cidrs[0]); why == "" {
					b.prefix, b.valid = p, true
				}
			}
			c.blockCache[b.id] = b
			out = append(out, b)
			return nil
		})
	return out, err
}

// changedBlocksCond selects the blocks whose cidr or gateway a
// transaction wrote or ended, that it placed, or that it handed out or
// took back addresses of (?1: its first change; ?2-?4: the start rowids of
// attrs, connections and ip_allocations). UNION ALL: IN needs no
// duplicates removed, and each UNION step cost a temporary b-tree.
const changedBlocksCond = `e.id IN (SELECT x.entity_id FROM attrs x NOT INDEXED WHERE x.rid > ?2 AND x.key IN ('cidr', 'gateway')
	UNION ALL SELECT x.entity_id FROM attrs x INDEXED BY attrs_ended WHERE x.until >= ?1 AND x.key IN ('cidr', 'gateway')
	UNION ALL SELECT x.b FROM connections x NOT INDEXED WHERE x.rid > ?3 AND x.type = 'contains'
	UNION ALL SELECT x.block_id FROM ip_allocations x NOT INDEXED WHERE x.rid > ?4
	UNION ALL SELECT x.block_id FROM ip_allocations x INDEXED BY ipalloc_ended WHERE x.until >= ?1)`

// scopeBlocks returns the blocks the rules look at: those the transaction
// changed (see the condition below), or
// every block.
func (c *checker) scopeBlocks() ([]*blockInfo, error) {
	if c.blocksLoaded {
		return c.scope, nil
	}
	cond, args := "1", []any(nil)
	if c.scoped {
		cond = changedBlocksCond
		args = []any{c.startRid["attrs"], c.startRid["connections"], c.startRid["ip_allocations"]}
	}
	bs, err := c.loadBlocks(cond, args...)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		b.inScope = true
	}
	c.scope, c.blocksLoaded = bs, true
	return bs, nil
}

// block returns block id (0 and missing ones give nil).
func (c *checker) block(id int64) (*blockInfo, error) {
	if id == 0 {
		return nil, nil
	}
	if b, ok := c.blockCache[id]; ok {
		return b, nil
	}
	bs, err := c.loadBlocks("e.id = ?2", id)
	if err != nil || len(bs) == 0 {
		return nil, err
	}
	return bs[0], nil
}

// childrenOf returns a block's valid child blocks by first address.
func (c *checker) childrenOf(b *blockInfo) ([]*blockInfo, error) {
	if b.childrenLoaded {
		return b.children, nil
	}
	var ids []int64
	err := c.rows(`SELECT x.b FROM connections x CROSS JOIN entities e ON e.id = x.b AND e.until IS NULL AND e.driver = 'ipblock'
		WHERE x.a = ? AND x.type = 'contains' AND x.until IS NULL`, []any{b.id}, func(r *sql.Rows) error {
		var id int64
		if err := r.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var missing []int64
	for _, id := range ids {
		if _, ok := c.blockCache[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		list, _ := json.Marshal(missing)
		if _, err := c.loadBlocks("e.id IN (SELECT value FROM json_each(?2))", string(list)); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		if k := c.blockCache[id]; k != nil && k.valid {
			b.children = append(b.children, k)
		}
	}
	sort.Slice(b.children, func(i, j int) bool { return b.children[i].prefix.Addr().Less(b.children[j].prefix.Addr()) })
	b.childrenLoaded = true
	return b.children, nil
}

// lastAddr is the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	host := 128 - p.Bits()
	if p.Addr().Is4() {
		host = 32 - p.Bits()
	}
	for i := 15; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		return a.Unmap()
	}
	return a
}

func testBlockCIDR(c *checker) error {
	bs, err := c.scopeBlocks()
	if err != nil {
		return err
	}
	for _, b := range bs {
		for _, v := range b.cidrs {
			if _, why := cidrProblem(v); why != "" {
				c.report(fmt.Sprintf("block %s: %s", b.name, why), []string{b.name}, map[string]any{"cidr": v})
			}
		}
		if len(b.cidrs) > 0 {
			continue
		}
		var kids, allocs int
		if err := c.q.QueryRowContext(c.ctx, `SELECT
			(SELECT count(*) FROM connections x JOIN entities e ON e.id = x.b AND e.until IS NULL AND e.driver = 'ipblock' WHERE x.a = ?1 AND x.type = 'contains' AND x.until IS NULL),
			(SELECT count(*) FROM ip_allocations WHERE block_id = ?1 AND until IS NULL)`, b.id).Scan(&kids, &allocs); err != nil {
			return entity.Internal("check "+c.rule, err)
		}
		if b.parent != 0 || kids > 0 || allocs > 0 {
			c.report(fmt.Sprintf("block %s has no cidr, yet it is inside a block, holds %d blocks and hands out %d addresses", b.name, kids, allocs), []string{b.name}, nil)
		}
	}
	return nil
}

// reservedOffsets are the offsets a block never hands out, with why.
func reservedOffsets(b *blockInfo) map[uint64]string {
	res := map[uint64]string{}
	bb := &block{prefix: b.prefix}
	setMaxOff(bb)
	if b.prefix.Addr().Is4() && b.prefix.Bits() <= 30 {
		res[0], res[bb.maxOff] = "its network address", "its broadcast address"
	}
	for _, g := range b.gateways {
		if a, err := netip.ParseAddr(g); err == nil {
			if o, ok := addrToOffset(b.prefix, a.Unmap()); ok {
				res[o] = "its gateway"
			}
		}
	}
	return res
}

func testBlockGateway(c *checker) error {
	bs, err := c.scopeBlocks()
	if err != nil {
		return err
	}
	for _, b := range bs {
		if !b.valid {
			continue
		}
		for _, g := range b.gateways {
			a, err := netip.ParseAddr(g)
			vals := map[string]any{"gateway": g, "cidr": b.prefix.String()}
			switch {
			case err != nil:
				c.report(fmt.Sprintf("block %s: gateway %q is not an address", b.name, g), []string{b.name}, vals)
			case !b.prefix.Contains(a.Unmap()):
				c.report(fmt.Sprintf("block %s: gateway %s lies outside %s", b.name, g, b.prefix), []string{b.name}, vals)
			case b.prefix.Addr().Is4() && b.prefix.Bits() <= 30 && (a.Unmap() == b.prefix.Addr() || a.Unmap() == lastAddr(b.prefix)):
				c.report(fmt.Sprintf("block %s: gateway %s is the network or broadcast address of %s", b.name, g, b.prefix), []string{b.name}, vals)
			}
		}
	}
	return nil
}

func testBlockInsideParent(c *checker) error {
	bs, err := c.scopeBlocks()
	if err != nil {
		return err
	}
	inside := func(k, p *blockInfo) {
		if !k.valid || !p.valid {
			return
		}
		if k.prefix.Bits() <= p.prefix.Bits() || !p.prefix.Contains(k.prefix.Addr()) || k.prefix.Addr().Is4() != p.prefix.Addr().Is4() {
			c.report(fmt.Sprintf("block %s (%s) does not lie inside its parent %s (%s)", k.name, k.prefix, p.name, p.prefix), []string{k.name, p.name},
				map[string]any{"cidr": k.prefix.String(), "parent_cidr": p.prefix.String()})
		}
	}
	for _, b := range bs {
		if b.parent != 0 && (b.cidrChanged || b.placedChanged) {
			p, err := c.block(b.parent)
			if err != nil {
				return err
			}
			if p != nil {
				inside(b, p)
			}
		}
		if c.scoped && b.cidrChanged {
			// Its children stayed where they were; it may have moved off them.
			kids, err := c.childrenOf(b)
			if err != nil {
				return err
			}
			for _, k := range kids {
				if !k.inScope { // in scope, it is checked from its own side
					inside(k, b)
				}
			}
		}
	}
	return nil
}

func testBlockSiblings(c *checker) error {
	bs, err := c.scopeBlocks()
	if err != nil {
		return err
	}
	parents := map[int64]bool{}
	for _, b := range bs {
		if b.parent != 0 && (b.cidrChanged || b.placedChanged) {
			parents[b.parent] = true
		}
	}
	ids := make([]int64, 0, len(parents))
	for id := range parents {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		p, err := c.block(id)
		if err != nil {
			return err
		}
		if p == nil {
			continue
		}
		kids, err := c.childrenOf(p)
		if err != nil {
			return err
		}
		// By first address: each must start after the highest end so far.
		var top *blockInfo
		var topEnd netip.Addr
		for _, k := range kids {
			if top != nil && k.prefix.Addr().Is4() == top.prefix.Addr().Is4() && !topEnd.Less(k.prefix.Addr()) {
				c.report(fmt.Sprintf("blocks %s (%s) and %s (%s) in %s overlap", top.name, top.prefix, k.name, k.prefix, p.name), []string{top.name, k.name, p.name},
					map[string]any{"cidrs": []string{top.prefix.String(), k.prefix.String()}})
			}
			if end := lastAddr(k.prefix); top == nil || top.prefix.Addr().Is4() != k.prefix.Addr().Is4() || topEnd.Less(end) {
				top, topEnd = k, end
			}
		}
	}
	return nil
}

// heldAddr is one current allocation, as the allocation rules read it.
type heldAddr struct {
	rid     int64
	offset  uint64
	address netip.Addr
	holder  string
	iface   string
}

// allocsOf returns the FROM and WHERE of b's allocations to check (alias
// i): all its current ones, or at commit, unless b's cidr changed, those
// the transaction made, found through the (block, since) index.
func (c *checker) allocsOf(b *blockInfo) (from, cond string, args []any) {
	if c.scoped && !b.cidrChanged {
		return "ip_allocations i INDEXED BY ipalloc_hist", "i.block_id = ? AND i.since >= ? AND i.until IS NULL", []any{b.id, c.firstCid}
	}
	return "ip_allocations i", "i.block_id = ? AND i.until IS NULL", []any{b.id}
}

// allocationsToCheck returns the allocations of b that the transaction
// could have made wrong: all of them when b's cidr changed (or for a
// whole check), else those it made.
func (c *checker) allocationsToCheck(b *blockInfo) ([]heldAddr, error) {
	from, cond, args := c.allocsOf(b)
	var out []heldAddr
	err := c.rows(`SELECT i.rid, i.offset, i.address, coalesce(h.name, '#' || i.entity_id), i.interface FROM `+from+`
		LEFT JOIN entities h ON h.id = i.entity_id AND h.until IS NULL WHERE `+cond, args, func(r *sql.Rows) error {
		var h heldAddr
		var off int64
		var raw []byte
		if err := r.Scan(&h.rid, &off, &raw, &h.holder, &h.iface); err != nil {
			return err
		}
		h.offset = unbiased(off)
		if len(raw) == 16 {
			h.address = netip.AddrFrom16([16]byte(raw)).Unmap()
		}
		out = append(out, h)
		return nil
	})
	return out, err
}

func testAllocationInsideBlock(c *checker) error {
	bs, err := c.scopeBlocks()
	if err != nil {
		return err
	}
	for _, b := range bs {
		if !b.valid {
			continue
		}
		bb := &block{prefix: b.prefix}
		setMaxOff(bb)
		allocs, err := c.allocationsToCheck(b)
		if err != nil {
			return err
		}
		for _, h := range allocs {
			want := offsetToAddr(b.prefix, h.offset)
			if h.offset > bb.maxOff || !b.prefix.Contains(h.address) || want != h.address {
				c.report(fmt.Sprintf("block %s (%s) holds %s for %s at offset %d, which is %s in it", b.name, b.prefix, h.address, h.holder, h.offset, describeOffset(bb, want, h.offset)),
					[]string{b.name, h.holder}, map[string]any{"address": h.address.String(), "cidr": b.prefix.String()})
			}
		}
	}
	return nil
}

func describeOffset(b *block, want netip.Addr, off uint64) string {
	if off > b.maxOff {
		return "beyond its end"
	}
	return want.String()
}

func testAllocationReserved(c *checker) error {
	bs, err := c.scopeBlocks()
	if err != nil {
		return err
	}
	for _, b := range bs {
		if !b.valid {
			continue
		}
		res := reservedOffsets(b)
		if len(res) == 0 {
			continue
		}
		var offs []int64
		for o := range res {
			offs = append(offs, biased(o))
		}
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		list, _ := json.Marshal(offs)
		err := c.rows(`SELECT i.offset, coalesce(h.name, '#' || i.entity_id) FROM ip_allocations i LEFT JOIN entities h ON h.id = i.entity_id AND h.until IS NULL
			WHERE i.block_id = ? AND i.until IS NULL AND i.offset IN (SELECT value FROM json_each(?)) ORDER BY i.offset`, []any{b.id, string(list)}, func(r *sql.Rows) error {
			var off int64
			var holder string
			if err := r.Scan(&off, &holder); err != nil {
				return err
			}
			a := offsetToAddr(b.prefix, unbiased(off))
			c.report(fmt.Sprintf("block %s (%s) has handed out %s, %s, to %s", b.name, b.prefix, a, res[unbiased(off)], holder), []string{b.name, holder},
				map[string]any{"address": a.String()})
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// offsetRange is the offsets of child prefix k inside block p.
func offsetRange(p, k netip.Prefix) (first, last uint64, ok bool) {
	first, ok = addrToOffset(p, k.Addr())
	if !ok {
		return 0, 0, false
	}
	pb := &block{prefix: p}
	setMaxOff(pb)
	last = pb.maxOff
	if kb := k.Addr().BitLen() - k.Bits(); kb < 64 {
		last = min(first+uint64(1)<<kb-1, pb.maxOff)
	}
	return first, last, true
}

func testAllocationInChild(c *checker) error {
	bs, err := c.scopeBlocks()
	if err != nil {
		return err
	}
	inChild := func(p, k *blockInfo) error {
		first, last, ok := offsetRange(p.prefix, k.prefix)
		if !ok {
			return nil // block-inside-parent reports it
		}
		return c.rows(`SELECT i.address, coalesce(h.name, '#' || i.entity_id) FROM ip_allocations i LEFT JOIN entities h ON h.id = i.entity_id AND h.until IS NULL
			WHERE i.block_id = ? AND i.until IS NULL AND i.offset BETWEEN ? AND ? ORDER BY i.offset LIMIT 10`, []any{p.id, biased(first), biased(last)}, func(r *sql.Rows) error {
			var raw []byte
			var holder string
			if err := r.Scan(&raw, &holder); err != nil {
				return err
			}
			a := netip.AddrFrom16([16]byte(raw)).Unmap()
			c.report(fmt.Sprintf("block %s has handed out %s (to %s) inside its child block %s (%s)", p.name, a, holder, k.name, k.prefix), []string{p.name, k.name, holder},
				map[string]any{"address": a.String(), "child_cidr": k.prefix.String()})
			return nil
		})
	}
	for _, b := range bs {
		if !b.valid {
			continue
		}
		// b moved, or was put in a parent: the parent's allocations inside it.
		if b.parent != 0 && (b.cidrChanged || b.placedChanged) {
			p, err := c.block(b.parent)
			if err != nil {
				return err
			}
			if p != nil && p.valid {
				if err := inChild(p, b); err != nil {
					return err
				}
			}
		}
		if !c.scoped {
			continue // every pair is checked from the child's side
		}
		// b's own new allocations, against its children.
		allocs, err := c.allocationsToCheck(b)
		if err != nil || len(allocs) == 0 {
			if err != nil {
				return err
			}
			continue
		}
		kids, err := c.childrenOf(b)
		if err != nil {
			return err
		}
		for _, h := range allocs {
			i := sort.Search(len(kids), func(i int) bool { return h.address.Less(kids[i].prefix.Addr()) })
			if i > 0 && kids[i-1].prefix.Contains(h.address) {
				k := kids[i-1]
				c.report(fmt.Sprintf("block %s has handed out %s (to %s) inside its child block %s (%s)", b.name, h.address, h.holder, k.name, k.prefix), []string{b.name, k.name, h.holder},
					map[string]any{"address": h.address.String(), "child_cidr": k.prefix.String()})
			}
		}
	}
	return nil
}

// related reports whether one block is an ancestor of the other.
func (c *checker) related(a, b int64) (bool, error) {
	for _, pair := range [][2]int64{{a, b}, {b, a}} {
		seen := map[int64]bool{}
		for id := pair[0]; id != 0 && !seen[id]; {
			seen[id] = true
			blk, err := c.block(id)
			if err != nil || blk == nil {
				return false, err
			}
			if blk.parent == pair[1] {
				return true, nil
			}
			id = blk.parent
		}
	}
	return false, nil
}

func testAddressOneHolder(c *checker) error {
	bs, err := c.scopeBlocks()
	if err != nil {
		return err
	}
	for _, b := range bs {
		from, cond, args := c.allocsOf(b)
		type pair struct {
			rid, other   int64
			addr         []byte
			block        int64
			holder, peer string
		}
		var pairs []pair
		err := c.rows(`SELECT i.rid, j.rid, i.address, j.block_id, coalesce(h.name, '#' || i.entity_id), coalesce(g.name, '#' || j.entity_id)
			FROM `+from+` JOIN ip_allocations j ON j.address = i.address AND j.until IS NULL AND j.rid <> i.rid
			LEFT JOIN entities h ON h.id = i.entity_id AND h.until IS NULL LEFT JOIN entities g ON g.id = j.entity_id AND g.until IS NULL
			WHERE `+cond, args, func(r *sql.Rows) error {
			var p pair
			if err := r.Scan(&p.rid, &p.other, &p.addr, &p.block, &p.holder, &p.peer); err != nil {
				return err
			}
			pairs = append(pairs, p)
			return nil
		})
		if err != nil {
			return err
		}
		for _, p := range pairs {
			if !c.scoped && p.other < p.rid {
				continue // the whole check meets each pair twice
			}
			a := netip.AddrFrom16([16]byte(p.addr)).Unmap()
			var where string
			if p.block == b.id {
				where = "twice in block " + b.name
			} else if rel, err := c.related(b.id, p.block); err != nil {
				return err
			} else if rel {
				where = fmt.Sprintf("in both %s and %s, one inside the other", b.name, c.name(p.block))
			} else {
				continue // blocks in separate hierarchies (VRFs) may hand out the same address
			}
			c.report(fmt.Sprintf("%s is handed out %s: to %s and to %s", a, where, p.holder, p.peer), []string{p.holder, p.peer, b.name},
				map[string]any{"address": a.String()})
		}
	}
	// An ip attribute holding an allocated address belongs to a holder of
	// it. At commit: the ip attributes the transaction wrote, and those
	// holding an address it allocated.
	wcond, wargs := "a.until IS NULL", []any(nil)
	if c.scoped {
		wcond = `a.until IS NULL AND a.rid IN (SELECT y.rid FROM attrs y NOT INDEXED WHERE y.rid > ?
			UNION SELECT y.rid FROM ip_allocations x CROSS JOIN attrs y ON y.ip = x.address AND y.until IS NULL AND y.ip IS NOT NULL WHERE x.rid > ? AND x.until IS NULL)`
		wargs = []any{c.startRid["attrs"], c.startRid["ip_allocations"]}
	}
	return c.sqlRule(`SELECT 'has ip ' || a.value || ', which is allocated to ' || group_concat(coalesce(h.name, '#' || i.entity_id), ', '), e.name || ',' || group_concat(coalesce(h.name, '#' || i.entity_id)),
			json_object('address', a.value)
		FROM attrs a JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
		JOIN ip_allocations i ON i.address = a.ip AND i.until IS NULL LEFT JOIN entities h ON h.id = i.entity_id AND h.until IS NULL
		WHERE a.key = 'ip' AND a.ip IS NOT NULL AND `+wcond+`
		GROUP BY a.rid HAVING sum(i.entity_id = a.entity_id) = 0 ORDER BY e.name`, wargs...)
}

func testAllocationAttribute(c *checker) error {
	// At commit: the allocations the transaction made, and those whose
	// holder's ip attribute for the address it ended.
	cond, args := "i.until IS NULL", []any(nil)
	if c.scoped {
		cond = `i.until IS NULL AND i.rid IN (SELECT x.rid FROM ip_allocations x NOT INDEXED WHERE x.rid > ?1
			UNION SELECT x.rid FROM attrs y INDEXED BY attrs_ended CROSS JOIN ip_allocations x ON x.address = y.ip AND x.until IS NULL AND +x.entity_id = y.entity_id
				WHERE y.until >= ?2 AND y.key = 'ip' AND y.ip IS NOT NULL)`
		args = []any{c.startRid["ip_allocations"], c.firstCid}
	}
	return c.sqlRule(`SELECT 'holds ' || b.name || '''s address ' || `+addrText("i.address")+` || ' (interface ' || CASE i.interface WHEN '' THEN '-' ELSE i.interface END || ') but has no ip attribute for it; release the address instead of deleting the attribute',
			coalesce(h.name, '#' || i.entity_id) || ',' || b.name
		FROM ip_allocations i JOIN entities b ON b.id = i.block_id AND b.until IS NULL LEFT JOIN entities h ON h.id = i.entity_id AND h.until IS NULL
		WHERE `+cond+` AND NOT EXISTS (SELECT 1 FROM attrs a WHERE a.ip = i.address AND a.until IS NULL AND a.ip IS NOT NULL
			AND +a.entity_id = i.entity_id AND a.key = 'ip' AND a.subkey = i.interface) ORDER BY h.name`, args...)
}

// addrText is SQL spelling a 16-byte address column (IPv4 mapped) as text.
func addrText(col string) string { return "ip_text(" + col + ")" }

func testFreeSpaceIndex(c *checker) error {
	inRun := `(SELECT r.last FROM ip_runs r WHERE r.block_id = i.block_id AND r.first <= i.offset ORDER BY r.first DESC LIMIT 1) >= i.offset`
	if !c.scoped {
		if err := c.sqlRule(`SELECT 'allocation of ' || ` + addrText("i.address") + ` || ' is missing from the free-space index', coalesce(b.name, '#' || i.block_id)
			FROM ip_allocations i LEFT JOIN entities b ON b.id = i.block_id AND b.until IS NULL
			WHERE i.until IS NULL AND NOT coalesce(` + inRun + `, 0)`); err != nil {
			return err
		}
		return c.sqlRule(`SELECT 'free-space index counts ' || r.n || ' addresses but ' || coalesce(a.n, 0) || ' are allocated', coalesce(b.name, '#' || r.block_id)
			FROM (SELECT block_id, sum(last - first + 1) AS n FROM ip_runs GROUP BY block_id) r
			LEFT JOIN (SELECT block_id, count(*) AS n FROM ip_allocations WHERE until IS NULL GROUP BY block_id) a ON a.block_id = r.block_id
			LEFT JOIN entities b ON b.id = r.block_id AND b.until IS NULL WHERE r.n != coalesce(a.n, 0)`)
	}
	// The transaction's own: what it allocated is in the runs, and what it
	// released is out of them (unless allocated again).
	if err := c.sqlRule(`SELECT 'allocation of ' || `+addrText("i.address")+` || ' is missing from the free-space index', coalesce(b.name, '#' || i.block_id)
		FROM ip_allocations i LEFT JOIN entities b ON b.id = i.block_id AND b.until IS NULL
		WHERE i.rid IN (SELECT rid FROM ip_allocations NOT INDEXED WHERE rid > ?) AND i.until IS NULL AND NOT coalesce(`+inRun+`, 0)`, c.startRid["ip_allocations"]); err != nil {
		return err
	}
	return c.sqlRule(`SELECT 'released address ' || `+addrText("i.address")+` || ' is still in the free-space index', coalesce(b.name, '#' || i.block_id)
		FROM ip_allocations i INDEXED BY ipalloc_ended LEFT JOIN entities b ON b.id = i.block_id AND b.until IS NULL
		WHERE i.until >= ? AND coalesce(`+inRun+`, 0)
		AND NOT EXISTS (SELECT 1 FROM ip_allocations j WHERE j.block_id = i.block_id AND j.offset = i.offset AND j.until IS NULL)`, c.firstCid)
}
