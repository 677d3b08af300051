package query

import (
	"context"
	"fmt"
	"net/netip"
	"regexp/syntax"
	"slices"
	"strings"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// The compiler turns a query into one SQL statement over the schema of
// schema/migrations: a condition on the entities row `e`, plus common
// table expressions for what a condition cannot say directly (the
// entities on the right of a relation, containment at any depth, nested
// group membership). When the query's top level is, or is and-ed with, a
// relation or a group, the statement starts from that CTE and looks
// entities up by id (see top). Every value from the query is a bound
// parameter; the SQL text holds only the compiler's own words, aliases,
// placeholders and the page's LIMIT (an integer it computed).
//
// Every versioned table is read through entity.Visible, so a query as of a
// past change has the same shape as a current one; for current reads that
// condition is the literal `x.until IS NULL` that the partial indexes need.

// sqlFrag is SQL text with the values of its placeholders, in order.
type sqlFrag struct {
	sql  string
	args []any
}

func frag(sql string, args ...any) sqlFrag { return sqlFrag{sql: sql, args: args} }

// cat joins fragments with sep, keeping their arguments in text order.
func cat(sep string, fs ...sqlFrag) sqlFrag {
	var out sqlFrag
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		parts = append(parts, f.sql)
		out.args = append(out.args, f.args...)
	}
	out.sql = strings.Join(parts, sep)
	return out
}

// balanced joins conditions with AND or OR as a balanced tree, so that a
// long list of terms nests log2(n) deep in SQLite's expression tree (whose
// depth is limited to 1000) rather than n deep.
func balanced(op string, fs []sqlFrag) sqlFrag {
	if len(fs) == 1 {
		return fs[0]
	}
	mid := len(fs) / 2
	l, r := balanced(op, fs[:mid]), balanced(op, fs[mid:])
	return cat("", frag("("), l, frag(" "+op+" "), r, frag(")"))
}

type compiler struct {
	at   int64
	ctes []sqlFrag
	n    int
	// probe is set while compiling the conditions checked on each entity
	// of a driving set (a relation's list): attribute terms then look the
	// entity's own attributes up (EXISTS on the per-entity index) instead
	// of listing every holder of the value, which for status,spare on a
	// large inventory is tens of thousands of ids.
	probe bool
	// scan compiles for a walk in name order that stops at the first few
	// matches (query allocation): attribute terms are probes of each
	// entity, and driver and kind terms stay indexable, so that SQLite
	// walks entities_cur_driver (driver, name) or entities_cur_name in
	// name order instead of listing every match and sorting it.
	scan bool
	// db answers rarity estimates (nil: none).
	db store.Reader
	// stream compiles relation sets to be read a few rows at a time, for
	// capped counts and estimates that stop early: containment walked
	// depth first (SQLite's queue ordered by depth), a `connected to`'s
	// sources joined with UNION ALL (which SQLite streams; UNION lists
	// them all first to remove repeats, so readers count DISTINCT ids).
	stream bool
	// walk compiles a page's name-order walk (see walkShape): with scan,
	// and `in` and `connected to` as tests of each entity walked too
	// (relProbe) rather than sets computed whole.
	walk bool
}

func (c *compiler) alias(prefix string) string {
	c.n++
	return fmt.Sprintf("%s%d", prefix, c.n)
}

func (c *compiler) visible(alias string) sqlFrag {
	s, args := store.Visible(alias, c.at)
	return frag(s, args...)
}

// addCTE appends a common table expression named name with one column id.
func (c *compiler) addCTE(name string, body sqlFrag) {
	c.addCTECols(name, "id", body)
}

func (c *compiler) addCTECols(name, cols string, body sqlFrag) {
	c.ctes = append(c.ctes, cat("", frag(name+"("+cols+") AS (\n  "), body, frag(")")))
}

// cond compiles n into a condition on the entities row aliased x.
func (c *compiler) cond(n node, x string) sqlFrag {
	switch n := n.(type) {
	case *orNode:
		fs := make([]sqlFrag, len(n.terms))
		for i, t := range n.terms {
			fs[i] = c.cond(t, x)
		}
		return balanced("OR", fs)
	case *andNode:
		return c.and(n.terms, x)
	case *notNode:
		return cat("", frag("NOT ("), c.cond(n.x, x), frag(")"))
	case *allNode:
		return frag("1")
	case *fieldNode:
		return match(x+"."+string(n.col), n.pat)
	case *attrNode:
		if c.probe || c.scan {
			return c.attrProbe(n, x)
		}
		return cat("", frag(x+".id IN ("), c.attrHolders(n), frag(")"))
	case *groupNode:
		return frag(x + ".id IN (SELECT id FROM " + c.members(n) + ")")
	case *ipNode:
		return cat("", frag(x+".id IN ("), c.ipHolders(n.prefix), frag(")"))
	case *relNode:
		if c.walk && n.op != relContains {
			return cat("", frag("("), c.cond(n.left, x), frag(" AND "), c.relProbe(n, x), frag(")"))
		}
		if n.op == relIn && !unselective(n.left) {
			return frag(x + ".id IN (SELECT id FROM " + c.upIn(n.left, n.right) + ")")
		}
		rel, _ := c.relSet(n)
		if _, all := n.left.(*allNode); all {
			return frag(x + ".id IN (SELECT id FROM " + rel + ")")
		}
		return cat("", frag("("), c.cond(n.left, x), frag(" AND "+x+".id IN (SELECT id FROM "+rel+"))"))
	}
	panic(fmt.Sprintf("query: compile: unexpected node %T", n))
}

