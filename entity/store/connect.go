package store

import (
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// Insert puts child into parent. For a group parent (pool, role, ...) this
// is membership; otherwise it is physical containment, with the child's
// position and height checked against the parent's units and its other
// children. It returns the connection type made.
func (tx *Tx) Insert(parent, child string, at entity.Placement) (string, error) {
	p, err := tx.row(parent)
	if err != nil {
		return "", err
	}
	c, err := tx.row(child)
	if err != nil {
		return "", err
	}
	if p.id == c.id {
		return "", entity.Errorf(entity.KindInvalid, "%s cannot contain itself", parent)
	}
	pd, err := tx.driver(p.driver)
	if err != nil {
		return "", err
	}
	cd, err := tx.driver(c.driver)
	if err != nil {
		return "", err
	}
	if pd.Kind == drivers.Group {
		if at.Position != nil || at.Height != nil {
			return "", entity.Errorf(entity.KindInvalid, "%s is a %s (a group): members have no position or height", parent, pd.Name)
		}
		return entity.Member, tx.addMember(p, c, pd)
	}
	return entity.Contains, tx.contain(p, c, pd, cd, at, entity.OpInsert)
}

func (tx *Tx) isAncestor(ancestor, of int64, types string) (bool, error) {
	var one int
	// Only something that holds things can be an ancestor: most inserts
	// (a server into a rack) stop at this probe.
	err := tx.queryRow("SELECT 1 FROM connections WHERE a = ? AND type IN ("+types+") AND until IS NULL LIMIT 1", ancestor).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, entity.Internal("check for cycles", err)
	}
	err = tx.queryRow(`WITH RECURSIVE up(id) AS (
		SELECT ?1 UNION SELECT c.a FROM connections c JOIN up ON c.b = up.id WHERE c.type IN (`+types+`) AND c.until IS NULL)
		SELECT 1 FROM up WHERE id = ?2 LIMIT 1`, of, ancestor).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, entity.Internal("check for cycles", err)
	}
	return true, nil
}

func (tx *Tx) contain(p, c *entRow, pd, cd *drivers.Driver, at entity.Placement, op string) error {
	if !pd.MayContain(cd) {
		allowed := "nothing: it is never contained"
		if len(cd.Parents) > 0 {
			allowed = strings.Join(cd.Parents, ", ")
		}
		return entity.Errorf(entity.KindInvalid, "a %s cannot go in a %s; a %s may go in: %s", cd.Name, pd.Name, cd.Name, allowed)
	}
	fc := tx.freshOf(c.id)
	if fc == nil || fc.placed {
		var cur string
		err := tx.queryRow(`SELECT e.name FROM connections c JOIN entities e ON e.id = c.a AND e.until IS NULL
			WHERE c.b = ? AND c.type = 'contains' AND c.until IS NULL`, c.id).Scan(&cur)
		if err == nil {
			return entity.Errorf(entity.KindConflict, "%s is already in %s; remove it from there first (an entity has one physical parent)", c.name, cur).With("parent", cur)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return entity.Internal("insert", err)
		}
	}
	// Something that holds nothing is no one's ancestor.
	if fc == nil || fc.holds {
		if cyc, err := tx.isAncestor(c.id, p.id, "'contains'"); err != nil {
			return err
		} else if cyc {
			return entity.Errorf(entity.KindInvalid, "%s is inside %s; putting %s in it would make a loop", p.name, c.name, c.name)
		}
	}
	var nested *netip.Prefix
	if pd.Name == "ipblock" && cd.Name == "ipblock" {
		cp, err := tx.checkBlockNesting(p, c)
		if err != nil {
			return err
		}
		nested = &cp
	}
	var pos, height any
	if at.Position != nil || at.Height != nil {
		units, err := tx.units(p, pd)
		if err != nil {
			return err
		}
		if units == 0 {
			return entity.Errorf(entity.KindInvalid, "%s is a %s, which has no rack units: give no position or height", p.name, pd.Name)
		}
		h, err := tx.height(c, cd, at.Height)
		if err != nil {
			return err
		}
		if at.Position == nil {
			return entity.Errorf(entity.KindInvalid, "a height needs a position: say where in %s %s goes", p.name, c.name)
		}
		P := *at.Position
		if !fitsUnits(P, h, units) {
			return entity.Errorf(entity.KindInvalid, "%s at unit %d with height %d does not fit in %s, which has units 1-%d", c.name, P, h, p.name, units).
				With("units", units)
		}
		if err := tx.checkFree(p, P, h); err != nil {
			return err
		}
		pos, height = P, h
	}
	after := containChange{Type: entity.Contains, Parent: p.name, Child: c.name, Position: pos, Height: height}
	cid, err := tx.record(op, c, p, nil, after)
	if err != nil {
		return err
	}
	if _, err := tx.exec("insert", "INSERT INTO connections(type, a, b, position, height, since) VALUES ('contains',?,?,?,?,?)", p.id, c.id, pos, height, cid); err != nil {
		return err
	}
	if nested != nil {
		tx.addedChildBlock(p.id, childBlock{c.name, *nested})
	}
	if fc != nil {
		fc.placed = true
	}
	if fp := tx.freshOf(p.id); fp != nil {
		fp.holds = true
		if P, ok := pos.(int64); ok {
			fp.occupied = append(fp.occupied, unitRange{P, P + height.(int64) - 1})
		}
	}
	if err := tx.bump(c, cid); err != nil {
		return err
	}
	return tx.bump(p, cid)
}

