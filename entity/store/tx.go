package store

// The transaction engine: Update opens the single writer's BEGIN IMMEDIATE
// transaction; its statement cache, change recording, the version flush
// and entity id reservation live here. What a transaction does to
// attributes is attrs.go; creating, renaming and deleting entities is
// lifecycle.go.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// Tx is one write transaction. Each operation on it is one change in the
// history; all of them commit together or not at all.
type Tx struct {
	s     *Store
	ctx   context.Context
	tx    *sql.Tx
	write bool // on the writer (Update), not a read (View)
	// view: a View on the read pool, whose statements come from the
	// pool's shared cache (stmt).
	view bool
	// rackGen is the rack use cache's generation when the view began
	// (sites.go).
	rackGen uint64
	actor   string
	now     string
	stmts   map[string]*sql.Stmt
	// firstCid is the first change this transaction recorded (0: none yet).
	firstCid int64
	// touched maps entities whose version must move to the first change
	// that touched them.
	touched map[int64]int64
	// rows caches current entity rows by name between version flushes.
	rows map[string]*entRow
	// created maps the ids of entities created in this transaction to the
	// change that created them.
	created map[int64]int64
	// freeIDs are entity ids reserved by this transaction, not yet used;
	// idsReserved is the size of the last block reserved.
	freeIDs     []int64
	idsReserved int
	// kids caches child blocks by parent block id (see childBlocks).
	kids map[int64][]childBlock
	// fresh is what is known of entities created here (see fresh.go).
	fresh map[int64]*freshEntity
	// startRid is each versioned table's last rowid when the transaction
	// began: the rules look at the rows past it (see invariants.go).
	startRid map[string]int64
	// changed holds every entity whose answer (GET /entities/{name}) the
	// transaction changes: its own rows, or the names and lists of what it
	// is connected to. The commit hooks get it (see OnCommit).
	changed map[int64]bool
	// changedAll says every entity's answer may have changed (a drivers
	// reload).
	changedAll bool
}

// noteStartRids records where each versioned table ended when the
// transaction began (max of an integer primary key is one seek).
func (tx *Tx) noteStartRids() error {
	var e, a, c, i int64
	if err := tx.queryRow(`SELECT coalesce((SELECT max(rid) FROM entities), 0), coalesce((SELECT max(rid) FROM attrs), 0),
		coalesce((SELECT max(rid) FROM connections), 0), coalesce((SELECT max(rid) FROM ip_allocations), 0)`).Scan(&e, &a, &c, &i); err != nil {
		return entity.Internal("begin write", err)
	}
	tx.startRid = map[string]int64{"entities": e, "attrs": a, "connections": c, "ip_allocations": i}
	return nil
}

// Update runs fn as one write on the single writer connection, committed
// if fn returns nil: alone in a BEGIN IMMEDIATE transaction, or in a
// savepoint of one shared with the writes that queued beside it (group
// commit, group.go). Either way it is atomic and checked on its own, and
// Update returns only once it is committed or rolled back. Any error
// rolls back everything fn did, and so does a panic, which is returned
// as an internal error. actor is recorded on every change.
func (s *Store) Update(ctx context.Context, actor string, fn func(*Tx) error) error {
	if actor == "" {
		actor = entity.DefaultActor
	}
	// A real write preempts the dry run on the writer (dryrun.go).
	defer s.gate.enter(ctx)()
	w := &write{ctx: ctx, actor: actor, fn: fn, queued: time.Now(), done: make(chan struct{})}
	dry := ctx.Value(dryRunKey{}) != nil
	if !dry {
		s.queue.add(w)
	}
	select {
	case s.writer <- struct{}{}:
	case <-w.done:
		return w.err
	case <-ctx.Done():
		if dry || s.queue.remove(w) {
			return entity.Internal("begin write", ctx.Err())
		}
		<-w.done // a group took it: its answer is coming
		return w.err
	}
	defer func() { <-s.writer }()
	if dry {
		// A dry run runs alone, with its own context: the write that
		// preempts it cancels it mid-statement (dryrun.go).
		s.runGroup([]*write{w})
		return w.err
	}
	group := s.queue.take(w, maxGroup)
	if group == nil {
		// Another writer's group took this one while it waited.
		<-w.done
		return w.err
	}
	s.runGroup(group)
	return w.err
}

// noteChanged records that the transaction changes entity id's answer.
func (tx *Tx) noteChanged(id int64) {
	if tx.changed == nil {
		tx.changed = map[int64]bool{}
	}
	tx.changed[id] = true
}

// OnCommit registers fn to be told, after every write transaction commits
// and before Update returns, the ids of the entities whose answer it
// changed (nil after a drivers reload: every entity's may have, since the
// drivers order ports). A cache of answers drops them there, so that no
// read after an acknowledged write is served from before it. fn runs on
// the writer: it must be quick and must not write.
func (s *Store) OnCommit(fn func(changed []int64)) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	s.hooks = append(s.hooks, fn)
}

