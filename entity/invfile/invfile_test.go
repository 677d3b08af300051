package invfile_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/invfile"
	"github.com/clusto/clusto/entity/store"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), t.TempDir()+"/inv.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

const demo = `version: 1
entities:
  dc1:
    driver: datacenter
    attrs: {region: eu}
  row3:
    driver: row
    in: dc1
  rack101:
    driver: rack
    in: row3
    attrs: {units: 42}
    devices: {13: s0001, 15: s0002, 42: switch2a}
  s[0001-0004]:
    driver: server
    attrs:
      status: unallocated
      memory_gb: 64
      role: [web, mail]
      installed: !time 2026-01-02T03:04:05Z
      nic.eth0: "aa:bb"
      disk#0: sda
    groups: [production]
  production:
    driver: pool
    attrs: {exclusive: false}
  switch2a:
    driver: switch
    links: {1: s0001:eth0, 2: s0002:eth0}
  net:
    driver: ipblock
    attrs: {cidr: 10.0.3.0/24, gateway: 10.0.3.1}
  s0001:
    ips: {eth0: 10.0.3.5}
`

func plan(t *testing.T, s *store.Store, text string, opts invfile.Options) *invfile.Plan {
	t.Helper()
	doc, err := invfile.Parse("inv.yaml", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	p, err := invfile.MakePlan(context.Background(), s, doc, opts)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

func apply(t *testing.T, s *store.Store, text string, opts invfile.Options) *invfile.Plan {
	t.Helper()
	p := plan(t, s, text, opts)
	if _, err := p.Apply(context.Background(), s, "test", store.BatchOptions{}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return p
}

func TestApplyBuildsTheInventoryAndIsIdempotent(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	p := apply(t, s, demo, invfile.Options{})
	if p.Create != 10 || p.Change != 0 || p.Delete != 0 {
		t.Errorf("first plan: create %d change %d delete %d, want 10/0/0", p.Create, p.Change, p.Delete)
	}
	s1, err := s.Get(ctx, "s0001")
	if err != nil {
		t.Fatal(err)
	}
	if got := s1.Parents; len(got) != 2 || got[0].Name != "rack101" || *got[0].Position != 13 || got[1].Name != "production" {
		t.Errorf("s0001 parents = %+v", got)
	}
	if len(s1.Links) != 1 || s1.Links[0].Peer != "switch2a" {
		t.Errorf("s0001 links = %+v", s1.Links)
	}
	var ips []string
	for _, a := range s1.Attrs {
		if a.Key == "ip" {
			ips = append(ips, a.Subkey+"="+a.Value.Text)
		}
	}
	if !cmp.Equal(ips, []string{"eth0=10.0.3.5"}) {
		t.Errorf("s0001 ips = %v", ips)
	}
	if again := plan(t, s, demo, invfile.Options{}); !again.Empty() {
		t.Errorf("second plan is not empty: %+v", again.Steps)
	}
	// A change to the file plans exactly that change.
	changed := strings.Replace(demo, "13: s0001", "20: s0001", 1)
	changed = strings.Replace(changed, "region: eu", "region: us", 1)
	p = plan(t, s, changed, invfile.Options{})
	var got []string
	for _, st := range p.Steps {
		got = append(got, st.Summary)
	}
	want := []string{"s0001: take out of rack101", "dc1: set region = us (was eu)", "s0001: put in RU20 of rack101"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan for a change (-want +got):\n%s", diff)
	}
}

func TestParseErrorsNameFileLineAndColumn(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"yaml syntax", "entities:\n  a: [\n", "inv.yaml:2:1: did not find expected node content"},
		{"unknown field", "entities:\n  s1:\n    driver: server\n    colour: red\n", "inv.yaml:4:5: unknown field \"colour\""},
		{"duplicate name", "entities:\n  s1: {driver: server}\n  s1: {driver: server}\n", "inv.yaml:3:3"},
		{"duplicate via range", "entities:\n  s[1-3]: {driver: server}\n  s2: {driver: server}\n", "inv.yaml:3:3: s2 is described twice (first at inv.yaml:2:3)"},
		{"bad range", "entities:\n  s[5-1]: {driver: server}\n", "inv.yaml:2:3: range"},
		{"bad attr key", "entities:\n  s1:\n    driver: server\n    attrs: {\"bad key\": 1}\n", "inv.yaml:4:13"},
		{"fraction", "entities:\n  s1:\n    driver: server\n    attrs: {load: 1.5}\n", "inv.yaml:4:19: value 1.5 is a fraction"},
		{"bad ip", "entities:\n  s1:\n    ips: {eth0: 10.0.3}\n", "inv.yaml:3:17"},
		{"bad link", "entities:\n  sw:\n    links: {1: s1}\n", "inv.yaml:3:16: link \"s1\" must be peer:port"},
		{"at without in", "entities:\n  s1:\n    driver: server\n    at: 3\n", "inv.yaml:4:5: at needs in"},
		{"empty", "", "inv.yaml:1:1: the file is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := invfile.Parse("inv.yaml", []byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if entity.KindOf(err) != entity.KindInvalid {
				t.Errorf("kind = %s", entity.KindOf(err))
			}
		})
	}
}

