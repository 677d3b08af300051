package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// Many goroutines writing and reading at once: every write lands (one
// writer, BEGIN IMMEDIATE, so no SQLITE_BUSY), readers never fail, and the
// change log has exactly one record per write. With -short (make test
// runs it so under -race), fewer writes and reads by as many goroutines.
func TestConcurrentWritersAndReaders(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "r1", Driver: "rack"})
	before, err := s.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writers, each, reads := 16, 25, 50
	if testing.Short() {
		each, reads = 5, 10
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				name := fmt.Sprintf("w%02d-%02d", w, i)
				errs <- s.Update(ctx, "writer", func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: name, Driver: "server"}) })
				errs <- s.Update(ctx, "writer", func(tx *store.Tx) error { _, err := tx.AddAttr("r1", str("seen", name)); return err })
			}
		}(w)
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < reads; i++ {
				if _, err := s.Get(ctx, "r1"); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := len(get(t, s, "r1").Attrs); got != writers*each {
		t.Errorf("r1 has %d attributes, want %d", got, writers*each)
	}
	after, err := s.LatestChange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got != int64(writers*each*2) {
		t.Errorf("%d changes recorded, want %d", got, writers*each*2)
	}
}