// committed calls the commit hooks with the ids of changed, or nil when
// all is set (every entity may have changed).
func (s *Store) committed(changed map[int64]bool, all bool) {
	s.hooksMu.Lock()
	hooks := s.hooks
	s.hooksMu.Unlock()
	if len(hooks) == 0 || (!all && len(changed) == 0) {
		return
	}
	var ids []int64
	if !all {
		ids = make([]int64, 0, len(changed))
		for id := range changed {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	}
	for _, fn := range hooks {
		fn(ids)
	}
}

// finish writes what the transaction kept in memory (new blocks' runs,
// versions) and checks the rules over what it touched.
func (tx *Tx) finish() error {
	if err := tx.writeAllRuns(); err != nil {
		return err
	}
	if err := tx.flushVersions(); err != nil {
		return err
	}
	return tx.checkCommit()
}

// Context returns the transaction's context.
func (tx *Tx) Context() context.Context { return tx.ctx }

// Actor returns who the changes are recorded as.
func (tx *Tx) Actor() string { return tx.actor }

// Store returns the store the transaction belongs to.
func (tx *Tx) Store() *Store { return tx.s }

// stmt returns a statement prepared on the transaction's connection,
// cached for the transaction's life: bulk loads repeat a few statements
// thousands of times. (Preparing on the pool would wait for the single
// writer connection, which this transaction holds.)
func (tx *Tx) stmt(query string) (*sql.Stmt, error) {
	if tx.write {
		// Statements prepared on the writer connection run inside the
		// transaction open on it, and outlive it.
		if st, ok := tx.s.writeStmts[query]; ok {
			return st, nil
		}
		if len(tx.s.writeStmts) < maxWriteStmts {
			st, err := tx.s.writeConn.PrepareContext(tx.ctx, query)
			if err != nil {
				return nil, err
			}
			tx.s.writeStmts[query] = st
			return st, nil
		}
	}
	if st, ok := tx.stmts[query]; ok {
		return st, nil
	}
	if tx.view && len(tx.stmts) < maxTxStmts {
		// A View is one short read transaction: preparing its statements
		// anew in each (a query allocation's candidates, 120 us a request)
		// cost more than running them. The read pool's statements are kept
		// prepared on each of its connections.
		if shared := tx.s.readStmts.get(tx.s.db.read, query); shared != nil {
			st := tx.tx.StmtContext(tx.ctx, shared)
			if tx.stmts == nil {
				tx.stmts = map[string]*sql.Stmt{}
			}
			tx.stmts[query] = st
			return st, nil
		}
	}
	if len(tx.stmts) >= maxTxStmts {
		// Queries built with a varying shape must not grow the cache
		// without bound over a long batch. Evicting could close a
		// statement whose rows are still being read, so past the cap
		// the callers run the query unprepared instead.
		return nil, errStmtCacheFull
	}
	st, err := tx.tx.PrepareContext(tx.ctx, query)
	if err != nil {
		return nil, err
	}
	if tx.stmts == nil {
		tx.stmts = map[string]*sql.Stmt{}
	}
	tx.stmts[query] = st
	return st, nil
}

var errStmtCacheFull = errors.New("statement cache full")

// maxTxStmts caps a transaction's statement cache. The write paths use a
// few dozen distinct statements.
const maxTxStmts = 256

// cached runs the store's shared read helpers (which take a Reader) on
// the transaction's connection through its statement cache, so a bulk
// load does not prepare the same lookup once per row.
type cached struct{ tx *Tx }

func (q cached) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := q.tx.stmt(query)
	if err != nil {
		// The cache is full or the statement failed to prepare: running it
		// directly reports the same preparation error, if any.
		return q.tx.tx.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (q cached) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := q.tx.stmt(query)
	if err != nil {
		return q.tx.tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (tx *Tx) exec(what, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	st, err := tx.stmt(query)
	switch {
	case err == nil:
		res, err = st.ExecContext(tx.ctx, args...)
	case errors.Is(err, errStmtCacheFull):
		res, err = tx.tx.ExecContext(tx.ctx, query, args...)
	}
	if err != nil {
		return nil, entity.Internal(what, err)
	}
	return res, nil
}

func (tx *Tx) queryRow(query string, args ...any) *sql.Row {
	return cached{tx}.QueryRowContext(tx.ctx, query, args...)
}

// query runs a prepared, cached statement returning rows.
func (tx *Tx) query(query string, args ...any) (*sql.Rows, error) {
	return cached{tx}.QueryContext(tx.ctx, query, args...)
}

func (tx *Tx) row(name string) (*entRow, error) {
	if r, ok := tx.rows[name]; ok {
		return r, nil
	}
	r, err := tx.s.rowByName(tx.ctx, cached{tx}, name, 0)
	if err != nil {
		return nil, err
	}
	if tx.rows == nil {
		tx.rows = map[string]*entRow{}
	}
	tx.rows[name] = r
	return r, nil
}

// forget drops a name from the row cache (it was renamed or deleted).
func (tx *Tx) forget(names ...string) {
	for _, n := range names {
		delete(tx.rows, n)
	}
}

// Get reads an entity inside the transaction, seeing its uncommitted writes.
func (tx *Tx) Get(name string) (*entity.Entity, error) {
	if err := tx.flushVersions(); err != nil {
		return nil, err
	}
	return tx.s.load(tx.ctx, cached{tx}, name, 0)
}

// GetMany loads the named entities as the transaction sees them, in the
// order of names, with the statements of Store.GetMany (five for them
// all, not five each); every name must exist.
func (tx *Tx) GetMany(names []string) ([]*entity.Entity, error) {
	if err := tx.flushVersions(); err != nil {
		return nil, err
	}
	out, err := tx.s.loadMany(tx.ctx, cached{tx}, names, 0)
	if err != nil {
		return nil, err
	}
	if err := NotFoundAmong(names, out, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckVersion fails with precondition_failed unless the entity is at version.
func (tx *Tx) CheckVersion(name string, version int64) error {
	r, err := tx.row(name)
	if err != nil {
		return err
	}
	if r.version != version {
		return entity.Errorf(entity.KindPrecondition, "%s is at version %d, not %d: it changed since you read it", name, r.version, version).
			With("version", r.version)
	}
	return nil
}

// The before/after records of the most frequent changes. Their fields are
// in key order so that they encode exactly as the maps they replace did
// (encoding/json sorts map keys), at a fraction of the cost in bulk loads.
type (
	createChange struct {
		Attrs  []entity.Attr `json:"attrs"`
		Driver string        `json:"driver"`
		Kind   drivers.Kind  `json:"kind"`
		Name   string        `json:"name"`
	}
	containChange struct {
		Child    string `json:"child"`
		Height   any    `json:"height"`
		Parent   string `json:"parent"`
		Position any    `json:"position"`
		Type     string `json:"type"`
	}
	memberChange struct {
		Group  string `json:"group"`
		Member string `json:"member"`
		Type   string `json:"type"`
	}
	linkChange struct {
		A     string `json:"a"`
		APort string `json:"a_port"`
		B     string `json:"b"`
		BPort string `json:"b_port"`
		Type  string `json:"type"`
	}
)

// appendJSON writes a change record's JSON by hand, exactly as
// encoding/json would: a server's create record, with its attributes, is
// the most frequent record of a bulk load, and encoding/json re-reads the
// output of each attribute's MarshalJSON.
func (c createChange) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"attrs":`...)
	if c.Attrs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, a := range c.Attrs {
			if i > 0 {
				b = append(b, ',')
			}
			j, err := a.MarshalJSON() // compact and escaped: it is json.Marshal's output
			if err != nil {
				return nil, err
			}
			b = append(b, j...)
		}
		b = append(b, ']')
	}
	for _, f := range [...]struct{ key, value string }{{"driver", c.Driver}, {"kind", string(c.Kind)}, {"name", c.Name}} {
		b = append(b, `,"`+f.key+`":`...)
		j, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b = append(b, j...)
	}
	return append(b, '}'), nil
}

// changeJSON encodes a change record's before or after: nil stays NULL. A
// value that does not encode is an error, never a silent NULL: the history
// must say what the change did.
func changeJSON(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	var b []byte
	var err error
	if c, ok := v.(createChange); ok {
		b, err = c.appendJSON(nil)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return nil, entity.Internal("encode change record", err)
	}
	return string(b), nil
}

// setBefore writes the before of change cid, known only once its rows are
// closed.
func (tx *Tx) setBefore(cid int64, before any) error {
	j, err := changeJSON(before)
	if err != nil {
		return err
	}
	_, err = tx.exec("record change", "UPDATE changes SET before = ? WHERE id = ?", j, cid)
	return err
}

// record starts a change and returns its number; rows written for the
// operation carry it as since/until.
func (tx *Tx) record(op string, subject, peer *entRow, before, after any) (int64, error) {
	var sid, pid any
	var sname, pname string
	if subject != nil {
		sid, sname = subject.id, subject.name
	}
	if peer != nil {
		pid, pname = peer.id, peer.name
	}
	bj, err := changeJSON(before)
	if err != nil {
		return 0, err
	}
	aj, err := changeJSON(after)
	if err != nil {
		return 0, err
	}
	res, err := tx.exec("record change", "INSERT INTO changes(at, actor, op, entity_id, entity, peer_id, peer, before, after) VALUES (?,?,?,?,?,?,?,?,?)",
		tx.now, tx.actor, op, sid, sname, pid, pname, bj, aj)
	if err != nil {
		return 0, err
	}
	if subject != nil {
		tx.noteChanged(subject.id)
	}
	if peer != nil {
		tx.noteChanged(peer.id)
	}
	// changes.id is the rowid (no AUTOINCREMENT), so this is the number.
	cid, err := res.LastInsertId()
	if err != nil {
		return 0, entity.Internal("record change", err)
	}
	if tx.firstCid == 0 {
		tx.firstCid = cid
	}
	return cid, nil
}

// bump notes that change cid touched the entity. Versions move once per
// transaction, not once per change: flushVersions, run before commit and
// before any read-back inside the transaction, closes the entity's row and
// opens a copy with version+1 from the first change that touched it. (A
// rack that receives forty servers in one batch gets one new version, not
// forty.)
func (tx *Tx) bump(r *entRow, cid int64) error {
	tx.noteChanged(r.id)
	if tx.touched == nil {
		tx.touched = map[int64]int64{}
	}
	if _, ok := tx.touched[r.id]; !ok {
		tx.touched[r.id] = cid
	}
	return nil
}

// flushVersions gives every entity touched since the last flush its new
// version (see bump) and empties the row cache, whose rids it invalidates.
func (tx *Tx) flushVersions() error {
	if len(tx.touched) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(tx.touched))
	for id := range tx.touched {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		cid := tx.touched[id]
		if tx.created[id] != 0 {
			// Created in this transaction: its only rows are already new,
			// stamped with this transaction's time.
			continue
		}
		r, err := scanEntRow(tx.queryRow("SELECT "+entCols+" FROM entities e WHERE e.id = ? AND e.until IS NULL", id))
		if errors.Is(err, sql.ErrNoRows) {
			continue // deleted in this transaction
		}
		if err != nil {
			return entity.Internal("update entity", err)
		}
		if r.since >= tx.firstCid {
			// Created or renamed in this transaction: already a new version.
			if _, err := tx.exec("update entity", "UPDATE entities SET updated_at = ? WHERE rid = ?", tx.now, r.rid); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.exec("update entity", "UPDATE entities SET until = ? WHERE rid = ?", cid, r.rid); err != nil {
			return err
		}
		if _, err := tx.exec("update entity", `INSERT INTO entities(id, name, driver, kind, version, created_at, updated_at, since)
			VALUES (?,?,?,?,?,?,?,?)`, r.id, r.name, r.driver, string(r.kind), r.version+1, r.created, tx.now, cid); err != nil {
			return err
		}
	}
	clear(tx.touched)
	clear(tx.rows)
	return nil
}

// maxIDBlock is the most entity ids one statement reserves.
const maxIDBlock = 64

// newEntityID hands out an entity id. Ids are reserved in entity_ids in
// blocks that double from one up to maxIDBlock within a transaction: a
// single create reserves just its own id, and a bulk load pays a statement
// for every 64 creates instead of each. Ids reserved but not used (at most
// about as many as were used, and never more than 63) are never handed
// out, as no id is twice, and are not seen anywhere.
func (tx *Tx) newEntityID() (int64, error) {
	if len(tx.freeIDs) == 0 {
		n := min(max(2*tx.idsReserved, 1), maxIDBlock)
		rows, err := tx.query(idBlockSQL[n])
		if err != nil {
			return 0, entity.Internal("create entity", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return 0, entity.Internal("create entity", err)
			}
			tx.freeIDs = append(tx.freeIDs, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, entity.Internal("create entity", err)
		}
		if len(tx.freeIDs) == 0 {
			return 0, entity.Internal("create entity", errors.New("no entity ids reserved"))
		}
		sort.Slice(tx.freeIDs, func(i, j int) bool { return tx.freeIDs[i] < tx.freeIDs[j] })
		tx.idsReserved = n
	}
	id := tx.freeIDs[0]
	tx.freeIDs = tx.freeIDs[1:]
	return id, nil
}

// idBlockSQL[n] reserves n entity ids (n a power of two up to maxIDBlock).
var idBlockSQL = func() map[int]string {
	q := map[int]string{}
	for n := 1; n <= maxIDBlock; n *= 2 {
		if n == 1 {
			q[n] = "INSERT INTO entity_ids DEFAULT VALUES RETURNING id"
			continue
		}
		q[n] = "INSERT INTO entity_ids(id) SELECT NULL FROM (VALUES " + strings.TrimSuffix(strings.Repeat("(0),", n), ",") + ") RETURNING id"
	}
	return q
}()

// Now returns the transaction's timestamp.
func (tx *Tx) Now() time.Time { return parseTime(tx.now) }
