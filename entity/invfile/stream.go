package invfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// Importing a whole file in bounded memory.
//
// MakePlan holds three copies of a file at once: yaml.v3's node tree of
// the whole document, the Document made from it, and the plan (a step
// with its summary and op for each of a 100k-entity file's ~700,000
// changes). Import holds none of them whole. It reads the entities a
// window at a time (each window's text parsed on its own), compares them
// with the inventory as they come, and hands their creates to the store
// (store.BatchStream) before reading on; what it keeps is what the rest
// of the plan needs: the file's edges (placements, memberships, links,
// addresses), each named entity's name and driver, and the changes that
// must wait for every create (attributes, references among them). The
// edges are planned once every entity is known, so that they may name
// entities later in the file, and their ops are handed over a window at a
// time as well.
//
// The ops apply in the order a plan's would, stage by stage (free,
// delete, attributes, place, link, allocate), except that the creates run
// first, window by window: they name only entities the inventory does not
// have, so nothing the earlier stages free or delete is theirs. The
// result is the inventory the plan would make (TestImportIsMakePlan).
//
// Windows need a file whose entities are lines of a block mapping under
// a top-level "entities:" key, as Export and most people write them; any
// other shape (JSON, flow style, document markers, anchors shared between
// entities, a syntax error) is imported the whole-document way, which
// also reports a syntax error exactly where MakePlan's parse does.

// importWindow is how many entities Import parses and plans at once, and
// opWindow how many ops it hands to the store at once (variables so that
// tests can make a small file take many windows).
var (
	importWindow = 1000
	opWindow     = 4096
)

// errWholeDocument says a file cannot be read a window at a time and must
// be imported the whole-document way.
var errWholeDocument = errors.New("the file must be read as a whole")

// ImportOptions say how Import applies a file.
type ImportOptions struct {
	Prune  bool
	DryRun bool
	Actor  string
}

// Import applies a file to the store the way MakePlan and Plan.Apply
// would, in one write transaction (all or nothing; a dry run rolls back),
// without holding the whole document or plan in memory (see above). It
// returns the plan's counts. Errors name the file, line and column as
// MakePlan's and Apply's do; of a file with several mistakes, it reports
// the first it comes to, reading in file order.
func Import(ctx context.Context, s *store.Store, file string, data []byte, opts ImportOptions) (Summary, error) {
	if lay, ok := splitEntities(data); ok {
		sum, err := importWindows(ctx, s, file, data, lay, opts)
		if !errors.Is(err, errWholeDocument) {
			return sum, err
		}
	}
	return importWhole(ctx, s, file, data, opts)
}

// importWhole imports a file the whole-document way: Parse, MakePlan and
// one batch.
func importWhole(ctx context.Context, s *store.Store, file string, data []byte, opts ImportOptions) (Summary, error) {
	doc, err := Parse(file, data)
	if err != nil {
		return Summary{}, err
	}
	plan, err := MakePlan(ctx, s, doc, Options{Prune: opts.Prune})
	if err != nil {
		return Summary{}, err
	}
	if _, err := plan.Apply(ctx, s, opts.Actor, store.BatchOptions{DryRun: opts.DryRun, NoResults: true}); err != nil {
		return Summary{}, err
	}
	return plan.Summary, nil
}

