package store

import (
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sort"
	"strings"

	"github.com/clusto/clusto/entity"
)

// IP allocation. A block (driver ipblock) has a `cidr` and optional
// `gateway`, and may contain child blocks. Addresses are handed out from the
// lowest free one, skipping the IPv4 network and broadcast addresses (except
// in /31 and /32), the gateway, and anything inside a child block. Each
// allocation is a row of ip_allocations and an `ip` attribute on the holder
// (subkey: the interface), recorded as one change.

const bias = uint64(1) << 63

// biased maps an unsigned offset into signed order-preserving space.
func biased(o uint64) int64 { return int64(o ^ bias) }

func unbiased(b int64) uint64 { return uint64(b) ^ bias }

// span is an inclusive range of unsigned offsets.
type span struct{ first, last uint64 }

// block is a block's parsed shape.
type block struct {
	row      *entRow
	prefix   netip.Prefix
	maxOff   uint64 // the largest offset that can be handed out (bounded by 2^64-1)
	reserved []span // sorted, merged
	gateway  netip.Addr
	children []string
	// childPrefixes are the child blocks with their networks.
	childPrefixes []childBlock
}

func addrToOffset(p netip.Prefix, a netip.Addr) (uint64, bool) {
	if !p.Contains(a) {
		return 0, false
	}
	net16, a16 := p.Addr().As16(), a.As16()
	hostBits := p.Addr().BitLen() - p.Bits()
	// Only the low 64 bits can differ for blocks with at most 64 host bits;
	// for larger IPv6 blocks the offset must still fit in 64 bits.
	if hostBits > 64 && binary.BigEndian.Uint64(a16[:8]) != binary.BigEndian.Uint64(net16[:8]) {
		return 0, false
	}
	return binary.BigEndian.Uint64(a16[8:]) - binary.BigEndian.Uint64(net16[8:]), true
}

func offsetToAddr(p netip.Prefix, o uint64) netip.Addr {
	b := p.Addr().As16()
	lo := binary.BigEndian.Uint64(b[8:]) + o
	binary.BigEndian.PutUint64(b[8:], lo)
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		return a.Unmap()
	}
	return a
}

func (tx *Tx) loadBlock(name string) (*block, error) {
	r, err := tx.row(name)
	if err != nil {
		return nil, err
	}
	if r.driver != "ipblock" {
		return nil, entity.Errorf(entity.KindInvalid, "%s is a %s, not an ipblock", name, r.driver)
	}
	return tx.blockOf(r)
}

func (tx *Tx) blockOf(r *entRow) (*block, error) {
	b, err := tx.blockPrefix(r)
	if err != nil {
		return nil, err
	}
	p := b.prefix
	var res []span
	if p.Addr().Is4() && p.Bits() <= 30 {
		res = append(res, span{0, 0}, span{b.maxOff, b.maxOff})
	}
	if gw, err := tx.stringAttr(r.id, "gateway"); err != nil {
		return nil, err
	} else if gw != "" {
		if a, err := netip.ParseAddr(gw); err == nil {
			b.gateway = a
			if o, ok := addrToOffset(p, a); ok {
				res = append(res, span{o, o})
			}
		}
	}
	kids, err := tx.childBlocks(r.id)
	if err != nil {
		return nil, err
	}
	for _, k := range kids {
		b.children = append(b.children, k.name)
		b.childPrefixes = append(b.childPrefixes, k)
		first, ok1 := addrToOffset(p, k.prefix.Addr())
		if !ok1 {
			continue
		}
		kb := k.prefix.Addr().BitLen() - k.prefix.Bits()
		last := b.maxOff
		if kb < 64 {
			last = first + uint64(1)<<kb - 1
		}
		res = append(res, span{first, last})
	}
	b.reserved = mergeSpans(res)
	return b, nil
}

