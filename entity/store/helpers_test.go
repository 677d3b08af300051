package store_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// clock is a deterministic time source for tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

func newStore(t testing.TB) *store.Store {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	s, err := store.Open(context.Background(), t.TempDir()+"/inventory.db", store.Options{Now: c.now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// write runs fn in one transaction and fails the test on error.
func write(t testing.TB, s *store.Store, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), "tester", fn); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// tryWrite runs fn in one transaction and returns its error.
func tryWrite(s *store.Store, fn func(tx *store.Tx) error) error {
	return s.Update(context.Background(), "tester", fn)
}

func create(t testing.TB, s *store.Store, ents ...entity.NewEntity) {
	t.Helper()
	write(t, s, func(tx *store.Tx) error {
		for _, e := range ents {
			if err := tx.Create(e); err != nil {
				return err
			}
		}
		return nil
	})
}

func get(t testing.TB, s *store.Store, name string) *entity.Entity {
	t.Helper()
	e, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return e
}

func str(k, v string) entity.Attr { return entity.Attr{Key: k, Value: entity.String(v)} }

func num(k string, v int64) entity.Attr { return entity.Attr{Key: k, Value: entity.Int(v)} }

func ptr[T any](v T) *T { return &v }

// wantKind checks that err is an *entity.Error of kind k.
func wantKind(t testing.TB, err error, k entity.ErrorKind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", k)
	}
	if got := entity.KindOf(err); got != k {
		t.Fatalf("got error kind %s (%v), want %s", got, err, k)
	}
}

// handEdit runs SQL on the inventory file through a connection of its own,
// as an operator editing the file by hand would: behind the store's back,
// past every check it makes. (The store's writer connection is its own.)
func handEdit(t testing.TB, s *store.Store, queries ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+s.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range queries {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("hand edit %s: %v", q, err)
		}
	}
}