// fitsUnits reports whether h units from position P lie inside 1..units,
// compared so that no sum can overflow (a height of 2^63-1 does not wrap
// round to fit).
func fitsUnits(P, h, units int64) bool {
	return P >= 1 && P <= units && h >= 1 && h <= units-P+1
}

// followHeight keeps a placed child's units in step with its height:
// when change cid writes the `height` attribute of a child that has a
// position, its placement takes the new height (the driver's default when
// the attribute is gone) as part of the same change. Whether the new
// units fit and are free is for the rules (rack-fit, rack-overlap) to say
// at commit.
func (tx *Tx) followHeight(r *entRow, key string, cid int64) error {
	if key != "height" {
		return nil
	}
	var rid, parent, pos, h int64
	err := tx.queryRow("SELECT rid, a, position, height FROM connections WHERE b = ? AND type = 'contains' AND until IS NULL AND position IS NOT NULL AND height IS NOT NULL",
		r.id).Scan(&rid, &parent, &pos, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return entity.Internal("read placement", err)
	}
	d, err := tx.driver(r.driver)
	if err != nil {
		return err
	}
	nh, err := tx.height(r, d, nil)
	if err != nil || nh == h {
		return err
	}
	if _, err := tx.exec("move placement", "UPDATE connections SET until = ? WHERE rid = ?", cid, rid); err != nil {
		return err
	}
	if _, err := tx.exec("move placement", "INSERT INTO connections(type, a, b, position, height, since) VALUES ('contains',?,?,?,?,?)", parent, r.id, pos, nh, cid); err != nil {
		return err
	}
	// What this transaction knew of the parent's free units is stale.
	if err := tx.untrack(parent); err != nil {
		return err
	}
	return tx.bumpIDs(map[int64]bool{parent: true}, cid)
}

// checkFree fails with a conflict naming the occupant when any of units
// P..P+h-1 of parent p is taken.
func (tx *Tx) checkFree(p *entRow, P, h int64) error {
	if tx.unitsKnownFree(p.id, P, P+h-1) {
		return nil
	}
	// Taken (the query names the occupant), or not known here.
	var who string
	var wp, wh int64
	err := tx.queryRow(`SELECT e.name, c.position, c.height FROM connections c JOIN entities e ON e.id = c.b AND e.until IS NULL
		WHERE c.a = ? AND c.type = 'contains' AND c.until IS NULL AND c.position IS NOT NULL
		AND c.position <= ? AND c.position + c.height - 1 >= ? ORDER BY c.position LIMIT 1`, p.id, P+h-1, P).Scan(&who, &wp, &wh)
	if err == nil {
		return entity.Errorf(entity.KindConflict, "units %d-%d of %s overlap %s, which takes units %d-%d", P, P+h-1, p.name, who, wp, wp+wh-1).
			With("occupant", who)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return entity.Internal("check rack units", err)
	}
	return nil
}

// Units returns how many rack units the entity has: its `units` attribute,
// else its driver's default; 0 when it does not hold things at positions.
func (tx *Tx) Units(name string) (int64, error) {
	r, err := tx.row(name)
	if err != nil {
		return 0, err
	}
	d, err := tx.driver(r.driver)
	if err != nil {
		return 0, err
	}
	return tx.units(r, d)
}

