package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/clusto/clusto/entity"
	"github.com/google/go-cmp/cmp"
)

// TestChangeRecordsEncodeAsMaps: the typed change records must keep the
// JSON that the change log held before they replaced maps, byte for byte,
// or old and new history would differ in key order.
func TestChangeRecordsEncodeAsMaps(t *testing.T) {
	pos := any(int64(3))
	cases := []struct {
		typed any
		asMap map[string]any
	}{
		{createChange{Name: "s1", Driver: "server", Kind: "equipment", Attrs: []entity.Attr{{Key: "status", Value: entity.String("spare")}}},
			map[string]any{"name": "s1", "driver": "server", "kind": "equipment", "attrs": []entity.Attr{{Key: "status", Value: entity.String("spare")}}}},
		{createChange{Name: "a<b>&c\u2028", Driver: "server", Kind: "equipment", Attrs: []entity.Attr{
			{Key: "note", Value: entity.String("<script>&\u2029\"quoted\"")},
			{Key: "disk", Number: new(int64), Value: entity.Int(3)},
			{Key: "ip", Subkey: "eth0", Value: entity.IP(netip.MustParseAddr("10.0.0.1"))},
		}},
			map[string]any{"name": "a<b>&c\u2028", "driver": "server", "kind": "equipment", "attrs": []entity.Attr{
				{Key: "note", Value: entity.String("<script>&\u2029\"quoted\"")},
				{Key: "disk", Number: new(int64), Value: entity.Int(3)},
				{Key: "ip", Subkey: "eth0", Value: entity.IP(netip.MustParseAddr("10.0.0.1"))},
			}}},
		{createChange{Name: "p", Driver: "pool", Kind: "group"},
			map[string]any{"name": "p", "driver": "pool", "kind": "group", "attrs": []entity.Attr(nil)}},
		{containChange{Type: entity.Contains, Parent: "r1", Child: "s1", Position: pos, Height: pos},
			map[string]any{"type": entity.Contains, "parent": "r1", "child": "s1", "position": pos, "height": pos}},
		{containChange{Type: entity.Contains, Parent: "dc", Child: "room"},
			map[string]any{"type": entity.Contains, "parent": "dc", "child": "room", "position": nil, "height": nil}},
		{memberChange{Type: entity.Member, Group: "web", Member: "s1"},
			map[string]any{"type": entity.Member, "group": "web", "member": "s1"}},
		{linkChange{A: "s1", APort: "eth0", B: "sw1", BPort: "1", Type: "nic"},
			map[string]any{"a": "s1", "a_port": "eth0", "b": "sw1", "b_port": "1", "type": "nic"}},
	}
	for _, tc := range cases {
		got, err := changeJSON(tc.typed)
		if err != nil {
			t.Fatal(err)
		}
		want, err := changeJSON(tc.asMap)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%T encodes differently from its map (-map +typed):\n%s", tc.typed, diff)
		}
	}
}