func mergeSpans(in []span) []span {
	sort.Slice(in, func(i, j int) bool { return in[i].first < in[j].first })
	var out []span
	for _, s := range in {
		if n := len(out); n > 0 && (s.first <= out[n-1].last || s.first == out[n-1].last+1) {
			out[n-1].last = max(out[n-1].last, s.last)
			continue
		}
		out = append(out, s)
	}
	return out
}

type childBlock struct {
	name   string
	prefix netip.Prefix
}

// blockPrefix reads a block's prefix and size alone, without the spans
// its gateway and child blocks reserve.
func (tx *Tx) blockPrefix(r *entRow) (*block, error) {
	cidr, err := tx.stringAttr(r.id, "cidr")
	if err != nil {
		return nil, err
	}
	if cidr == "" {
		return nil, entity.Errorf(entity.KindInvalid, "ipblock %s has no cidr attribute; set one (e.g. 10.0.3.0/24)", r.name)
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, entity.Errorf(entity.KindInvalid, "ipblock %s has a bad cidr %q", r.name, cidr)
	}
	b := &block{row: r, prefix: p}
	setMaxOff(b)
	return b, nil
}

// setMaxOff sets the largest offset a block's prefix can hand out.
func setMaxOff(b *block) {
	hostBits := b.prefix.Addr().BitLen() - b.prefix.Bits()
	if hostBits >= 64 {
		b.maxOff = ^uint64(0)
	} else {
		b.maxOff = uint64(1)<<hostBits - 1
	}
}

// childBlocks returns the blocks directly inside block id, by name. The
// answer is cached for the rest of the transaction: placing block after
// block into one parent (a /8 carved into thousands of /24s by an import)
// would otherwise read every sibling again for each one. contain appends
// to the cache; any other write that could change a parent's blocks or
// their prefixes drops it (forgetBlocks).
func (tx *Tx) childBlocks(id int64) ([]childBlock, error) {
	if kids, ok := tx.kids[id]; ok {
		return kids, nil
	}
	kids, err := tx.readChildBlocks(id)
	if err != nil {
		return nil, err
	}
	if tx.kids == nil {
		tx.kids = map[int64][]childBlock{}
	}
	tx.kids[id] = kids
	return kids, nil
}

// addedChildBlock keeps a cached list of parent's blocks in step with a
// block just put in it, in name order as readChildBlocks gives them.
func (tx *Tx) addedChildBlock(parentID int64, k childBlock) {
	kids, ok := tx.kids[parentID]
	if !ok {
		return
	}
	i := sort.Search(len(kids), func(i int) bool { return kids[i].name >= k.name })
	// A new slice: callers may hold the old one.
	out := make([]childBlock, 0, len(kids)+1)
	out = append(append(append(out, kids[:i]...), k), kids[i:]...)
	tx.kids[parentID] = out
}

// forgetBlocks drops the cached child blocks of every parent.
func (tx *Tx) forgetBlocks() { clear(tx.kids) }

// childBlocksSQL reads a block's child blocks with their prefixes. CROSS
// JOIN keeps the parent's connections the outer loop: left to itself,
// SQLite's planner (which has no statistics) may prefer walking every block
// in the inventory by driver, for the order it gives, and check each one's
// parent, which made bulk loads quadratic when an index changed.
const childBlocksSQL = `SELECT e.name, coalesce((SELECT a.value FROM attrs a WHERE a.entity_id = e.id AND a.key = 'cidr' AND a.until IS NULL LIMIT 1), '')
	FROM connections c CROSS JOIN entities e ON e.id = c.b AND e.until IS NULL
	WHERE c.a = ? AND c.type = 'contains' AND c.until IS NULL AND e.driver = 'ipblock' ORDER BY e.name`

func (tx *Tx) readChildBlocks(id int64) ([]childBlock, error) {
	rows, err := tx.query(childBlocksSQL, id)
	if err != nil {
		return nil, entity.Internal("read child blocks", err)
	}
	defer rows.Close()
	var out []childBlock
	for rows.Next() {
		var name, cidr string
		if err := rows.Scan(&name, &cidr); err != nil {
			return nil, entity.Internal("read child blocks", err)
		}
		if p, err := netip.ParsePrefix(cidr); err == nil {
			out = append(out, childBlock{name, p})
		}
	}
	return out, rows.Err()
}

