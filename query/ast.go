package query

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// The AST. Parse converts participle's tree into these nodes, validating
// every value (field names, keys, regexes, addresses, numbers) with the
// position of the token that held it; the compiler only ever sees valid
// nodes. String gives the printed form the golden tests compare:
//
//	(or (and (not (name "A")) (connected (name "B") (name "C"))) (name "D"))
type node interface {
	String() string
	position() lexer.Position
}

type orNode struct {
	pos   lexer.Position
	terms []node
}

type andNode struct {
	pos   lexer.Position
	terms []node
}

type notNode struct {
	pos lexer.Position
	x   node
}

// relOp is a relation between the entities on its left and those on its right.
type relOp int

const (
	relConnected relOp = iota // a direct connection of any type, either direction
	relIn                     // left is contained in right, at any depth
	relContains               // left contains right, at any depth
)

func (r relOp) String() string {
	switch r {
	case relIn:
		return "in"
	case relContains:
		return "contains"
	}
	return "connected"
}

type relNode struct {
	pos         lexer.Position
	op          relOp
	left, right node
	// via restricts connected to: a connection type (contains, member,
	// link) or, for anything else, a link's port type (nic, console, ...).
	via string
}

// allNode is `*`: every entity.
type allNode struct{ pos lexer.Position }

// column is an entity column a field term matches.
type column string

const (
	colName   column = "name"
	colDriver column = "driver"
	colKind   column = "kind"
)

type fieldNode struct {
	pos lexer.Position
	col column
	pat pattern
}

// attrNode is attr:KEY[.SUBKEY][,PATTERN | OP NUMBER] and haskey:KEY.
type attrNode struct {
	pos    lexer.Position
	key    string
	subkey *string
	pat    *pattern // some value matches
	op     string   // numeric comparison with num, when not ""
	num    int64
	haskey bool // written as haskey:, for printing
}

// groupNode is pool:/role:/class:/service: membership, direct or nested.
type groupNode struct {
	pos    lexer.Position
	driver string
	pat    pattern
}

// ipNode matches entities holding an address inside prefix (a single
// address is a /32 or /128).
type ipNode struct {
	pos    lexer.Position
	prefix netip.Prefix
}

type patternKind int

const (
	patExact patternKind = iota
	patGlob
	patRegex
)

// pattern is what a value is matched with: exact text, a glob (* and ?)
// or an RE2 regex.
type pattern struct {
	kind patternKind
	text string
}

func (p pattern) String() string {
	switch p.kind {
	case patGlob:
		return "glob:" + strconv.Quote(p.text)
	case patRegex:
		return "regex:" + strconv.Quote(p.text)
	}
	return strconv.Quote(p.text)
}

func (n *orNode) String() string  { return list("or", n.terms) }
func (n *andNode) String() string { return list("and", n.terms) }
func (n *notNode) String() string { return "(not " + n.x.String() + ")" }
func (n *relNode) String() string {
	s := "(" + n.op.String() + " " + n.left.String() + " " + n.right.String()
	if n.via != "" {
		s += " via " + n.via
	}
	return s + ")"
}
func (n *allNode) String() string   { return "*" }
func (n *fieldNode) String() string { return "(" + string(n.col) + " " + n.pat.String() + ")" }
func (n *attrNode) String() string {
	k := n.key
	if n.subkey != nil {
		k += "." + *n.subkey
	}
	switch {
	case n.haskey:
		return "(haskey " + k + ")"
	case n.pat != nil:
		return "(attr " + k + " " + n.pat.String() + ")"
	case n.op != "":
		return fmt.Sprintf("(attr %s %s %d)", k, n.op, n.num)
	}
	return "(attr " + k + ")"
}
func (n *groupNode) String() string { return "(" + n.driver + " " + n.pat.String() + ")" }
func (n *ipNode) String() string {
	if n.prefix.IsSingleIP() {
		return "(ip " + n.prefix.Addr().String() + ")"
	}
	return "(ip " + n.prefix.String() + ")"
}

