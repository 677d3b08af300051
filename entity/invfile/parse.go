// Package invfile reads and writes declarative inventory files: a YAML
// (or JSON) description of entities with their drivers, attributes,
// positions in racks, memberships, links and addresses, compact enough to
// write by hand. Plan turns a file into the batch of ops that makes the
// inventory match it; Export writes the inventory back in the same format.
//
//	entities:
//	  rack101:
//	    driver: rack
//	    in: row3
//	    devices: {13: s0001, 15: s0002}
//	  s[0001-0040]:
//	    driver: server
//	    attrs: {status: unallocated, memory_gb: 64, role: [web, mail]}
//	    groups: [production]
//	  switch2a:
//	    driver: switch
//	    links: {1: s0001:eth0, 2: s0002:eth0}
//	  s0001:
//	    ips: {eth0: 10.0.3.5}
//
// The same name may appear once only; a range key (s[0001-0040]) expands to
// one entity per number, zero-padded to the width written.
package invfile

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/clusto/clusto/entity"
)

// Pos locates a node in a file.
type Pos struct {
	File         string
	Line, Column int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column) }

// errAt returns an invalid error located at pos.
func errAt(pos Pos, format string, args ...any) *entity.Error {
	e := entity.Errorf(entity.KindInvalid, "%s: %s", pos, fmt.Sprintf(format, args...))
	e.Line, e.Column = pos.Line, pos.Column
	return e.With("file", pos.File)
}

// AttrValues are the values of one key (with subkey and number) of a spec.
type AttrValues struct {
	Key    string
	Subkey string
	Number *int64
	Values []entity.Value
	Pos    Pos
}

// Placement is a containment edge declared in the file.
type Placement struct {
	Parent, Child string
	Position      *int64
	Pos           Pos
}

// Membership is a group edge declared in the file.
type Membership struct {
	Group, Member string
	Pos           Pos
}

// LinkSpec is a cable declared in the file.
type LinkSpec struct {
	A, B entity.Endpoint
	Pos  Pos
}

// IPSpec is an address the file gives an entity.
type IPSpec struct {
	Entity, Interface, Address string
	Pos                        Pos
}

// Spec is one entity as the file describes it.
type Spec struct {
	Name   string
	Driver string
	// Attrs is nil when the file says nothing of attributes.
	Attrs []AttrValues
	Pos   Pos
}

// Document is a parsed file: entities in file order (ranges expanded) and
// the edges between them, each with where it was written.
type Document struct {
	Entities    []*Spec
	Placements  []Placement
	Memberships []Membership
	Links       []LinkSpec
	IPs         []IPSpec
	byName      map[string]*Spec
}

// Spec returns the spec of a name, if the file has it.
func (d *Document) Spec(name string) (*Spec, bool) {
	s, ok := d.byName[name]
	return s, ok
}

var rangeRE = regexp.MustCompile(`^(.*)\[(\d+)-(\d+)\](.*)$`)

// MaxExpansion bounds one range.
const MaxExpansion = 100000

// expand turns s[0001-0040] into s0001 .. s0040 (one name when no range).
func expand(pos Pos, name string) ([]string, error) {
	m := rangeRE.FindStringSubmatch(name)
	if m == nil {
		return []string{name}, nil
	}
	from, err1 := strconv.Atoi(m[2])
	to, err2 := strconv.Atoi(m[3])
	if err1 != nil || err2 != nil || from > to {
		return nil, errAt(pos, "range %q must be [FROM-TO] with FROM <= TO", name)
	}
	if to-from+1 > MaxExpansion {
		return nil, errAt(pos, "range %q expands to %d names; the limit is %d", name, to-from+1, MaxExpansion)
	}
	width := len(m[2])
	out := make([]string, 0, to-from+1)
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%0*d%s", m[1], width, i, m[4]))
	}
	return out, nil
}

// Parse reads a file. Syntax errors, unknown fields, duplicate names and
// malformed values are invalid errors naming the file, line and column.
// Drivers, ports and rack space are checked by Plan against the inventory.
func Parse(file string, data []byte) (*Document, error) {
	return ParseWith(file, data, ParseOptions{})
}

// ParseOptions bound what a file may expand to.
type ParseOptions struct {
	// MaxNames caps the names (entities, and the entries of lists such as
	// devices and members) that the file's ranges expand to; 0 is no cap.
	// A few bytes of s[1-100000] are a hundred thousand entities: a server
	// parsing files sent by clients must not take them on trust.
	MaxNames int
}

