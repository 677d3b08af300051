package invfile_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invfile"
	"github.com/clusto/clusto/entity/invgen"
	"github.com/clusto/clusto/entity/store"
)

// generated returns the exported file of an invgen inventory.
func generated(t *testing.T, sp invgen.Spec) []byte {
	t.Helper()
	s := newStore(t)
	if err := invgen.Build(context.Background(), s, sp); err != nil {
		t.Fatal(err)
	}
	return exported(t, s)
}

func exported(t *testing.T, s *store.Store) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := invfile.Export(context.Background(), s, nil, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// windowImport imports a file a window at a time, failing the test if
// the file could not be read in windows.
func windowImport(t *testing.T, ctx context.Context, s *store.Store, data []byte, opts invfile.ImportOptions) (invfile.Summary, error) {
	t.Helper()
	sum, err := invfile.ImportInWindows(ctx, s, data, opts)
	if errors.Is(err, invfile.ErrWholeDocument) {
		t.Fatal("the file could not be read in windows")
	}
	return sum, err
}

// TestImportIsMakePlan: importing a generated inventory a window at a
// time leaves the inventory that Parse, MakePlan and one batch leave
// (compared by export), with the same counts, for a fresh import, the
// same file again, a file that changes values and, with prune, deletes
// what it omits, and a dry run, which stores nothing.
func TestImportIsMakePlan(t *testing.T) {
	invfile.SetWindows(t, 37, 101)
	ctx := context.Background()
	base := invgen.Spec{Datacenters: 1, RacksPerDC: 6, ServersPerRack: 5, Seed: 1, VMsPerRack: 2, Pools: 3, PoolMembers: 4, DecommissionedEvery: 7}
	file := generated(t, base)
	other := base
	other.Seed, other.ServersPerRack, other.Pools = 2, 4, 2
	changed := generated(t, other)
	tests := []struct {
		name   string
		before []byte // applied first, the whole-document way
		file   []byte
		opts   invfile.ImportOptions
	}{
		{"fresh", nil, file, invfile.ImportOptions{}},
		{"again", file, file, invfile.ImportOptions{}},
		{"changed values", file, changed, invfile.ImportOptions{}},
		{"changed with prune", file, changed, invfile.ImportOptions{Prune: true}},
		{"dry run", file, changed, invfile.ImportOptions{Prune: true, DryRun: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wholeStore, windowStore := newStore(t), newStore(t)
			for _, s := range []*store.Store{wholeStore, windowStore} {
				if tc.before != nil {
					if _, err := invfile.ImportWhole(ctx, s, tc.before, invfile.ImportOptions{}); err != nil {
						t.Fatal(err)
					}
				}
			}
			before := exported(t, windowStore)
			want, err := invfile.ImportWhole(ctx, wholeStore, tc.file, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := windowImport(t, ctx, windowStore, tc.file, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("counts (-whole +windows):\n%s", diff)
			}
			after := exported(t, windowStore)
			if diff := cmp.Diff(string(exported(t, wholeStore)), string(after)); diff != "" {
				t.Errorf("inventory (-whole +windows):\n%s", diff)
			}
			if tc.opts.DryRun && !bytes.Equal(before, after) {
				t.Error("the dry run changed the inventory")
			}
			if !tc.opts.DryRun && tc.opts.Prune && !bytes.Equal(after, tc.file) {
				t.Error("after a prune the inventory does not export as the file")
			}
		})
	}
}

// forward names, from early entities, entities described later in the
// file: a rack, a pool, a switch, a reference and a block (with a less
// specific block before it, so that the later, more specific one must
// win).
const forward = `version: 1
entities:
  s1:
    driver: server
    in: r1
    at: 3
    groups: [web]
    attrs: {home: !ref r1, status: ok}
    ips: {eth0: 10.1.2.5}
  s2: {driver: server, contains: [], groups: [web, db]}
  wide: {driver: ipblock, attrs: {cidr: 10.1.0.0/16}}
  sw1:
    driver: switch
    in: r1
    at: 40
    links: {1: s1:eth0, 2: s2:eth0}
  r1:
    driver: rack
    devices: {10: s2}
  web: {driver: pool, members: [s3]}
  db: {driver: pool}
  s3: {driver: server}
  narrow: {driver: ipblock, in: wide, attrs: {cidr: 10.1.2.0/24}}
`

// TestImportForwardReferences: entities may name entities described
// later, in windows of one entity as in one document.
func TestImportForwardReferences(t *testing.T) {
	invfile.SetWindows(t, 1, 2)
	ctx := context.Background()
	whole, windows := newStore(t), newStore(t)
	want, err := invfile.ImportWhole(ctx, whole, []byte(forward), invfile.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := windowImport(t, ctx, windows, []byte(forward), invfile.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-whole +windows):\n%s", diff)
	}
	if diff := cmp.Diff(string(exported(t, whole)), string(exported(t, windows))); diff != "" {
		t.Errorf("inventory (-whole +windows):\n%s", diff)
	}
	var a []entity.Allocation
	err = windows.View(ctx, func(v *store.View) (err error) {
		a, err = v.AllocationsOf("s1")
		return err
	})
	if err != nil || len(a) != 1 || a[0].Block != "narrow" {
		t.Errorf("s1's addresses = %+v, %v; want one from narrow", a, err)
	}
}

// TestImportErrorLateInTheFile: a file whose mistake is in its last
// entity, after many windows have been applied, stores nothing and is
// reported as the whole-document import reports it, at the same file,
// line and column.
func TestImportErrorLateInTheFile(t *testing.T) {
	invfile.SetWindows(t, 5, 7)
	ctx := context.Background()
	file := string(generated(t, invgen.Spec{Datacenters: 1, RacksPerDC: 3, ServersPerRack: 4, Seed: 1}))
	tests := []struct {
		name, tail string
		line       int // of the mistake, counted from the tail's first line (0: as yaml.v3 says)
		prune      bool
	}{
		{"unknown driver", "  zz1: {driver: toaster}\n", 1, false},
		{"unknown field", "  zz1:\n    driver: server\n    colour: red\n", 3, false},
		{"no driver", "  zz1: {groups: [dc1]}\n", 1, false},
		{"unknown parent", "  zz1: {driver: server, in: nowhere}\n", 1, false},
		{"placed twice", "  zz1: {driver: rack, contains: [s1000101]}\n", 1, false},
		{"port linked twice", "  zz1: {driver: server, links: {eth0: dc1-sw0001:1}}\n", 1, false},
		{"address without a block", "  zz1: {driver: server, ips: {eth0: 192.0.2.1}}\n", 1, false},
		{"address taken", "  zz1: {driver: server, ips: {eth0: 10.0.0.2}}\n", 1, true},
		{"rack unit taken", "  zz1: {driver: server, in: dc1-rack0001, at: 1}\n", 1, false},
		{"syntax error", "  zz1: {driver: server\n  zz2: {driver: server}\n", 0, false},
		{"version", "version: 2\n", 1, false},
	}
	base := strings.Count(file, "\n") + 1
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(file + tc.tail)
			opts := invfile.ImportOptions{Prune: tc.prune}
			_, want := invfile.ImportWhole(ctx, newStore(t), data, opts)
			if want == nil {
				t.Fatal("the whole-document import took the file")
			}
			s := newStore(t)
			var err error
			if tc.line == 0 {
				// A syntax error is read the whole-document way.
				_, err = invfile.Import(ctx, s, "inv.yaml", data, opts)
			} else {
				_, err = windowImport(t, ctx, s, data, opts)
			}
			if err == nil {
				t.Fatal("Import took the file")
			}
			if diff := cmp.Diff(want.Error(), err.Error()); diff != "" {
				t.Errorf("error (-whole +windows):\n%s", diff)
			}
			var e, we *entity.Error
			if !errors.As(err, &e) || !errors.As(want, &we) || e.Line != we.Line || e.Column != we.Column {
				t.Errorf("error %v is not located where %v is", err, want)
			} else if tc.line > 0 && e.Line != base+tc.line-1 {
				t.Errorf("error %v is not located at line %d", err, base+tc.line-1)
			}
			if n, _ := s.LatestChange(ctx); n != 0 {
				t.Errorf("%d changes were stored despite the error", n)
			}
		})
	}
}