// and compiles a conjunction. A driver or kind term next to a more
// selective one is written with a unary + (`+e.driver = ?`), which keeps
// SQLite from using the driver index for it: a driver holds thousands of
// entities, but without statistics SQLite takes an index equality to hold
// about ten and would scan every server to find the few that have an
// attribute or a connection.
func (c *compiler) and(terms []node, x string) sqlFrag {
	selective := false
	for _, t := range terms {
		if !unselective(t) {
			selective = true
		}
	}
	fs := make([]sqlFrag, len(terms))
	for i, t := range terms {
		if f, ok := t.(*fieldNode); ok && selective && f.col != colName && !c.scan {
			fs[i] = match("+"+x+"."+string(f.col), f.pat)
			continue
		}
		fs[i] = c.cond(t, x)
	}
	return balanced("AND", fs)
}

// unselective reports whether n can only be answered by scanning many
// entities: a driver or kind term, `*`, a negation, or a disjunction.
func unselective(n node) bool {
	switch n := n.(type) {
	case *fieldNode:
		return n.col != colName || !indexable(n.pat)
	case *allNode, *notNode, *orNode:
		return true
	case *andNode:
		for _, t := range n.terms {
			if !unselective(t) {
				return false
			}
		}
		return true
	}
	return false
}

// relSet adds the CTEs of relation n and returns the name of the one
// listing the entities that stand in the relation to some entity matching
// n's right side (n's left side aside), in a column id, and whether that
// list may repeat an entity (only the list of `in` may).
func (c *compiler) relSet(n *relNode) (name string, repeats bool) {
	right := c.set(n.right)
	switch n.op {
	case relIn:
		return c.descendants(right), !single(n.right)
	case relContains:
		return c.ancestors(right), false
	}
	return c.connected(right, n.via), false
}

// filters reports whether n matches some text with a glob or a regex.
func filters(n node) bool {
	return someTerm(n, func(n node) bool {
		switch n := n.(type) {
		case *relNode:
			return filters(n.left) || filters(n.right)
		case *fieldNode:
			return n.pat.kind != patExact
		case *groupNode:
			return n.pat.kind != patExact
		case *attrNode:
			return n.pat != nil && n.pat.kind != patExact
		}
		return false
	})
}

// someTerm reports whether f holds for one of the terms that n combines
// with and, or and not (n itself when it is none of those).
func someTerm(n node, f func(node) bool) bool {
	some := func(t node) bool { return someTerm(t, f) }
	switch n := n.(type) {
	case *orNode:
		return slices.ContainsFunc(n.terms, some)
	case *andNode:
		return slices.ContainsFunc(n.terms, some)
	case *notNode:
		return someTerm(n.x, f)
	}
	return f(n)
}

// single reports whether at most one entity can match n: names are
// unique (among the entities visible at any one time).
func single(n node) bool {
	switch n := n.(type) {
	case *fieldNode:
		return n.col == colName && n.pat.kind == patExact
	case *andNode:
		for _, t := range n.terms {
			if single(t) {
				return true
			}
		}
	}
	return false
}

// conjuncts flattens the top-level and of n.
func conjuncts(n node) []node {
	if a, ok := n.(*andNode); ok {
		var out []node
		for _, t := range a.terms {
			out = append(out, conjuncts(t)...)
		}
		return out
	}
	return []node{n}
}

// driverRank orders the conjuncts whose CTE can drive the statement:
// the entities connected to something are few, its containers fewer than
// its contents, a group's members a list; -1 for the others.
func driverRank(n node) int {
	switch n := n.(type) {
	case *relNode:
		switch n.op {
		case relConnected:
			return 0
		case relContains:
			return 1
		}
		return 3
	case *groupNode:
		return 2
	}
	return -1
}