func (n *orNode) position() lexer.Position    { return n.pos }
func (n *andNode) position() lexer.Position   { return n.pos }
func (n *notNode) position() lexer.Position   { return n.pos }
func (n *relNode) position() lexer.Position   { return n.pos }
func (n *allNode) position() lexer.Position   { return n.pos }
func (n *fieldNode) position() lexer.Position { return n.pos }
func (n *attrNode) position() lexer.Position  { return n.pos }
func (n *groupNode) position() lexer.Position { return n.pos }
func (n *ipNode) position() lexer.Position    { return n.pos }

func list(op string, terms []node) string {
	var b strings.Builder
	b.WriteString("(" + op)
	for _, t := range terms {
		b.WriteString(" " + t.String())
	}
	return b.String() + ")"
}

// fieldNames lists the fields in the order error messages give them.
var fieldNames = []string{"name", "driver", "kind", "attr", "haskey", "pool", "role", "class", "service", "ip"}

var groupDrivers = map[string]bool{"pool": true, "role": true, "class": true, "service": true}

// connectionTypes are the values of connections.type; any other via word
// is a port type.
var connectionTypes = map[string]bool{entity.Contains: true, entity.Member: true, entity.LinkType: true, ipAllocation: true}

// ipAllocation is the connection between an ip block and an entity holding
// one of its addresses.
const ipAllocation = "ip"

var portTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// SyntaxError is a query that does not parse: the message (which names
// where, as "column 14: ...") and the 1-based line and column of the
// offending token, both 0 for an empty query. The server answers it 400
// with code query_syntax and the position; it is not an entity.Error,
// whose kinds are the domain's.
type SyntaxError struct {
	Message      string
	Line, Column int
}

func (e *SyntaxError) Error() string { return e.Message }

// syntaxAt returns a syntax error located at pos.
func syntaxAt(pos lexer.Position, format string, args ...any) *SyntaxError {
	return &SyntaxError{Message: where(pos) + ": " + fmt.Sprintf(format, args...), Line: pos.Line, Column: pos.Column}
}

// errAt returns an error of kind k located at pos.
func errAt(k entity.ErrorKind, pos lexer.Position, format string, args ...any) *entity.Error {
	e := entity.Errorf(k, "%s: %s", where(pos), fmt.Sprintf(format, args...))
	e.Line, e.Column = pos.Line, pos.Column
	return e
}

// where names a position the way messages do: the column alone for
// one-line queries, the line too otherwise.
func where(pos lexer.Position) string {
	if pos.Line > 1 {
		return fmt.Sprintf("line %d, column %d", pos.Line, pos.Column)
	}
	return fmt.Sprintf("column %d", pos.Column)
}

// converter turns the parse tree into the AST.
type converter struct{}

