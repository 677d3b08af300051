package store

import (
	"context"
	"database/sql"

	"github.com/clusto/clusto/entity"
)

// View is a read-only transaction: one consistent snapshot of the
// inventory for reads of several statements. It has only read methods, so
// a write in a read is a compile error; and it runs on the read pool's
// connections, which SQLite opens read-only, so no statement through it
// can write either. A View is a Reader: the query compiler runs its page
// and its count through one, so that they agree.
type View struct{ tx *Tx }

// View runs fn in a read-only transaction on the read pool. It never waits
// for the writer, and the writer never waits for it.
func (s *Store) View(ctx context.Context, fn func(*View) error) error {
	// Before the snapshot's first statement: what a commit after this
	// point changes, the view may not put in the cache (sites.go).
	gen := s.rackUse.generation()
	sqlTx, err := s.db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return entity.Internal("begin read", err)
	}
	defer sqlTx.Rollback()
	tx := &Tx{s: s, ctx: ctx, tx: sqlTx, actor: entity.DefaultActor, now: formatTime(s.now()), view: true, rackGen: gen}
	defer func() {
		for _, st := range tx.stmts {
			st.Close()
		}
	}()
	return fn(&View{tx: tx})
}

// Context returns the context the view was opened with.
func (v *View) Context() context.Context { return v.tx.ctx }

// Get loads an entity as the view sees it.
func (v *View) Get(name string) (*entity.Entity, error) { return v.tx.Get(name) }

// LastChange returns the number of the newest change the view sees.
func (v *View) LastChange() (int64, error) { return v.tx.LastChange() }

// BlockStatus reports an IP block's size, use and a page of its
// allocations (see Tx.BlockStatus).
func (v *View) BlockStatus(name, after string, limit int) (*entity.BlockStatus, error) {
	return v.tx.BlockStatus(name, after, limit)
}

// Elevation draws a rack unit by unit (see Tx.Elevation).
func (v *View) Elevation(rack string) (*entity.Elevation, error) { return v.tx.Elevation(rack) }

// AllocationsOf lists the addresses an entity holds (see Tx.AllocationsOf).
func (v *View) AllocationsOf(name string) ([]entity.Allocation, error) {
	return v.tx.AllocationsOf(name)
}

// NextFreeIP returns the lowest free address of a block (see Tx.NextFreeIP).
func (v *View) NextFreeIP(block string) (string, error) { return v.tx.NextFreeIP(block) }

// QueryContext runs a read in the view's snapshot.
func (v *View) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return cached{v.tx}.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a one-row read in the view's snapshot.
func (v *View) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return cached{v.tx}.QueryRowContext(ctx, query, args...)
}

// Reader returns a Reader over the transaction's own state, for the query
// compiler's SELECTs inside a write (query allocation). It first writes
// what the transaction keeps in memory until commit (new versions, new
// blocks' free-space runs) and forgets its cached rows, so that what the
// SQL reads is exactly what the transaction has done so far.
func (tx *Tx) Reader() (Reader, error) {
	if err := tx.writeAllRuns(); err != nil {
		return nil, err
	}
	if err := tx.flushVersions(); err != nil {
		return nil, err
	}
	return cached{tx}, nil
}

// Sites lists one level of the containment tree with the racks, devices
// and rack units under each place (see Tx.Sites).
func (v *View) Sites(parent string) ([]entity.Site, error) { return v.tx.Sites(parent) }

// GetMany loads the named entities in the view's snapshot, with the set
// statements of Store.GetMany (see Tx.GetMany); every name must exist.
func (v *View) GetMany(names []string) ([]*entity.Entity, error) { return v.tx.GetMany(names) }

// GetBrief reads the named entities with only the attributes of keys, in
// the view's snapshot (see Tx.GetBrief).
func (v *View) GetBrief(names, keys []string) ([]*entity.Entity, error) {
	return v.tx.GetBrief(names, keys)
}
