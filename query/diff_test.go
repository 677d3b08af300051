package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// The differential test: random inventories are built through the store
// and, in step, in a plain Go model; random queries are answered by the
// SQL compiler and by a direct evaluator over the model (eval below,
// written for obviousness, not speed); the two must agree, now and as of
// a change before a round of random edits.

type mAttr struct {
	key, subkey string
	val         entity.Value
}

type mEntity struct {
	id                 int // the model's stable id: survives renames
	name, driver, kind string
	attrs              []mAttr
}

type mConn struct {
	typ      string // contains, member, link
	a, b     int    // parent/group and child/member; a link's two ends
	aPort    string // links only
	bPort    string
	portType string
}

type model struct {
	ents  map[int]*mEntity
	conns []mConn
}

func (m *model) clone() *model {
	c := &model{ents: map[int]*mEntity{}, conns: slices.Clone(m.conns)}
	for id, e := range m.ents {
		ce := *e
		ce.attrs = slices.Clone(e.attrs)
		c.ents[id] = &ce
	}
	return c
}

func (m *model) byName(name string) *mEntity {
	for _, e := range m.ents {
		if e.name == name {
			return e
		}
	}
	return nil
}

// eval returns the names of the entities matching n, sorted as SQLite
// sorts text (byte order).
func (m *model) eval(n node) []string {
	out := []string{}
	for _, e := range m.ents {
		if m.matches(n, e) {
			out = append(out, e.name)
		}
	}
	slices.Sort(out)
	return out
}

func (m *model) matches(n node, e *mEntity) bool {
	switch n := n.(type) {
	case *orNode:
		for _, t := range n.terms {
			if m.matches(t, e) {
				return true
			}
		}
		return false
	case *andNode:
		for _, t := range n.terms {
			if !m.matches(t, e) {
				return false
			}
		}
		return true
	case *notNode:
		return !m.matches(n.x, e)
	case *allNode:
		return true
	case *fieldNode:
		switch n.col {
		case colName:
			return matchPattern(n.pat, e.name)
		case colDriver:
			return matchPattern(n.pat, e.driver)
		default:
			return matchPattern(n.pat, e.kind)
		}
	case *attrNode:
		for _, a := range e.attrs {
			if a.key != n.key || (n.subkey != nil && a.subkey != *n.subkey) {
				continue
			}
			switch {
			case n.pat != nil:
				if matchPattern(*n.pat, a.val.Text) {
					return true
				}
			case n.op != "":
				if a.val.Type != entity.TypeInt {
					continue
				}
				v, _ := strconv.ParseInt(a.val.Text, 10, 64)
				if compare(v, n.op, n.num) {
					return true
				}
			default:
				return true
			}
		}
		return false
	case *ipNode:
		for _, a := range e.attrs {
			if addr, ok := a.val.Addr(); ok && n.prefix.Contains(addr) {
				return true
			}
		}
		return false
	case *groupNode:
		for _, g := range m.ents {
			if g.driver == n.driver && matchPattern(n.pat, g.name) && m.reachable(g.id, e.id, entity.Member) {
				return true
			}
		}
		return false
	case *relNode:
		if !m.matches(n.left, e) {
			return false
		}
		for _, y := range m.ents {
			if !m.matches(n.right, y) {
				continue
			}
			switch n.op {
			case relIn:
				if m.reachable(y.id, e.id, entity.Contains) {
					return true
				}
			case relContains:
				if m.reachable(e.id, y.id, entity.Contains) {
					return true
				}
			default:
				if m.directlyConnected(e.id, y.id, n.via) {
					return true
				}
			}
		}
		return false
	}
	panic(fmt.Sprintf("eval: unexpected node %T", n))
}

// reachable reports whether to can be reached from from by one or more
// connections of type typ, followed from a to b.
func (m *model) reachable(from, to int, typ string) bool {
	seen := map[int]bool{}
	frontier := []int{from}
	for len(frontier) > 0 {
		var next []int
		for _, id := range frontier {
			for _, c := range m.conns {
				if c.typ == typ && c.a == id && !seen[c.b] {
					if c.b == to {
						return true
					}
					seen[c.b] = true
					next = append(next, c.b)
				}
			}
		}
		frontier = next
	}
	return false
}

