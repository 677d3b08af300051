package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusto/clusto/entity"
)

// Group commit. Writes that queue for the writer while another holds it
// are taken together by the next one to get it: one BEGIN IMMEDIATE, each
// write in a savepoint of its own (one that fails, or breaks a rule, is
// rolled back alone and gets its own error), then one COMMIT, one fsync,
// for all of them. Every write is answered only after that COMMIT, so an
// acknowledged write is as durable as before; change numbers stay
// gap-free (a rolled-back savepoint's rowids are reused) and in the order
// the writes ran, which is the order they queued.
//
// Inside a group of more than one, statements run with contexts that are
// never canceled: SQLite answers an interrupted INSERT, UPDATE or DELETE
// in a transaction by rolling the whole transaction back, which would
// take the others' work with it and leave the next statements outside
// any transaction. A write whose caller gave up before its turn is
// skipped; one already running finishes (its statements are short) and
// its answer goes unread. A write alone keeps its cancelable context, as
// before.

// maxGroup bounds the writes one transaction takes, so that a group's
// latency stays that of a few writes.
const maxGroup = 64

// write is one Update waiting for, or in, a group.
type write struct {
	ctx    context.Context
	actor  string
	fn     func(*Tx) error
	queued time.Time
	// taken is set, under the queue's lock, by the group that runs it.
	taken bool
	err   error
	// changed and changedAll are what it changed (Tx.changed), for the
	// commit hooks once its group commits.
	changed    map[int64]bool
	changedAll bool
	done       chan struct{}
}

// writeQueue holds the writes waiting for the writer, in arrival order.
type writeQueue struct {
	mu      sync.Mutex
	pending []*write
}

func (q *writeQueue) add(w *write) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, w)
}

// remove takes w out of the queue unless a group has taken it; it reports
// whether it did.
func (q *writeQueue) remove(w *write) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.taken {
		return false
	}
	for i, p := range q.pending {
		if p == w {
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			break
		}
	}
	return true
}

// take returns the group the holder of the writer runs for own: the
// first max waiting writes in arrival order, or, when own is further
// back, the first max-1 and own; nil when a group already took own.
func (q *writeQueue) take(own *write, max int) []*write {
	q.mu.Lock()
	defer q.mu.Unlock()
	if own.taken {
		return nil
	}
	at := -1
	for i, w := range q.pending {
		if w == own {
			at = i
			break
		}
	}
	if at < 0 {
		return nil // not queued: cannot happen, and nothing to run
	}
	var group, rest []*write
	if n := min(max, len(q.pending)); at < n {
		group = append(group, q.pending[:n]...)
		rest = append(rest, q.pending[n:]...)
	} else {
		group = append(append(group, q.pending[:max-1]...), own)
		rest = append(append(rest, q.pending[max-1:at]...), q.pending[at+1:]...)
	}
	for _, w := range group {
		w.taken = true
	}
	q.pending = rest
	return group
}

// QueuedWrites is how many writes are waiting for the writer now (for
// metrics and tests).
func (s *Store) QueuedWrites() int {
	s.queue.mu.Lock()
	defer s.queue.mu.Unlock()
	return len(s.queue.pending)
}

// groupStats count what group commit did (GroupCommits).
type groupStats struct {
	groups, writes atomic.Int64
}

// GroupCommits reports how many transactions the writer committed and how
// many writes they held, since the store was opened (for metrics and
// tests): writes/groups is the mean group size.
func (s *Store) GroupCommits() (groups, writes int64) {
	return s.groupStats.groups.Load(), s.groupStats.writes.Load()
}

