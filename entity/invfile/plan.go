package invfile

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// Options tune Plan.
type Options struct {
	// Prune also deletes entities the file does not name, and removes the
	// attributes, memberships, links and addresses of named entities that
	// the file does not give. Without it the plan only adds and changes.
	Prune bool
}

// Step is one line of a plan: an op with a readable summary and where in
// the file it comes from.
type Step struct {
	Action  string `json:"action"` // create, change, delete
	Entity  string `json:"entity"`
	Summary string `json:"summary"`
	// Op points into the plan's list of ops, which Ops hands to a batch
	// without copying: a 100k-entity file plans some 700,000 ops.
	Op     *entity.Op `json:"op"`
	Pos    Pos        `json:"-"`
	Source string     `json:"source,omitempty"`
}

// Plan is what it takes to make the inventory match a file.
type Plan struct {
	Steps []Step `json:"steps"`
	Summary
	ops []entity.Op
}

// Ops returns the plan's ops in the order they apply.
func (p *Plan) Ops() []entity.Op { return p.ops }

// Empty reports whether the inventory already matches.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// Stages order the ops: free ports, units and addresses first, then
// delete, create, set attributes, place, cable and allocate.
const (
	stageFree = iota
	stageDelete
	stageCreate
	stageAttrs
	stagePlace
	stageLink
	stageAllocate
	stages
)

// The planner is one, whether it plans a whole document (MakePlan) or
// is fed a file a window of entities at a time (Import): it compares
// entities as they come (entity) and, once every entity is known, the
// edges between them (edges). Where its steps go is its sink's business.
type planner struct {
	ctx    context.Context
	s      *store.Store
	tx     *store.View // one read transaction: the plan sees one snapshot
	doc    *Document
	opts   Options
	cur    map[string]*entity.Entity // current state of named entities (nil: absent)
	allocs map[string][]entity.Allocation
	sink   sink
	// lean drops the attributes of current entities once compared: the
	// edges need only their drivers, parents and links.
	lean bool
}

// A sink takes the planner's steps, each with its stage and op.
type sink interface {
	add(stage int, st Step, op entity.Op)
}

// staged keeps each stage's steps and ops, in step order, to be put
// together stage by stage.
type staged struct {
	steps [stages]chunks[Step]      // without their Op, which is in ops
	ops   [stages]chunks[entity.Op] // each stage's ops, in step order
}

func (c *staged) add(stage int, st Step, op entity.Op) {
	c.steps[stage].add(st)
	c.ops[stage].add(op)
}

func newPlanner(ctx context.Context, s *store.Store, tx *store.View, doc *Document, opts Options, out sink) *planner {
	return &planner{ctx: ctx, s: s, tx: tx, doc: doc, opts: opts, cur: map[string]*entity.Entity{}, allocs: map[string][]entity.Allocation{}, sink: out}
}

// chunks is a list grown a fixed block at a time: a large file's stages
// hold hundreds of thousands of ops, and a slice grown by append would
// carry up to as much again in spare capacity until the plan is built.
type chunks[T any] struct {
	blocks [][]T
	n      int
}

const chunkSize = 4096

func (c *chunks[T]) add(v T) {
	if len(c.blocks) == 0 || len(c.blocks[len(c.blocks)-1]) == chunkSize {
		c.blocks = append(c.blocks, make([]T, 0, chunkSize))
	}
	last := &c.blocks[len(c.blocks)-1]
	*last = append(*last, v)
	c.n++
}

// each calls fn on every element in order, dropping each block after it.
func (c *chunks[T]) each(fn func(v T)) {
	for i, b := range c.blocks {
		for _, v := range b {
			fn(v)
		}
		c.blocks[i] = nil
	}
	c.blocks, c.n = nil, 0
}

func (p *planner) add(stage int, action, ent, summary string, op entity.Op, pos Pos) {
	st := Step{Action: action, Entity: ent, Summary: summary, Pos: pos}
	if pos.Line > 0 {
		st.Source = pos.String()
	}
	p.sink.add(stage, st, op)
}

