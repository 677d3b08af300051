package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// Store is the inventory. It is safe for concurrent use: writes are
// serialised through one connection, reads run on a pool.
type Store struct {
	db      *file
	drivers *drivers.Registry
	now     func() time.Time
	// writeWait, when set, observes how long each write waited for the
	// writer connection and its BEGIN IMMEDIATE.
	writeWait atomic.Value // func(time.Duration)
	// readStmts are the prepared statements of snapshot reads (snapshot.go).
	readStmts stmtCache
	// The single writer: the write pool's one connection, held for the
	// store's life, taken by one transaction at a time (writer is its
	// token), with the statements prepared on it kept across transactions
	// (writeStmts, touched only by the holder of writer): the rules run a
	// few dozen statements at every commit, and preparing them each time
	// cost more than running them.
	writeConn  *sql.Conn
	writer     chan struct{}
	writeStmts map[string]*sql.Stmt
	closeOnce  sync.Once
	closeErr   error
	// gate keeps dry runs from making real writes wait (dryrun.go).
	gate *writerGate
	// queue holds the writes waiting for the writer, and groupStats
	// counts the groups they were committed in (group.go).
	queue      writeQueue
	groupStats groupStats
	// tokens keeps the tokens verified since the file last changed.
	tokens tokenCache
	// hooks are told what each commit changed (OnCommit).
	hooksMu sync.Mutex
	hooks   []func(changed []int64)
	// rackUse keeps what each rack holds, for Sites (sites.go).
	rackUse rackUseCache
}

// Options configure Open.
type Options struct {
	// Drivers is the driver registry; nil means drivers.Builtin().
	Drivers *drivers.Registry
	// File tunes how the SQLite file is opened.
	File FileOptions
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Open opens (creating and migrating if needed) the inventory file at path.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	db, err := openFile(ctx, path, opts.File)
	if err != nil {
		return nil, err
	}
	reg := opts.Drivers
	if reg == nil {
		reg = drivers.Builtin()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	wc, err := db.write.Conn(ctx)
	if err != nil {
		db.close()
		return nil, entity.Internal("open the writer", err)
	}
	s := &Store{db: db, drivers: reg, now: now, writeConn: wc, writer: make(chan struct{}, 1), writeStmts: map[string]*sql.Stmt{}, gate: newWriterGate()}
	s.OnCommit(s.rackUse.invalidate)
	// The writer's connection is open, so the WAL index exists, and stays
	// while the store is open.
	s.tokens.probe = openWALProbe(db.path + "-shm")
	return s, nil
}

// Close closes the database, once it holds the writer (no write is left
// running). Later calls return the first call's answer.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.readStmts.close()
		s.writer <- struct{}{} // no transaction is running, nor will one start
		for _, st := range s.writeStmts {
			st.Close()
		}
		s.tokens.close()
		s.closeErr = errors.Join(s.writeConn.Close(), s.db.close())
	})
	return s.closeErr
}

// maxWriteStmts caps the statements kept prepared on the writer; past it
// a transaction prepares its statements for itself.
const maxWriteStmts = 512

// ObserveWriteWait registers fn to be told how long each write transaction
// waited to begin (for metrics).
func (s *Store) ObserveWriteWait(fn func(time.Duration)) { s.writeWait.Store(fn) }

// Size returns the bytes the database occupies on disk (file and WAL).
func (s *Store) Size() int64 {
	var n int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(s.db.path + suffix); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Path returns the absolute path of the inventory file.
func (s *Store) Path() string { return s.db.path }

// ReadPoolStats reports the read pool's use (for metrics and tests).
func (s *Store) ReadPoolStats() sql.DBStats { return s.db.read.Stats() }

// Drivers returns the driver registry.
func (s *Store) Drivers() *drivers.Registry { return s.drivers }

// Reader runs reads: the SELECTs of the store itself and of the query
// compiler. It is all the store hands out instead of its pools, and what it
// wraps cannot be recovered from it: the read pool's read-only connections
// (Store.Reader), a read-only transaction (a View), or a write transaction
// seen from inside, with what it holds in memory written first (Tx.Reader).
type Reader interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Reader returns the read pool as a Reader: each statement on a read-only
// connection of its own, through the store's statement cache. A read of
// several statements that must agree takes a View instead; the Reader can
// open one (its View method is the store's), which is how the query
// compiler reads a page and its total in one snapshot.
func (s *Store) Reader() Reader { return poolReader{s} }

// poolReader is the read pool behind the Reader interface.
type poolReader struct{ s *Store }

// View opens a View on the store (see Store.View).
func (r poolReader) View(ctx context.Context, fn func(*View) error) error { return r.s.View(ctx, fn) }

func (r poolReader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.s.readStmts.get(r.s.db.read, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.s.db.read.QueryContext(ctx, query, args...)
}

func (r poolReader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return r.s.queryRow(ctx, query, args...)
}

// Visible returns the SQL condition under which rows of the versioned table
// with the given alias are visible: the current rows when at is 0, else the
// rows as they were just after change at. The condition holds only our own
// text and placeholders; at is bound.
func Visible(alias string, at int64) (string, []any) {
	if at <= 0 {
		return alias + ".until IS NULL", nil
	}
	return "(" + alias + ".since <= ? AND (" + alias + ".until IS NULL OR " + alias + ".until > ?))", []any{at, at}
}

const timeLayout = time.RFC3339Nano

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeLayout, s)
	return t
}