func (tx *Tx) intAttr(id int64, key string) (int64, bool, error) {
	if v, found, known := tx.knownAttr(id, key, true); known {
		n, _ := v.Int64()
		return n, found, nil
	}
	var n sql.NullInt64
	err := tx.queryRow("SELECT num FROM attrs WHERE entity_id = ? AND key = ? AND until IS NULL AND num IS NOT NULL ORDER BY rid DESC LIMIT 1", id, key).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, entity.Internal("read "+key, err)
	}
	return n.Int64, n.Valid, nil
}

func (tx *Tx) units(r *entRow, d *drivers.Driver) (int64, error) {
	if d.Units == 0 {
		return 0, nil
	}
	n, ok, err := tx.intAttr(r.id, "units")
	if err != nil || ok {
		return n, err
	}
	return int64(d.Units), nil
}

// Height returns the height in rack units an entity takes: its `height`
// attribute, else its driver's default, else 1.
func (tx *Tx) Height(name string) (int64, error) {
	r, err := tx.row(name)
	if err != nil {
		return 0, err
	}
	d, err := tx.driver(r.driver)
	if err != nil {
		return 0, err
	}
	return tx.height(r, d, nil)
}

func (tx *Tx) height(c *entRow, d *drivers.Driver, given *int64) (int64, error) {
	if given != nil {
		if *given < 1 {
			return 0, entity.Errorf(entity.KindInvalid, "height %d must be at least 1 unit", *given)
		}
		return *given, nil
	}
	n, ok, err := tx.intAttr(c.id, "height")
	if err != nil || ok {
		return n, err
	}
	if d.Height > 0 {
		return int64(d.Height), nil
	}
	return 1, nil
}

func (tx *Tx) addMember(g, m *entRow, gd *drivers.Driver) error {
	fm := tx.freshOf(m.id)
	if fm == nil || fm.groups.has(g.id) {
		var one int
		err := tx.queryRow("SELECT 1 FROM connections WHERE a = ? AND b = ? AND type = 'member' AND until IS NULL", g.id, m.id).Scan(&one)
		if err == nil {
			return entity.Errorf(entity.KindConflict, "%s is already a member of %s", m.name, g.name)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return entity.Internal("add member", err)
		}
	}
	// A group without members is no one's ancestor.
	if fm == nil || fm.hasMembers {
		if cyc, err := tx.isAncestor(m.id, g.id, "'member'"); err != nil {
			return err
		} else if cyc {
			return entity.Errorf(entity.KindInvalid, "%s is (within) a member of %s; adding %s to it would make a loop", g.name, m.name, m.name)
		}
	}
	if gd.Name == "pool" {
		if err := tx.checkPoolRules(g, m, fm); err != nil {
			return err
		}
	}
	after := memberChange{Type: entity.Member, Group: g.name, Member: m.name}
	cid, err := tx.record(entity.OpInsert, m, g, nil, after)
	if err != nil {
		return err
	}
	if _, err := tx.exec("add member", "INSERT INTO connections(type, a, b, since) VALUES ('member',?,?,?)", g.id, m.id, cid); err != nil {
		return err
	}
	if fm != nil {
		fm.groups.add(g.id)
		if gd.Name == "pool" {
			fm.pools = append(fm.pools, poolRef{g.id, g.name})
		}
	}
	if fg := tx.freshOf(g.id); fg != nil {
		fg.hasMembers = true
	}
	if err := tx.bump(m, cid); err != nil {
		return err
	}
	return tx.bump(g, cid)
}