func importWindows(ctx context.Context, s *store.Store, file string, data []byte, lay layout, opts ImportOptions) (Summary, error) {
	var sum Summary
	err := s.BatchStream(ctx, opts.Actor, store.BatchOptions{DryRun: opts.DryRun, NoResults: true}, func(st *store.OpStream) error {
		ctx := st.Context()
		// A view opened while the stream holds the writer sees the
		// inventory as it was before the stream: the plan compares the
		// whole file with that one snapshot, as MakePlan does.
		return s.View(ctx, func(v *store.View) error {
			out := newStreamSink(st)
			defer out.stop()
			pr := newParser(file, ParseOptions{})
			p := newPlanner(ctx, s, v, pr.doc, Options{Prune: opts.Prune}, out)
			if err := pr.topOf(data, lay); err != nil {
				return err
			}
			// Creates apply as they come; attribute steps wait for them.
			out.route(map[int]route{stageCreate: now, stageAttrs: later})
			for start := 0; start < len(lay.starts); start += importWindow {
				end := min(start+importWindow, len(lay.starts))
				first := len(pr.doc.Entities)
				if err := pr.window(data, lay, start, end); errors.Is(err, errWholeDocument) {
					return err
				} else if err != nil {
					return out.first(err) // an earlier window's failure comes first
				}
				for _, spec := range pr.doc.Entities[first:] {
					if err := p.entity(spec); err != nil {
						return out.first(err)
					}
					if cur := p.cur[spec.Name]; cur != nil {
						cur.Attrs = nil // compared: the edges need the rest
					}
					// Only an ipblock's attributes (its cidr) are read again.
					if spec.Driver != "ipblock" {
						spec.Attrs = nil
					}
				}
				if err := out.flush(); err != nil {
					return err
				}
			}
			p.lean = true
			// The edges twice over: first for what frees and deletes,
			// which apply before the attributes and everything that
			// places, links and allocates, which then follow as planned.
			attrs := out.take(stageAttrs)
			out.route(map[int]route{stageFree: later, stageDelete: later})
			if err := p.edges(opts.Prune); err != nil {
				return out.first(err)
			}
			for _, held := range []*heldStage{out.take(stageFree), out.take(stageDelete), attrs} {
				if err := out.release(held); err != nil {
					return err
				}
			}
			out.route(map[int]route{stagePlace: now, stageLink: now, stageAllocate: now})
			if err := p.edges(false); err != nil {
				return out.first(err)
			}
			if err := out.flush(); err != nil {
				return err
			}
			if err := out.stop(); err != nil {
				return err
			}
			sum = out.tally.summary()
			return nil
		})
	})
	if err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// route says what a streamSink does with a stage's steps.
type route int

const (
	drop  route = iota // not this pass's
	now                // apply, a window at a time
	later              // hold until released
)

// heldStage is a stage's steps and ops held until their turn.
type heldStage struct {
	steps chunks[Step]
	ops   chunks[entity.Op]
}

// streamSink hands a planner's steps to a stream, a window at a time.
// The windows are applied by a goroutine of their own, so that the file's
// next window is parsed and planned (on the other core) while the store
// applies the last: the planner reads only the snapshot from before the
// stream, so it never waits for what is being applied.
type streamSink struct {
	routes [stages]route
	held   [stages]*heldStage
	win    []Step
	ops    []entity.Op
	sent   int // ops handed to the applier
	tally  tally
	err    error // the first failure applying a window

	windows chan window
	closed  bool          // windows is closed: no more to come
	done    chan struct{} // closed when the applier has stopped
	applied error         // the applier's failure, read once done or failed
	failed  chan struct{} // closed when the applier fails
}

// window is a window of ops, with their steps and the index of the first.
type window struct {
	steps []Step
	ops   []entity.Op
	base  int
}

func newStreamSink(st *store.OpStream) *streamSink {
	o := &streamSink{windows: make(chan window, 1), done: make(chan struct{}), failed: make(chan struct{})}
	go o.apply(st, o.windows)
	return o
}

// apply applies windows in order until the channel closes or one fails,
// then drops the rest.
func (o *streamSink) apply(st *store.OpStream, windows <-chan window) {
	defer close(o.done)
	fail := func(err error) {
		o.applied = err
		close(o.failed)
		for range windows {
		}
	}
	defer func() {
		if r := recover(); r != nil {
			fail(entity.Internal("import", fmt.Errorf("panic applying ops: %v", r)))
		}
	}()
	for w := range windows {
		if _, err := st.Apply(w.ops); err != nil {
			fail(locate(w.steps, w.base, err))
			return
		}
	}
}

// stop waits for the windows handed over to be applied and returns the
// failure of one, if any. It may be called more than once.
func (o *streamSink) stop() error {
	if !o.closed {
		close(o.windows)
		o.closed = true
	}
	<-o.done
	if o.err == nil {
		o.err = o.applied
	}
	return o.err
}

// route sets each stage's route for the next pass; stages not named drop.
func (o *streamSink) route(r map[int]route) {
	o.routes = [stages]route{}
	for stage, rt := range r {
		o.routes[stage] = rt
		if rt == later && o.held[stage] == nil {
			o.held[stage] = &heldStage{}
		}
	}
}

func (o *streamSink) add(stage int, st Step, op entity.Op) {
	switch o.routes[stage] {
	case now:
		o.push(st, op)
	case later:
		o.held[stage].steps.add(st)
		o.held[stage].ops.add(op)
	}
}

// push adds a step to the window, handing the window over once full.
// After a failure it only drops what comes: the planner's caller reports
// the failure (first).
func (o *streamSink) push(st Step, op entity.Op) {
	if o.err != nil {
		return
	}
	o.tally.note(st)
	o.win = append(o.win, st)
	o.ops = append(o.ops, op)
	if len(o.ops) >= opWindow {
		o.err = o.flush()
	}
}

// flush hands the window to the applier, unless it has failed.
func (o *streamSink) flush() error {
	if o.err != nil {
		return o.err
	}
	select {
	case <-o.failed:
		return o.stop()
	default:
	}
	if len(o.ops) == 0 {
		return nil
	}
	w := window{steps: o.win, ops: o.ops, base: o.sent}
	o.sent += len(o.ops)
	o.win, o.ops = make([]Step, 0, opWindow), make([]entity.Op, 0, opWindow)
	select {
	case o.windows <- w:
		return nil
	case <-o.failed:
		return o.stop()
	}
}

// first returns the failure applying a window, which came before err, if
// there was one: it waits for the windows handed over to be applied.
func (o *streamSink) first(err error) error {
	if e := o.stop(); e != nil {
		return e
	}
	return err
}

// take returns a held stage, no longer held.
func (o *streamSink) take(stage int) *heldStage {
	h := o.held[stage]
	o.held[stage] = nil
	if h == nil {
		h = &heldStage{}
	}
	return h
}

// release applies a held stage's ops in order.
func (o *streamSink) release(h *heldStage) error {
	var steps []Step
	h.steps.each(func(st Step) { steps = append(steps, st) })
	i := 0
	h.ops.each(func(op entity.Op) {
		o.push(steps[i], op)
		steps[i] = Step{}
		i++
	})
	return o.flush()
}

// layout is where a file's entities are: the offsets of the lines that
// begin them, at the indent of the entities mapping, and the rest of the
// file (the top-level fields) as one small document.
type layout struct {
	starts    []int // byte offset of each entity's first line
	lines     []int // its line number
	end       int   // offset where the entities end
	top       []byte
	entLine   int // the line of "entities:"
	bodyLines int // lines of the entities' text, left out of top
}

// splitEntities finds the layout of a file written in block style, or
// reports that it is not (ok false): then it must be read whole.
func splitEntities(data []byte) (lay layout, ok bool) {
	const (
		head = iota
		body
		tail
	)
	state, indent := head, 0
	var top bytes.Buffer
	line := 0
	for off := 0; off < len(data); {
		next := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		text := data[off:next]
		line++
		lead := 0
		for lead < len(text) && text[lead] == ' ' {
			lead++
		}
		rest := bytes.TrimRight(text[lead:], "\r\n")
		blank := len(bytes.TrimSpace(rest)) == 0 || rest[0] == '#'
		if !blank && rest[0] == '\t' {
			return layout{}, false // tabs are not indentation in YAML
		}
		if !blank && lead == 0 {
			// Directives and document markers, or a second entities key,
			// are beyond what windows may assume.
			if rest[0] == '%' || bytes.HasPrefix(rest, []byte("---")) || bytes.HasPrefix(rest, []byte("...")) {
				return layout{}, false
			}
			if isEntitiesKey(rest) {
				if state != head {
					return layout{}, false
				}
				state, lay.entLine = body, line
				top.Write(text)
				off = next
				continue
			}
			if state == body {
				if len(lay.starts) == 0 {
					return layout{}, false
				}
				state, lay.end = tail, off
				lay.bodyLines = line - lay.entLine - 1
			}
		}
		switch state {
		case head, tail:
			top.Write(text)
		case body:
			if blank {
				break
			}
			if indent == 0 {
				indent = lead
			}
			switch {
			case lead == indent:
				// An entity's key: a plain or quoted scalar, not a
				// sequence entry, explicit key, flow collection, anchor,
				// alias or tag.
				switch rest[0] {
				case '-', '?', '{', '[', '&', '*', '!', '|', '>', ':':
					return layout{}, false
				}
				lay.starts = append(lay.starts, off)
				lay.lines = append(lay.lines, line)
			case lead < indent:
				return layout{}, false
			}
		}
		off = next
	}
	if state == head || len(lay.starts) == 0 {
		return layout{}, false
	}
	if state == body {
		lay.end = len(data)
		lay.bodyLines = line - lay.entLine
	}
	lay.top = top.Bytes()
	return lay, true
}

// isEntitiesKey tells whether a line is "entities:" with nothing after it
// but a comment.
func isEntitiesKey(rest []byte) bool {
	after, ok := bytes.CutPrefix(rest, []byte("entities:"))
	if !ok {
		return false
	}
	after = bytes.TrimLeft(after, " \t")
	return len(after) == 0 || after[0] == '#'
}

// topOf checks the file's top-level fields, read from the layout's top.
func (p *parser) topOf(data []byte, lay layout) error {
	var root yaml.Node
	if err := yaml.Unmarshal(lay.top, &root); err != nil {
		return errWholeDocument
	}
	// Lines after "entities:" sat after the entities' text in the file.
	shiftLines(&root, lay.entLine, lay.bodyLines)
	_, err := p.top(&root)
	return err
}

// window parses the entities from the start-th to the one before end.
func (p *parser) window(data []byte, lay layout, start, end int) error {
	to := lay.end
	if end < len(lay.starts) {
		to = lay.starts[end]
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data[lay.starts[start]:to], &root); err != nil {
		return errWholeDocument
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode || len(root.Content[0].Content) != 2*(end-start) {
		return errWholeDocument // its lines were not what they seemed
	}
	shiftLines(&root, 0, lay.lines[start]-1)
	return p.entities(root.Content[0])
}

// shiftLines adds by to the line of every node below n after line after.
func shiftLines(n *yaml.Node, after, by int) {
	if n.Line > after {
		n.Line += by
	}
	for _, c := range n.Content {
		shiftLines(c, after, by)
	}
}
