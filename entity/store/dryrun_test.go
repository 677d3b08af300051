package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/entity/store"
)

// endless is a statement that would run for hours: only an interrupt
// stops it.
const endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000000000000) SELECT count(*) FROM c"

// TestDryRunNeverMakesAWriteWait: a dry run busy in a statement on the
// writer is preempted by a real write, which goes ahead at once; the dry
// run then starts again and finishes, storing nothing. Without the
// preemption the write would wait behind the endless statement until its
// own (two-minute) bound, and fail.
func TestDryRunNeverMakesAWriteWait(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	started := make(chan struct{})
	var attempts atomic.Int32
	dry := make(chan error, 1)
	go func() {
		dry <- s.DryRun(ctx, "planner", func(tx *store.Tx) error {
			if attempts.Add(1) == 1 {
				close(started)
				rd, err := tx.Reader()
				if err != nil {
					return err
				}
				var n int64
				return rd.QueryRowContext(tx.Context(), endless).Scan(&n)
			}
			return tx.Create(entity.NewEntity{Name: "dry", Driver: "pool"})
		})
	}()
	<-started
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err := s.Update(wctx, "writer", func(tx *store.Tx) error {
		return tx.Create(entity.NewEntity{Name: "real", Driver: "pool"})
	})
	if err != nil {
		t.Fatalf("the write behind the dry run: %v", err)
	}
	if err := <-dry; err != nil {
		t.Fatalf("the dry run after the write: %v", err)
	}
	if n := attempts.Load(); n != 2 {
		t.Errorf("the dry run ran %d times, want 2 (preempted once)", n)
	}
	if n := s.DryRunPreemptions(); n != 1 {
		t.Errorf("%d preemptions counted, want 1", n)
	}
	get(t, s, "real")
	if ok, err := s.Exists(ctx, "dry"); ok || err != nil {
		t.Errorf("the dry run stored its entity (%v, %v)", ok, err)
	}
	if n, _ := s.LatestChange(ctx); n != 1 {
		t.Errorf("%d changes, want the write's 1", n)
	}
}

// TestDryRunDeadline: a dry run that cannot start because a write holds
// the writer, or another dry run is ahead of it, fails at its deadline as
// unavailable (retry later, with retry_after); one that had the writer to
// itself and ran out of time fails with its context's error instead, as
// a write would, since trying again will not help.
func TestDryRunDeadline(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	quick := func(tx *store.Tx) error { return tx.Create(entity.NewEntity{Name: "dry", Driver: "pool"}) }
	endlessFn := func(tx *store.Tx) error {
		rd, err := tx.Reader()
		if err != nil {
			return err
		}
		var n int64
		return rd.QueryRowContext(tx.Context(), endless).Scan(&n)
	}
	// hold runs hold in the background until release is closed, and
	// waits until it has begun.
	hold := func(run func(context.Context, string, func(*store.Tx) error) error) (release func()) {
		began, stop, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			done <- run(ctx, "holder", func(tx *store.Tx) error {
				close(began)
				<-stop
				return nil
			})
		}()
		<-began
		return func() {
			close(stop)
			if err := <-done; err != nil {
				t.Errorf("holder: %v", err)
			}
		}
	}
	for _, c := range []struct {
		name        string
		holder      func(context.Context, string, func(*store.Tx) error) error
		fn          func(*store.Tx) error
		unavailable bool
	}{
		{"behind a write", s.Update, quick, true},
		{"behind a dry run", s.DryRun, quick, true},
		{"too slow on its own", nil, endlessFn, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var release func()
			if c.holder != nil {
				release = hold(c.holder)
			}
			dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			err := s.DryRun(dctx, "planner", c.fn)
			if release != nil {
				release()
			}
			var e *entity.Error
			switch {
			case err == nil:
				t.Fatal("the dry run succeeded past its deadline")
			case c.unavailable:
				if !errors.As(err, &e) || e.Kind != entity.KindUnavailable || e.Details[entity.RetryAfter] != 1 {
					t.Fatalf("error %v (%#v), want unavailable with retry_after 1", err, e)
				}
			default:
				if entity.IsKind(err, entity.KindUnavailable) || !errors.Is(dctx.Err(), context.DeadlineExceeded) {
					t.Fatalf("error %v: want the context's deadline, not unavailable", err)
				}
			}
			if ok, _ := s.Exists(ctx, "dry"); ok {
				t.Error("the dry run stored its entity")
			}
		})
	}
}

// TestDryRunsBesideWriters: dry runs of batches and writers running
// together, bounded: every write succeeds, every dry run finishes (they
// have a minute) with the results of its batch, and nothing of the dry
// runs is stored. With -short (make test runs it so under -race), fewer
// writes and rounds by as many goroutines.
func TestDryRunsBesideWriters(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	writers, writes, dryRuns, rounds := 6, 15, 3, 4
	if testing.Short() {
		writes, rounds = 5, 2
	}
	var ops []entity.Op
	for i := range 200 {
		ops = append(ops, entity.Op{Op: "create", Name: fmt.Sprintf("dry%03d", i), Driver: "pool"})
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*writes+dryRuns*rounds)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writes {
				errs <- s.Update(ctx, "writer", func(tx *store.Tx) error {
					return tx.Create(entity.NewEntity{Name: fmt.Sprintf("w%d-%d", w, i), Driver: "server"})
				})
			}
		}()
	}
	for range dryRuns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				dctx, cancel := context.WithTimeout(ctx, time.Minute)
				res, err := s.Batch(dctx, "planner", ops, store.BatchOptions{DryRun: true})
				cancel()
				if err == nil && len(res) != len(ops) {
					err = fmt.Errorf("a dry run answered %d results for %d ops", len(res), len(ops))
				}
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	names, err := s.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for w := range writers {
		for i := range writes {
			want = append(want, fmt.Sprintf("w%d-%d", w, i))
		}
	}
	if diff := cmp.Diff(len(want), len(names)); diff != "" {
		t.Errorf("stored %d entities, want the %d written: %v", len(names), len(want), names[:min(5, len(names))])
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %+v", err, problems)
	}
}