// top compiles the query's root into the FROM clause and the condition of
// the statement. When one of the root's conjuncts is a relation or a group
// membership, whose CTE SQLite computes in full anyway, the statement
// reads that CTE first (CROSS JOIN fixes the order) and looks entities up
// by id; the rest of the query is the condition.
//
// An `in` whose candidates are anchored by a selective term (its left
// side, or another conjunct: `driver:server in driver:datacenter and
// attr:status,broken`) is answered upwards: from those candidates to
// their containers, rather than down through everything in the right
// side; (A in B) and C is (A and C) in B. When the right side is one entity
// by its exact name and the candidates are narrowed only by attributes,
// whose selectivity is unknown without statistics, the walk goes down from
// that entity instead: `driver:server in name:rack42 and
// attr:status,spare` reads one rack, not every spare server (0.96 s -> 2 ms
// on 100,000 entities where a third are spare).
func (c *compiler) top(root node) (from string, cond sqlFrag) {
	terms := conjuncts(root)
	var selective []node
	for _, t := range terms {
		if _, rel := t.(*relNode); !rel && !unselective(t) {
			selective = append(selective, t)
		}
	}
	best, bestRank, set, repeats := -1, 0, "", false
	var folded []node // conjuncts the driving set already satisfies
	for i, t := range terms {
		if r, ok := t.(*relNode); ok && r.op == relIn {
			cand := append([]node{r.left}, selective...)
			if !unselective(&andNode{terms: cand}) && (nameAnchored(&andNode{terms: cand}) || !exactName(r.right) || c.rare(cand)) {
				best, set, folded = i, c.upIn(&andNode{pos: r.pos, terms: cand}, r.right), selective
				break
			}
		}
		if r := driverRank(t); r >= 0 && (best < 0 || r < bestRank) {
			best, bestRank = i, r
		}
	}
	if best < 0 {
		return "entities e", c.cond(root, "e")
	}
	var rest []node
	switch n := terms[best].(type) {
	case *relNode:
		if set == "" {
			set, repeats = c.relSet(n)
			if _, all := n.left.(*allNode); !all {
				rest = append(rest, n.left)
			}
		}
	case *groupNode:
		set = c.members(n)
	}
	for i, t := range terms {
		if i != best && !slices.Contains(folded, t) {
			rest = append(rest, t)
		}
	}
	if repeats {
		set = "(SELECT DISTINCT id FROM " + set + ")"
	}
	from = set + " r CROSS JOIN entities e ON e.id = r.id"
	c.probe = true
	defer func() { c.probe = false }()
	switch len(rest) {
	case 0:
		return from, frag("1")
	case 1:
		return from, c.cond(rest[0], "e")
	}
	return from, c.and(rest, "e")
}

// relProbe tests whether entity x stands in relation n (in or connected
// to) to some entity matching n's right side (n's left side aside): for
// `in`, a walk up x's containers (a recursive CTE inside EXISTS, from x's
// one parent up); for `connected to`, a look at x's own connections, each
// source read from its far end. The right side is a set computed once,
// in the ordinary form.
func (c *compiler) relProbe(n *relNode, x string) sqlFrag {
	scan, walk := c.scan, c.walk
	c.scan, c.walk = false, false
	right := c.set(n.right)
	c.scan, c.walk = scan, walk
	if n.op == relIn {
		up, k, k2 := c.alias("w"), c.alias("k"), c.alias("k")
		start := cat("", frag("SELECT "+k+".a, 1 FROM connections "+k+" WHERE "+k+".b = "+x+".id AND "+k+".type = 'contains' AND "), c.visible(k))
		step := cat("", frag("SELECT "+k2+".a, "+up+".depth + 1 FROM "+up+" CROSS JOIN connections "+k2+" ON "+k2+".b = "+up+".anc WHERE "+k2+".type = 'contains' AND "),
			c.visible(k2), frag(fmt.Sprintf(" AND %s.depth < %d", up, maxContainment)))
		return cat("", frag("EXISTS (WITH RECURSIVE "+up+"(anc, depth) AS (\n  "), start, frag("\n  UNION ALL\n  "), step,
			frag(")\n  SELECT 1 FROM "+up+" WHERE "+up+".anc IN (SELECT id FROM "+right+"))"))
	}
	var arms []sqlFrag
	for _, a := range c.connectionArms(n.via) {
		arms = append(arms, cat("", frag("EXISTS (SELECT 1 FROM "+a.src.table+" "+a.k+" WHERE "+a.k+"."+a.src.far+" = "+x+".id AND "), a.cond,
			frag(" AND "+a.k+"."+a.src.near+" IN (SELECT id FROM "+right+"))")))
	}
	if len(arms) == 0 {
		return frag("0")
	}
	return balanced("OR", arms)
}

// upIn adds CTEs answering `cand in right` upwards: the containers of the
// entities matching cand are walked up, one contains connection at a
// time, and the entities with one matching right are kept. It returns
// the name of the CTE listing those, without duplicates.
func (c *compiler) upIn(cand, right node) string {
	sr := c.set(right)
	walk := c.alias("w")
	y, k, k2 := c.alias("e"), c.alias("k"), c.alias("k")
	start := cat("", frag("SELECT "+k+".b, "+k+".a, 1 FROM connections "+k+" WHERE "+k+".type = 'contains' AND "), c.visible(k),
		frag(" AND "+k+".b IN (SELECT "+y+".id FROM entities "+y+" WHERE "), c.visible(y), frag(" AND "), c.cond(cand, y), frag(")"))
	step := cat("", frag("SELECT "+walk+".id, "+k2+".a, "+walk+".depth + 1 FROM "+walk+" CROSS JOIN connections "+k2+" ON "+k2+".b = "+walk+".anc WHERE "+k2+".type = 'contains' AND "),
		c.visible(k2), frag(fmt.Sprintf(" AND %s.depth < %d", walk, maxContainment)))
	// Each entity has one container, so each walk is a chain and meets no
	// pair twice: UNION ALL.
	c.addCTECols(walk, "id, anc, depth", cat("\n  UNION ALL\n  ", start, step))
	name := c.alias("i")
	c.addCTE(name, frag("SELECT DISTINCT id FROM "+walk+" WHERE anc IN (SELECT id FROM "+sr+")"))
	return name
}