// checkPoolRules enforces Clusto's pool variants: a member of an exclusive
// pool may be in no other pool, and a thing may be in at most one unique
// pool. fm, when not nil, already knows m's pools.
func (tx *Tx) checkPoolRules(g, m *entRow, fm *freshEntity) error {
	var pools []poolRef
	if fm != nil {
		pools = fm.pools
	} else {
		rows, err := tx.query(`SELECT e.id, e.name FROM connections c JOIN entities e ON e.id = c.a AND e.until IS NULL
			WHERE c.b = ? AND c.type = 'member' AND c.until IS NULL AND e.driver = 'pool' ORDER BY e.name`, m.id)
		if err != nil {
			return entity.Internal("read pools", err)
		}
		for rows.Next() {
			var p poolRef
			if err := rows.Scan(&p.id, &p.name); err != nil {
				rows.Close()
				return entity.Internal("read pools", err)
			}
			pools = append(pools, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return entity.Internal("read pools", err)
		}
	}
	if len(pools) == 0 {
		return nil // the first pool a thing joins breaks no rule
	}
	sort.Slice(pools, func(i, j int) bool { return pools[i].name < pools[j].name })
	flag := func(id int64, key string) (bool, error) {
		v, err := tx.stringAttr(id, key)
		return v == "true", err
	}
	gExclusive, err := flag(g.id, "exclusive")
	if err != nil {
		return err
	}
	gUnique, err := flag(g.id, "unique")
	if err != nil {
		return err
	}
	for _, p := range pools {
		if gExclusive {
			return entity.Errorf(entity.KindConflict, "%s is an exclusive pool and %s is already in pool %s", g.name, m.name, p.name)
		}
		if ex, err := flag(p.id, "exclusive"); err != nil {
			return err
		} else if ex {
			return entity.Errorf(entity.KindConflict, "%s is in exclusive pool %s and can be in no other pool", m.name, p.name)
		}
		if gUnique {
			if un, err := flag(p.id, "unique"); err != nil {
				return err
			} else if un {
				return entity.Errorf(entity.KindConflict, "%s is already in unique pool %s; a thing may be in one unique pool", m.name, p.name)
			}
		}
	}
	return nil
}

// Remove takes child out of parent (containment or membership).
func (tx *Tx) Remove(parent, child string) error {
	p, err := tx.row(parent)
	if err != nil {
		return err
	}
	c, err := tx.row(child)
	if err != nil {
		return err
	}
	var rid int64
	var typ string
	var pos, h sql.NullInt64
	err = tx.queryRow("SELECT rid, type, position, height FROM connections WHERE a = ? AND b = ? AND type IN ('contains','member') AND until IS NULL",
		p.id, c.id).Scan(&rid, &typ, &pos, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return entity.Errorf(entity.KindNotFound, "%s is not in %s", child, parent)
	} else if err != nil {
		return entity.Internal("remove", err)
	}
	before := map[string]any{"type": typ, "parent": p.name, "child": c.name}
	if pos.Valid {
		before["position"], before["height"] = pos.Int64, h.Int64
	}
	cid, err := tx.record(entity.OpRemove, c, p, before, nil)
	if err != nil {
		return err
	}
	if _, err := tx.exec("remove", "UPDATE connections SET until = ? WHERE rid = ?", cid, rid); err != nil {
		return err
	}
	tx.forgetBlocks()
	if err := tx.untrack(p.id, c.id); err != nil {
		return err
	}
	if err := tx.bump(c, cid); err != nil {
		return err
	}
	return tx.bump(p, cid)
}

// portOf checks that the entity's driver declares the port and returns its type.
func (tx *Tx) portOf(r *entRow, port string) (drivers.Port, error) {
	d, err := tx.driver(r.driver)
	if err != nil {
		return drivers.Port{}, err
	}
	p, ok := d.Port(port)
	if !ok {
		var names []string
		for _, p := range d.PortList() {
			names = append(names, p.Name)
		}
		list := "none"
		if len(names) > 0 {
			list = compactPorts(names)
		}
		return p, entity.Errorf(entity.KindInvalid, "%s is a %s, which has no port %q; its ports are: %s", r.name, d.Name, port, list)
	}
	return p, nil
}

// compactPorts shortens long numbered port lists: 1-48, console.
func compactPorts(names []string) string {
	var out []string
	for i := 0; i < len(names); {
		j := i
		for j+1 < len(names) && isNext(names[j], names[j+1]) {
			j++
		}
		if j-i >= 2 {
			out = append(out, names[i]+"-"+names[j])
		} else {
			out = append(out, names[i:j+1]...)
		}
		i = j + 1
	}
	return strings.Join(out, ", ")
}

func isNext(a, b string) bool {
	pa, na := splitNum(a)
	pb, nb := splitNum(b)
	return pa == pb && na >= 0 && nb == na+1
}

func splitNum(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) || len(s)-i > 6 {
		return s, -1
	}
	n := 0
	fmt.Sscan(s[i:], &n)
	return s[:i], n
}

// peerOf returns the far end of the link on r's port, if any.
func (tx *Tx) peerOf(r *entRow, port string) (entity.Endpoint, bool, error) {
	var ep entity.Endpoint
	err := tx.queryRow(`SELECT e.name, c.b_port FROM connections c JOIN entities e ON e.id = c.b AND e.until IS NULL
		WHERE c.a = ? AND c.a_port = ? AND c.type = 'link' AND c.until IS NULL`, r.id, port).Scan(&ep.Name, &ep.Port)
	if errors.Is(err, sql.ErrNoRows) {
		return ep, false, nil
	}
	if err != nil {
		return ep, false, entity.Internal("read link", err)
	}
	return ep, true, nil
}