// load reads the current state of a name once.
func (p *planner) load(name string) (*entity.Entity, error) {
	if e, ok := p.cur[name]; ok {
		return e, nil
	}
	e, err := p.tx.Get(name)
	if entity.IsKind(err, entity.KindNotFound) {
		p.cur[name] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if p.lean {
		e.Attrs = nil
	}
	p.cur[name] = e
	return e, nil
}

// allocations returns the addresses name holds.
func (p *planner) allocations(name string) ([]entity.Allocation, error) {
	if a, ok := p.allocs[name]; ok {
		return a, nil
	}
	out, err := p.tx.AllocationsOf(name)
	if entity.IsKind(err, entity.KindNotFound) {
		out, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	p.allocs[name] = out
	return out, nil
}

// MakePlan compares the file with the inventory and returns the ops that
// make the inventory match it. It does not check the ops against the
// inventory's rules; Check (a dry run) does.
func MakePlan(ctx context.Context, s *store.Store, doc *Document, opts Options) (*Plan, error) {
	out := &staged{}
	// One read transaction for the whole comparison: every entity is
	// compared with the same snapshot, and its statements are prepared
	// once rather than once per entity read.
	err := s.View(ctx, func(tx *store.View) error {
		p := newPlanner(ctx, s, tx, doc, opts, out)
		for _, spec := range doc.Entities {
			if err := p.entity(spec); err != nil {
				return err
			}
		}
		return p.edges(opts.Prune)
	})
	if err != nil {
		return nil, err
	}
	n := 0
	for _, st := range out.steps {
		n += st.n
	}
	// Stage by stage, each stage's blocks are dropped once copied, so the
	// plan is not held twice over at its largest.
	plan := &Plan{Steps: make([]Step, 0, n), ops: make([]entity.Op, 0, n)}
	var t tally
	for stage := range out.steps {
		out.ops[stage].each(func(op entity.Op) { plan.ops = append(plan.ops, op) })
		out.steps[stage].each(func(st Step) {
			st.Op = &plan.ops[len(plan.Steps)]
			plan.Steps = append(plan.Steps, st)
			t.note(st)
		})
	}
	plan.Summary = t.summary()
	return plan, nil
}

// edges plans what needs every entity of the file known: placements,
// memberships, links, addresses and, with prune, what the file omits.
func (p *planner) edges(prune bool) error {
	for _, stage := range []func() error{p.placements, p.memberships, p.links, p.ips} {
		if err := stage(); err != nil {
			return err
		}
	}
	if prune {
		return p.prune()
	}
	return nil
}

// Summary counts a plan: its steps, and the entities it creates, changes
// and deletes. (A Plan lists its steps in its own Steps field, which the
// JSON of a plan shows; Summary.Steps is their number.)
type Summary struct {
	Steps  int `json:"-"`
	Create int `json:"create"`
	Change int `json:"change"`
	Delete int `json:"delete"`
}

// tally counts steps into a Summary. Each entity counts once, by its
// weightiest step: a created entity's attribute and placement steps are
// part of its create.
type tally struct {
	steps   int
	counted map[string]string
}

var actionWeight = map[string]int{"change": 1, "create": 2, "delete": 2}

func (t *tally) note(st Step) {
	t.steps++
	if t.counted == nil {
		t.counted = map[string]string{}
	}
	if actionWeight[st.Action] > actionWeight[t.counted[st.Entity]] {
		t.counted[st.Entity] = st.Action
	}
}

func (t *tally) summary() Summary {
	s := Summary{Steps: t.steps}
	for _, a := range t.counted {
		switch a {
		case "create":
			s.Create++
		case "delete":
			s.Delete++
		default:
			s.Change++
		}
	}
	return s
}

func valueTexts(vs []entity.Value) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Text
	}
	sort.Strings(out)
	return out
}

func attrID(key, subkey string, number *int64) string {
	id := key
	if subkey != "" {
		id += "." + subkey
	}
	if number != nil {
		id += fmt.Sprintf("#%d", *number)
	}
	return id
}

func rawValue(v entity.Value) json.RawMessage {
	b, _ := v.MarshalJSON()
	return b
}

func describeValues(vs []entity.Value) string {
	t := make([]string, len(vs))
	for i, v := range vs {
		t[i] = v.Text
	}
	return strings.Join(t, ", ")
}