func (c converter) or(g *gOr) (node, error) {
	terms := make([]node, 0, len(g.Terms))
	for _, t := range g.Terms {
		n, err := c.and(t)
		if err != nil {
			return nil, err
		}
		terms = append(terms, n)
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return &orNode{pos: g.Pos, terms: terms}, nil
}

func (c converter) and(g *gAnd) (node, error) {
	terms := make([]node, 0, len(g.Terms))
	for _, t := range g.Terms {
		n, err := c.not(t)
		if err != nil {
			return nil, err
		}
		terms = append(terms, n)
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return &andNode{pos: g.Pos, terms: terms}, nil
}

func (c converter) not(g *gNot) (node, error) {
	if g.Not != nil {
		x, err := c.not(g.Not)
		if err != nil {
			return nil, err
		}
		return &notNode{pos: g.Pos, x: x}, nil
	}
	return c.rel(g.Rel)
}

func (c converter) rel(g *gRel) (node, error) {
	left, err := c.term(g.Left)
	if err != nil {
		return nil, err
	}
	for _, op := range g.Ops {
		right, err := c.term(op.Right)
		if err != nil {
			return nil, err
		}
		r := &relNode{pos: g.Pos, left: left, right: right}
		switch {
		case op.In:
			r.op = relIn
		case op.Contains:
			r.op = relContains
		default:
			r.op = relConnected
		}
		if op.Via != nil {
			if r.op != relConnected {
				return nil, syntaxAt(op.Via.Pos, "via applies to connected to, not to %s", r.op)
			}
			v := strings.ToLower(op.Via.Value)
			if !connectionTypes[v] && !portTypeRE.MatchString(v) {
				return nil, syntaxAt(op.Via.Pos, "via %q: expected a connection type (contains, member, link) or a port type (nic, console, power, ...)", op.Via.Value)
			}
			r.via = v
		}
		left = r
	}
	return left, nil
}

func (c converter) term(g *gTerm) (node, error) {
	switch {
	case g.Sub != nil:
		return c.or(g.Sub)
	case g.All:
		return &allNode{pos: g.Pos}, nil
	case g.Attr != nil:
		return c.attr(g.Attr)
	}
	return c.field(g.Field)
}

func (c converter) attr(g *gAttr) (node, error) {
	n := &attrNode{pos: g.Pos, key: g.Key.Value}
	if err := checkKey(g.Key.Pos, "key", g.Key.Value); err != nil {
		return nil, err
	}
	if g.Subkey != nil {
		sub := g.Subkey.Value
		if err := checkKey(g.Subkey.Pos, "subkey", sub); err != nil {
			return nil, err
		}
		n.subkey = &sub
	}
	switch {
	case g.Pattern != nil:
		p, err := c.pattern(g.Pattern, false)
		if err != nil {
			return nil, err
		}
		n.pat = &p
	case g.Op != nil:
		n.op = g.Op.Value
		if n.op == "==" {
			n.op = "="
		}
		v, err := strconv.ParseInt(g.Number.Value, 10, 64)
		if err != nil {
			return nil, errAt(entity.KindInvalid, g.Number.Pos, "%s is not a 64-bit integer", g.Number.Value)
		}
		n.num = v
	}
	return n, nil
}

func checkKey(pos lexer.Position, what, key string) error {
	if err := entity.ValidateKey(what, key); err != nil {
		return errAt(entity.KindInvalid, pos, "%s", err.(*entity.Error).Message)
	}
	return nil
}

func (c converter) field(g *gField) (node, error) {
	name := strings.ToLower(strings.TrimSuffix(g.Field, ":"))
	switch {
	case name == "name" || name == "driver" || name == "kind":
		p, err := c.pattern(g.Value, name != "name")
		if err != nil {
			return nil, err
		}
		if name == "kind" && p.kind == patExact && !drivers.Kind(p.text).Valid() {
			return nil, errAt(entity.KindInvalid, g.Value.Pos, "kind %q: expected equipment, part, resource or group", p.text)
		}
		return &fieldNode{pos: g.Pos, col: column(name), pat: p}, nil
	case groupDrivers[name]:
		p, err := c.pattern(g.Value, false)
		if err != nil {
			return nil, err
		}
		return &groupNode{pos: g.Pos, driver: name, pat: p}, nil
	case name == "haskey":
		text, err := c.plain(g.Value, "haskey: takes a key (haskey:status), not a pattern")
		if err != nil {
			return nil, err
		}
		n := &attrNode{pos: g.Pos, key: text, haskey: true}
		if k, sub, ok := strings.Cut(text, "."); ok {
			n.key, n.subkey = k, &sub
		}
		if err := checkKey(g.Value.Pos, "key", n.key); err != nil {
			return nil, err
		}
		if n.subkey != nil {
			if err := checkKey(g.Value.Pos, "subkey", *n.subkey); err != nil {
				return nil, err
			}
		}
		return n, nil
	case name == "ip":
		text, err := c.plain(g.Value, "ip: takes an address or a network (ip:10.0.3.5, ip:10.0.3.0/24), not a pattern")
		if err != nil {
			return nil, err
		}
		p, err := parseIP(text)
		if err != nil {
			return nil, errAt(entity.KindInvalid, g.Value.Pos, "%s", err)
		}
		return &ipNode{pos: g.Pos, prefix: p}, nil
	}
	return nil, syntaxAt(g.Pos, "unknown field %q; the fields are %s", g.Field, strings.Join(fieldNames, ": ")+":")
}

// plain returns the text of a pattern that must be a plain word or a
// quoted string (no glob, no regex).
func (c converter) plain(g *gPattern, msg string) (string, error) {
	p, err := c.pattern(g, false)
	if err != nil {
		return "", err
	}
	if p.kind != patExact {
		return "", errAt(entity.KindInvalid, g.Pos, "%s", msg)
	}
	return p.text, nil
}

// parseIP reads an address or a network. IPv4-mapped IPv6 forms are
// unmapped, as the store does for values.
func parseIP(text string) (netip.Prefix, error) {
	if strings.Contains(text, "/") {
		p, err := netip.ParsePrefix(text)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a network (10.0.3.0/24, 2001:db8::/64)", text)
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("network %s has host bits set; the network is %s", p, p.Masked())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(text)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or network (10.0.3.5, 10.0.3.0/24, 2001:db8::1)", text)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// pattern converts a pattern token. fold lowercases exact and glob text
// and makes regexes case-insensitive (driver: and kind:, whose values are
// lowercase).
func (c converter) pattern(g *gPattern, fold bool) (pattern, error) {
	switch {
	case g.Regex != nil:
		raw := *g.Regex
		text := strings.ReplaceAll(raw[1:len(raw)-1], `\/`, "/")
		if fold {
			text = "(?i)" + text
		}
		if _, err := regexp.Compile(text); err != nil {
			return pattern{}, errAt(entity.KindInvalid, g.Pos, "bad regex %s: %s", raw, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		return pattern{kind: patRegex, text: text}, nil
	case g.String != nil:
		text, err := unquote(*g.String)
		if err != nil {
			return pattern{}, syntaxAt(g.Pos, "bad quoted string %s: %s", *g.String, err)
		}
		if fold {
			text = strings.ToLower(text)
		}
		return pattern{kind: patExact, text: text}, nil
	}
	text := *g.Word
	if fold {
		text = strings.ToLower(text)
	}
	if strings.ContainsAny(text, "*?") {
		return pattern{kind: patGlob, text: text}, nil
	}
	return pattern{kind: patExact, text: text}, nil
}

// unquote reads a double-quoted string with Go's escapes (\" \\ \n \t
// \u00e9 ...).
func unquote(s string) (string, error) {
	body := s[1 : len(s)-1]
	var b strings.Builder
	for body != "" {
		r, _, tail, err := strconv.UnquoteChar(body, '"')
		if err != nil {
			bad := body
			if len(bad) > 2 {
				bad = bad[:2]
			}
			return "", fmt.Errorf("invalid escape near %q (use \\\" for a quote and \\\\ for a backslash)", bad)
		}
		if r == 0 {
			return "", fmt.Errorf("a quoted string cannot hold a NUL character (no name or value has one)")
		}
		b.WriteRune(r)
		body = tail
	}
	return b.String(), nil
}

// tooDeep returns the first operator node (or, and, not, a relation)
// that has more than max operators above and including it, or nil.
func tooDeep(n node, d, max int) node {
	var kids []node
	switch n := n.(type) {
	case *orNode:
		kids = n.terms
	case *andNode:
		kids = n.terms
	case *notNode:
		kids = []node{n.x}
	case *relNode:
		kids = []node{n.left, n.right}
	default:
		return nil
	}
	if d++; d > max {
		return n
	}
	for _, k := range kids {
		if deep := tooDeep(k, d, max); deep != nil {
			return deep
		}
	}
	return nil
}
