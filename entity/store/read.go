package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/clusto/clusto/entity"
)

// readTx runs fn in one read-only transaction on the read pool, so that
// every query fn makes sees the same committed state. Outside a transaction
// each statement takes its own WAL snapshot, and a write committed between
// two of them would show, say, an entity's version from before the write with
// its attributes from after it.
func (s *Store) readTx(ctx context.Context, fn func(q Reader) error) error {
	tx, err := s.db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return entity.Internal("begin read", err)
	}
	defer tx.Rollback()
	if err := fn(&cachedReader{tx: tx, cache: &s.readStmts, pool: s.db.read}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return entity.Internal("end read", err)
	}
	return nil
}

// stmtCache holds statements prepared on the read pool, by query text.
// database/sql keeps each one prepared on every connection it has run on,
// and a transaction reuses it on its own connection (preparing it there
// the first time), so a read compiles its SQL once per connection instead
// of once per call: parsing and planning were most of the cost of reading
// an entity. The texts are the store's own, a small fixed set; the cap only
// guards against a caller building unbounded variety.
type stmtCache struct {
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool
	closed  bool
	// preparing counts background prepares, which close waits for: one
	// still opening a pool connection after the store closed would reopen
	// the database file (and its WAL) behind the closer's back.
	preparing sync.WaitGroup
}

const stmtCacheMax = 256

// get returns the cached statement for query, or nil when there is none
// yet. A text seen for the first time is prepared in the background: a
// reader holds a pool connection for its transaction, and preparing on the
// pool from it could wait for a connection that other such readers hold.
func (c *stmtCache) get(pool *sql.DB, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st
	}
	if c.closed || c.pending[query] || len(c.stmts)+len(c.pending) >= stmtCacheMax {
		return nil
	}
	if c.pending == nil {
		c.pending = map[string]bool{}
	}
	c.pending[query] = true
	c.preparing.Add(1)
	go c.prepare(pool, query)
	return nil
}

func (c *stmtCache) prepare(pool *sql.DB, query string) {
	defer c.preparing.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := pool.PrepareContext(ctx, query)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, query)
	if err != nil {
		// The query's own error shows when it runs unprepared; a later
		// read tries again.
		return
	}
	if c.closed {
		st.Close()
		return
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[query] = st
}

// close closes every cached statement; the store does it before closing
// its pools.
func (c *stmtCache) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.preparing.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = nil
}

// cachedReader is a read transaction that runs queries through the cache.
type cachedReader struct {
	tx    *sql.Tx
	cache *stmtCache
	pool  *sql.DB
}

// stmt returns query's cached statement bound to the transaction, or nil
// to run the query unprepared.
func (r *cachedReader) stmt(ctx context.Context, query string) *sql.Stmt {
	st := r.cache.get(r.pool, query)
	if st == nil {
		return nil
	}
	return r.tx.StmtContext(ctx, st)
}

func (r *cachedReader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.tx.QueryContext(ctx, query, args...)
}

func (r *cachedReader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.tx.QueryRowContext(ctx, query, args...)
}

// LastChange returns the number of the newest change the transaction sees:
// after a write in it, the number of the change that write recorded.
func (tx *Tx) LastChange() (int64, error) {
	var n sql.NullInt64
	if err := tx.queryRow("SELECT max(id) FROM changes").Scan(&n); err != nil {
		return 0, entity.Internal("read latest change", err)
	}
	return n.Int64, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// queryRow runs a one-row read on the read pool through the statement
// cache, for reads of a single statement that need no snapshot.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.readStmts.get(s.db.read, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.read.QueryRowContext(ctx, query, args...)
}