func (p *planner) entity(spec *Spec) error {
	cur, err := p.load(spec.Name)
	if err != nil {
		return err
	}
	if cur == nil {
		if spec.Driver == "" {
			return errAt(spec.Pos, "%s is not in the inventory and the file gives no driver for it", spec.Name)
		}
		// References are set after every create, so that they may point at
		// entities created later in the same file.
		var attrs []entity.Attr
		var parts []string
		for _, av := range spec.Attrs {
			if len(av.Values) > 0 && av.Values[0].Type == entity.TypeRef {
				p.setAttr(spec, av, nil)
				continue
			}
			for _, v := range av.Values {
				attrs = append(attrs, entity.Attr{Key: av.Key, Subkey: av.Subkey, Number: av.Number, Value: v})
			}
			parts = append(parts, attrID(av.Key, av.Subkey, av.Number)+"="+describeValues(av.Values))
		}
		summary := fmt.Sprintf("create %s %s", spec.Driver, spec.Name)
		if len(parts) > 0 {
			summary += " (" + strings.Join(parts, "; ") + ")"
		}
		p.add(stageCreate, "create", spec.Name, summary, entity.Op{Op: "create", Name: spec.Name, Driver: spec.Driver, Attrs: attrs}, spec.Pos)
		return nil
	}
	if spec.Driver != "" && !strings.EqualFold(spec.Driver, cur.Driver) {
		return errAt(spec.Pos, "%s is a %s in the inventory but a %s in the file; a driver cannot change (delete it first)", spec.Name, cur.Driver, spec.Driver)
	}
	if spec.Attrs == nil {
		return nil
	}
	have := map[string][]entity.Value{}
	allocated := map[string]bool{}
	allocs, err := p.allocations(spec.Name)
	if err != nil {
		return err
	}
	for _, a := range allocs {
		allocated[a.Interface+"\x00"+a.Address] = true
	}
	var order []string
	for _, a := range cur.Attrs {
		if a.Key == "ip" && a.Number == nil && allocated[a.Subkey+"\x00"+a.Value.Text] {
			continue // managed through ips
		}
		id := attrID(a.Key, a.Subkey, a.Number)
		if _, ok := have[id]; !ok {
			order = append(order, id)
		}
		have[id] = append(have[id], a.Value)
	}
	want := map[string]bool{}
	for _, av := range spec.Attrs {
		id := attrID(av.Key, av.Subkey, av.Number)
		want[id] = true
		if old, ok := have[id]; ok && equalStrings(valueTexts(old), valueTexts(av.Values)) {
			continue
		}
		p.setAttr(spec, av, have[id])
	}
	if p.opts.Prune {
		for _, id := range order {
			if want[id] {
				continue
			}
			key, subkey, number := splitAttrID(id)
			p.add(stageAttrs, "change", spec.Name, fmt.Sprintf("%s: remove %s (was %s)", spec.Name, id, describeValues(have[id])),
				entity.Op{Op: "attr_del", Name: spec.Name, Key: key, Subkey: &subkey, Number: number}, spec.Pos)
		}
	}
	return nil
}

func splitAttrID(id string) (string, string, *int64) {
	var number *int64
	if k, n, ok := strings.Cut(id, "#"); ok {
		var v int64
		fmt.Sscan(n, &v)
		number, id = &v, k
	}
	key, subkey, _ := strings.Cut(id, ".")
	return key, subkey, number
}

