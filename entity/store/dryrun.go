package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/clusto/clusto/entity"
)

// Dry runs (a plan's check, a batch, an apply or an allocation with
// dry_run) need the single writer: they run the real write transaction
// and roll it back, so that they find every failure the write would. A
// long one used to make every real write wait behind it, and anyone with
// a read token could check plans in a loop. So dry runs take the writer
// with low priority: they take turns among themselves, start only when no
// real write is waiting for or holding the writer, and the moment a real
// write arrives the dry run's context is canceled (modernc.org/sqlite
// interrupts the statement it is running, database/sql rolls its
// transaction back), the write goes ahead, and the dry run starts again
// once writes are done, until its own deadline. A real write therefore
// waits for a rollback at most, never for a dry run.

// errPreempted is the cause with which a real write cancels a dry run.
var errPreempted = errors.New("preempted by a write")

// errDryRunDone ends a dry run's transaction once fn has succeeded, so
// that Update rolls it back.
var errDryRunDone = errors.New("dry run done: rolled back")

// dryRunKey marks the context of a dry run's transaction, which the gate
// lets through without counting it as a write.
type dryRunKey struct{}

// writerGate orders real writes and dry runs on the single writer.
type writerGate struct {
	mu sync.Mutex
	// writes counts the real writes waiting for or holding the writer.
	writes int
	// idle is closed (and replaced) each time writes falls to 0, waking
	// the dry run waiting for its chance.
	idle chan struct{}
	// running cancels the dry run allowed onto the writer; nil when none.
	running context.CancelCauseFunc
	// turn is held by the one dry run that may run or wait for the writer.
	turn chan struct{}
	// preemptions counts dry runs canceled by a write.
	preemptions atomic.Int64
}

func newWriterGate() *writerGate {
	return &writerGate{idle: make(chan struct{}), turn: make(chan struct{}, 1)}
}

// enter announces a real write about to take the writer, preempting the
// dry run on it, and returns the function that announces the write done.
// A dry run's own transaction passes through.
func (g *writerGate) enter(ctx context.Context) (done func()) {
	if ctx.Value(dryRunKey{}) != nil {
		return func() {}
	}
	g.mu.Lock()
	g.writes++
	if g.running != nil {
		g.running(errPreempted)
		g.running = nil
		g.preemptions.Add(1)
	}
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.writes--; g.writes == 0 {
			close(g.idle)
			g.idle = make(chan struct{})
		}
	}
}

// start waits until no real write is waiting or running and returns the
// context a dry run's attempt runs in, which the next write cancels, and
// the function that ends the attempt. waited tells whether it had to wait.
func (g *writerGate) start(ctx context.Context) (attempt context.Context, end func(), waited bool, err error) {
	for {
		g.mu.Lock()
		if g.writes == 0 {
			attempt, cancel := context.WithCancelCause(context.WithValue(ctx, dryRunKey{}, true))
			g.running = cancel
			g.mu.Unlock()
			return attempt, func() {
				g.mu.Lock()
				g.running = nil
				g.mu.Unlock()
				cancel(nil)
			}, waited, nil
		}
		idle := g.idle
		g.mu.Unlock()
		waited = true
		select {
		case <-idle:
		case <-ctx.Done():
			return nil, nil, true, ctx.Err()
		}
	}
}

// DryRun runs fn in a write transaction exactly as Update would, and
// always rolls it back: what fn computes and every error it meets are
// those of the real write, and nothing is stored. It never makes a real
// write wait (see above): a write that arrives while it runs cancels it,
// and it starts again after the write, as often as needed, until ctx is
// done. fn may therefore run several times, each time in a new
// transaction; it must keep nothing from an attempt that did not finish.
//
// When ctx's deadline passes after writes or other dry runs held it up,
// the error is KindUnavailable (retry later); a dry run that had the
// writer to itself and still ran out of time fails with its context's
// error, as Update would.
func (s *Store) DryRun(ctx context.Context, actor string, fn func(*Tx) error) error {
	g := s.gate
	hindered := false
	select {
	case g.turn <- struct{}{}:
	default:
		hindered = true
		select {
		case g.turn <- struct{}{}:
		case <-ctx.Done():
			return dryRunRefused(ctx, "other dry runs were ahead of it")
		}
	}
	defer func() { <-g.turn }()
	for {
		attempt, end, waited, err := g.start(ctx)
		hindered = hindered || waited
		if err != nil {
			return dryRunRefused(ctx, "writes kept the writer busy")
		}
		err = s.Update(attempt, actor, func(tx *Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			return errDryRunDone
		})
		preempted := errors.Is(context.Cause(attempt), errPreempted)
		end()
		switch {
		case errors.Is(err, errDryRunDone):
			return nil
		case preempted && ctx.Err() == nil:
			hindered = true
			continue
		case ctx.Err() != nil && (hindered || preempted):
			return dryRunRefused(ctx, "writes kept interrupting it")
		}
		return err
	}
}

// dryRunRefused is the error of a dry run whose context ended before it
// could finish, because of others' work: unavailable when the deadline
// passed, the context's error when the caller went away.
func dryRunRefused(ctx context.Context, why string) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return entity.Internal("dry run", ctx.Err())
	}
	return entity.Errorf(entity.KindUnavailable, "the dry run did not finish before its deadline: %s; try again in a moment, when the server is less busy", why).
		WithCode(entity.ReasonDryRunPreempted).With(entity.RetryAfter, 1)
}

// DryRunPreemptions counts the dry runs a real write has canceled since
// the store was opened (for metrics).
func (s *Store) DryRunPreemptions() int64 { return s.gate.preemptions.Load() }
