package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// TestWritesQueuedTogetherCommitTogetherAndFailAlone: writes that queue
// while the writer is busy are committed in one transaction, in the order
// they queued; the one that fails (an error after it created an entity,
// a name already taken, a panic) is rolled back alone and gets its own
// error, and the change numbers of the rest follow each other without a
// gap.
func TestWritesQueuedTogetherCommitTogetherAndFailAlone(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	create(t, s, entity.NewEntity{Name: "taken", Driver: "server"})
	groupsBefore, writesBefore := s.GroupCommits()

	started, release := make(chan struct{}), make(chan struct{})
	blocker := make(chan error, 1)
	go func() {
		blocker <- s.Update(ctx, "blocker", func(tx *store.Tx) error {
			close(started)
			<-release
			return tx.Create(entity.NewEntity{Name: "first", Driver: "server"})
		})
	}()
	<-started

	type outcome struct {
		name string
		err  error
	}
	const n = 12
	results := make([]outcome, n)
	var wg sync.WaitGroup
	failing := map[int]string{3: "fails after creating", 6: "name taken", 9: "panics"}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("g%02d", i)
			results[i].name = name
			results[i].err = s.Update(ctx, fmt.Sprintf("writer%02d", i), func(tx *store.Tx) error {
				switch failing[i] {
				case "fails after creating":
					if err := tx.Create(entity.NewEntity{Name: name, Driver: "server"}); err != nil {
						return err
					}
					return errors.New("changed its mind")
				case "name taken":
					return tx.Create(entity.NewEntity{Name: "taken", Driver: "server"})
				case "panics":
					if err := tx.Create(entity.NewEntity{Name: name, Driver: "server"}); err != nil {
						return err
					}
					panic("a bug in a caller")
				}
				return tx.Create(entity.NewEntity{Name: name, Driver: "server"})
			})
		}()
		// One at a time, so that the queue's order is the loop's.
		for deadline := time.Now().Add(10 * time.Second); s.QueuedWrites() < i+1; {
			if time.Now().After(deadline) {
				t.Fatalf("write %d never queued", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	var committed []string
	for i, r := range results {
		e, getErr := s.Get(ctx, r.name)
		switch failing[i] {
		case "":
			if r.err != nil || getErr != nil {
				t.Errorf("write %d: %v, read back: %v", i, r.err, getErr)
			}
			committed = append(committed, r.name)
		case "name taken":
			if !entity.IsKind(r.err, entity.KindConflict) {
				t.Errorf("write %d (%s): %v, want a conflict", i, failing[i], r.err)
			}
		default:
			if r.err == nil || !entity.IsKind(getErr, entity.KindNotFound) {
				t.Errorf("write %d (%s): error %v, and %s is %v (want an error and nothing stored)", i, failing[i], r.err, r.name, e)
			}
		}
	}
	groups, writes := s.GroupCommits()
	if groups-groupsBefore != 2 || writes-writesBefore != int64(1+len(committed)) {
		t.Errorf("%d transactions for %d writes, want 2 (the blocker, then one group) for %d", groups-groupsBefore, writes-writesBefore, 1+len(committed))
	}
	changes, err := s.Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var ids []int64
	for _, c := range changes {
		if c.Actor != "tester" && c.Actor != "blocker" {
			got = append(got, c.Entity)
			ids = append(ids, c.Number)
		}
	}
	if diff := cmp.Diff(committed, got); diff != "" {
		t.Errorf("the group's changes, in order (-want +got):\n%s", diff)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Errorf("change numbers %v have a gap", ids)
			break
		}
	}
}
