package entity_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/clusto/clusto/entity"
)

func TestCheckFindsBrokenInvariants(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "r1", Driver: "rack"}, entity.NewEntity{Name: "a", Driver: "server"},
		entity.NewEntity{Name: "b", Driver: "server"}, entity.NewEntity{Name: "sw", Driver: "switch"}, block("net", "10.0.0.0/24"))
	write(t, s, func(tx *entity.Tx) error {
		if _, err := tx.Insert("r1", "a", at(1)); err != nil {
			return err
		}
		if _, err := tx.Insert("r1", "b", at(2)); err != nil {
			return err
		}
		if err := tx.Connect(entity.Endpoint{Name: "a", Port: "eth0"}, entity.Endpoint{Name: "sw", Port: "1"}); err != nil {
			return err
		}
		_, err := tx.AllocateIP(entity.IPRequest{Block: "net", Entity: "a", Count: 3})
		return err
	})
	if p, err := s.Check(ctx); err != nil || len(p) != 0 {
		t.Fatalf("a healthy inventory has problems: %v %v", p, err)
	}
	// Break things behind the store's back, as a hand edit would.
	for _, q := range []string{
		"DROP INDEX conn_cur_port", "DROP INDEX ipalloc_cur_offset",
		"UPDATE connections SET position = 1 WHERE type = 'contains' AND position = 2",
		`INSERT INTO connections(type, a, b, a_port, b_port, port_type, since)
			SELECT 'link', a, b, a_port, '2', port_type, since FROM connections WHERE type = 'link' AND a_port = 'eth0'`,
		"INSERT INTO ip_allocations(block_id, offset, address, entity_id, since) SELECT block_id, offset, address, entity_id, since FROM ip_allocations LIMIT 1",
	} {
		if _, err := s.DB().Write.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	problems, err := s.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, p := range problems {
		found[p.Check] = true
	}
	for _, want := range []string{"rack-overlap", "port-two-links", "link-one-sided", "address-twice", "runs-count"} {
		if !found[want] {
			t.Errorf("check did not report %s; it reported %+v", want, problems)
		}
	}
}

func TestBackupIsAConsistentCopy(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "r1", Driver: "rack"}, entity.NewEntity{Name: "s1", Driver: "server"})
	path := filepath.Join(t.TempDir(), "backup.db")
	// Writes go on while the backup copies its snapshot.
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ {
			if err := tryWrite(s, func(tx *entity.Tx) error {
				return tx.CreateQuiet(entity.NewEntity{Name: fmt.Sprintf("w%d", i), Driver: "server"})
			}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if err := s.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("a write during the backup failed: %v", err)
	}
	wantKind(t, s.Backup(ctx, path), entity.KindConflict)
	b, err := entity.Open(ctx, path, entity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Get(ctx, "s1"); err != nil {
		t.Errorf("backup lacks s1: %v", err)
	}
	if p, err := b.Check(ctx); err != nil || len(p) != 0 {
		t.Errorf("backup check: %v %v", p, err)
	}
}
