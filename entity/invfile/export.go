package invfile

import (
	"bytes"
	"context"
	"fmt"
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

// Export writes the named entities (all of them when names is nil) in the
// file format, in name order. Edges are written from the child's side (in,
// at, groups) and each cable once, from the end whose name sorts first, so
// that importing the output into an empty inventory rebuilds the same one.
func Export(ctx context.Context, s *store.Store, names []string) ([]byte, error) {
	if names == nil {
		var err error
		if names, err = s.Names(ctx); err != nil {
			return nil, err
		}
	}
	ents := mapping(false)
	for _, name := range names {
		if rangeRE.MatchString(name) {
			return nil, entity.Errorf(entity.KindInvalid, "%s cannot be exported: the file format reads a name like it as a range", name)
		}
		e, err := s.Get(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", name, err)
		}
		var allocs []entity.Allocation
		if err := s.View(ctx, func(tx *store.View) error {
			var err error
			allocs, err = tx.AllocationsOf(name)
			return err
		}); err != nil {
			return nil, fmt.Errorf("export %s: %w", name, err)
		}
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
		put(ents, name, body)
	}
	root := mapping(false)
	put(root, "version", intNode(1))
	put(root, "entities", ents)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, entity.Internal("export", err)
	}
	return buf.Bytes(), nil
}