// runGroup runs the writes of group in one transaction on the writer
// (which the caller holds) and answers each of them.
func (s *Store) runGroup(group []*write) {
	alone := len(group) == 1
	defer func() {
		for _, w := range group {
			close(w.done)
		}
	}()
	// The transaction's own context is never canceled: database/sql would
	// then roll it back from another goroutine, and a statement of ours
	// already past its own check of ctx would run outside any transaction.
	sqlTx, err := s.writeConn.BeginTx(context.WithoutCancel(group[0].ctx), nil)
	if err != nil {
		for _, w := range group {
			w.err = entity.Internal("begin write", err)
		}
		return
	}
	obs, _ := s.writeWait.Load().(func(time.Duration))
	var ok []*write
	broken := false
	for _, w := range group {
		switch {
		case broken:
			w.err = entity.Internal("write", errGroupFailed)
		case w.ctx.Err() != nil:
			w.err = entity.Internal("begin write", w.ctx.Err())
		default:
			if obs != nil {
				obs(time.Since(w.queued))
			}
			broken = s.runInGroup(sqlTx, w, alone)
			if w.err == nil && !broken {
				ok = append(ok, w)
			}
		}
	}
	if broken {
		sqlTx.Rollback()
		for _, w := range ok {
			w.err = entity.Internal("write", errGroupFailed)
		}
		return
	}
	if len(ok) == 0 {
		sqlTx.Rollback()
		return
	}
	if err := sqlTx.Commit(); err != nil {
		for _, w := range ok {
			w.err = entity.Internal("commit", err)
		}
		return
	}
	s.groupStats.groups.Add(1)
	s.groupStats.writes.Add(int64(len(ok)))
	changed, all := map[int64]bool{}, false
	for _, w := range ok {
		for id := range w.changed {
			changed[id] = true
		}
		all = all || w.changedAll
	}
	s.committed(changed, all)
}

// errGroupFailed is the cause given to the writes of a group whose
// transaction failed as a whole (the disk, not the write): none of them is
// stored.
var errGroupFailed = errors.New("the transaction it was grouped in failed")

// runInGroup runs w in sqlTx: in a savepoint of its own unless it is
// alone, undone alone when it fails. It reports whether the transaction is
// broken (a savepoint could not be made, undone or released: SQLite may
// have rolled everything back itself, after an I/O error or a full disk),
// after which the group must stop.
func (s *Store) runInGroup(sqlTx *sql.Tx, w *write, alone bool) (broken bool) {
	ctx := w.ctx
	if !alone {
		ctx = context.WithoutCancel(ctx)
		if _, err := sqlTx.ExecContext(ctx, "SAVEPOINT write"); err != nil {
			w.err = entity.Internal("begin write", err)
			return true
		}
	}
	tx := &Tx{s: s, ctx: ctx, tx: sqlTx, write: true, actor: w.actor, now: formatTime(s.now())}
	w.err = s.runWrite(tx, w.fn)
	w.changed, w.changedAll = tx.changed, tx.changedAll
	if alone {
		return false
	}
	if w.err != nil {
		if _, err := sqlTx.ExecContext(ctx, "ROLLBACK TO write"); err != nil {
			return true
		}
	}
	if _, err := sqlTx.ExecContext(ctx, "RELEASE write"); err != nil {
		if w.err == nil {
			w.err = entity.Internal("write", err)
		}
		return true
	}
	return false
}

// runWrite runs one write's fn in tx and finishes it: what it kept in
// memory written, the rules checked over what it changed. A dry run's fn
// ends with errDryRunDone, after which it is judged as its commit would
// be and reported so (and the caller rolls it back).
func (s *Store) runWrite(tx *Tx, fn func(*Tx) error) (err error) {
	defer func() {
		for _, st := range tx.stmts {
			st.Close()
		}
	}()
	defer func() {
		// A panic in fn fails its write, which is rolled back, and only
		// it: the writes grouped with it are another caller's.
		if r := recover(); r != nil {
			err = entity.Internal("write", fmt.Errorf("panic: %v", r))
		}
	}()
	if err := tx.noteStartRids(); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		if errors.Is(err, errDryRunDone) {
			// A dry run is judged as its commit would be, then rolled
			// back: what it reports as fine is what would commit.
			if ferr := tx.finish(); ferr != nil {
				return ferr
			}
		}
		return err
	}
	return tx.finish()
}