func (tx *Tx) stringAttr(id int64, key string) (string, error) {
	if v, _, known := tx.knownAttr(id, key, false); known {
		return v.Text, nil
	}
	var v string
	err := tx.queryRow("SELECT value FROM attrs WHERE entity_id = ? AND key = ? AND until IS NULL ORDER BY rid DESC LIMIT 1", id, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", entity.Internal("read "+key, err)
	}
	return v, nil
}

// runAt returns the run of allocated offsets containing o, if any.
func (tx *Tx) runAt(blockID int64, o uint64) (span, bool, error) {
	if f := tx.knownRunsOf(blockID); f != nil {
		s, found := runContaining(f.runs, o)
		return s, found && s.last >= o, nil
	}
	var f, l int64
	err := tx.queryRow("SELECT first, last FROM ip_runs WHERE block_id = ? AND first <= ? ORDER BY first DESC LIMIT 1", blockID, biased(o)).Scan(&f, &l)
	if errors.Is(err, sql.ErrNoRows) {
		return span{}, false, nil
	}
	if err != nil {
		return span{}, false, entity.Internal("find free address", err)
	}
	s := span{unbiased(f), unbiased(l)}
	return s, s.last >= o, nil
}

// lowestFree walks reserved ranges and allocated runs upward from offset 0;
// each step jumps past one of them, so the cost is independent of how many
// addresses are allocated.
func (tx *Tx) lowestFree(b *block) (uint64, bool, error) {
	cand := uint64(0)
	ri := 0
	for {
		moved := false
		for ri < len(b.reserved) && b.reserved[ri].last < cand {
			ri++
		}
		if ri < len(b.reserved) && b.reserved[ri].first <= cand {
			if b.reserved[ri].last >= b.maxOff {
				return 0, false, nil
			}
			cand = b.reserved[ri].last + 1
			moved = true
		}
		run, in, err := tx.runAt(b.row.id, cand)
		if err != nil {
			return 0, false, err
		}
		if in {
			if run.last >= b.maxOff {
				return 0, false, nil
			}
			cand = run.last + 1
			moved = true
		}
		if !moved {
			return cand, true, nil
		}
	}
}

func (tx *Tx) addToRuns(blockID int64, o uint64) error {
	if f := tx.knownRunsOf(blockID); f != nil {
		f.runs, f.runsDirty = withOffset(f.runs, o), true
		return nil
	}
	bo := biased(o)
	var left, right *span
	if o > 0 {
		if s, ok, err := tx.runAt(blockID, o-1); err != nil {
			return err
		} else if ok {
			left = &s
		}
	}
	if o < ^uint64(0) {
		var l int64
		err := tx.queryRow("SELECT last FROM ip_runs WHERE block_id = ? AND first = ?", blockID, biased(o+1)).Scan(&l)
		if err == nil {
			right = &span{o + 1, unbiased(l)}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return entity.Internal("record allocation", err)
		}
	}

	var err error
	switch {
	case left != nil && right != nil:
		if _, err = tx.exec("record allocation", "DELETE FROM ip_runs WHERE block_id = ? AND first = ?", blockID, biased(right.first)); err == nil {
			_, err = tx.exec("record allocation", "UPDATE ip_runs SET last = ? WHERE block_id = ? AND first = ?", biased(right.last), blockID, biased(left.first))
		}
	case left != nil:
		_, err = tx.exec("record allocation", "UPDATE ip_runs SET last = ? WHERE block_id = ? AND first = ?", bo, blockID, biased(left.first))
	case right != nil:
		if _, err = tx.exec("record allocation", "DELETE FROM ip_runs WHERE block_id = ? AND first = ?", blockID, biased(right.first)); err == nil {
			_, err = tx.exec("record allocation", "INSERT INTO ip_runs(block_id, first, last) VALUES (?,?,?)", blockID, bo, biased(right.last))
		}
	default:
		_, err = tx.exec("record allocation", "INSERT INTO ip_runs(block_id, first, last) VALUES (?,?,?)", blockID, bo, bo)
	}
	return err
}

