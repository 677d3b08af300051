package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// An entity read while it is being written is one consistent state: its
// version (the API's ETag) always matches its attributes. Here every
// change adds one attribute, so version == 1 + number of attributes.
// With -short (make test runs it so under -race), 40 writes.
func TestGetIsOneSnapshot(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "s1", Driver: "server"})
	writes := 150
	if testing.Short() {
		writes = 40
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				e, err := s.Get(ctx, "s1")
				if err != nil {
					errs <- err
					return
				}
				if int(e.Version) != 1+len(e.Attrs) {
					errs <- fmt.Errorf("read version %d with %d attributes", e.Version, len(e.Attrs))
					return
				}
			}
		}()
	}
	for i := range writes {
		write(t, s, func(tx *store.Tx) error { _, err := tx.AddAttr("s1", num("n", int64(i))); return err })
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