// set adds a CTE listing the ids of the entities matching n and returns its name.
func (c *compiler) set(n node) string {
	name := c.alias("s")
	y := c.alias("e")
	c.addCTE(name, cat("", frag("SELECT "+y+".id FROM entities "+y+" WHERE "), c.visible(y), frag(" AND "), c.cond(n, y)))
	return name
}

// Recursive steps read `FROM cte CROSS JOIN connections k ON k.a =
// cte.id`: CROSS JOIN keeps the queue outside so that each step is an
// index search on (a, type). With a plain JOIN, SQLite 3.54 may instead
// build an automatic index over every current contains row at each step,
// which made a three-level `in` take a minute on 100,000 entities.

// maxContainment bounds the walks through contains connections that do
// not remove duplicates as they go (UNION ALL, which halves the cost of a
// walk down). Containment is a tree, kept free of loops by the store, so
// the bound only guards against a damaged file; no inventory nests
// anywhere near this deep.
const maxContainment = 256

// descendants adds a recursive CTE listing the entities strictly inside
// the entities of set, at any depth of contains connections, and returns
// its name. Containment is a tree, so the walk meets each entity once per
// entity of set above it: the list repeats only entities inside two
// nested members of set (top removes those repeats when it drives from it).
func (c *compiler) descendants(set string) string {
	name := c.alias("d")
	k, k2 := c.alias("k"), c.alias("k")
	start := cat("", frag("SELECT "+k+".b, 1 FROM connections "+k+" WHERE "+k+".type = 'contains' AND "), c.visible(k),
		frag(" AND "+k+".a IN (SELECT id FROM "+set+")"))
	step := cat("", frag("SELECT "+k2+".b, "+name+".depth + 1 FROM "+name+" CROSS JOIN connections "+k2+" ON "+k2+".a = "+name+".id WHERE "+k2+".type = 'contains' AND "),
		c.visible(k2), frag(fmt.Sprintf(" AND %s.depth < %d", name, maxContainment)))
	if c.stream {
		step = cat("", step, frag(" ORDER BY 2 DESC"))
	}
	c.addCTECols(name, "id, depth", cat("\n  UNION ALL\n  ", start, step))
	return name
}

// ancestors adds a recursive CTE listing the entities that strictly
// contain an entity of set, at any depth, and returns its name. Many
// entities share their containers, so this walk removes duplicates as it
// goes (UNION).
func (c *compiler) ancestors(set string) string {
	name := c.alias("u")
	k, k2 := c.alias("k"), c.alias("k")
	start := cat("", frag("SELECT "+k+".a FROM connections "+k+" WHERE "+k+".type = 'contains' AND "), c.visible(k),
		frag(" AND "+k+".b IN (SELECT id FROM "+set+")"))
	step := cat("", frag("SELECT "+k2+".a FROM "+name+" CROSS JOIN connections "+k2+" ON "+k2+".b = "+name+".id WHERE "+k2+".type = 'contains' AND "),
		c.visible(k2))
	c.addCTE(name, cat("\n  UNION\n  ", start, step))
	return name
}

// members adds a recursive CTE listing the members, direct or through
// nested groups, of the groups of n's driver whose name matches n's
// pattern, and returns its name.
func (c *compiler) members(n *groupNode) string {
	name := c.alias("m")
	g := c.alias("e")
	k := c.alias("k")
	start := cat("", frag("SELECT "+k+".b FROM connections "+k+" WHERE "+k+".type = 'member' AND "), c.visible(k),
		frag(" AND "+k+".a IN (SELECT "+g+".id FROM entities "+g+" WHERE "), c.visible(g),
		frag(" AND "+g+".driver = ?", n.driver), frag(" AND "), match(g+".name", n.pat), frag(")"))
	k2 := c.alias("k")
	step := cat("", frag("SELECT "+k2+".b FROM "+name+" CROSS JOIN connections "+k2+" ON "+k2+".a = "+name+".id WHERE "+k2+".type = 'member' AND "),
		c.visible(k2))
	c.addCTE(name, cat("\n  UNION\n  ", start, step))
	return name
}

