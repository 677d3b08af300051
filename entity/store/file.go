package store

// Opening the inventory file: the one place that knows DSN syntax and
// pragmas, and that makes the pools. The pools never leave this package:
// the write pool's one connection is the Store's single writer, and the
// read pool is handed out only as a Reader.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	"github.com/clusto/clusto/schema"
)

// file is an open inventory file: one writer connection, through which every
// write goes in BEGIN IMMEDIATE transactions, and a pool of read-only
// connections that never block it (WAL).
type file struct {
	// write has exactly one connection; BeginTx on it issues BEGIN IMMEDIATE.
	// The Store holds that connection for its life: it is the single writer.
	write *sql.DB
	// read is a pool of read-only connections.
	read *sql.DB
	// health is one read-only connection of its own for the liveness
	// check, so that a read pool busy with heavy queries cannot make the
	// server look dead: it proves the file answers without queueing
	// behind them.
	health *sql.DB
	// path is the file's absolute path.
	path string
}

// FileOptions tune how the file is opened; the zero value is what the
// server uses.
type FileOptions struct {
	// ReadConns caps the read pool; 0 means 2 x GOMAXPROCS (at least 4).
	ReadConns int
	// BusyTimeoutMillis is how long a connection waits on a lock; 0 means 10 s.
	BusyTimeoutMillis int
	// MustExist refuses a path with no file (an error matching
	// fs.ErrNotExist) instead of creating an empty inventory there: the
	// admin commands that read a database must not turn a mistyped path
	// into a new, empty one.
	MustExist bool
	// MapBytes, when positive, lets the read pool read the file through a
	// memory map of up to that many bytes (PRAGMA mmap_size) instead of
	// copying each page into its own cache. Every commit empties the read
	// connections' page caches, so the first reads after a write read the
	// pages again: through the map they come from the kernel's page cache
	// without a system call each (a sites page of the 100k inventory after
	// a write: 60 ms without, 33 ms with). A server sets it; one-shot
	// commands (export) do not, since the mapped pages they touch count in
	// their resident size.
	MapBytes int64
}

// dsn builds a file: URI so that SQLite sees its own URI parameters
// (mode=ro) and the driver sees its _pragma and _txlock parameters.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: path}
	// url.URL escapes '?' and '#' in the path, which SQLite URI parsing expects.
	return "file:" + u.EscapedPath() + "?" + params.Encode()
}

// openFile opens (creating if absent, unless opts.MustExist) the inventory at
// path and migrates it to the latest schema. A file written by a newer
// build is refused with ErrTooNew.
func openFile(ctx context.Context, path string, opts FileOptions) (*file, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if opts.MustExist {
		if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open database %s: %w", path, fs.ErrNotExist)
		}
	}
	busy := opts.BusyTimeoutMillis
	if busy <= 0 {
		busy = 10000
	}
	common := func() url.Values {
		v := url.Values{}
		// The driver applies busy_timeout first; every per-connection
		// setting must be in the DSN to reach every pooled connection.
		v.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy))
		v.Add("_pragma", "foreign_keys(1)")
		v.Add("_pragma", "synchronous(FULL)")
		v.Add("_pragma", "cache_size(-32000)")
		v.Add("_pragma", "temp_store(MEMORY)")
		return v
	}
	wp := common()
	wp.Add("_pragma", "journal_mode(WAL)")
	wp.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", dsn(abs, wp))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}

	rp := common()
	rp.Set("mode", "ro")
	rp.Add("_pragma", "query_only(1)")
	if opts.MapBytes > 0 {
		rp.Add("_pragma", fmt.Sprintf("mmap_size(%d)", opts.MapBytes))
	}
	r, err := sql.Open("sqlite", dsn(abs, rp))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s for reading: %w", path, err)
	}
	n := opts.ReadConns
	if n <= 0 {
		n = max(4, 2*runtime.GOMAXPROCS(0))
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open database %s for reading: %w", path, err)
	}
	h, err := sql.Open("sqlite", dsn(abs, rp))
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open database %s for health checks: %w", path, err)
	}
	h.SetMaxOpenConns(1)
	h.SetMaxIdleConns(1)
	h.SetConnMaxIdleTime(0)
	return &file{write: w, read: r, health: h, path: abs}, nil
}

// close closes the pools.
func (db *file) close() error {
	return errors.Join(db.health.Close(), db.read.Close(), db.write.Close())
}

// version reports the schema version of the file.
func (db *file) version(ctx context.Context) (int, error) {
	var v int
	if err := db.read.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func migrate(ctx context.Context, w *sql.DB) error {
	ms, err := schema.Migrations()
	if err != nil {
		return err
	}
	// BEGIN IMMEDIATE takes the write lock first, so two processes opening a
	// new file cannot both apply migration 1; it also creates the WAL files
	// that read-only connections need before they can open.
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("%w: the file is at version %d, this build knows versions up to %d; use a newer clustod", schema.ErrTooNew, current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		// PRAGMA takes no bound parameters; the version is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.Version)); err != nil {
			return fmt.Errorf("record schema version %d: %w", m.Version, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	return nil
}

// vacuumInto writes a consistent, compacted copy of the database to dest
// (which must not exist). It runs on a connection of its own: VACUUM INTO
// only reads, so in WAL mode writers go on while it copies one snapshot,
// but SQLite refuses it on query_only connections like the read pool's.
func (db *file) vacuumInto(ctx context.Context, dest string) error {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(10000)")
	c, err := sql.Open("sqlite", dsn(db.path, v))
	if err != nil {
		return fmt.Errorf("open for backup: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
		return fmt.Errorf("vacuum into %s: %w", dest, err)
	}
	return nil
}

// openImmutable opens a finished copy of a database, such as VACUUM INTO
// writes, to read it. It is opened immutable and read-only: nothing is
// written to the file and no -wal, -shm or lock file appears beside it, so a
// backup stays exactly as it was made. Nothing may change the file while it
// is open.
func openImmutable(path string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %s read-only: %w", path, err)
	}
	v := url.Values{}
	v.Set("mode", "ro")
	v.Set("immutable", "1")
	v.Add("_pragma", "query_only(1)")
	c, err := sql.Open("sqlite", dsn(abs, v))
	if err != nil {
		return nil, fmt.Errorf("open %s read-only: %w", path, err)
	}
	c.SetMaxOpenConns(1)
	return c, nil
}