// entRow is an entity's current row.
type entRow struct {
	rid, id, version, since int64
	name, driver            string
	kind                    entity.Kind
	created, updated        string
}

func scanEntRow(sc interface{ Scan(...any) error }) (*entRow, error) {
	var r entRow
	var kind string
	if err := sc.Scan(&r.rid, &r.id, &r.name, &r.driver, &kind, &r.version, &r.created, &r.updated, &r.since); err != nil {
		return nil, err
	}
	r.kind = entity.Kind(kind)
	return &r, nil
}

const entCols = "e.rid, e.id, e.name, e.driver, e.kind, e.version, e.created_at, e.updated_at, e.since"

func (s *Store) rowByName(ctx context.Context, q Reader, name string, at int64) (*entRow, error) {
	if err := entity.ValidateName(name); err != nil {
		return nil, err
	}
	vis, args := Visible("e", at)
	r, err := scanEntRow(q.QueryRowContext(ctx, "SELECT "+entCols+" FROM entities e WHERE e.name = ? AND "+vis, append([]any{name}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		if at > 0 {
			return nil, entity.Errorf(entity.KindNotFound, "no entity named %q as of change %d", name, at)
		}
		return nil, entity.Errorf(entity.KindNotFound, "no entity named %q", name)
	}
	if err != nil {
		return nil, entity.Internal("look up entity", err)
	}
	return r, nil
}

// Get reads the entity named name as it is now.
func (s *Store) Get(ctx context.Context, name string) (*entity.Entity, error) {
	return s.GetAt(ctx, name, 0)
}

// GetAt reads the entity named name as it was just after change at (0: now).
func (s *Store) GetAt(ctx context.Context, name string, at int64) (*entity.Entity, error) {
	if at < 0 {
		return nil, entity.Errorf(entity.KindInvalid, "change number %d must not be negative", at)
	}
	var e *entity.Entity
	err := s.readTx(ctx, func(q Reader) error {
		var err error
		e, err = s.load(ctx, q, name, at)
		return err
	})
	return e, err
}

func (s *Store) load(ctx context.Context, q Reader, name string, at int64) (*entity.Entity, error) {
	r, err := s.rowByName(ctx, q, name, at)
	if err != nil {
		return nil, err
	}
	e := &entity.Entity{ID: r.id, Name: r.name, Driver: r.driver, Kind: r.kind, Version: r.version,
		CreatedAt: parseTime(r.created), UpdatedAt: parseTime(r.updated),
		Attrs: []entity.Attr{}, Parents: []entity.Relation{}, Children: []entity.Relation{}, Links: []entity.Link{}}
	if e.Attrs, err = s.attrsOf(ctx, q, r.id, at, "", nil); err != nil {
		return nil, err
	}
	if e.Parents, err = s.relations(ctx, q, r.id, at, true); err != nil {
		return nil, err
	}
	if e.Children, err = s.relations(ctx, q, r.id, at, false); err != nil {
		return nil, err
	}
	if e.Links, err = s.links(ctx, q, r, at); err != nil {
		return nil, err
	}
	return e, nil
}

// attrsOf lists an entity's attributes, all or those of one key (and subkey).
func (s *Store) attrsOf(ctx context.Context, q Reader, id, at int64, key string, subkey *string) ([]entity.Attr, error) {
	vis, vargs := Visible("a", at)
	query := "SELECT a.key, a.subkey, a.number, a.type, a.value FROM attrs a WHERE a.entity_id = ? AND " + vis
	args := append([]any{id}, vargs...)
	if key != "" {
		query += " AND a.key = ?"
		args = append(args, key)
		if subkey != nil {
			query += " AND a.subkey = ?"
			args = append(args, *subkey)
		}
	}
	query += " ORDER BY a.key, a.subkey, a.number, a.rid"
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, entity.Internal("read attributes", err)
	}
	defer rows.Close()
	attrs := []entity.Attr{}
	for rows.Next() {
		a, err := scanAttr(rows)
		if err != nil {
			return nil, entity.Internal("read attributes", err)
		}
		attrs = append(attrs, a)
	}
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("read attributes", err)
	}
	return attrs, nil
}