// connectionSource is one place the schema records that two entities are
// connected, read as pairs (near, far): far is directly connected to near.
// Every source is listed in connectionSources; `connected to` unions them.
type connectionSource struct {
	// table and the columns holding the two sides.
	table, near, far string
	// types are the connection types the rows carry, as `via` names them;
	// portType is the column holding a link's port type, if any.
	types    []string
	typeCol  string
	portType string
	// fixedType, when set, is the one type of every row (the table has no
	// type column).
	fixedType string
}

// connectionSources lists where connections are recorded. contains and
// member rows are directional (a is the parent or group), so they are
// read both ways; links are stored once in each direction, so one reading
// finds both ends; an IP allocation joins a block and the holder of one
// of its addresses, read both ways. Another source is one more entry here.
func connectionSources() []connectionSource {
	return []connectionSource{
		{table: "connections", near: "a", far: "b", types: []string{entity.Contains, entity.Member, entity.LinkType}, typeCol: "type", portType: "port_type"},
		{table: "connections", near: "b", far: "a", types: []string{entity.Contains, entity.Member}, typeCol: "type"},
		// An ip block and the entities holding its addresses, both ways.
		{table: "ip_allocations", near: "block_id", far: "entity_id", types: []string{ipAllocation}, fixedType: ipAllocation},
		{table: "ip_allocations", near: "entity_id", far: "block_id", types: []string{ipAllocation}, fixedType: ipAllocation},
	}
}

// connected adds a CTE listing the entities directly connected to an
// entity of set, through a connection of type via (any when ""), and
// returns its name.
func (c *compiler) connected(set, via string) string {
	name := c.alias("c")
	var arms []sqlFrag
	for _, a := range c.connectionArms(via) {
		arms = append(arms, cat("", frag("SELECT "+a.k+"."+a.src.far+" FROM "+a.src.table+" "+a.k+" WHERE "), a.cond,
			frag(" AND "+a.k+"."+a.src.near+" IN (SELECT id FROM "+set+")")))
	}
	if c.stream {
		c.addCTE(name, cat("\n  UNION ALL\n  ", arms...))
		return name
	}
	// The set drives statements, so it must not repeat an entity: UNION
	// removes duplicates across arms, DISTINCT within a single one.
	if len(arms) == 1 {
		arms[0].sql = "SELECT DISTINCT " + strings.TrimPrefix(arms[0].sql, "SELECT ")
	}
	c.addCTE(name, cat("\n  UNION\n  ", arms...))
	return name
}

// connectionArm is one source of connections of a `connected to`, read
// as the rows aliased k, with the condition on them (visibility and the
// types of via).
type connectionArm struct {
	src  connectionSource
	k    string
	cond sqlFrag
}