// ParseWith is Parse with limits.
func ParseWith(file string, data []byte, opts ParseOptions) (*Document, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, err)
	}
	p := newParser(file, opts)
	entities, err := p.top(&root)
	if err != nil {
		return nil, err
	}
	if entities.Kind != yaml.MappingNode {
		return nil, errAt(p.pos(entities), "entities must be a mapping of name to entity")
	}
	if err := p.entities(entities); err != nil {
		return nil, err
	}
	return p.doc, nil
}

func newParser(file string, opts ParseOptions) *parser {
	return &parser{file: file, doc: &Document{byName: map[string]*Spec{}}, opts: opts}
}

// top checks the document's top-level fields and returns its entities.
func (p *parser) top(root *yaml.Node) (*yaml.Node, error) {
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, errAt(Pos{p.file, 1, 1}, "the file is empty; expected a mapping with an entities key")
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, errAt(p.pos(top), "expected a mapping with an entities key")
	}
	var entities *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "version":
			if v.Value != "1" {
				return nil, errAt(p.pos(v), "version %q is not supported; this build reads version 1", v.Value)
			}
		case "entities":
			entities = v
		default:
			return nil, errAt(p.pos(k), "unknown field %q (expected version, entities)", k.Value)
		}
	}
	if entities == nil {
		return nil, errAt(p.pos(top), "no entities key")
	}
	return entities, nil
}

// entities reads the entries of an entities mapping, in order.
func (p *parser) entities(entities *yaml.Node) error {
	for i := 0; i+1 < len(entities.Content); i += 2 {
		if err := p.entity(entities.Content[i], entities.Content[i+1]); err != nil {
			return err
		}
		// The node tree of a large file is several times the size of the
		// document made from it; letting each entity's nodes go once read
		// keeps the two from peaking together.
		entities.Content[i], entities.Content[i+1] = nil, nil
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

func yamlError(file string, err error) error {
	msg := err.Error()
	if te, ok := err.(*yaml.TypeError); ok {
		msg = strings.Join(te.Errors, "; ")
	}
	line := 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if m[1] != "" {
			line, _ = strconv.Atoi(m[1])
		}
		msg = m[2]
	}
	return errAt(Pos{file, line, 1}, "%s", msg)
}

type parser struct {
	file string
	doc  *Document
	opts ParseOptions
	// expanded counts the names the file's ranges have expanded to so far.
	expanded int
}

// expand expands a name range, holding the file to opts.MaxNames.
func (p *parser) expand(pos Pos, name string) ([]string, error) {
	out, err := expand(pos, name)
	if err != nil {
		return nil, err
	}
	p.expanded += len(out)
	if p.opts.MaxNames > 0 && p.expanded > p.opts.MaxNames {
		return nil, errAt(pos, "the file names more than %d entities and ports once its ranges are expanded; that is the limit here (apply larger files with clustod import on the server)", p.opts.MaxNames).
			With("limit", p.opts.MaxNames)
	}
	return out, nil
}

func (p *parser) pos(n *yaml.Node) Pos { return Pos{p.file, n.Line, n.Column} }

func (p *parser) scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errAt(p.pos(n), "%s must be a single value", what)
	}
	return n.Value, nil
}

func (p *parser) names(n *yaml.Node, what string) ([]string, []Pos, error) {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		items = []*yaml.Node{n}
	case yaml.SequenceNode:
		items = n.Content
	default:
		return nil, nil, errAt(p.pos(n), "%s must be a name or a list of names", what)
	}
	var out []string
	var pos []Pos
	for _, it := range items {
		s, err := p.scalar(it, what)
		if err != nil {
			return nil, nil, err
		}
		ns, err := p.expand(p.pos(it), s)
		if err != nil {
			return nil, nil, err
		}
		for _, nm := range ns {
			if err := entity.ValidateName(nm); err != nil {
				return nil, nil, errAt(p.pos(it), "%s: %v", what, err)
			}
			out = append(out, nm)
			pos = append(pos, p.pos(it))
		}
	}
	return out, pos, nil
}

func (p *parser) position(n *yaml.Node, what string) (int64, error) {
	s, err := p.scalar(n, what)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 1 {
		return 0, errAt(p.pos(n), "%s %q must be a rack unit (1 or more)", what, s)
	}
	return v, nil
}