func TestApplyErrorsPointAtTheFileAndApplyNothing(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown driver", "entities:\n  s1: {driver: toaster}\n", "inv.yaml:2:3: create toaster s1: unknown driver \"toaster\""},
		{"port the driver lacks", "entities:\n  s1: {driver: server}\n  sw: {driver: switch, links: {99: s1:eth0}}\n", "inv.yaml:3:32"},
		{"overlap in a rack", "entities:\n  r: {driver: rack, devices: {10: a, 11: b}}\n  a: {driver: server, attrs: {height: 2}}\n  b: {driver: server}\n",
			"inv.yaml:2:38: b: put in RU11 of r: units 11-11 of r overlap a"},
		{"unknown parent", "entities:\n  s1: {driver: server, in: nowhere}\n", "inv.yaml:2:28: s1: put in nowhere: no entity named \"nowhere\""},
		{"no driver for a new entity", "entities:\n  s1: {groups: [p]}\n", "inv.yaml:2:3: s1 is not in the inventory"},
		{"two parents", "entities:\n  r1: {driver: rack, contains: [s1]}\n  r2: {driver: rack, contains: [s1]}\n  s1: {driver: server}\n", "inv.yaml:3:33: s1 is placed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			doc, err := invfile.Parse("inv.yaml", []byte(tc.text))
			if err == nil {
				var p *invfile.Plan
				if p, err = invfile.MakePlan(context.Background(), s, doc, invfile.Options{}); err == nil {
					_, err = p.Apply(context.Background(), s, "test", store.BatchOptions{})
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if n, _ := s.LatestChange(context.Background()); n != 0 {
				t.Errorf("%d changes were applied despite the error", n)
			}
		})
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := newStore(t)
	apply(t, src, demo, invfile.Options{})
	// Extras the file format must carry: refs, json, booleans, numbered attrs,
	// nested blocks, an address without interface, a role membership.
	err := src.Update(ctx, "t", func(tx *store.Tx) error {
		if err := tx.Create(entity.NewEntity{Name: "web", Driver: "role", Attrs: []entity.Attr{
			{Key: "meta", Value: entity.Value{Type: entity.TypeJSON, Text: `{"a":[1,2]}`}},
			{Key: "home", Value: entity.Ref("rack101")},
			{Key: "on", Value: entity.Bool(true)},
			{Key: "zip", Value: entity.String("02134")},
		}}); err != nil {
			return err
		}
		if _, err := tx.Insert("web", "s0003", entity.Placement{}); err != nil {
			return err
		}
		if err := tx.Create(entity.NewEntity{Name: "net-a", Driver: "ipblock", Attrs: []entity.Attr{{Key: "cidr", Value: entity.String("10.0.3.128/25")}}}); err != nil {
			return err
		}
		if _, err := tx.Insert("net", "net-a", entity.Placement{}); err != nil {
			return err
		}
		_, err := tx.AllocateIP(entity.IPRequest{Block: "net-a", Entity: "s0002", Count: 2})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := invfile.Export(ctx, src, nil, &out); err != nil {
		t.Fatal(err)
	}
	dst := newStore(t)
	p := apply(t, dst, out.String(), invfile.Options{})
	if p.Empty() {
		t.Fatal("importing the export planned nothing")
	}
	var again bytes.Buffer
	if err := invfile.Export(ctx, dst, nil, &again); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(out.String(), again.String()); diff != "" {
		t.Errorf("export of the import differs (-first +second):\n%s", diff)
	}
	// And entity by entity the two inventories agree (times and versions aside).
	names, _ := src.Names(ctx)
	for _, n := range names {
		a, _ := src.Get(ctx, n)
		b, err := dst.Get(ctx, n)
		if err != nil {
			t.Fatalf("%s missing after import: %v", n, err)
		}
		a.ID, b.ID, a.Version, b.Version = 0, 0, 0, 0
		a.CreatedAt, b.CreatedAt, a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("%s differs after the round trip (-source +import):\n%s", n, diff)
		}
	}
	if !plan(t, dst, out.String(), invfile.Options{}).Empty() {
		t.Error("re-planning the export against its import is not empty")
	}
}

func TestPrune(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	apply(t, s, demo, invfile.Options{})
	smaller := `entities:
  dc1: {driver: datacenter, attrs: {region: eu}}
  s0001:
    driver: server
    attrs: {status: unallocated}
`
	// Without --prune nothing is deleted.
	if p := plan(t, s, smaller, invfile.Options{}); p.Delete != 0 {
		t.Errorf("plan without prune deletes %d", p.Delete)
	}
	p := apply(t, s, smaller, invfile.Options{Prune: true})
	if p.Delete != 8 {
		t.Errorf("prune deleted %d entities, want 8", p.Delete)
	}
	names, _ := s.Names(ctx)
	if !cmp.Equal(names, []string{"dc1", "s0001"}) {
		t.Errorf("after prune: %v", names)
	}
	e, _ := s.Get(ctx, "s0001")
	if len(e.Attrs) != 1 || len(e.Parents) != 0 || len(e.Links) != 0 {
		t.Errorf("s0001 after prune = %+v", e)
	}
	if !plan(t, s, smaller, invfile.Options{Prune: true}).Empty() {
		t.Error("pruning twice is not a no-op")
	}
}

// The demo that make run loads must apply cleanly, pass the inventory's
// checks, and be a fixed point of plan.
func TestDemoInventory(t *testing.T) {
	data, err := os.ReadFile("../../examples/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	ctx := context.Background()
	p := apply(t, s, string(data), invfile.Options{})
	if p.Create != 68 { // 7 groups, a name manager, 2 sites of 4, 4 racks of 13
		t.Errorf("demo created %d entities, want 68", p.Create)
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) != 0 {
		t.Errorf("demo fails its check: %v %v", problems, err)
	}
	if !plan(t, s, string(data), invfile.Options{}).Empty() {
		t.Error("planning the demo again is not empty")
	}
	e, err := s.Get(ctx, "s0004")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Links) != 3 || e.Parents[0].Name != "rack101" {
		t.Errorf("s0004 = %+v", e)
	}
}