// connectionArms returns the sources that can hold a connection of type
// via (any when ""), each with its condition.
func (c *compiler) connectionArms(via string) []connectionArm {
	var arms []connectionArm
	for _, src := range connectionSources() {
		k := c.alias("k")
		conds := []sqlFrag{c.visible(k)}
		switch {
		case src.fixedType != "":
			if via != "" && via != src.fixedType {
				continue
			}
		case via == "":
			// Naming the types even when they are all there lets SQLite
			// use the (a, type) and (b, type) indexes of current rows.
			in := make([]string, len(src.types))
			for i, t := range src.types {
				in[i] = "'" + t + "'"
			}
			conds = append(conds, frag(k+"."+src.typeCol+" IN ("+strings.Join(in, ",")+")"))
		case connectionTypes[via]:
			if !contains(src.types, via) {
				continue
			}
			conds = append(conds, frag(k+"."+src.typeCol+" = ?", via))
		default: // a port type: links only
			if src.portType == "" || !contains(src.types, entity.LinkType) {
				continue
			}
			conds = append(conds, frag(k+"."+src.typeCol+" = 'link' AND "+k+"."+src.portType+" = ?", via))
		}
		arms = append(arms, connectionArm{src: src, k: k, cond: cat(" AND ", conds...)})
	}
	return arms
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// attrHolders selects the ids of entities with an attribute matching n.
func (c *compiler) attrHolders(n *attrNode) sqlFrag {
	a := c.alias("a")
	return cat("", frag("SELECT "+a+".entity_id FROM attrs "+a+" WHERE "), cat(" AND ", c.attrConds(n, a)...))
}

// attrProbe is attrHolders as a test of entity x: EXISTS over x's own
// attributes (the attrs_cur_entity index: entity_id, key, subkey).
func (c *compiler) attrProbe(n *attrNode, x string) sqlFrag {
	a := c.alias("a")
	conds := append([]sqlFrag{frag(a + ".entity_id = " + x + ".id")}, c.attrConds(n, a)...)
	return cat("", frag("EXISTS (SELECT 1 FROM attrs "+a+" WHERE "), cat(" AND ", conds...), frag(")"))
}

// attrConds are the conditions on the attrs row aliased a that make it an
// attribute matching n, visible at the compiler's time.
func (c *compiler) attrConds(n *attrNode, a string) []sqlFrag {
	conds := []sqlFrag{frag(a+".key = ?", n.key)}
	if n.subkey != nil {
		conds = append(conds, frag(a+".subkey = ?", *n.subkey))
	}
	switch {
	case n.pat != nil:
		conds = append(conds, match(a+".value", *n.pat))
	case n.op != "":
		conds = append(conds, frag(a+".num IS NOT NULL AND "+a+".num "+sqlOps[n.op]+" ?", n.num))
	}
	return append(conds, c.visible(a))
}

// sqlOps maps the query's comparison operators to SQL's; only these
// strings ever reach the SQL text.
var sqlOps = map[string]string{"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

// ipHolders selects the ids of entities holding an address inside p: an
// attribute of type ip (stored as 16 bytes, IPv4 mapped, so that one
// BLOB range on the ip index covers a network).
//
// IPv4 and IPv6 are separate families, as in net/netip: an IPv6 network
// wide enough to span the IPv4-mapped block (::/0 to ::/80) leaves that
// block out, so ip:::/0 means every IPv6 address and ip:0.0.0.0/0 every
// IPv4 one.
func (c *compiler) ipHolders(p netip.Prefix) sqlFrag {
	lo, hi := bounds(p)
	a := c.alias("a")
	f := frag("SELECT "+a+".entity_id FROM attrs "+a+" WHERE "+a+".ip IS NOT NULL AND "+a+".ip >= ? AND "+a+".ip <= ?", lo, hi)
	if p.Addr().Is6() && p.Contains(mappedBlock.Addr()) {
		mlo, mhi := bounds(mappedBlock)
		f = cat("", f, frag(" AND NOT ("+a+".ip >= ? AND "+a+".ip <= ?)", mlo, mhi))
	}
	return cat(" AND ", f, c.visible(a))
}

// mappedBlock is where IPv4 addresses live in the 16-byte form.
var mappedBlock = netip.MustParsePrefix("::ffff:0.0.0.0/96")

// bounds returns the first and last addresses of p as 16-byte values,
// the form attrs.ip holds.
func bounds(p netip.Prefix) (lo, hi []byte) {
	first := p.Masked().Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	last := first
	for i := bits; i < 128; i++ {
		last[i/8] |= 0x80 >> (i % 8)
	}
	return first[:], last[:]
}

// match compiles a pattern over a text column.
func match(col string, p pattern) sqlFrag {
	switch p.kind {
	case patGlob:
		g := frag(col+" GLOB ?", escapeGlob(p.text))
		if lo, hi, ok := prefixRange(globPrefix(p.text)); ok {
			return cat("", frag("("+col+" >= ? AND "+col+" < ? AND ", lo, hi), g, frag(")"))
		}
		return g
	case patRegex:
		r := frag(col+" REGEXP ?", p.text)
		if lo, hi, ok := prefixRange(regexPrefix(p.text)); ok {
			return cat("", frag("("+col+" >= ? AND "+col+" < ? AND ", lo, hi), r, frag(")"))
		}
		if lit := regexLiteral(p.text); lit != "" {
			// SQLite's own instr is far cheaper than a call into Go per
			// row: it turns away every value without the literal first.
			return cat("", frag("(instr("+col+", ?) > 0 AND ", lit), r, frag(")"))
		}
		return r
	}
	return frag(col+" = ?", p.text)
}

// indexable reports whether a pattern is exact or has a literal prefix,
// so that matching it is an index search.
func indexable(p pattern) bool {
	switch p.kind {
	case patGlob:
		_, _, ok := prefixRange(globPrefix(p.text))
		return ok
	case patRegex:
		_, _, ok := prefixRange(regexPrefix(p.text))
		return ok
	}
	return true
}

// escapeGlob makes a query glob (only * and ? are special) into an SQLite
// GLOB pattern, where [ opens a character class: "[" becomes "[[]".
func escapeGlob(s string) string {
	return strings.ReplaceAll(s, "[", "[[]")
}

// globPrefix returns the literal text every match of glob g starts with.
func globPrefix(g string) string {
	if i := strings.IndexAny(g, "*?"); i >= 0 {
		return g[:i]
	}
	return g
}

// regexPrefix returns the literal text every match of an RE2 regex must
// start with when it is anchored at the start of the text (^abc...), and
// "" otherwise.
func regexPrefix(re string) string {
	t, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return ""
	}
	t = t.Simplify()
	for t.Op == syntax.OpCapture && len(t.Sub) == 1 {
		t = t.Sub[0]
	}
	if t.Op != syntax.OpConcat || len(t.Sub) < 2 || t.Sub[0].Op != syntax.OpBeginText {
		return ""
	}
	var b strings.Builder
	for _, s := range t.Sub[1:] {
		if s.Op != syntax.OpLiteral || s.Flags&syntax.FoldCase != 0 {
			break
		}
		b.WriteString(string(s.Rune))
	}
	return b.String()
}

// regexLiteral returns the longest literal every match of the regex re
// must contain (case-sensitively), or "" when none is known: a run of
// literal characters in a concatenation at the top, or inside a group, or
// inside a repetition of at least one.
func regexLiteral(re string) string {
	t, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return ""
	}
	return mustContain(t.Simplify())
}