// TestImportShapes: files that windows cannot read as they are (JSON,
// flow style, document markers, anchors shared between entities, tabs)
// are read whole, and every shape imports as the whole-document way does.
func TestImportShapes(t *testing.T) {
	invfile.SetWindows(t, 1, 3)
	ctx := context.Background()
	tests := []struct {
		name, text string
		windows    bool // read a window at a time
	}{
		{"block", "version: 1\nentities:\n  a: {driver: server}\n  # note\n  b:\n    driver: server\n    attrs:\n      note: |\n        two\n\n        lines\n", true},
		{"comments and version last", "# head\nentities: # all\n  a: {driver: server}\n\n  b: {driver: pool, members: [a]}\nversion: 1\n", true},
		{"quoted keys", "entities:\n  \"a\": {driver: server}\n  'b': {driver: server}\n", true},
		{"crlf", "version: 1\r\nentities:\r\n  a: {driver: server}\r\n  b: {driver: pool, members: [a]}\r\n", true},
		{"json", `{"version": 1, "entities": {"a": {"driver": "server"}, "b": {"driver": "pool", "members": ["a"]}}}`, false},
		{"flow entities", "entities: {a: {driver: server}}\n", false},
		{"document marker", "---\nentities:\n  a: {driver: server}\n", false},
		{"anchor shared", "entities:\n  a: &srv {driver: server}\n  b: *srv\n", true}, // falls back at b's window
		{"merge key", "entities:\n  a: &srv {driver: server, attrs: {x: 1}}\n  b: {<<: *srv}\n", true},
		{"tab", "entities:\n\ta: {driver: server}\n", false},
		{"continued flow", "entities:\n  a: {driver: server,\n  attrs: {x: 1}}\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if ok := invfile.SplitsIntoWindows([]byte(tc.text)); ok != tc.windows {
				t.Errorf("read in windows: %v, want %v", ok, tc.windows)
			}
			whole, windows := newStore(t), newStore(t)
			want, werr := invfile.ImportWhole(ctx, whole, []byte(tc.text), invfile.ImportOptions{})
			got, err := invfile.Import(ctx, windows, "inv.yaml", []byte(tc.text), invfile.ImportOptions{})
			if (werr == nil) != (err == nil) || (err != nil && werr.Error() != err.Error()) {
				t.Fatalf("error %v, want %v", err, werr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("counts (-whole +windows):\n%s", diff)
			}
			if diff := cmp.Diff(string(exported(t, whole)), string(exported(t, windows))); diff != "" {
				t.Errorf("inventory (-whole +windows):\n%s", diff)
			}
		})
	}
}