// relations lists the contains/member connections of an entity: its
// parents (up) or its children (down).
func (s *Store) relations(ctx context.Context, q Reader, id, at int64, up bool) ([]entity.Relation, error) {
	self, other := "c.a", "c.b"
	order := "c.type, e.name"
	if up {
		self, other = "c.b", "c.a"
	} else {
		order = "c.type, c.position IS NULL, c.position, e.name"
	}
	cvis, cargs := Visible("c", at)
	evis, eargs := Visible("e", at)
	query := "SELECT c.type, e.name, e.driver, c.position, c.height FROM connections c JOIN entities e ON e.id = " + other + " AND " + evis +
		" WHERE " + self + " = ? AND c.type IN ('contains','member') AND " + cvis + " ORDER BY " + order
	args := append(append(eargs, id), cargs...)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, entity.Internal("read connections", err)
	}
	defer rows.Close()
	rels := []entity.Relation{}
	for rows.Next() {
		r, err := scanRelation(rows)
		if err != nil {
			return nil, entity.Internal("read connections", err)
		}
		rels = append(rels, r)
	}
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("read connections", err)
	}
	return rels, nil
}

func (s *Store) links(ctx context.Context, q Reader, r *entRow, at int64) ([]entity.Link, error) {
	cvis, cargs := Visible("c", at)
	evis, eargs := Visible("e", at)
	rows, err := q.QueryContext(ctx, "SELECT c.a_port, c.port_type, e.name, c.b_port FROM connections c JOIN entities e ON e.id = c.b AND "+evis+
		" WHERE c.a = ? AND c.type = 'link' AND "+cvis, append(append(eargs, r.id), cargs...)...)
	if err != nil {
		return nil, entity.Internal("read links", err)
	}
	defer rows.Close()
	links := []entity.Link{}
	for rows.Next() {
		var l entity.Link
		if err := rows.Scan(&l.Port, &l.Type, &l.Peer, &l.PeerPort); err != nil {
			return nil, entity.Internal("read links", err)
		}
		links = append(links, l)
	}
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("read links", err)
	}
	s.sortPorts(r.driver, links)
	return links, nil
}

// sortPorts orders links by the driver's port order (eth0, eth1, console;
// 1, 2, ... 48), falling back to natural order for undeclared names.
func (s *Store) sortPorts(driver string, links []entity.Link) {
	rank := map[string]int{}
	if d, ok := s.drivers.Lookup(driver); ok {
		for i, p := range d.PortList() {
			rank[p.Name] = i
		}
	}
	sort.SliceStable(links, func(i, j int) bool {
		ri, iok := rank[links[i].Port]
		rj, jok := rank[links[j].Port]
		if iok && jok {
			return ri < rj
		}
		if iok != jok {
			return iok
		}
		return naturalLess(links[i].Port, links[j].Port)
	})
}