func mustContain(t *syntax.Regexp) string {
	literal := func(s *syntax.Regexp) bool { return s.Op == syntax.OpLiteral && s.Flags&syntax.FoldCase == 0 }
	longer := func(a, b string) string {
		if len(b) > len(a) {
			return b
		}
		return a
	}
	switch t.Op {
	case syntax.OpLiteral:
		if literal(t) {
			return string(t.Rune)
		}
	case syntax.OpCapture, syntax.OpPlus:
		return mustContain(t.Sub[0])
	case syntax.OpRepeat:
		if t.Min >= 1 {
			return mustContain(t.Sub[0])
		}
	case syntax.OpConcat:
		best, run := "", ""
		for _, s := range t.Sub {
			if literal(s) {
				run += string(s.Rune)
				continue
			}
			best, run = longer(best, run), ""
			best = longer(best, mustContain(s))
		}
		return longer(best, run)
	}
	return ""
}

// prefixRange turns a literal prefix into the half-open range [lo, hi) of
// strings that start with it, so that a pattern with a prefix is a range
// scan on an index. Only the ASCII part of the prefix is used, so that hi
// stays valid UTF-8 and SQLite's byte order agrees.
func prefixRange(prefix string) (lo, hi string, ok bool) {
	n := 0
	for n < len(prefix) && prefix[n] < 0x7f {
		n++
	}
	if n == 0 {
		return "", "", false
	}
	p := prefix[:n]
	return p, p[:n-1] + string(rune(p[n-1]+1)), true
}

// exactName reports whether n is name:WORD, one entity at most.
func exactName(n node) bool {
	f, ok := n.(*fieldNode)
	return ok && f.col == colName && f.pat.kind == patExact
}

// nameAnchored reports whether n, or one of its conjuncts, is a name term
// an index can narrow (an exact name or a fixed prefix).
func nameAnchored(n node) bool {
	switch n := n.(type) {
	case *fieldNode:
		return n.col == colName && indexable(n.pat)
	case *andNode:
		for _, t := range n.terms {
			if nameAnchored(t) {
				return true
			}
		}
	}
	return false
}

// rareLimit is how many holders of an attribute value still make walking
// up from them cheaper than walking down a named subtree.
const rareLimit = 1000

// rare reports whether one of the terms is an exact attribute value held
// by at most rareLimit entities now (see holders). Without a database
// nothing is known to be rare.
func (c *compiler) rare(terms []node) bool {
	for _, t := range terms {
		if a, ok := t.(*attrNode); ok && a.pat != nil && a.pat.kind == patExact && c.holders(a) <= rareLimit {
			return true
		}
	}
	return false
}

// holders estimates how many current attributes match a: it counts them
// with the condition the query itself applies (a glob or a regex
// included), one index range stopping at rareLimit+1, which it returns
// for "more". Without a database, or for a past state, it answers
// rareLimit+1.
func (c *compiler) holders(a *attrNode) int {
	if c.db == nil || c.at != 0 {
		return rareLimit + 1
	}
	est := &compiler{}
	return c.capped(cat("", frag("SELECT count(*) FROM ("), est.attrHolders(a), frag(" LIMIT ?)", rareLimit+1)), rareLimit+1)
}

// capped runs a capped count of the estimates (at most a second) and
// returns it, or orElse on an error.
func (c *compiler) capped(s sqlFrag, orElse int) int {
	n := orElse
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rows, err := c.db.QueryContext(ctx, s.sql, s.args...)
	if err != nil {
		return n
	}
	defer rows.Close()
	if rows.Next() {
		rows.Scan(&n)
	}
	return n
}

// walkShape reports whether a page of the query whose conjuncts are
// terms can be read in the name-order form (compiler.walk), and which
// driver it walks: the terms are one driver by its exact name, perhaps
// kinds and unindexable names, and attributes and `in` or `connected to`
// relations (at least one of them) whose right sides hold no relation
// or group. The walk reads the driver's entities in name order, through
// entities_cur_driver, tests each for the other terms and stops at the
// page's last match, rather than every holder of an attribute, or every
// entity of a relation, looked up and sorted by name. Whether that is
// cheaper, dense tells.
func walkShape(terms []node) (driver string, ok bool) {
	tests := 0
	var visit func([]node) bool
	visit = func(terms []node) bool {
		for _, t := range terms {
			switch t := t.(type) {
			case *attrNode:
				tests++
			case *fieldNode:
				if !unselective(t) {
					return false
				}
				if t.col == colDriver && t.pat.kind == patExact {
					driver = t.pat.text
				}
			case *relNode:
				if t.op == relContains || hasRelation(t.right) || !visit(conjuncts(t.left)) {
					return false
				}
				tests++
			case *allNode:
			default:
				return false
			}
		}
		return true
	}
	return driver, visit(terms) && driver != "" && tests > 0
}