// TestRunsInMemoryMatchASet drives withOffset and withoutOffset, the
// in-memory copy of ip_runs kept for blocks created in a transaction,
// with random allocations and releases and compares the runs with the
// set of offsets they stand for. With -short (make test runs it so under
// -race), 4,000 steps.
func TestRunsInMemoryMatchASet(t *testing.T) {
	t.Parallel()
	steps := 20000
	if testing.Short() {
		steps = 4000
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var runs []span
	held := map[uint64]bool{}
	for step := 0; step < steps; step++ {
		o := uint64(rng.IntN(64))
		if held[o] {
			runs = withoutOffset(runs, o)
			delete(held, o)
		} else {
			runs = withOffset(runs, o)
			held[o] = true
		}
		// The runs are sorted, disjoint, not touching, and cover exactly
		// the held offsets.
		covered := map[uint64]bool{}
		for i, r := range runs {
			if r.first > r.last {
				t.Fatalf("step %d: run %v is empty", step, r)
			}
			if i > 0 && runs[i-1].last+1 >= r.first {
				t.Fatalf("step %d: runs %v and %v touch or overlap", step, runs[i-1], r)
			}
			for x := r.first; x <= r.last; x++ {
				covered[x] = true
			}
		}
		if diff := cmp.Diff(held, covered); diff != "" {
			t.Fatalf("step %d: runs %v cover the wrong offsets (-held +covered):\n%s", step, runs, diff)
		}
		if s, ok := runContaining(runs, o); held[o] != (ok && s.last >= o) {
			t.Fatalf("step %d: runContaining(%d) = %v, %v; held %v", step, o, s, ok, held[o])
		}
	}
}

// TestEntityIDsAreReservedSparingly: ids are reserved in blocks that grow
// within a transaction, so creates one per transaction (the API's way)
// reserve no more ids than they use, and a bulk load wastes fewer than a
// block.
func TestEntityIDsAreReservedSparingly(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir()+"/ids.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	reserved := func() int {
		var n int
		if err := s.db.read.QueryRowContext(ctx, "SELECT count(*) FROM entity_ids").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := 0; i < 3; i++ {
		if err := s.Update(ctx, "t", func(tx *Tx) error {
			return tx.Create(entity.NewEntity{Name: fmt.Sprintf("one%d", i), Driver: "server"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n := reserved(); n != 3 {
		t.Errorf("3 creates in 3 transactions reserved %d ids", n)
	}
	if err := s.Update(ctx, "t", func(tx *Tx) error {
		for i := 0; i < 300; i++ {
			if err := tx.Create(entity.NewEntity{Name: fmt.Sprintf("bulk%d", i), Driver: "server"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := reserved() - 3; n < 300 || n >= 300+maxIDBlock {
		t.Errorf("300 creates in one transaction reserved %d ids, want 300 to %d", n, 300+maxIDBlock-1)
	}
	// Every entity has its own id.
	var dup int
	if err := s.db.read.QueryRowContext(ctx, "SELECT count(*) - count(DISTINCT id) FROM entities").Scan(&dup); err != nil || dup != 0 {
		t.Errorf("%d entities share an id (%v)", dup, err)
	}
}

// TestChildBlocksPlan: a block's child blocks are read through the
// parent's connections, whatever other indexes could give the order.
func TestChildBlocksPlan(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir()+"/inv.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plan := queryPlan(t, s, childBlocksSQL, 1)
	if len(plan) < 2 || !strings.HasPrefix(plan[0], "SEARCH c USING INDEX conn_cur_a (a=? AND type=?)") ||
		!strings.HasPrefix(plan[1], "SEARCH e USING INDEX entities_cur_id (id=?)") {
		t.Errorf("plan %q: want the parent's connections first, then each child by id", plan)
	}
}

// TestChangedBlocksPlan: the rules at commit read the blocks a
// transaction changed by their ids, not by walking every block (which
// made an address allocation among 2,300 blocks spend 1.5 ms there); the
// whole check walks the blocks by driver.
func TestChangedBlocksPlan(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir()+"/inv.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		cond string
		args []any
		want string
	}{
		{changedBlocksCond, []any{1, 1, 1, 1}, "SEARCH e USING INDEX entities_cur_id (id=?)"},
		{"e.id = ?2", []any{1, 1}, "SEARCH e USING INDEX entities_cur_id (id=?)"},
		{"1", []any{1}, "SEARCH e USING INDEX entities_cur_driver (driver=?)"},
	} {
		plan := queryPlan(t, s, blocksSQL(tc.cond), tc.args...)
		if len(plan) == 0 || plan[0] != tc.want {
			t.Errorf("blocks where %.40s...: plan %q, want it to start %q", tc.cond, plan, tc.want)
		}
	}
}

// queryPlan is the top-level lines of EXPLAIN QUERY PLAN of query.
func queryPlan(t *testing.T, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.db.read.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		if parent == 0 {
			plan = append(plan, detail)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// A change record that does not encode is an error, not a NULL before or
// after in the history.
func TestChangeRecordThatDoesNotEncodeIsAnError(t *testing.T) {
	if _, err := changeJSON(map[string]any{"x": func() {}}); entity.KindOf(err) != entity.KindInternal {
		t.Fatalf("encoding a func: %v, want an internal error", err)
	}
	if j, err := changeJSON(nil); err != nil || j != nil {
		t.Fatalf("nil encodes as %v, %v; want NULL", j, err)
	}
}

// TestRulesAtCommitSeeWhatAnyStatementWrote: the rules at commit skip the
// reads a transaction's kinds of change cannot need (no entity deleted, no
// driver changed, no link touched). Rows written by hand inside a
// transaction, past the operations, must still be seen: each case writes
// one with plain SQL beside an ordinary attribute write, and the commit
// must be refused naming the rule.
func TestRulesAtCommitSeeWhatAnyStatementWrote(t *testing.T) {
	cases := []struct {
		name, rule string
		sql        []string
	}{
		{"a new version row with another driver", "known-driver", []string{
			"UPDATE entities SET until = (SELECT max(id) FROM changes) WHERE name = 's2' AND until IS NULL",
			`INSERT INTO entities(id, name, driver, kind, version, created_at, updated_at, since)
				SELECT id, name, 'ghost', kind, version + 1, created_at, updated_at, until FROM entities WHERE name = 's2' AND until = (SELECT max(id) FROM changes)`,
		}},
		{"an entity ended with its parent's connection to it left", "live-references", []string{
			"UPDATE entities SET until = (SELECT max(id) FROM changes) WHERE name = 's2' AND until IS NULL",
		}},
		{"one side of a link ended", "link-both-ends", []string{
			"UPDATE connections SET until = (SELECT max(id) FROM changes) WHERE type = 'link' AND until IS NULL AND a = (SELECT id FROM entities WHERE name = 's2' AND until IS NULL)",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, t.TempDir()+"/inv.db", Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Update(ctx, "t", func(tx *Tx) error {
				for _, e := range []entity.NewEntity{{Name: "r1", Driver: "rack"}, {Name: "s1", Driver: "server"}, {Name: "s2", Driver: "server"}, {Name: "sw", Driver: "switch"}} {
					if err := tx.Create(e); err != nil {
						return err
					}
				}
				if _, err := tx.Insert("r1", "s2", entity.Placement{}); err != nil {
					return err
				}
				return tx.Connect(entity.Endpoint{Name: "s2", Port: "eth0"}, entity.Endpoint{Name: "sw", Port: "1"})
			})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Update(ctx, "t", func(tx *Tx) error {
				if _, err := tx.SetAttr("s1", entity.AttrSelector{Key: "status"}, []entity.Value{entity.String("spare")}); err != nil {
					return err
				}
				for _, q := range tc.sql {
					if _, err := tx.exec("hand edit", q); err != nil {
						return err
					}
				}
				return nil
			})
			var e *entity.Error
			if !errors.As(err, &e) || e.Code != entity.ReasonInvariant {
				t.Fatalf("commit: %v, want a refusal naming rule %s", err, tc.rule)
			}
			var rules []string
			for _, p := range e.Details["problems"].([]entity.Problem) {
				rules = append(rules, p.Rule)
			}
			if !slices.Contains(rules, tc.rule) {
				t.Errorf("refused for %v, want %s among them: %v", rules, tc.rule, err)
			}
		})
	}
}