func (m *model) directlyConnected(x, y int, via string) bool {
	for _, c := range m.conns {
		if !((c.a == x && c.b == y) || (c.a == y && c.b == x)) {
			continue
		}
		switch {
		case via == "":
			return true
		case via == entity.Contains || via == entity.Member || via == entity.LinkType:
			if c.typ == via {
				return true
			}
		default:
			if c.typ == entity.LinkType && c.portType == via {
				return true
			}
		}
	}
	return false
}

func compare(v int64, op string, n int64) bool {
	switch op {
	case "=":
		return v == n
	case "!=":
		return v != n
	case "<":
		return v < n
	case "<=":
		return v <= n
	case ">":
		return v > n
	case ">=":
		return v >= n
	}
	panic("bad operator " + op)
}

func matchPattern(p pattern, s string) bool {
	switch p.kind {
	case patGlob:
		return globMatch([]rune(p.text), []rune(s))
	case patRegex:
		re, ok := modelRegexes.Load(p.text)
		if !ok {
			re, _ = modelRegexes.LoadOrStore(p.text, regexp.MustCompile(p.text))
		}
		return re.(*regexp.Regexp).MatchString(s)
	}
	return p.text == s
}

// modelRegexes caches the evaluator's compiled regexes.
var modelRegexes sync.Map

// globMatch: * is any run of characters, ? is one character, all else is literal.
func globMatch(p, s []rune) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	switch p[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return len(s) > 0 && globMatch(p[1:], s[1:])
	}
	return len(s) > 0 && s[0] == p[0] && globMatch(p[1:], s[1:])
}

// builder makes random edits through the store and the model together.
type builder struct {
	t    testing.TB
	r    *rand.Rand
	tx   *store.Tx
	m    *model
	next int
	reg  *drivers.Registry
}

var statuses = []string{"unallocated", "allocated", "spare", "broken", "un-allocated"}

func (b *builder) pick(list []string) string { return list[b.r.IntN(len(list))] }

func (b *builder) randomAttrs(driver string) []entity.Attr {
	var attrs []entity.Attr
	add := func(a entity.Attr) {
		for _, x := range attrs {
			if x.Key == a.Key && x.Subkey == a.Subkey && x.Value.Text == a.Value.Text {
				return
			}
		}
		attrs = append(attrs, a)
	}
	n := b.r.IntN(5)
	for i := 0; i < n; i++ {
		switch b.r.IntN(9) {
		case 0, 1:
			add(str("status", b.pick(statuses)))
		case 2:
			add(num("memory_gb", int64(b.pick2([]int{0, 16, 32, 64, 128}))))
		case 3:
			add(str("owner", b.pick([]string{"web 01", "ops", "db-team", "Ops", "web01"})))
		case 4:
			if driver == "server" || driver == "switch" || driver == "vm" || driver == "console-server" {
				add(ipa("ip", b.pick([]string{"10.0.0.1", "10.0.0.200", "10.0.1.5", "10.1.0.1", "192.168.1.1", "2001:db8::1", "2001:db8::ff", "2001:db8:1::1"})))
			}
		case 5:
			add(sub("disk", b.pick([]string{"sda", "sdb"}), b.pick([]string{"ssd", "hdd"})))
		case 6:
			add(str("foo", b.pick([]string{"12", "13", "x*y", "a.b"})))
		case 7:
			add(entity.Attr{Key: "weight", Value: entity.Int(int64(b.r.IntN(7) - 3))})
		case 8:
			add(str("tag", b.pick([]string{"alpha", "beta", "ALPHA", "al", ""})))
		}
	}
	return attrs
}

func (b *builder) pick2(list []int) int { return list[b.r.IntN(len(list))] }