// FreePort returns the first port of the entity, in driver order, that has
// no link and is of type portType (any type when empty).
func (tx *Tx) FreePort(name, portType string) (string, error) {
	r, err := tx.row(name)
	if err != nil {
		return "", err
	}
	d, err := tx.driver(r.driver)
	if err != nil {
		return "", err
	}
	f := tx.freshOf(r.id)
	for _, p := range d.PortList() {
		if portType != "" && p.Type != portType {
			continue
		}
		if f != nil && !f.links.has(p.Name) {
			return p.Name, nil // known free
		}
		if _, used, err := tx.peerOf(r, p.Name); err != nil {
			return "", err
		} else if !used {
			return p.Name, nil
		}
	}
	if portType == "" {
		return "", entity.Errorf(entity.KindConflict, "%s has no free port", name).WithCode(entity.ReasonExhausted)
	}
	return "", entity.Errorf(entity.KindConflict, "%s has no free %s port", name, portType).WithCode(entity.ReasonExhausted)
}

// Connect links port a to port b with a cable. Both ports must be declared
// by their drivers, be of the same type, and be free.
func (tx *Tx) Connect(a, b entity.Endpoint) error {
	ra, err := tx.row(a.Name)
	if err != nil {
		return err
	}
	rb, err := tx.row(b.Name)
	if err != nil {
		return err
	}
	if ra.id == rb.id {
		return entity.Errorf(entity.KindInvalid, "cannot link %s to itself", a.Name)
	}
	pa, err := tx.portOf(ra, a.Port)
	if err != nil {
		return err
	}
	pb, err := tx.portOf(rb, b.Port)
	if err != nil {
		return err
	}
	if pa.Type != pb.Type {
		return entity.Errorf(entity.KindInvalid, "%s is a %s port and %s is a %s port; a link joins ports of one type", a, pa.Type, b, pb.Type)
	}
	for _, side := range []struct {
		r  *entRow
		ep entity.Endpoint
	}{{ra, a}, {rb, b}} {
		if f := tx.freshOf(side.r.id); f != nil && !f.links.has(side.ep.Port) {
			continue // known free
		}
		peer, used, err := tx.peerOf(side.r, side.ep.Port)
		if err != nil {
			return err
		}
		if used {
			return entity.Errorf(entity.KindConflict, "port %s is in use: it is linked to %s", side.ep, peer).With("peer", peer.String())
		}
	}
	after := linkChange{A: a.Name, APort: a.Port, B: b.Name, BPort: b.Port, Type: pa.Type}
	cid, err := tx.record(entity.OpLink, ra, rb, nil, after)
	if err != nil {
		return err
	}
	if _, err := tx.exec("link", `INSERT INTO connections(type, a, b, a_port, b_port, port_type, since) VALUES
		('link',?1,?2,?3,?4,?5,?6), ('link',?2,?1,?4,?3,?5,?6)`, ra.id, rb.id, a.Port, b.Port, pa.Type, cid); err != nil {
		return err
	}
	for _, side := range []struct {
		id   int64
		port string
	}{{ra.id, a.Port}, {rb.id, b.Port}} {
		if f := tx.freshOf(side.id); f != nil {
			f.links.add(side.port)
		}
	}
	if err := tx.bump(ra, cid); err != nil {
		return err
	}
	return tx.bump(rb, cid)
}