func (tx *Tx) removeFromRuns(blockID int64, o uint64) error {
	s, ok, err := tx.runAt(blockID, o)
	if err != nil {
		return err
	}
	if !ok {
		return entity.Internal("release", fmt.Errorf("offset %d of block %d is in no run", o, blockID))
	}
	if f := tx.knownRunsOf(blockID); f != nil {
		f.runs, f.runsDirty = withoutOffset(f.runs, o), true
		return nil
	}
	del := func() error {
		_, err := tx.exec("release", "DELETE FROM ip_runs WHERE block_id = ? AND first = ?", blockID, biased(s.first))
		return err
	}
	ins := func(f, l uint64) error {
		_, err := tx.exec("release", "INSERT INTO ip_runs(block_id, first, last) VALUES (?,?,?)", blockID, biased(f), biased(l))
		return err
	}
	switch {
	case s.first == o && s.last == o:
		return del()
	case s.first == o:
		if err := del(); err != nil {
			return err
		}
		return ins(o+1, s.last)
	default:
		if _, err := tx.exec("release", "UPDATE ip_runs SET last = ? WHERE block_id = ? AND first = ?", biased(o-1), blockID, biased(s.first)); err != nil {
			return err
		}
		if s.last > o {
			return ins(o+1, s.last)
		}
		return nil
	}
}