func (b *builder) check(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *builder) create(name, driver string) *mEntity {
	attrs := b.randomAttrs(driver)
	b.check(b.tx.Create(entity.NewEntity{Name: name, Driver: driver, Attrs: attrs}))
	d, _ := b.reg.Lookup(driver)
	e := &mEntity{id: b.next, name: name, driver: driver, kind: string(d.Kind)}
	b.next++
	for _, a := range attrs {
		e.attrs = append(e.attrs, mAttr{key: a.Key, subkey: a.Subkey, val: mustValue(a.Value)})
	}
	b.m.ents[e.id] = e
	return e
}

func mustValue(v entity.Value) entity.Value {
	c, err := entity.ParseValue(v.Type, v.Text)
	if err != nil {
		panic(err)
	}
	return c
}

func (b *builder) insert(parent, child *mEntity) {
	typ, err := b.tx.Insert(parent.name, child.name, entity.Placement{})
	b.check(err)
	b.m.conns = append(b.m.conns, mConn{typ: typ, a: parent.id, b: child.id})
}

func (b *builder) isMember(g, e *mEntity) bool {
	for _, c := range b.m.conns {
		if c.typ == entity.Member && c.a == g.id && c.b == e.id {
			return true
		}
	}
	return false
}

// freePort returns a free port of entity e of type typ, or "".
func (b *builder) freePort(e *mEntity, typ string) string {
	d, _ := b.reg.Lookup(e.driver)
	for _, p := range d.PortList() {
		if p.Type != typ {
			continue
		}
		used := false
		for _, c := range b.m.conns {
			if c.typ == entity.LinkType && ((c.a == e.id && c.aPort == p.Name) || (c.b == e.id && c.bPort == p.Name)) {
				used = true
			}
		}
		if !used {
			return p.Name
		}
	}
	return ""
}

func (b *builder) link(x, y *mEntity, typ string) {
	px, py := b.freePort(x, typ), b.freePort(y, typ)
	if px == "" || py == "" {
		return
	}
	b.check(b.tx.Connect(entity.Endpoint{Name: x.name, Port: px}, entity.Endpoint{Name: y.name, Port: py}))
	b.m.conns = append(b.m.conns, mConn{typ: entity.LinkType, a: x.id, b: y.id, aPort: px, bPort: py, portType: typ})
}

func (b *builder) ofDriver(ds ...string) []*mEntity {
	var out []*mEntity
	for _, e := range b.m.ents {
		if slices.Contains(ds, e.driver) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(x, y *mEntity) int { return x.id - y.id })
	return out
}

func (b *builder) any(ds ...string) *mEntity {
	es := b.ofDriver(ds...)
	if len(es) == 0 {
		return nil
	}
	return es[b.r.IntN(len(es))]
}

// name makes a fresh name from a stem, with digits and sometimes the
// other characters names take.
func (b *builder) name(stem string) string {
	for {
		n := stem + strconv.Itoa(b.r.IntN(30))
		switch b.r.IntN(6) {
		case 0:
			n += "-" + b.pick([]string{"a", "b", "x"})
		case 1:
			n += "." + b.pick([]string{"lab", "prod"})
		case 2:
			n = strings.ToUpper(n[:1]) + n[1:]
		}
		if b.m.byName(n) == nil {
			return n
		}
	}
}