// Disconnect removes the link between a and b. An empty port on one side
// means whichever port of that entity the link uses; with both empty, the
// entities must share exactly one link.
func (tx *Tx) Disconnect(a, b entity.Endpoint) error {
	ra, err := tx.row(a.Name)
	if err != nil {
		return err
	}
	rb, err := tx.row(b.Name)
	if err != nil {
		return err
	}
	query := "SELECT a_port, b_port, port_type FROM connections WHERE a = ? AND b = ? AND type = 'link' AND until IS NULL"
	args := []any{ra.id, rb.id}
	if a.Port != "" {
		query += " AND a_port = ?"
		args = append(args, a.Port)
	}
	if b.Port != "" {
		query += " AND b_port = ?"
		args = append(args, b.Port)
	}
	rows, err := tx.query(query+" LIMIT 2", args...)
	if err != nil {
		return entity.Internal("unlink", err)
	}
	var found []entity.Endpoint
	var ptype string
	for rows.Next() {
		var ap, bp string
		if err := rows.Scan(&ap, &bp, &ptype); err != nil {
			rows.Close()
			return entity.Internal("unlink", err)
		}
		found = append(found, entity.Endpoint{Name: ap, Port: bp})
	}
	rows.Close()
	switch {
	case len(found) == 0:
		return entity.Errorf(entity.KindNotFound, "there is no link between %s and %s", a, b)
	case len(found) > 1:
		return entity.Errorf(entity.KindInvalid, "%s and %s share more than one link; name the ports", a.Name, b.Name)
	}
	a.Port, b.Port = found[0].Name, found[0].Port
	before := map[string]any{"a": a.Name, "a_port": a.Port, "b": b.Name, "b_port": b.Port, "type": ptype}
	cid, err := tx.record(entity.OpUnlink, ra, rb, before, nil)
	if err != nil {
		return err
	}
	if _, err := tx.exec("unlink", `UPDATE connections SET until = ?1 WHERE type = 'link' AND until IS NULL AND
		((a = ?2 AND a_port = ?3 AND b = ?4 AND b_port = ?5) OR (a = ?4 AND a_port = ?5 AND b = ?2 AND b_port = ?3))`,
		cid, ra.id, a.Port, rb.id, b.Port); err != nil {
		return err
	}
	if err := tx.untrack(ra.id, rb.id); err != nil {
		return err
	}
	if err := tx.bump(ra, cid); err != nil {
		return err
	}
	return tx.bump(rb, cid)
}

// ConnectAuto is Connect with ports that may be left empty: a missing port
// is the first free port, in driver order, of the type of the port given on
// the other side; with both missing, the type is the one both have free
// ports of and either has the most of (nic for a switch, power for a PDU).
// It returns the endpoints it linked. Choosing inside the
// write transaction makes the choice and the link one atomic step.
func (tx *Tx) ConnectAuto(a, b entity.Endpoint) (entity.Endpoint, entity.Endpoint, error) {
	switch {
	case a.Port != "" && b.Port != "":
	case a.Port != "" || b.Port != "":
		given, missing := &a, &b
		if a.Port == "" {
			given, missing = &b, &a
		}
		r, err := tx.row(given.Name)
		if err != nil {
			return a, b, err
		}
		p, err := tx.portOf(r, given.Port)
		if err != nil {
			return a, b, err
		}
		if missing.Port, err = tx.FreePort(missing.Name, p.Type); err != nil {
			return a, b, err
		}
	default:
		// The type both have free ports of and either has the most of:
		// nic for a switch, console for a console server, power for a PDU.
		ra, err := tx.row(a.Name)
		if err != nil {
			return a, b, err
		}
		rb, err := tx.row(b.Name)
		if err != nil {
			return a, b, err
		}
		da, err := tx.driver(ra.driver)
		if err != nil {
			return a, b, err
		}
		db, err := tx.driver(rb.driver)
		if err != nil {
			return a, b, err
		}
		count := func(d *drivers.Driver, typ string) int {
			n := 0
			for _, p := range d.PortList() {
				if p.Type == typ {
					n++
				}
			}
			return n
		}
		best, bestN := "", -1
		seen := map[string]bool{}
		for _, p := range da.PortList() {
			if seen[p.Type] || count(db, p.Type) == 0 {
				continue
			}
			seen[p.Type] = true
			fa, errA := tx.FreePort(a.Name, p.Type)
			fb, errB := tx.FreePort(b.Name, p.Type)
			for _, e := range []error{errA, errB} {
				if e != nil && !entity.IsKind(e, entity.KindConflict) {
					return a, b, e
				}
			}
			if errA != nil || errB != nil {
				continue
			}
			if n := max(count(da, p.Type), count(db, p.Type)); n > bestN {
				best, bestN = p.Type, n
				a.Port, b.Port = fa, fb
			}
		}
		if best == "" {
			if len(seen) == 0 {
				return a, b, entity.Errorf(entity.KindInvalid, "%s (%s) and %s (%s) have no port type in common", a.Name, ra.driver, b.Name, rb.driver)
			}
			return a, b, entity.Errorf(entity.KindConflict, "%s and %s have no free ports of a type in common", a.Name, b.Name).WithCode(entity.ReasonExhausted)
		}
	}
	return a, b, tx.Connect(a, b)
}