func (p *planner) setAttr(spec *Spec, av AttrValues, old []entity.Value) {
	vals := make([]json.RawMessage, len(av.Values))
	for i, v := range av.Values {
		vals[i] = rawValue(v)
	}
	sub := av.Subkey
	op := entity.Op{Op: "attr_set", Name: spec.Name, Key: av.Key, Subkey: &sub, Number: av.Number, Values: vals}
	if len(av.Values) > 0 {
		op.Type = av.Values[0].Type
		for _, v := range av.Values {
			if v.Type != op.Type {
				op.Type = ""
			}
		}
	}
	summary := fmt.Sprintf("%s: set %s = %s", spec.Name, attrID(av.Key, av.Subkey, av.Number), describeValues(av.Values))
	if old != nil {
		summary += " (was " + describeValues(old) + ")"
	}
	action := "change"
	if cur := p.cur[spec.Name]; cur == nil {
		action = "create"
	}
	if op.Type == "" {
		// Mixed types: one op per value keeps each value's type.
		op.Values = vals[:1]
		op.Type = av.Values[0].Type
		p.add(stageAttrs, action, spec.Name, summary, op, av.Pos)
		for _, v := range av.Values[1:] {
			p.add(stageAttrs, action, spec.Name, summary, entity.Op{Op: "attr_add", Name: spec.Name, Key: av.Key, Subkey: &sub, Number: av.Number,
				Value: rawValue(v), Type: v.Type}, av.Pos)
		}
		return
	}
	p.add(stageAttrs, action, spec.Name, summary, op, av.Pos)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func action(cur *entity.Entity) string {
	if cur == nil {
		return "create"
	}
	return "change"
}

func (p *planner) placements() error {
	seen := map[string]Placement{}
	for _, pl := range p.doc.Placements {
		if first, dup := seen[pl.Child]; dup {
			return errAt(pl.Pos, "%s is placed twice (first in %s at %s); an entity has one physical parent", pl.Child, first.Parent, first.Pos)
		}
		seen[pl.Child] = pl
		group, err := p.isGroup(pl.Parent)
		if err != nil {
			return err
		}
		cur, err := p.load(pl.Child)
		if err != nil {
			return err
		}
		if group {
			// "contains" under a group is membership.
			if cur != nil && hasParent(cur, entity.Member, pl.Parent) {
				continue
			}
		} else if cur != nil {
			if r, ok := physicalParent(cur); ok {
				if r.Name == pl.Parent && samePos(r.Position, pl.Position) {
					continue
				}
				p.add(stageFree, "change", pl.Child, fmt.Sprintf("%s: take out of %s", pl.Child, r.Name),
					entity.Op{Op: "remove", Parent: r.Name, Child: pl.Child}, pl.Pos)
			}
		}
		where := "in " + pl.Parent
		if pl.Position != nil {
			where = fmt.Sprintf("in RU%d of %s", *pl.Position, pl.Parent)
		}
		p.add(stagePlace, action(cur), pl.Child, fmt.Sprintf("%s: put %s", pl.Child, where),
			entity.Op{Op: "insert", Parent: pl.Parent, Child: pl.Child, Position: pl.Position}, pl.Pos)
	}
	return nil
}

func physicalParent(e *entity.Entity) (entity.Relation, bool) {
	for _, r := range e.Parents {
		if r.Type == entity.Contains {
			return r, true
		}
	}
	return entity.Relation{}, false
}

// isGroup tells whether a name is (or will be, by the file) a group.
func (p *planner) isGroup(name string) (bool, error) {
	driver := ""
	if spec, ok := p.doc.byName[name]; ok && spec.Driver != "" {
		driver = spec.Driver
	} else {
		cur, err := p.load(name)
		if err != nil || cur == nil {
			return false, err
		}
		driver = cur.Driver
	}
	d, ok := p.s.Drivers().Lookup(driver)
	return ok && d.Kind == "group", nil
}

func samePos(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func (p *planner) memberships() error {
	type edge struct{ group, member string }
	seen := map[edge]bool{}
	for _, m := range p.doc.Memberships {
		k := edge{m.Group, m.Member}
		if seen[k] {
			continue
		}
		seen[k] = true
		cur, err := p.load(m.Member)
		if err != nil {
			return err
		}
		if cur != nil && hasParent(cur, entity.Member, m.Group) {
			continue
		}
		p.add(stagePlace, action(cur), m.Member, fmt.Sprintf("%s: add to %s", m.Member, m.Group),
			entity.Op{Op: "insert", Parent: m.Group, Child: m.Member}, m.Pos)
	}
	return nil
}

func hasParent(e *entity.Entity, typ, name string) bool {
	for _, r := range e.Parents {
		if r.Type == typ && r.Name == name {
			return true
		}
	}
	return false
}

func (p *planner) links() error {
	used := map[entity.Endpoint]Pos{}
	for _, l := range p.doc.Links {
		for _, ep := range []entity.Endpoint{l.A, l.B} {
			if first, dup := used[ep]; dup {
				return errAt(l.Pos, "port %s is linked twice in the file (first at %s)", ep, first)
			}
			used[ep] = l.Pos
		}
		a, err := p.load(l.A.Name)
		if err != nil {
			return err
		}
		b, err := p.load(l.B.Name)
		if err != nil {
			return err
		}
		if a != nil && linkedTo(a, l.A.Port, l.B) {
			continue
		}
		// Unplug whatever either port is plugged into now.
		for _, side := range []struct {
			e  *entity.Entity
			ep entity.Endpoint
		}{{a, l.A}, {b, l.B}} {
			if side.e == nil {
				continue
			}
			for _, cl := range side.e.Links {
				if cl.Port == side.ep.Port {
					p.add(stageFree, "change", side.ep.Name, fmt.Sprintf("%s: unplug %s from %s:%s", side.ep.Name, side.ep, cl.Peer, cl.PeerPort),
						entity.Op{Op: "unlink", A: side.ep.Name, APort: cl.Port, B: cl.Peer, BPort: cl.PeerPort}, l.Pos)
				}
			}
		}
		p.add(stageLink, action(a), l.A.Name, fmt.Sprintf("%s: link %s to %s", l.A.Name, l.A, l.B),
			entity.Op{Op: "link", A: l.A.Name, APort: l.A.Port, B: l.B.Name, BPort: l.B.Port}, l.Pos)
	}
	return nil
}

func linkedTo(e *entity.Entity, port string, peer entity.Endpoint) bool {
	for _, l := range e.Links {
		if l.Port == port && l.Peer == peer.Name && l.PeerPort == peer.Port {
			return true
		}
	}
	return false
}

// blockFor finds the most specific block holding addr, among the
// inventory's blocks and those the file describes.
// blockIndex finds the most specific block holding an address: one map of
// network prefixes per prefix length, tried longest first, instead of
// testing every block for every address of a large file.
type blockIndex struct {
	lengths []int                           // distinct prefix lengths, longest first
	byLen   map[int]map[netip.Prefix]string // masked prefix -> block name
}

func newBlockIndex(blocks []entity.BlockCIDR) *blockIndex {
	ix := &blockIndex{byLen: map[int]map[netip.Prefix]string{}}
	for _, b := range blocks {
		pfx, err := netip.ParsePrefix(b.CIDR)
		if err != nil {
			continue
		}
		pfx = pfx.Masked()
		m := ix.byLen[pfx.Bits()]
		if m == nil {
			m = map[netip.Prefix]string{}
			ix.byLen[pfx.Bits()] = m
			ix.lengths = append(ix.lengths, pfx.Bits())
		}
		if _, dup := m[pfx]; !dup {
			m[pfx] = b.Name // the first block of a prefix wins, as it always has
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ix.lengths)))
	return ix
}

func (ix *blockIndex) blockFor(addr string) (string, bool) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return "", false
	}
	for _, bits := range ix.lengths {
		if bits > a.BitLen() {
			continue
		}
		pfx, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if name, ok := ix.byLen[bits][pfx]; ok {
			return name, true
		}
	}
	return "", false
}