// AllocateIP hands out addresses from a block to an entity: the exact
// address asked for, or the lowest free ones. Each address is one change.
func (tx *Tx) AllocateIP(req entity.IPRequest) ([]entity.Allocation, error) {
	if req.Count == 0 {
		req.Count = 1
	}
	if req.Count < 0 || req.Count > entity.MaxIPCount {
		return nil, entity.Errorf(entity.KindInvalid, "count %d must be between 1 and %d", req.Count, entity.MaxIPCount)
	}
	if req.Address != "" && req.Count != 1 {
		return nil, entity.Errorf(entity.KindInvalid, "give either an address or a count above 1, not both")
	}
	if req.Interface != "" {
		if err := entity.ValidateKey("interface", req.Interface); err != nil {
			return nil, err
		}
	}
	b, err := tx.loadBlock(req.Block)
	if err != nil {
		return nil, err
	}
	holder, err := tx.row(req.Entity)
	if err != nil {
		return nil, err
	}
	var out []entity.Allocation
	for i := 0; i < req.Count; i++ {
		var o uint64
		if req.Address != "" {
			if o, err = tx.checkAddress(b, req.Address, holder.id); err != nil {
				return nil, err
			}
		} else if o, err = tx.nextFree(b, holder.id); err != nil {
			return nil, errWith(err, "allocated", len(out))
		}
		a, err := tx.allocateOffset(b, holder, o, req.Interface)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// checkAddress validates an exact address request and returns its offset.
func (tx *Tx) checkAddress(b *block, address string, holderID int64) (uint64, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(address))
	if err != nil || a.Zone() != "" {
		return 0, entity.Errorf(entity.KindInvalid, "%q is not an IP address", address)
	}
	a = a.Unmap()
	o, ok := addrToOffset(b.prefix, a)
	if !ok {
		return 0, entity.Errorf(entity.KindConflict, "%s is outside block %s (%s)", a, b.row.name, b.prefix)
	}
	if o > b.maxOff {
		return 0, entity.Errorf(entity.KindConflict, "%s is beyond the addresses block %s can hand out", a, b.row.name)
	}
	// Reserved spans are merged (a gateway next to the network address
	// makes one span), so name a child block by its own prefix.
	for _, k := range b.childPrefixes {
		if k.prefix.Contains(a) {
			return 0, entity.Errorf(entity.KindConflict, "%s is inside child block %s (%s) of %s; allocate it from %s", a, k.name, k.prefix, b.row.name, k.name)
		}
	}
	for _, r := range b.reserved {
		if o >= r.first && o <= r.last {
			return 0, entity.Errorf(entity.KindConflict, "%s in block %s is reserved (network, broadcast or gateway)", a, b.row.name)
		}
	}
	if other, err := tx.ipAttrHolder(a, holderID); err != nil {
		return 0, err
	} else if other != "" {
		if _, in, err := tx.runAt(b.row.id, o); err != nil || !in {
			if err != nil {
				return 0, err
			}
			return 0, entity.Errorf(entity.KindConflict, "%s is %s's ip attribute, though no block handed it out; delete that attribute first", a, other).With("holder", other)
		}
	}
	if _, in, err := tx.runAt(b.row.id, o); err != nil {
		return 0, err
	} else if in {
		var holder string
		tx.queryRow(`SELECT e.name FROM ip_allocations i JOIN entities e ON e.id = i.entity_id AND e.until IS NULL
			WHERE i.block_id = ? AND i.offset = ? AND i.until IS NULL`, b.row.id, biased(o)).Scan(&holder)
		return 0, entity.Errorf(entity.KindConflict, "%s is already allocated to %s", a, holder).With("holder", holder)
	}
	return o, nil
}

func (tx *Tx) allocateOffset(b *block, holder *entRow, o uint64, iface string) (entity.Allocation, error) {
	addr := offsetToAddr(b.prefix, o)
	alloc := entity.Allocation{Address: addr.String(), Block: b.row.name, Entity: holder.name, Interface: iface}
	cid, err := tx.record(entity.OpAllocate, holder, b.row, nil, alloc)
	if err != nil {
		return alloc, err
	}
	a16 := addr.As16()
	if _, err := tx.exec("allocate", `INSERT INTO ip_allocations(block_id, offset, address, entity_id, interface, since) VALUES (?,?,?,?,?,?)`,
		b.row.id, biased(o), a16[:], holder.id, iface, cid); err != nil {
		return alloc, err
	}
	if err := tx.addToRuns(b.row.id, o); err != nil {
		return alloc, err
	}
	if err := tx.insertAttr(holder.id, entity.Attr{Key: "ip", Subkey: iface, Value: entity.IP(addr)}, cid); err != nil {
		return alloc, err
	}
	if err := tx.bump(holder, cid); err != nil {
		return alloc, err
	}
	return alloc, tx.bump(b.row, cid)
}

// ReleaseIP returns an address to its block, as one change.
func (tx *Tx) ReleaseIP(blockName, address string) (entity.Allocation, error) {
	b, err := tx.loadBlock(blockName)
	if err != nil {
		return entity.Allocation{}, err
	}
	a, err := netip.ParseAddr(strings.TrimSpace(address))
	if err != nil || a.Zone() != "" {
		return entity.Allocation{}, entity.Errorf(entity.KindInvalid, "%q is not an IP address", address)
	}
	a = a.Unmap()
	o, ok := addrToOffset(b.prefix, a)
	if !ok {
		return entity.Allocation{}, entity.Errorf(entity.KindNotFound, "%s is outside block %s (%s)", a, b.row.name, b.prefix)
	}
	var rid, holderID int64
	var iface string
	err = tx.queryRow("SELECT rid, entity_id, interface FROM ip_allocations WHERE block_id = ? AND offset = ? AND until IS NULL",
		b.row.id, biased(o)).Scan(&rid, &holderID, &iface)
	if errors.Is(err, sql.ErrNoRows) {
		return entity.Allocation{}, entity.Errorf(entity.KindNotFound, "%s is not allocated in block %s", a, b.row.name)
	} else if err != nil {
		return entity.Allocation{}, entity.Internal("release", err)
	}
	holder, err := scanEntRow(tx.queryRow("SELECT "+entCols+" FROM entities e WHERE e.id = ? AND e.until IS NULL", holderID))
	if err != nil {
		return entity.Allocation{}, entity.Internal("release", err)
	}
	alloc := entity.Allocation{Address: a.String(), Block: b.row.name, Entity: holder.name, Interface: iface}
	return alloc, tx.release(b.row, holder, rid, o, alloc)
}

func (tx *Tx) release(blockRow, holder *entRow, rid int64, o uint64, alloc entity.Allocation) error {
	cid, err := tx.record(entity.OpRelease, holder, blockRow, alloc, nil)
	if err != nil {
		return err
	}
	if _, err := tx.exec("release", "UPDATE ip_allocations SET until = ? WHERE rid = ?", cid, rid); err != nil {
		return err
	}
	if err := tx.removeFromRuns(blockRow.id, o); err != nil {
		return err
	}
	// Look the attribute up by address (attrs_cur_ip), not by holder: a
	// holder may have tens of thousands of addresses. The unary + keeps the
	// planner off the per-entity index.
	a16 := netip.MustParseAddr(alloc.Address).As16()
	if _, err := tx.exec("release", `UPDATE attrs SET until = ? WHERE ip = ? AND until IS NULL AND ip IS NOT NULL
		AND +entity_id = ? AND key = 'ip' AND subkey = ?`, cid, a16[:], holder.id, alloc.Interface); err != nil {
		return err
	}
	tx.attrWritten(holder.id, cid)
	// Both sides get a new version, unless one is being deleted.
	return tx.bumpIDs(map[int64]bool{holder.id: true, blockRow.id: true}, cid)
}

// countAllocations counts the addresses an entity holds or, for a block, hands out.
func (tx *Tx) countAllocations(id int64) (int, error) {
	var n int
	if err := tx.queryRow("SELECT (SELECT count(*) FROM ip_allocations WHERE entity_id = ?1 AND until IS NULL) + (SELECT count(*) FROM ip_allocations WHERE block_id = ?1 AND until IS NULL)", id).Scan(&n); err != nil {
		return 0, entity.Internal("count allocations", err)
	}
	return n, nil
}

// releaseAllocations releases everything an entity holds or hands out, as
// part of a cascade delete (each release its own change).
func (tx *Tx) releaseAllocations(id int64) error {
	rows, err := tx.query("SELECT rid, block_id, offset, entity_id, interface, address FROM ip_allocations WHERE (entity_id = ?1 OR block_id = ?1) AND until IS NULL", id)
	if err != nil {
		return entity.Internal("release allocations", err)
	}
	type held struct {
		rid, block, off, holder int64
		iface                   string
		addr                    []byte
	}
	var all []held
	for rows.Next() {
		var h held
		if err := rows.Scan(&h.rid, &h.block, &h.off, &h.holder, &h.iface, &h.addr); err != nil {
			rows.Close()
			return entity.Internal("release allocations", err)
		}
		all = append(all, h)
	}
	rows.Close()
	load := func(id int64) (*entRow, error) {
		// The entity being deleted may already have its row closed in this change.
		return scanEntRow(tx.queryRow("SELECT "+entCols+" FROM entities e WHERE e.id = ? ORDER BY e.rid DESC LIMIT 1", id))
	}
	for _, h := range all {
		br, err := load(h.block)
		if err != nil {
			return entity.Internal("release allocations", err)
		}
		hr, err := load(h.holder)
		if err != nil {
			return entity.Internal("release allocations", err)
		}
		var a16 [16]byte
		copy(a16[:], h.addr)
		addr := netip.AddrFrom16(a16).Unmap()
		alloc := entity.Allocation{Address: addr.String(), Block: br.name, Entity: hr.name, Interface: h.iface}
		if err := tx.release(br, hr, h.rid, unbiased(h.off), alloc); err != nil {
			return err
		}
	}
	return nil
}

// BlockStatus reports a block's size, use and allocations (at most limit,
// in address order, starting after the address `after` when given).
func (tx *Tx) BlockStatus(name string, after string, limit int) (*entity.BlockStatus, error) {
	b, err := tx.loadBlock(name)
	if err != nil {
		return nil, err
	}
	hostBits := b.prefix.Addr().BitLen() - b.prefix.Bits()
	st := &entity.BlockStatus{Name: b.row.name, CIDR: b.prefix.String(), Size: new(big.Int).Lsh(big.NewInt(1), uint(hostBits)),
		Reserved: new(big.Int), Children: b.children, Allocs: []entity.Allocation{}}
	if st.Children == nil {
		st.Children = []string{}
	}
	if b.gateway.IsValid() {
		st.Gateway = b.gateway.String()
	}
	for _, r := range b.reserved {
		n := new(big.Int).SetUint64(r.last - r.first)
		st.Reserved.Add(st.Reserved, n.Add(n, big.NewInt(1)))
	}
	if err := tx.queryRow("SELECT count(*) FROM ip_allocations WHERE block_id = ? AND until IS NULL", b.row.id).Scan(&st.Allocated); err != nil {
		return nil, entity.Internal("count allocations", err)
	}
	st.Free = new(big.Int).Sub(st.Size, st.Reserved)
	st.Free.Sub(st.Free, big.NewInt(st.Allocated))
	tx.queryRow(`SELECT e.name FROM connections c JOIN entities e ON e.id = c.a AND e.until IS NULL
		WHERE c.b = ? AND c.type = 'contains' AND c.until IS NULL`, b.row.id).Scan(&st.Parent)
	from := int64(-1 << 63)
	if after != "" {
		a, err := netip.ParseAddr(after)
		if err != nil {
			return nil, entity.Errorf(entity.KindInvalid, "after: %q is not an IP address", after)
		}
		o, ok := addrToOffset(b.prefix, a.Unmap())
		if !ok {
			return nil, entity.Errorf(entity.KindInvalid, "after: %s is outside block %s", a, b.row.name)
		}
		if o == ^uint64(0) {
			return st, nil
		}
		from = biased(o + 1)
	}
	limit = clampLimit(limit)
	rows, err := tx.query(`SELECT i.address, e.name, i.interface FROM ip_allocations i JOIN entities e ON e.id = i.entity_id AND e.until IS NULL
		WHERE i.block_id = ? AND i.until IS NULL AND i.offset >= ? ORDER BY i.offset LIMIT ?`, b.row.id, from, limit)
	if err != nil {
		return nil, entity.Internal("list allocations", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		a := entity.Allocation{Block: b.row.name}
		if err := rows.Scan(&raw, &a.Entity, &a.Interface); err != nil {
			return nil, entity.Internal("list allocations", err)
		}
		var a16 [16]byte
		copy(a16[:], raw)
		a.Address = netip.AddrFrom16(a16).Unmap().String()
		st.Allocs = append(st.Allocs, a)
	}
	return st, rows.Err()
}

// AllocationsOf lists the addresses an entity holds, in address order.
func (tx *Tx) AllocationsOf(name string) ([]entity.Allocation, error) {
	r, err := tx.row(name)
	if err != nil {
		return nil, err
	}
	// Allocations are written as they happen (nothing of them waits in
	// memory for the commit), so the transaction's statements see them.
	return allocationsOf(tx.ctx, cached{tx}, r, 0)
}

// checkBlockNesting keeps nested blocks consistent: a child block lies
// inside its parent, overlaps no sibling, and takes no address the parent
// has already handed out.
// It returns the child's prefix.
func (tx *Tx) checkBlockNesting(parent, child *entRow) (netip.Prefix, error) {
	// Only the parent's own prefix matters here, not its reserved spans:
	// blockOf would merge the spans of every sibling on each insert.
	pb, err := tx.blockPrefix(parent)
	if err != nil {
		return netip.Prefix{}, err
	}
	cidr, err := tx.stringAttr(child.id, "cidr")
	if err != nil {
		return netip.Prefix{}, err
	}
	cp, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Prefix{}, entity.Errorf(entity.KindInvalid, "ipblock %s needs a cidr before it can go in %s", child.name, parent.name)
	}
	if cp.Bits() <= pb.prefix.Bits() || !pb.prefix.Contains(cp.Addr()) {
		return netip.Prefix{}, entity.Errorf(entity.KindInvalid, "%s (%s) does not lie inside %s (%s)", child.name, cp, parent.name, pb.prefix)
	}
	kids, err := tx.childBlocks(parent.id)
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, k := range kids {
		if k.prefix.Overlaps(cp) {
			return netip.Prefix{}, entity.Errorf(entity.KindConflict, "%s (%s) overlaps sibling block %s (%s)", child.name, cp, k.name, k.prefix)
		}
	}
	first, _ := addrToOffset(pb.prefix, cp.Addr())
	last := pb.maxOff
	if kb := cp.Addr().BitLen() - cp.Bits(); kb < 64 {
		last = first + uint64(1)<<kb - 1
	}
	var n int
	if err := tx.queryRow("SELECT count(*) FROM ip_allocations WHERE block_id = ? AND until IS NULL AND offset BETWEEN ? AND ?",
		parent.id, biased(first), biased(last)).Scan(&n); err != nil {
		return netip.Prefix{}, entity.Internal("check block nesting", err)
	}
	if n > 0 {
		return netip.Prefix{}, entity.Errorf(entity.KindConflict, "%s has already handed out %d addresses inside %s; release them first", parent.name, n, cp)
	}
	return cp, nil
}

// guardBlockAttr refuses to change a block's cidr while it has allocations
// or child blocks: their offsets are relative to it.
func (tx *Tx) guardBlockAttr(r *entRow, key string) error {
	if r.driver != "ipblock" || key != "cidr" {
		return nil
	}
	n, err := tx.countAllocations(r.id)
	if err != nil {
		return err
	}
	kids, err := tx.childBlocks(r.id)
	if err != nil {
		return err
	}
	if n > 0 || len(kids) > 0 {
		return entity.Errorf(entity.KindConflict, "block %s has %d allocations and %d child blocks; its cidr cannot change", r.name, n, len(kids))
	}
	return nil
}

// ipAttrHolder names an entity other than except that has address a as
// an ip attribute, or "" when none has.
func (tx *Tx) ipAttrHolder(a netip.Addr, except int64) (string, error) {
	a16 := a.As16()
	var name string
	err := tx.queryRow(`SELECT e.name FROM attrs x JOIN entities e ON e.id = x.entity_id AND e.until IS NULL
		WHERE x.ip = ? AND x.until IS NULL AND x.ip IS NOT NULL AND x.key = 'ip' AND x.entity_id <> ? ORDER BY e.name LIMIT 1`, a16[:], except).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", entity.Internal("read ip attributes", err)
	}
	return name, nil
}