// naturalLess compares strings with digit runs compared as numbers.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := leadingDigits(a), leadingDigits(b)
		if da != "" && db != "" {
			na, _ := strconv.ParseUint(da, 10, 64)
			nb, _ := strconv.ParseUint(db, 10, 64)
			if na != nb {
				return na < nb
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && i < 18 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// Attrs reads an entity's attributes, all of them or those of one key
// (and, when subkey is not nil, one subkey).
func (s *Store) Attrs(ctx context.Context, name, key string, subkey *string) ([]entity.Attr, error) {
	r, err := s.rowByName(ctx, s.db.read, name, 0)
	if err != nil {
		return nil, err
	}
	if key != "" {
		if err := entity.ValidateKey("key", key); err != nil {
			return nil, err
		}
	}
	return s.attrsOf(ctx, s.db.read, r.id, 0, key, subkey)
}

// Merged reads an entity's attributes followed by those of its containers
// and groups, nearest first (Clusto's merge_container_attrs): first its own,
// then its physical parent's and its groups' (parent first, groups by name),
// then theirs, each entity once. Each attribute's From names its owner.
func (s *Store) Merged(ctx context.Context, name string) ([]entity.Attr, error) {
	return s.MergedAt(ctx, name, 0)
}

// LatestChange returns the number of the newest change (0 for an empty log).
func (s *Store) LatestChange(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	if err := s.db.read.QueryRowContext(ctx, "SELECT max(id) FROM changes").Scan(&n); err != nil {
		return 0, entity.Internal("read latest change", err)
	}
	return n.Int64, nil
}

// Health returns the number of the newest change, read on the database's
// health connection (the file's health pool) rather than the read pool: the
// liveness check proves the database answers without waiting behind
// heavy reads.
func (s *Store) Health(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	if err := s.db.health.QueryRowContext(ctx, "SELECT max(id) FROM changes").Scan(&n); err != nil {
		return 0, entity.Internal("health check", err)
	}
	return n.Int64, nil
}

const changeCols = "id, at, actor, op, entity, peer, before, after"

func scanChanges(rows *sql.Rows) ([]entity.Change, error) {
	defer rows.Close()
	out := []entity.Change{}
	for rows.Next() {
		var c entity.Change
		var at string
		var before, after sql.NullString
		if err := rows.Scan(&c.Number, &at, &c.Actor, &c.Op, &c.Entity, &c.Peer, &before, &after); err != nil {
			return nil, entity.Internal("read changes", err)
		}
		c.Time = parseTime(at)
		c.Before = rawOrNull(before)
		c.After = rawOrNull(after)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("read changes", err)
	}
	return out, nil
}

func rawOrNull(s sql.NullString) json.RawMessage {
	if !s.Valid || s.String == "" {
		return json.RawMessage("null")
	}
	return json.RawMessage(s.String)
}

// Changes lists changes with numbers greater than since, oldest first, at
// most limit (1-1000, default 100).
func (s *Store) Changes(ctx context.Context, since int64, limit int) ([]entity.Change, error) {
	limit = clampLimit(limit)
	rows, err := s.db.read.QueryContext(ctx, "SELECT "+changeCols+" FROM changes WHERE id > ? ORDER BY id LIMIT ?", since, limit)
	if err != nil {
		return nil, entity.Internal("read changes", err)
	}
	return scanChanges(rows)
}

// History lists the changes about the entity named name (as subject or as
// the other side of a connection), oldest first, after change since. A
// deleted entity's history is found by its last name.
func (s *Store) History(ctx context.Context, name string, since int64, limit int) ([]entity.Change, error) {
	id, err := s.historyID(ctx, name)
	if err != nil {
		return nil, err
	}
	limit = clampLimit(limit)
	rows, err := s.db.read.QueryContext(ctx, "SELECT "+changeCols+` FROM changes WHERE id IN (
		SELECT id FROM changes WHERE entity_id = ? AND id > ? UNION SELECT id FROM changes WHERE peer_id = ? AND id > ?)
		ORDER BY id LIMIT ?`, id, since, id, since, limit)
	if err != nil {
		return nil, entity.Internal("read history", err)
	}
	return scanChanges(rows)
}

func clampLimit(limit int) int {
	if limit <= 0 {
		return 100
	}
	return min(limit, 1000)
}

// Exists reports whether an entity with this name exists now.
func (s *Store) Exists(ctx context.Context, name string) (bool, error) {
	_, err := s.rowByName(ctx, s.db.read, name, 0)
	if entity.IsKind(err, entity.KindNotFound) {
		return false, nil
	}
	return err == nil, err
}

var _ = fmt.Sprintf

// IPBlocks lists every ipblock with a cidr, by name.
func (s *Store) IPBlocks(ctx context.Context) ([]entity.BlockCIDR, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT e.name, a.value FROM entities e JOIN attrs a ON a.entity_id = e.id AND a.key = 'cidr' AND a.until IS NULL
		WHERE e.until IS NULL AND e.driver = 'ipblock' ORDER BY e.name`)
	if err != nil {
		return nil, entity.Internal("list blocks", err)
	}
	defer rows.Close()
	var out []entity.BlockCIDR
	for rows.Next() {
		var b entity.BlockCIDR
		if err := rows.Scan(&b.Name, &b.CIDR); err != nil {
			return nil, entity.Internal("list blocks", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// Names lists every current entity name, sorted.
func (s *Store) Names(ctx context.Context) ([]string, error) {
	rows, err := s.db.read.QueryContext(ctx, "SELECT name FROM entities WHERE until IS NULL ORDER BY name")
	if err != nil {
		return nil, entity.Internal("list names", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, entity.Internal("list names", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