func (p *planner) ips() error {
	if len(p.doc.IPs) == 0 && !p.opts.Prune {
		return nil
	}
	blocks, err := p.s.IPBlocks(p.ctx)
	if err != nil {
		return err
	}
	for _, spec := range p.doc.Entities {
		if spec.Driver != "ipblock" {
			continue
		}
		for _, av := range spec.Attrs {
			if av.Key == "cidr" && av.Subkey == "" && len(av.Values) == 1 {
				blocks = append(blocks, entity.BlockCIDR{Name: spec.Name, CIDR: av.Values[0].Text})
			}
		}
	}
	index := newBlockIndex(blocks)
	wanted := map[string]map[string]bool{}
	for _, ip := range p.doc.IPs {
		if wanted[ip.Entity] == nil {
			wanted[ip.Entity] = map[string]bool{}
		}
		wanted[ip.Entity][ip.Interface+"\x00"+ip.Address] = true
		have, err := p.allocations(ip.Entity)
		if err != nil {
			return err
		}
		held := false
		for _, a := range have {
			if a.Address == ip.Address && a.Interface == ip.Interface {
				held = true
			}
		}
		if held {
			continue
		}
		block, ok := index.blockFor(ip.Address)
		if !ok {
			return errAt(ip.Pos, "no ipblock holds %s; describe one with a cidr that contains it", ip.Address)
		}
		cur, _ := p.load(ip.Entity)
		p.add(stageAllocate, action(cur), ip.Entity, fmt.Sprintf("%s: allocate %s from %s (interface %s)", ip.Entity, ip.Address, block, orDash(ip.Interface)),
			entity.Op{Op: "allocate_ip", Block: block, Entity: ip.Entity, Address: ip.Address, Interface: ip.Interface}, ip.Pos)
	}
	if p.opts.Prune {
		for _, spec := range p.doc.Entities {
			have, err := p.allocations(spec.Name)
			if err != nil {
				return err
			}
			for _, a := range have {
				if !wanted[spec.Name][a.Interface+"\x00"+a.Address] {
					p.add(stageFree, "change", spec.Name, fmt.Sprintf("%s: release %s back to %s", spec.Name, a.Address, a.Block),
						entity.Op{Op: "release_ip", Block: a.Block, Address: a.Address}, spec.Pos)
				}
			}
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// prune removes what the file does not name: entities, and the
// memberships, placements and links of named entities the file omits.
func (p *planner) prune() error {
	names, err := p.s.Names(p.ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, ok := p.doc.byName[n]; !ok {
			p.add(stageDelete, "delete", n, "delete "+n, entity.Op{Op: "delete", Name: n, Cascade: true}, Pos{})
		}
	}
	placed := map[string]Placement{}
	for _, pl := range p.doc.Placements {
		placed[pl.Child] = pl
	}
	member := map[string]bool{}
	for _, m := range p.doc.Memberships {
		member[m.Group+"\x00"+m.Member] = true
	}
	linked := map[string]bool{}
	for _, l := range p.doc.Links {
		linked[l.A.String()] = true
		linked[l.B.String()] = true
	}
	for _, spec := range p.doc.Entities {
		cur := p.cur[spec.Name]
		if cur == nil {
			continue
		}
		for _, r := range cur.Parents {
			if _, named := p.doc.byName[r.Name]; !named {
				continue // the parent itself is deleted, which detaches it
			}
			switch {
			case r.Type == entity.Member && !member[r.Name+"\x00"+spec.Name]:
				p.add(stageFree, "change", spec.Name, fmt.Sprintf("%s: remove from %s", spec.Name, r.Name), entity.Op{Op: "remove", Parent: r.Name, Child: spec.Name}, spec.Pos)
			case r.Type == entity.Contains:
				if _, ok := placed[spec.Name]; !ok {
					p.add(stageFree, "change", spec.Name, fmt.Sprintf("%s: take out of %s", spec.Name, r.Name), entity.Op{Op: "remove", Parent: r.Name, Child: spec.Name}, spec.Pos)
				}
			}
		}
		for _, l := range cur.Links {
			ep := entity.Endpoint{Name: spec.Name, Port: l.Port}
			if linked[ep.String()] {
				continue
			}
			if _, named := p.doc.byName[l.Peer]; !named {
				continue
			}
			if l.Peer < spec.Name { // each cable once
				continue
			}
			p.add(stageFree, "change", spec.Name, fmt.Sprintf("%s: unplug %s from %s:%s", spec.Name, ep, l.Peer, l.PeerPort),
				entity.Op{Op: "unlink", A: spec.Name, APort: l.Port, B: l.Peer, BPort: l.PeerPort}, spec.Pos)
		}
	}
	return nil
}

// Apply runs the plan as one batch (opts say whether it is a dry run and
// whether to read back what each op did), so that either all of it
// applies or none does. An op that fails is reported at the file position
// it came from.
func (p *Plan) Apply(ctx context.Context, s *store.Store, actor string, opts store.BatchOptions) ([]entity.OpResult, error) {
	if p.Empty() {
		if opts.NoResults {
			return nil, nil
		}
		return []entity.OpResult{}, nil
	}
	res, err := s.Batch(ctx, actor, p.Ops(), opts)
	return res, locate(p.Steps, 0, err)
}

// Check dry-runs the plan: it fails, at the file position, if the plan
// could not apply now.
func (p *Plan) Check(ctx context.Context, s *store.Store) error {
	_, err := p.Apply(ctx, s, "plan", store.BatchOptions{DryRun: true, NoResults: true})
	return err
}

// locate turns a batch error into one at the failing op's file position:
// steps are those of the ops numbered from base on.
func locate(steps []Step, base int, err error) error {
	e, ok := err.(*entity.Error)
	if !ok {
		return err
	}
	i, ok := e.Details["op"].(int)
	if !ok || i < base || i-base >= len(steps) {
		return err
	}
	st := steps[i-base]
	out := *e
	out.Details = map[string]any{"op": i}
	if st.Pos.Line > 0 {
		out.Message = fmt.Sprintf("%s: %s: %s", st.Pos, st.Summary, unwrapMessage(e))
		out.Line, out.Column = st.Pos.Line, st.Pos.Column
		out.Details["file"] = st.Pos.File
	} else {
		out.Message = fmt.Sprintf("%s: %s", st.Summary, unwrapMessage(e))
	}
	return &out
}

// unwrapMessage drops the batch's "op N (kind): " prefix.
func unwrapMessage(e *entity.Error) string {
	if inner, ok := e.Err.(*entity.Error); ok {
		return inner.Message
	}
	return e.Message
}