// NextFreeIP returns the address AllocateIP would hand out next, without
// taking it.
func (tx *Tx) NextFreeIP(blockName string) (string, error) {
	b, err := tx.loadBlock(blockName)
	if err != nil {
		return "", err
	}
	o, err := tx.nextFree(b, 0)
	if err != nil {
		return "", err
	}
	return offsetToAddr(b.prefix, o).String(), nil
}

// nextFree is the lowest address of b that is free to hand out to the
// entity holderID: not allocated, not reserved, and not another entity's
// ip attribute (set by hand, so in use though no block handed it out).
func (tx *Tx) nextFree(b *block, holderID int64) (uint64, error) {
	for {
		o, ok, err := tx.lowestFree(b)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, entity.Errorf(entity.KindConflict, "block %s (%s) has no free address left", b.row.name, b.prefix).WithCode(entity.ReasonExhausted)
		}
		if other, err := tx.ipAttrHolder(offsetToAddr(b.prefix, o), holderID); err != nil {
			return 0, err
		} else if other == "" {
			return o, nil
		}
		b.reserved = mergeSpans(append(b.reserved, span{o, o}))
	}
}

// errWith adds a detail to err when it is an *Error.
func errWith(err error, key string, value any) error {
	var e *entity.Error
	if errors.As(err, &e) {
		return e.With(key, value)
	}
	return err
}