// walkCond compiles the condition of the walk (c.walk) over terms (of
// walkShape's shape) on entity x: the terms on x itself first, then the
// relations' tests (relProbe), the dearest (a walk up x's containers is
// a recursive statement of its own), so that SQLite, which tests in the
// order written, only walks up from the entities that pass the rest.
func (c *compiler) walkCond(terms []node, x string) sqlFrag {
	var own []sqlFrag
	var rels []*relNode
	var split func([]node)
	split = func(terms []node) {
		for _, t := range terms {
			switch t := t.(type) {
			case *relNode:
				split(conjuncts(t.left))
				rels = append(rels, t)
			case *allNode:
			default:
				own = append(own, c.cond(t, x))
			}
		}
	}
	split(terms)
	for _, r := range rels {
		own = append(own, c.relProbe(r, x))
	}
	return balanced("AND", own)
}

// hasRelation reports whether n holds a relation or a group term.
func hasRelation(n node) bool {
	return someTerm(n, func(n node) bool {
		switch n.(type) {
		case *relNode, *groupNode:
			return true
		}
		return false
	})
}

// The sample dense reads: the first sampleSize entities of the driver
// after the page's start, of which at least sampleHits must match.
const sampleSize, sampleHits = 32, 2

// dense reports whether the walk of driver's entities in name order from
// after (nil: the start), tested with cond (the walk's condition on
// entities e, compiled by c), meets matches often enough to be the
// cheaper form: at least one in 16 of the first sampleSize it would
// read. The sample is the walk itself, bounded: its condition is the
// query's own, globs and regexes included, so a rare attribute value, a
// relation whose members come late in name order or a pattern few
// values match all show as a sample without matches (0.1-0.3 ms for 32
// entities at 300k). On an error it says no: the ordinary form is never
// wrong.
func (c *compiler) dense(cond sqlFrag, driver string, after *string) bool {
	inner := frag("SELECT e.id, e.name, e.driver, e.kind FROM entities e WHERE e.until IS NULL AND e.driver = ?", driver)
	if after != nil {
		inner = cat("", inner, frag(" AND e.name > ?", *after))
	}
	s := cat("", c.with(), frag("SELECT count(*) FROM ("), inner, frag(" ORDER BY e.name LIMIT ?) e WHERE ", sampleSize), cond)
	return c.capped(s, 0) >= sampleHits
}

// with is the WITH clause of the CTEs compiled so far ("" when none).
func (c *compiler) with() sqlFrag {
	if len(c.ctes) == 0 {
		return sqlFrag{}
	}
	return cat("", frag("WITH RECURSIVE\n"), cat(",\n", c.ctes...), frag("\n"))
}

// countForm compiles the statement counting the matches of a query
// whose conjuncts are terms, when one of them is an attribute term
// (nil otherwise: the page's own form counts). It starts from that
// attribute's holders (an exact value first: one index range) and checks
// each holder's entity for the rest, so that a capped count stops after
// as many holders as it counts, rather than after listing every holder
// to look entities up in; without other terms, in the present, it reads
// attrs alone (an attribute that is current belongs to a live entity:
// the store's live-references rule).
func (c *compiler) countForm(terms []node) *countForm {
	drive := -1
	for i, t := range terms {
		if a, ok := t.(*attrNode); ok && (drive < 0 || a.pat != nil && a.pat.kind == patExact) {
			drive = i
			if a.pat != nil && a.pat.kind == patExact {
				break
			}
		}
	}
	if drive < 0 {
		return nil
	}
	f := &countForm{}
	hc := &compiler{at: c.at, db: c.db, probe: true, walk: c.walk}
	conds := hc.attrConds(terms[drive].(*attrNode), "h")
	rest := slices.Delete(slices.Clone(terms), drive, drive+1)
	if len(rest) == 0 && c.at == 0 {
		f.id, f.from, f.where = "h.entity_id", "attrs h", cat(" AND ", conds...)
		return f
	}
	switch len(rest) {
	case 0:
	case 1:
		conds = append(conds, hc.cond(rest[0], "e"))
	default:
		conds = append(conds, hc.and(rest, "e"))
	}
	return hc.formOf("attrs h CROSS JOIN entities e ON e.id = h.entity_id", cat(" AND ", conds...))
}

// formOf is the count form of a statement top compiled: from and cond
// on entities e, visible.
func (c *compiler) formOf(from string, cond sqlFrag) *countForm {
	return &countForm{with: c.with(), id: "e.id", from: from, where: cat(" AND ", c.visible("e"), cat("", frag("("), cond, frag(")")))}
}

// countForm is a statement's FROM and WHERE listing the ids of a query's
// matches, each once after DISTINCT (an entity may hold several matching
// attributes).
type countForm struct {
	with  sqlFrag
	id    string // the column of ids
	from  string
	where sqlFrag
}