// build makes a random inventory: sites, racks and what is in them,
// links, and nested groups.
func (b *builder) build() {
	for range 1 + b.r.IntN(2) {
		dc := b.create(b.name("dc"), "datacenter")
		for range 1 + b.r.IntN(2) {
			room := b.create(b.name("room"), "room")
			b.insert(dc, room)
			for range 1 + b.r.IntN(2) {
				row := b.create(b.name("row"), "row")
				b.insert(room, row)
				for range 1 + b.r.IntN(3) {
					rack := b.create(b.name("rack"), "rack")
					b.insert(row, rack)
					for range b.r.IntN(5) {
						drv := b.pick([]string{"server", "server", "server", "switch", "console-server", "pdu"})
						stem := map[string]string{"server": "s", "switch": "sw", "console-server": "con", "pdu": "pdu"}[drv]
						e := b.create(b.name(stem), drv)
						b.insert(rack, e)
						if drv == "server" && b.r.IntN(3) == 0 {
							vm := b.create(b.name("vm"), "vm")
							b.insert(e, vm)
						}
					}
				}
			}
		}
	}
	for range b.r.IntN(3) { // a few servers in no rack
		b.create(b.name("s"), "server")
	}
	b.create(b.name("net"), "ipblock")
	servers := b.ofDriver("server", "vm")
	for _, s := range servers {
		if sw := b.any("switch"); sw != nil && b.r.IntN(3) > 0 {
			b.link(s, sw, "nic")
		}
		if s.driver == "server" && b.r.IntN(2) == 0 {
			if c := b.any("console-server"); c != nil {
				b.link(s, c, "console")
			}
		}
		if s.driver == "server" && b.r.IntN(3) == 0 {
			if p := b.any("pdu"); p != nil {
				b.link(s, p, "power")
			}
		}
	}
	var groups []*mEntity
	for range 2 + b.r.IntN(4) {
		drv := b.pick([]string{"pool", "pool", "role", "class", "service"})
		groups = append(groups, b.create(b.name(drv[:1]+"g"), drv))
	}
	for i, g := range groups {
		for range b.r.IntN(5) {
			var m *mEntity
			if i > 0 && b.r.IntN(3) == 0 {
				m = groups[b.r.IntN(i)] // nested: only earlier groups, so no loops
			} else {
				m = b.any("server", "switch", "vm", "rack")
			}
			if m != nil && !b.isMember(g, m) {
				b.insert(g, m)
			}
		}
	}
}

// edit makes random later edits: attributes set and deleted, renames,
// removals from groups and racks, unlinks, deletes, new entities.
func (b *builder) edit() {
	for range 3 + b.r.IntN(8) {
		switch b.r.IntN(7) {
		case 0:
			e := b.any("server", "switch", "rack", "vm")
			if e == nil {
				continue
			}
			v := b.pick(statuses)
			_, err := b.tx.SetAttr(e.name, entity.AttrSelector{Key: "status"}, []entity.Value{entity.String(v)})
			b.check(err)
			e.attrs = slices.DeleteFunc(e.attrs, func(a mAttr) bool { return a.key == "status" })
			e.attrs = append(e.attrs, mAttr{key: "status", val: entity.String(v)})
		case 1:
			e := b.any("server", "switch", "rack", "pool", "role")
			if e == nil || len(e.attrs) == 0 {
				continue
			}
			k := e.attrs[b.r.IntN(len(e.attrs))].key
			_, err := b.tx.DelAttr(e.name, entity.AttrSelector{Key: k})
			b.check(err)
			e.attrs = slices.DeleteFunc(e.attrs, func(a mAttr) bool { return a.key == k })
		case 2:
			e := b.any("server", "rack", "pool", "switch", "datacenter")
			if e == nil {
				continue
			}
			n := b.name(strings.ToLower(e.name[:1]) + "r")
			b.check(b.tx.Rename(e.name, n))
			e.name = n
		case 3:
			if len(b.m.conns) == 0 {
				continue
			}
			c := b.m.conns[b.r.IntN(len(b.m.conns))]
			if c.typ == entity.LinkType {
				b.check(b.tx.Disconnect(entity.Endpoint{Name: b.m.ents[c.a].name, Port: c.aPort}, entity.Endpoint{Name: b.m.ents[c.b].name, Port: c.bPort}))
			} else {
				b.check(b.tx.Remove(b.m.ents[c.a].name, b.m.ents[c.b].name))
			}
			b.m.conns = slices.DeleteFunc(b.m.conns, func(x mConn) bool { return x == c })
		case 4:
			e := b.any("server", "switch", "vm", "pool", "rack")
			if e == nil {
				continue
			}
			b.check(b.tx.Delete(e.name, true))
			delete(b.m.ents, e.id)
			b.m.conns = slices.DeleteFunc(b.m.conns, func(c mConn) bool { return c.a == e.id || c.b == e.id })
		case 5:
			s := b.create(b.name("s"), "server")
			if r := b.any("rack"); r != nil {
				b.insert(r, s)
			}
		case 6:
			g, m := b.any("pool", "role", "class", "service"), b.any("server", "vm")
			if g != nil && m != nil && !b.isMember(g, m) {
				b.insert(g, m)
			}
		}
	}
}

