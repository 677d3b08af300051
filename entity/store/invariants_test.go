package store_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// invBase builds a small inventory that every rule has something to look
// at in, and that keeps all of them.
func invBase(t *testing.T) *store.Store {
	t.Helper()
	s := newStore(t)
	create(t, s,
		entity.NewEntity{Name: "dc1", Driver: "datacenter"}, entity.NewEntity{Name: "row1", Driver: "row"},
		entity.NewEntity{Name: "r1", Driver: "rack"}, entity.NewEntity{Name: "s1", Driver: "server", Attrs: []entity.Attr{num("memory_gb", 64)}},
		entity.NewEntity{Name: "s2", Driver: "server"}, entity.NewEntity{Name: "sw", Driver: "switch"},
		entity.NewEntity{Name: "pa", Driver: "pool"}, entity.NewEntity{Name: "pb", Driver: "pool"},
		entity.NewEntity{Name: "ga", Driver: "pool"}, entity.NewEntity{Name: "gb", Driver: "pool"},
		entity.NewEntity{Name: "gone", Driver: "room"},
		block("net", "10.0.0.0/16", str("gateway", "10.0.0.1")), block("sub", "10.0.2.0/24"), block("sub2", "10.0.3.0/24"),
		entity.NewEntity{Name: "nm", Driver: "namemanager", Attrs: []entity.Attr{str("basename", "web"), num("next", 5)}},
	)
	write(t, s, func(tx *store.Tx) error {
		steps := []func() error{
			func() error { _, err := tx.Insert("row1", "r1", entity.Placement{}); return err },
			func() error { _, err := tx.Insert("r1", "s1", at(10)); return err },
			func() error { _, err := tx.Insert("r1", "s2", at(12)); return err },
			func() error { _, err := tx.Insert("r1", "sw", at(40)); return err },
			func() error {
				return tx.Connect(entity.Endpoint{Name: "s1", Port: "eth0"}, entity.Endpoint{Name: "sw", Port: "1"})
			},
			func() error { _, err := tx.Insert("pa", "s1", entity.Placement{}); return err },
			func() error { _, err := tx.Insert("pb", "s1", entity.Placement{}); return err },
			func() error { _, err := tx.Insert("ga", "gb", entity.Placement{}); return err },
			func() error { _, err := tx.Insert("net", "sub", entity.Placement{}); return err },
			func() error { _, err := tx.Insert("net", "sub2", entity.Placement{}); return err },
			func() error {
				_, err := tx.AllocateIP(entity.IPRequest{Block: "net", Entity: "s1", Address: "10.0.1.5", Interface: "eth0"})
				return err
			},
			func() error {
				_, err := tx.AllocateIP(entity.IPRequest{Block: "sub", Entity: "s2", Interface: "eth0"})
				return err
			},
			func() error {
				_, err := tx.AllocateNames(entity.NameRequest{Manager: "nm", Driver: "server"})
				return err
			},
			func() error {
				_, err := tx.AddAttr("s2", entity.Attr{Key: "home", Value: entity.Value{Type: entity.TypeRef, Text: "gone"}})
				return err
			},
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	if p, err := s.Check(context.Background()); err != nil || len(p) > 0 {
		t.Fatalf("the base inventory has problems: %v %+v", err, p)
	}
	return s
}

// id is SQL for the current id of the entity named name.
func id(name string) string {
	return "(SELECT id FROM entities WHERE name = '" + name + "' AND until IS NULL)"
}

const lastChange = "(SELECT max(id) FROM changes)"

// TestCheckNamesEveryBrokenRule breaks each rule behind the store's back,
// in SQL, as a hand edit or a bug in a write path would, and asserts that
// clustod check's code names that rule.
func TestCheckNamesEveryBrokenRule(t *testing.T) {
	cases := []struct {
		rule string
		sql  []string
	}{
		{"known-driver", []string{"UPDATE entities SET driver = 'ghost' WHERE name = 's2' AND until IS NULL"}},
		{"single-value", []string{`INSERT INTO attrs(entity_id, key, type, value, num, since) VALUES (` + id("r1") + `, 'units', 'int', '40', 40, ` + lastChange + `),
			(` + id("r1") + `, 'units', 'int', '44', 44, ` + lastChange + `)`}},
		{"attr-type", []string{"UPDATE attrs SET type = 'string', value = 'lots', num = NULL WHERE key = 'memory_gb' AND until IS NULL"}},
		{"live-references", []string{"UPDATE entities SET until = " + lastChange + " WHERE name = 'gone' AND until IS NULL"}},
		{"one-parent", []string{"DROP INDEX conn_cur_one_parent",
			"INSERT INTO connections(type, a, b, since) VALUES ('contains', " + id("dc1") + ", " + id("r1") + ", " + lastChange + ")"}},
		{"parent-allowed", []string{"UPDATE connections SET a = " + id("dc1") + ", position = NULL, height = NULL WHERE type = 'contains' AND b = " + id("s2") + " AND until IS NULL"}},
		{"contains-loop", []string{"INSERT INTO connections(type, a, b, since) VALUES ('contains', " + id("r1") + ", " + id("row1") + ", " + lastChange + ")"}},
		{"member-loop", []string{"INSERT INTO connections(type, a, b, since) VALUES ('member', " + id("gb") + ", " + id("ga") + ", " + lastChange + ")"}},
		{"rack-fit", []string{"UPDATE connections SET position = 9223372036854775806 WHERE b = " + id("s2") + " AND type = 'contains' AND until IS NULL"}},
		{"rack-overlap", []string{"UPDATE connections SET position = 10 WHERE b = " + id("s2") + " AND type = 'contains' AND until IS NULL"}},
		{"port-one-link", []string{"DROP INDEX conn_cur_a",
			"INSERT INTO connections(type, a, b, a_port, b_port, port_type, since) SELECT 'link', a, b, a_port, '2', port_type, since FROM connections WHERE type = 'link' AND a_port = 'eth0'"}},
		{"link-both-ends", []string{"DELETE FROM connections WHERE type = 'link' AND a_port = '1'"}},
		{"link-ports", []string{"UPDATE connections SET a_port = 'eth7' WHERE type = 'link' AND a_port = 'eth0'",
			"UPDATE connections SET b_port = 'eth7' WHERE type = 'link' AND b_port = 'eth0'"}},
		{"block-cidr", []string{"UPDATE attrs SET value = '10.0.3.1/24' WHERE key = 'cidr' AND value = '10.0.3.0/24' AND until IS NULL"}},
		{"block-gateway", []string{"UPDATE attrs SET value = '192.168.9.1' WHERE key = 'gateway' AND until IS NULL"}},
		{"block-inside-parent", []string{"UPDATE attrs SET value = '10.9.3.0/24' WHERE key = 'cidr' AND value = '10.0.3.0/24' AND until IS NULL"}},
		{"block-siblings", []string{"UPDATE attrs SET value = '10.0.2.0/23' WHERE key = 'cidr' AND value = '10.0.3.0/24' AND until IS NULL"}},
		{"allocation-inside-block", []string{"UPDATE ip_allocations SET offset = offset + 70000 WHERE block_id = " + id("net")}},
		{"allocation-reserved", []string{"UPDATE attrs SET value = '10.0.1.5', ip = (SELECT address FROM ip_allocations WHERE block_id = " + id("net") + ") WHERE key = 'gateway' AND until IS NULL"}},
		{"allocation-in-child", []string{"UPDATE attrs SET value = '10.0.1.0/24' WHERE key = 'cidr' AND value = '10.0.3.0/24' AND until IS NULL"}},
		{"address-one-holder", []string{"INSERT INTO attrs(entity_id, key, subkey, type, value, ip, since) SELECT " + id("sw") + ", 'ip', 'mgmt', 'ip', '10.0.1.5', address, " + lastChange +
			" FROM ip_allocations WHERE block_id = " + id("net")}},
		{"allocation-attribute", []string{"UPDATE attrs SET until = " + lastChange + " WHERE key = 'ip' AND entity_id = " + id("s1") + " AND until IS NULL"}},
		{"free-space-index", []string{"DELETE FROM ip_runs WHERE block_id = " + id("sub")}},
		{"pool-exclusive", []string{"INSERT INTO attrs(entity_id, key, type, value, since) VALUES (" + id("pa") + ", 'exclusive', 'bool', 'true', " + lastChange + ")"}},
		{"pool-unique", []string{"INSERT INTO attrs(entity_id, key, type, value, since) VALUES (" + id("pa") + ", 'unique', 'bool', 'true', " + lastChange + "), (" +
			id("pb") + ", 'unique', 'bool', 'true', " + lastChange + ")"}},
		{"name-counter", []string{"UPDATE attrs SET value = '2', num = 2 WHERE key = 'next' AND until IS NULL"}},
		{"history", []string{"UPDATE attrs SET until = 1 WHERE key = 'memory_gb' AND until IS NULL"}},
		// The same rule's other read of the rows: a change not yet made.
		{"history", []string{"UPDATE attrs SET since = 1000000 WHERE key = 'memory_gb' AND until IS NULL"}},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.rule] = true
		t.Run(tc.rule+" "+tc.sql[0], func(t *testing.T) {
			t.Parallel()
			s := invBase(t)
			handEdit(t, s, tc.sql...)
			problems, err := s.Check(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				if p.Rule == tc.rule {
					if p.Message == "" || len(p.Entities) == 0 && tc.rule != "history" {
						t.Errorf("problem %+v says too little", p)
					}
					return
				}
			}
			t.Errorf("check did not name %s; it reported %+v", tc.rule, problems)
		})
	}
	for _, inv := range store.Invariants() {
		if !covered[inv.Name] {
			t.Errorf("no case breaks rule %s", inv.Name)
		}
	}
}

// TestEveryRuleIsDocumented: docs/reliability.md lists each rule by name.
func TestEveryRuleIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/reliability.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range store.Invariants() {
		if !strings.Contains(string(doc), "`"+inv.Name+"`") {
			t.Errorf("docs/reliability.md does not list rule %s", inv.Name)
		}
	}
}