func (p *parser) entity(keyNode, body *yaml.Node) error {
	key, err := p.scalar(keyNode, "entity name")
	if err != nil {
		return err
	}
	names, err := p.expand(p.pos(keyNode), key)
	if err != nil {
		return err
	}
	if body.Kind != yaml.MappingNode {
		return errAt(p.pos(body), "entity %s must be a mapping (driver, attrs, in, ...)", key)
	}
	type field struct{ k, v *yaml.Node }
	fields := map[string]field{}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k := body.Content[i]
		switch k.Value {
		case "driver", "attrs", "in", "at", "devices", "contains", "groups", "members", "links", "ips":
		default:
			return errAt(p.pos(k), "unknown field %q of entity %s (expected driver, attrs, in, at, devices, contains, groups, members, links, ips)", k.Value, key)
		}
		fields[k.Value] = field{k, body.Content[i+1]}
	}
	if len(names) > 1 {
		for _, f := range []string{"at", "devices", "links", "ips"} {
			if fl, ok := fields[f]; ok {
				return errAt(p.pos(fl.k), "%s cannot be given for a range of entities (%s); write it per entity", f, key)
			}
		}
	}
	var driver string
	if f, ok := fields["driver"]; ok {
		if driver, err = p.scalar(f.v, "driver"); err != nil {
			return err
		}
	}
	var attrs []AttrValues
	if f, ok := fields["attrs"]; ok {
		if attrs, err = p.attrs(f.v); err != nil {
			return err
		}
		if attrs == nil {
			attrs = []AttrValues{}
		}
	}
	for _, name := range names {
		if err := entity.ValidateName(name); err != nil {
			return errAt(p.pos(keyNode), "%v", err)
		}
		spec, dup := p.doc.byName[name]
		if dup {
			// A name may be described once; a later mention may only add edges.
			if driver != "" || attrs != nil {
				return errAt(p.pos(keyNode), "%s is described twice (first at %s)", name, spec.Pos)
			}
		} else {
			spec = &Spec{Name: name, Driver: driver, Attrs: attrs, Pos: p.pos(keyNode)}
			p.doc.byName[name] = spec
			p.doc.Entities = append(p.doc.Entities, spec)
		}
		if f, ok := fields["in"]; ok {
			parent, err := p.scalar(f.v, "in")
			if err != nil {
				return err
			}
			pl := Placement{Parent: parent, Child: name, Pos: p.pos(f.v)}
			if at, ok := fields["at"]; ok {
				v, err := p.position(at.v, "at")
				if err != nil {
					return err
				}
				pl.Position = &v
			}
			p.doc.Placements = append(p.doc.Placements, pl)
		} else if at, ok := fields["at"]; ok {
			return errAt(p.pos(at.k), "at needs in: say which rack %s is in", name)
		}
		if f, ok := fields["devices"]; ok {
			if f.v.Kind != yaml.MappingNode {
				return errAt(p.pos(f.v), "devices must map rack units to names ({13: s0001})")
			}
			for i := 0; i+1 < len(f.v.Content); i += 2 {
				u, err := p.position(f.v.Content[i], "device position")
				if err != nil {
					return err
				}
				child, err := p.scalar(f.v.Content[i+1], "device")
				if err != nil {
					return err
				}
				p.doc.Placements = append(p.doc.Placements, Placement{Parent: name, Child: child, Position: &u, Pos: p.pos(f.v.Content[i])})
			}
		}
		if f, ok := fields["contains"]; ok {
			kids, pos, err := p.names(f.v, "contains")
			if err != nil {
				return err
			}
			for i, k := range kids {
				p.doc.Placements = append(p.doc.Placements, Placement{Parent: name, Child: k, Pos: pos[i]})
			}
		}
		if f, ok := fields["groups"]; ok {
			gs, pos, err := p.names(f.v, "groups")
			if err != nil {
				return err
			}
			for i, g := range gs {
				p.doc.Memberships = append(p.doc.Memberships, Membership{Group: g, Member: name, Pos: pos[i]})
			}
		}
		if f, ok := fields["members"]; ok {
			ms, pos, err := p.names(f.v, "members")
			if err != nil {
				return err
			}
			for i, m := range ms {
				p.doc.Memberships = append(p.doc.Memberships, Membership{Group: name, Member: m, Pos: pos[i]})
			}
		}
		if f, ok := fields["links"]; ok {
			if f.v.Kind != yaml.MappingNode {
				return errAt(p.pos(f.v), "links must map ports to peer:port ({1: s0001:eth0})")
			}
			for i := 0; i+1 < len(f.v.Content); i += 2 {
				port, err := p.scalar(f.v.Content[i], "port")
				if err != nil {
					return err
				}
				peer, err := p.scalar(f.v.Content[i+1], "link")
				if err != nil {
					return err
				}
				pn, pp, ok := strings.Cut(peer, ":")
				if !ok || pn == "" || pp == "" {
					return errAt(p.pos(f.v.Content[i+1]), "link %q must be peer:port (s0001:eth0)", peer)
				}
				p.doc.Links = append(p.doc.Links, LinkSpec{A: entity.Endpoint{Name: name, Port: port}, B: entity.Endpoint{Name: pn, Port: pp}, Pos: p.pos(f.v.Content[i])})
			}
		}
		if f, ok := fields["ips"]; ok {
			if f.v.Kind != yaml.MappingNode {
				return errAt(p.pos(f.v), "ips must map interfaces to addresses ({eth0: 10.0.3.5})")
			}
			for i := 0; i+1 < len(f.v.Content); i += 2 {
				iface, err := p.scalar(f.v.Content[i], "interface")
				if err != nil {
					return err
				}
				if iface == "-" {
					iface = ""
				}
				addrs := []*yaml.Node{f.v.Content[i+1]}
				if f.v.Content[i+1].Kind == yaml.SequenceNode {
					addrs = f.v.Content[i+1].Content
				}
				for _, an := range addrs {
					addr, err := p.scalar(an, "address")
					if err != nil {
						return err
					}
					v, err := entity.ParseValue(entity.TypeIP, addr)
					if err != nil {
						return errAt(p.pos(an), "%v", err)
					}
					p.doc.IPs = append(p.doc.IPs, IPSpec{Entity: name, Interface: iface, Address: v.Text, Pos: p.pos(an)})
				}
			}
		}
	}
	return nil
}

var attrKeyRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_-]*))?(?:#(\d+))?$`)

// Tags for values whose type YAML cannot say by itself.
var tagTypes = map[string]entity.ValueType{
	"!ip": entity.TypeIP, "!time": entity.TypeTime, "!ref": entity.TypeRef, "!json": entity.TypeJSON,
	"!int": entity.TypeInt, "!bool": entity.TypeBool, "!str": entity.TypeString,
}

func (p *parser) attrs(n *yaml.Node) ([]AttrValues, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(p.pos(n), "attrs must map keys to values")
	}
	var out []AttrValues
	seen := map[string]Pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		m := attrKeyRE.FindStringSubmatch(k.Value)
		if m == nil {
			return nil, errAt(p.pos(k), "attribute key %q must be key, key.subkey or key#number", k.Value)
		}
		av := AttrValues{Key: m[1], Subkey: m[2], Pos: p.pos(k)}
		if err := entity.ValidateKey("key", av.Key); err != nil {
			return nil, errAt(p.pos(k), "%v", err)
		}
		if m[3] != "" {
			num, err := strconv.ParseInt(m[3], 10, 64)
			if err != nil {
				return nil, errAt(p.pos(k), "attribute number %q is too large", m[3])
			}
			av.Number = &num
		}
		canon := strings.TrimSuffix(m[1]+"."+m[2], ".") + "#" + m[3]
		if first, dup := seen[canon]; dup {
			return nil, errAt(p.pos(k), "attribute %s is given twice (first at %s)", k.Value, first)
		}
		seen[canon] = p.pos(k)
		items := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode && v.Tag != "!json" {
			items = v.Content
			if len(items) == 0 {
				return nil, errAt(p.pos(v), "attribute %s has an empty list of values", k.Value)
			}
		}
		for _, it := range items {
			val, err := p.value(it)
			if err != nil {
				return nil, err
			}
			av.Values = append(av.Values, val)
		}
		out = append(out, av)
	}
	return out, nil
}

func (p *parser) value(n *yaml.Node) (entity.Value, error) {
	if t, ok := tagTypes[n.Tag]; ok {
		text := n.Value
		if t == entity.TypeJSON {
			var anyv any
			if err := n.Decode(&anyv); err != nil {
				return entity.Value{}, errAt(p.pos(n), "json value: %v", err)
			}
			if n.Kind == yaml.ScalarNode {
				text = n.Value
			} else {
				b, err := json.Marshal(anyv)
				if err != nil {
					return entity.Value{}, errAt(p.pos(n), "json value: %v", err)
				}
				text = string(b)
			}
		}
		v, err := entity.ParseValue(t, text)
		if err != nil {
			return entity.Value{}, errAt(p.pos(n), "%v", err)
		}
		return v, nil
	}
	if n.Kind != yaml.ScalarNode {
		return entity.Value{}, errAt(p.pos(n), "a value must be a scalar (tag it !json for structured data)")
	}
	var (
		v   entity.Value
		err error
	)
	switch n.ShortTag() {
	case "!!int":
		v, err = entity.ParseValue(entity.TypeInt, n.Value)
	case "!!bool":
		var b bool
		if err = n.Decode(&b); err == nil {
			v = entity.Bool(b)
		}
	case "!!null":
		return entity.Value{}, errAt(p.pos(n), "a value is missing")
	case "!!float":
		return entity.Value{}, errAt(p.pos(n), "value %s is a fraction; quote it to keep it as text", n.Value)
	default:
		v, err = entity.ParseValue(entity.TypeString, n.Value)
	}
	if err != nil {
		return entity.Value{}, errAt(p.pos(n), "%v", err)
	}
	return v, nil
}
