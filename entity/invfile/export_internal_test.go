package invfile

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
)

// TestStreamedExportIsTheWholeDocument: writing an export entity by
// entity gives exactly the bytes of encoding the whole document at once,
// for an inventory of a few hundred entities (more than one chunk) with
// values that test the indentation: a multi-line string with an empty
// line, a long line, quotes, unicode and JSON; and an empty inventory.
func TestStreamedExportIsTheWholeDocument(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, t.TempDir()+"/inv.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var empty bytes.Buffer
	if err := Export(ctx, s, nil, &empty); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(whole(t, s), empty.String()); diff != "" {
		t.Errorf("empty inventory (-whole +streamed):\n%s", diff)
	}

	if err := invgen.Build(ctx, s, invgen.Spec{Datacenters: 1, RacksPerDC: 10, ServersPerRack: 20, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	notes := []entity.Value{
		entity.String("line one\n\nline three after an empty line\n"),
		entity.String(strings.Repeat("a long line of words ", 20)),
		entity.String(`"quoted" and 'single', colon: hash # été ✓`),
	}
	js, err := entity.JSON([]byte(`{"a":[1,2],"b":"x\ny"}`))
	if err != nil {
		t.Fatal(err)
	}
	notes = append(notes, js)
	if err := s.Update(ctx, "t", func(tx *store.Tx) error {
		for i, v := range notes {
			if _, err := tx.SetAttr(invgen.Server(0, i, 0), entity.AttrSelector{Key: "note"}, []entity.Value{v}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	names, err := s.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) <= exportChunk {
		t.Fatalf("%d entities: not more than one chunk", len(names))
	}
	var streamed bytes.Buffer
	if err := Export(ctx, s, nil, &streamed); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(whole(t, s), streamed.String()); diff != "" {
		t.Errorf("streamed export differs from the whole document (-whole +streamed):\n%s", diff)
	}
}

// whole encodes the export of every entity as one YAML document, as
// Export did before it streamed.
func whole(t *testing.T, s *store.Store) string {
	t.Helper()
	ctx := context.Background()
	names, err := s.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ents := mapping(false)
	for _, n := range names {
		e, err := s.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		var allocs []entity.Allocation
		if err := s.View(ctx, func(v *store.View) error {
			allocs, err = v.AllocationsOf(n)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		put(ents, n, entityNode(e, allocs))
	}
	root := mapping(false)
	put(root, "version", intNode(1))
	put(root, "entities", ents)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
