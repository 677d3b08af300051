package invfile

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func intNode(i int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(i, 10)}
}

func valueNode(v entity.Value) *yaml.Node {
	switch v.Type {
	case entity.TypeInt:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: v.Text}
	case entity.TypeBool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: v.Text}
	case entity.TypeString:
		return str(v.Text)
	}
	// ip, time, ref and json carry their type as a tag.
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!" + string(v.Type), Value: v.Text}
}

func mapping(flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

func put(m *yaml.Node, k string, v *yaml.Node) { m.Content = append(m.Content, str(k), v) }

// Export writes the named entities (all of them when names is nil) to w in
// the file format, in the order given (name order when names is nil).
// Edges are written from the child's side (in, at, groups) and each cable
// once, from the end whose name sorts first, so that importing the output
// into an empty inventory rebuilds the same one.
//
// It streams: entities are read exportChunk at a time (store.GetMany) and
// each is encoded and written before the next chunk is read, so memory
// does not grow with the inventory. The bytes are those of encoding the
// whole document at once (TestStreamedExportIsTheWholeDocument).
func Export(ctx context.Context, s *store.Store, names []string, w io.Writer) error {
	if names == nil {
		var err error
		if names, err = s.Names(ctx); err != nil {
			return err
		}
	}
	for _, name := range names {
		if rangeRE.MatchString(name) {
			return entity.Errorf(entity.KindInvalid, "%s cannot be exported: the file format reads a name like it as a range", name)
		}
	}
	bw := bufio.NewWriter(w)
	if len(names) == 0 {
		bw.WriteString("version: 1\nentities: {}\n")
		return bw.Flush()
	}
	bw.WriteString("version: 1\nentities:\n")
	var one bytes.Buffer
	for start := 0; start < len(names); start += exportChunk {
		chunk := names[start:min(start+exportChunk, len(names))]
		ents, err := s.GetMany(ctx, chunk, 0)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := store.NotFoundAmong(chunk, ents, 0); err != nil {
			return fmt.Errorf("export (an entity was deleted while it was exported): %w", err)
		}
		allocs := make([][]entity.Allocation, len(ents))
		if err := s.View(ctx, func(v *store.View) error {
			for i, e := range ents {
				var err error
				if allocs[i], err = v.AllocationsOf(e.Name); err != nil {
					return fmt.Errorf("export %s: %w", e.Name, err)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for i, e := range ents {
			one.Reset()
			m := mapping(false)
			put(m, e.Name, entityNode(e, allocs[i]))
			if err := encodeNode(&one, m); err != nil {
				return err
			}
			indent(bw, one.Bytes())
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return bw.Flush()
}

// exportChunk is how many entities Export reads at once.
const exportChunk = 100

// encodeNode writes n as a YAML document the way a whole export is
// encoded (two-space indents).
func encodeNode(w io.Writer, n *yaml.Node) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{n}}); err != nil {
		return entity.Internal("export", err)
	}
	if err := enc.Close(); err != nil {
		return entity.Internal("export", err)
	}
	return nil
}

// indent writes doc with every non-empty line indented two spaces: an
// entity's mapping as it sits under "entities:" in the whole document
// (the emitter writes an empty line of a block scalar without indent).
func indent(w *bufio.Writer, doc []byte) {
	for len(doc) > 0 {
		line := doc
		if i := bytes.IndexByte(doc, '\n'); i >= 0 {
			line, doc = doc[:i+1], doc[i+1:]
		} else {
			doc = nil
		}
		if len(line) > 1 {
			w.WriteString("  ")
		}
		w.Write(line)
	}
}

// entityNode is an entity's body in the file: driver, attributes (the
// allocated addresses among its ip attributes left to ips), in/at,
// groups, links and ips.
func entityNode(e *entity.Entity, allocs []entity.Allocation) *yaml.Node {
	body := mapping(false)
	put(body, "driver", str(e.Driver))
	allocated := map[string]bool{}
	for _, a := range allocs {
		allocated[a.Interface+"\x00"+a.Address] = true
	}
	attrs := mapping(false)
	var lastID string
	var lastVal *yaml.Node
	for _, a := range e.Attrs {
		if a.Key == "ip" && a.Number == nil && allocated[a.Subkey+"\x00"+a.Value.Text] {
			continue
		}
		id := attrID(a.Key, a.Subkey, a.Number)
		if id == lastID {
			if lastVal.Kind != yaml.SequenceNode {
				seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Content: []*yaml.Node{lastVal}}
				attrs.Content[len(attrs.Content)-1] = seq
				lastVal = seq
			}
			lastVal.Content = append(lastVal.Content, valueNode(a.Value))
			continue
		}
		lastID, lastVal = id, valueNode(a.Value)
		put(attrs, id, lastVal)
	}
	if len(attrs.Content) > 0 {
		put(body, "attrs", attrs)
	}
	groups := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for _, r := range e.Parents {
		switch r.Type {
		case entity.Contains:
			put(body, "in", str(r.Name))
			if r.Position != nil {
				put(body, "at", intNode(*r.Position))
			}
		case entity.Member:
			groups.Content = append(groups.Content, str(r.Name))
		}
	}
	if len(groups.Content) > 0 {
		put(body, "groups", groups)
	}
	links := mapping(true)
	for _, l := range e.Links {
		if l.Peer < e.Name {
			continue
		}
		put(links, l.Port, str(l.Peer+":"+l.PeerPort))
	}
	if len(links.Content) > 0 {
		put(body, "links", links)
	}
	if len(allocs) > 0 {
		ips := mapping(true)
		byIface := map[string]*yaml.Node{}
		for _, a := range allocs {
			iface := a.Interface
			if iface == "" {
				iface = "-"
			}
			if n, ok := byIface[iface]; ok {
				if n.Kind != yaml.SequenceNode {
					seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: n.Value}}}
					*n = *seq
				}
				n.Content = append(n.Content, str(a.Address))
				continue
			}
			n := str(a.Address)
			byIface[iface] = n
			put(ips, iface, n)
		}
		put(body, "ips", ips)
	}
	return body
}