// queryGen writes random query text over the names and values of a model.
type queryGen struct {
	r *rand.Rand
	m *model
}

func (g *queryGen) pick(list []string) string { return list[g.r.IntN(len(list))] }

func (g *queryGen) someName() string {
	var ns []string
	for _, e := range g.m.ents {
		ns = append(ns, e.name)
	}
	slices.Sort(ns)
	if len(ns) == 0 || g.r.IntN(8) == 0 {
		return "nosuch"
	}
	return ns[g.r.IntN(len(ns))]
}

var (
	bareWord  = regexp.MustCompile(`^[\pL\pN_\-.@:][\pL\pN_\-./@:]*$`)
	asciiWord = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// pattern writes a pattern that tends to match some of the given text.
func (g *queryGen) pattern(s string) string {
	switch g.r.IntN(8) {
	case 0, 1, 2:
		if !bareWord.MatchString(s) {
			return strconv.Quote(s)
		}
		return s
	case 3:
		return strconv.Quote(s)
	case 4:
		if len(s) < 2 || !asciiWord.MatchString(s) {
			return "*"
		}
		return s[:1+g.r.IntN(len(s)-1)] + "*"
	case 5:
		if !asciiWord.MatchString(s) {
			return "?*"
		}
		rs := []byte(s)
		rs[g.r.IntN(len(rs))] = '?'
		return string(rs)
	case 6:
		if len(s) == 0 {
			return "/^$/"
		}
		return "/^" + regexp.QuoteMeta(s[:1+g.r.IntN(len(s))]) + "/"
	}
	return "/" + g.pick([]string{"[0-9]$", "^[a-z]+[0-9]+$", "-", `\.`, "(?i)^S", "a|b", "^$", "x", "e[0-9]+", "(ck|rv)0", "r(ac)+k", "-[a-z]*1"}) + "/"
}

func (g *queryGen) term() string {
	switch g.r.IntN(14) {
	case 0, 1:
		return "name:" + g.pattern(g.someName())
	case 2:
		d := g.pick([]string{"server", "switch", "rack", "pool", "role", "vm", "console-server", "datacenter", "row", "pdu", "console"})
		if g.r.IntN(2) == 0 {
			d = strings.ToUpper(d[:1]) + d[1:]
		}
		return "driver:" + g.pattern(d)
	case 3:
		return "kind:" + g.pick([]string{"equipment", "group", "resource", "part", "Group", "equip*", "/^(group|resource)$/"})
	case 4, 5:
		k := g.pick([]string{"status", "owner", "foo", "tag", "disk", "memory_gb", "weight", "nosuch"})
		if k == "disk" && g.r.IntN(2) == 0 {
			k += "." + g.pick([]string{"sda", "sdb"})
		}
		switch g.r.IntN(4) {
		case 0:
			return "attr:" + k
		case 1:
			return "attr:" + k + g.pick([]string{"=", "!=", "<", "<=", ">", ">=", "=="}) + g.pick([]string{"0", "16", "64", "-1", "3", "+2"})
		}
		v := g.pick(append(statuses, "web 01", "ops", "Ops", "12", "13", "x*y", "a.b", "ssd", "hdd", "alpha", "64", "16", "-3", ""))
		return "attr:" + k + "," + g.pattern(v)
	case 6:
		return "haskey:" + g.pick([]string{"status", "ip", "disk", "disk.sda", "weight", "nosuch"})
	case 7:
		grp := g.pick([]string{"pool", "role", "class", "service"})
		var ns []string
		for _, e := range g.m.ents {
			if e.driver == grp || g.r.IntN(10) == 0 {
				ns = append(ns, e.name)
			}
		}
		slices.Sort(ns)
		n := "nosuch"
		if len(ns) > 0 {
			n = ns[g.r.IntN(len(ns))]
		}
		return grp + ":" + g.pattern(n)
	case 8:
		return "ip:" + g.pick([]string{"10.0.0.1", "10.0.0.0/24", "10.0.0.0/8", "10.0.1.5", "192.168.0.0/16", "0.0.0.0/0",
			"2001:db8::1", "2001:db8::/32", "2001:db8::/64", "::/0", "::ffff:10.0.0.1", "10.0.0.128/25"})
	case 9:
		return "*"
	}
	return "name:" + g.pattern(g.someName())
}

// walkShape writes a query of the shape whose page can be read in the
// name-order form (compiler.walkable): a driver by its exact name and
// attribute terms, perhaps a kind or an unindexable name, perhaps in or
// connected to something.
func (g *queryGen) walkShape() string {
	if g.r.IntN(2) == 0 {
		return g.attrShape()
	}
	right := g.term()
	if g.r.IntN(3) == 0 {
		right = "(" + g.attrShape() + ")"
	}
	rel := g.pick([]string{"in", "connected to"})
	if rel == "connected to" && g.r.IntN(2) == 0 {
		right += " via " + g.pick([]string{"nic", "console", "power", "link", "contains", "member"})
	}
	left := "driver:" + g.pick([]string{"server", "switch", "vm", "rack"})
	if g.r.IntN(2) == 0 {
		left = "(" + g.attrShape() + ")"
	}
	s := left + " " + rel + " " + right
	if g.r.IntN(2) == 0 {
		s = "(" + s + ") and " + g.attrShape()
	}
	return s
}

// attrShape is a driver by its exact name and attribute terms, perhaps a
// kind or an unindexable name.
func (g *queryGen) attrShape() string {
	terms := []string{"driver:" + g.pick([]string{"server", "switch", "rack", "vm", "pool"})}
	for range 1 + g.r.IntN(2) {
		for {
			if t := g.term(); strings.HasPrefix(t, "attr:") {
				terms = append(terms, t)
				break
			}
		}
	}
	switch g.r.IntN(4) {
	case 0:
		terms = append(terms, "kind:"+g.pick([]string{"equipment", "group", "equip*"}))
	case 1:
		terms = append(terms, "name:/"+g.pick([]string{"[0-9]$", "-", "1"})+"/")
	}
	g.r.Shuffle(len(terms), func(i, j int) { terms[i], terms[j] = terms[j], terms[i] })
	return strings.Join(terms, " and ")
}

func (g *queryGen) expr(depth int) string {
	if depth <= 0 {
		return g.term()
	}
	sub := func() string {
		e := g.expr(depth - 1)
		if strings.Contains(e, " ") && g.r.IntN(3) > 0 {
			return "(" + e + ")"
		}
		return e
	}
	switch g.r.IntN(9) {
	case 0:
		return sub() + " " + g.pick([]string{"and", "AND", "And"}) + " " + sub()
	case 1:
		return sub() + " " + sub()
	case 2:
		return sub() + " " + g.pick([]string{"or", "OR"}) + " " + sub()
	case 3:
		return g.pick([]string{"not ", "NOT "}) + sub()
	case 4, 5:
		// A relation takes a term, or a parenthesised expression, on its right.
		right := g.expr(depth - 1)
		if strings.Contains(right, " ") || g.r.IntN(4) == 0 {
			right = "(" + right + ")"
		}
		switch g.r.IntN(3) {
		case 0:
			return sub() + " in " + right
		case 1:
			return sub() + " contains " + right
		}
		s := sub() + " connected to " + right
		if g.r.IntN(2) == 0 {
			s += " via " + g.pick([]string{"nic", "console", "power", "link", "contains", "member", "fiber", "NIC"})
		}
		return s
	}
	return g.term()
}

// TestDifferential compares the SQL compiler with the model evaluator on
// random inventories and random queries.
func TestDifferential(t *testing.T) {
	t.Parallel()
	inventories, queries := 10, 150
	if testing.Short() {
		inventories, queries = 3, 100
	}
	ctx := context.Background()
	cases, partial, scanned, paged, walked, walkedRel, sampled, counted := 0, 0, 0, 0, 0, 0, 0, 0
	paths := map[string]int{} // how the compiler answered, for the log
	for inv := range inventories {
		seed := uint64(1000 + inv)
		r := rand.New(rand.NewPCG(seed, 42))
		st, err := store.Open(ctx, filepath.Join(t.TempDir(), fmt.Sprintf("diff%d.db", inv)), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		m := &model{ents: map[int]*mEntity{}}
		b := &builder{t: t, r: r, m: m, reg: st.Drivers()}
		if err := st.Update(ctx, "diff", func(tx *store.Tx) error { b.tx = tx; b.build(); return nil }); err != nil {
			t.Fatal(err)
		}
		before, err := st.LatestChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		old := m.clone()
		if err := st.Update(ctx, "diff", func(tx *store.Tx) error { b.tx = tx; b.edit(); return nil }); err != nil {
			t.Fatal(err)
		}
		states := []struct {
			at int64
			m  *model
		}{{0, m}, {before, old}}
		for qi := range queries {
			g := &queryGen{r: r, m: states[qi%2].m}
			text := g.expr(r.IntN(4))
			if qi%4 == 3 {
				text = g.walkShape()
			}
			q, err := Parse(text)
			if err != nil {
				t.Fatalf("inventory seed %d: generated query %q does not parse: %v", seed, text, err)
			}
			if sqlText, _, err := Explain(text, Options{}); err == nil {
				switch {
				case strings.Contains(sqlText, "anc, depth) AS"):
					paths["walk up"]++
				case strings.Contains(sqlText, " r CROSS JOIN entities e"):
					paths["from a relation or group"]++
				default:
					paths["from entities"]++
				}
				if strings.Contains(sqlText, "OVER ()") {
					paths["one statement"]++
				}
			}
			for _, s := range states {
				want := s.m.eval(q.root)
				res, err := Run(ctx, st.Reader(), text, Options{At: s.at, Limit: MaxLimit})
				if err != nil {
					t.Fatalf("inventory seed %d, at %d: Run(%q): %v", seed, s.at, text, err)
				}
				cases++
				if len(want) > 0 && len(want) < len(s.m.ents) {
					partial++
				}
				if diff := cmp.Diff(want, names(res.Results)); diff != "" || res.Total != len(want) {
					t.Errorf("inventory seed %d, at %d: %q parsed as %s: SQL and model differ (-model +sql), total %d:\n%s",
						seed, s.at, text, q, res.Total, diff)
				}
				// Page by page, in each form the page can take, with
				// each kind of total: the same matches in the same
				// order, and every page's total right.
				for _, walk := range []bool{false, true} {
					limit, capped := 1+r.IntN(3), r.IntN(2) == 0
					pages, total := pageThrough(t, ctx, st, text, Options{At: s.at, Limit: limit, walkAlways: walk}, capped, len(want))
					paged++
					if diff := cmp.Diff(want, pages); diff != "" || total != "" {
						t.Errorf("inventory seed %d, at %d: %q by pages of %d (name-order form allowed: %v): SQL and model differ (-model +sql):\n%s%s",
							seed, s.at, text, limit, walk, diff, total)
					}
				}
				if c, err := Compile(q, Options{At: s.at, DB: st.Reader(), walkAlways: true}); err == nil && c.walk {
					walked++
					if hasRelation(q.root) {
						walkedRel++
					}
				}
				if c, err := Compile(q, Options{At: s.at, DB: st.Reader()}); err == nil {
					if c.counted != nil {
						counted++
					}
					if c.walk {
						sampled++ // the sample chose the walk, as Run does
					}
				}
				if s.at == 0 {
					// The form allocation compiles to (a walk in name
					// order, attribute terms as probes) matches the same.
					got := scanMatches(t, ctx, st, q)
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("inventory seed %d: %q in allocation's name-order form: SQL and model differ (-model +sql):\n%s", seed, text, diff)
					}
					scanned++
				}
			}
		}
		st.Close()
	}
	if scanned == 0 {
		t.Error("no query was compared in allocation's name-order form")
	}
	if walked == 0 || walkedRel == 0 || sampled == 0 || counted == 0 {
		t.Errorf("%d cases paged in the name-order form (%d with a relation, %d chosen by its sample), %d counted from an attribute's holders: want some of each", walked, walkedRel, sampled, counted)
	}
	t.Logf("%d cases compared, %d of them matching some but not all entities, %d in the name-order form too; %d paged (%d with the page in name-order form, %d of them with a relation, %d chosen by the sample; %d counted from an attribute's holders); queries by compiled form: %v",
		cases, partial, scanned, paged, walked, walkedRel, sampled, counted, paths)
}

// pageThrough reads every page of text with opts (TotalCap 2 when capped)
// and returns the names in order, and what was wrong with the pages'
// totals ("" when each was right: exact, or when capped, capped at 2
// with TotalAtLeast past it; a capped total may still be exact, as when
// the page is read with its total in one statement). It also runs the
// count statement on its own, which must count exactly or stop at 3.
func pageThrough(t *testing.T, ctx context.Context, st *store.Store, text string, opts Options, capped bool, want int) ([]string, string) {
	t.Helper()
	const cap = 2
	wantTotal, wantAtLeast := want, false
	if capped {
		opts.TotalCap = cap
		wantTotal, wantAtLeast = min(want, cap), want > cap
	}
	var out []string
	var bad []string
	for page := 0; ; page++ {
		res, err := Run(ctx, st.Reader(), text, opts)
		if err != nil {
			t.Fatalf("Run(%q, %+v): %v", text, opts, err)
		}
		out = append(out, names(res.Results)...)
		exact := res.Total == want && !res.TotalAtLeast
		if !exact && (res.Total != wantTotal || res.TotalAtLeast != wantAtLeast) || !capped && !exact {
			bad = append(bad, fmt.Sprintf("page %d: total %d (at least: %v), want %d (%v)", page, res.Total, res.TotalAtLeast, wantTotal, wantAtLeast))
		}
		if res.NextCursor == "" {
			break
		}
		if page > want {
			t.Fatalf("%q: more pages than matches", text)
		}
		opts.Cursor = res.NextCursor
	}
	q, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	opts.Cursor, opts.DB = "", st.Reader()
	c, err := Compile(q, opts)
	if err != nil {
		t.Fatal(err)
	}
	sq, args := c.Count()
	var n int
	if err := st.Reader().QueryRowContext(ctx, sq, args...).Scan(&n); err != nil {
		t.Fatalf("count statement of %q: %v\n%s", text, err, sq)
	}
	if wantN := min(want, cap+1); !capped && n != want || capped && n != wantN {
		bad = append(bad, fmt.Sprintf("count statement alone: %d", n))
	}
	if out == nil {
		out = []string{}
	}
	return out, strings.Join(bad, "; ")
}

// scanMatches runs q as allocation compiles it (Options.nameScan, no
// rarity estimate, so the name-order form always) and returns every match
// in name order.
func scanMatches(t *testing.T, ctx context.Context, st *store.Store, q *Query) []string {
	t.Helper()
	c, err := Compile(q, Options{nameScan: true})
	if err != nil {
		t.Fatal(err)
	}
	sq, args := c.statement("SELECT e.name", false)
	rows, err := st.Reader().QueryContext(ctx, sq+" ORDER BY e.name", args...)
	if err != nil {
		t.Fatalf("name-order form of %s: %v\n%s", q, err, sq)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGlobMatch checks the model's own glob matcher, which the
// differential test trusts.
func TestGlobMatch(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"a*", "bac", false},
		{"?", "", false}, {"?", "é", true}, {"a?c", "abc", true}, {"a?c", "abbc", false},
		{"*c", "abc", true}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXcYb", false}, {"[a]", "[a]", true},
	}
	for _, tc := range tests {
		if got := globMatch([]rune(tc.p), []rune(tc.s)); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}
