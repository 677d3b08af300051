package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/schema"
)

// Tx is one write transaction. Each operation on it is one change in the
// history; all of them commit together or not at all.
type Tx struct {
	s     *Store
	ctx   context.Context
	tx    *sql.Tx
	write bool // on the writer (Update), not a read (View)
	actor string
	now   string
	stmts map[string]*sql.Stmt
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

// Update runs fn in one BEGIN IMMEDIATE transaction on the single writer
// connection and commits if fn returns nil. Any error (or panic) rolls back
// everything fn did. actor is recorded on every change.
func (s *Store) Update(ctx context.Context, actor string, fn func(*Tx) error) (err error) {
	if actor == "" {
		actor = entity.DefaultActor
	}
	// A real write preempts the dry run on the writer (dryrun.go).
	defer s.gate.enter(ctx)()
	waitStart := time.Now()
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return entity.Internal("begin write", ctx.Err())
	}
	defer func() { <-s.writer }()
	// The transaction's own context is never canceled: database/sql would
	// then roll it back from another goroutine, and a statement of ours
	// already past its own check of ctx would run outside any transaction.
	// Each statement gets ctx, so a canceled request still stops at its
	// next statement (or within one), and the deferred rollback ends it.
	sqlTx, err := s.writeConn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return entity.Internal("begin write", err)
	}
	if obs, ok := s.writeWait.Load().(func(time.Duration)); ok {
		obs(time.Since(waitStart))
	}
	done := false
	defer func() {
		if !done {
			sqlTx.Rollback()
		}
	}()
	tx := &Tx{s: s, ctx: ctx, tx: sqlTx, write: true, actor: actor, now: formatTime(s.now())}
	if err := tx.noteStartRids(); err != nil {
		return err
	}
	defer func() {
		for _, st := range tx.stmts {
			st.Close()
		}
	}()
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
	if err := tx.finish(); err != nil {
		return err
	}
	done = true
	if err := sqlTx.Commit(); err != nil {
		return entity.Internal("commit", err)
	}
	return nil
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

func (tx *Tx) driver(name string) (*drivers.Driver, error) {
	d, ok := tx.s.drivers.Lookup(name)
	if !ok {
		return nil, entity.Errorf(entity.KindInvalid, "unknown driver %q; known drivers: %s", name, strings.Join(tx.s.drivers.Names(), ", "))
	}
	return d, nil
}

// Create adds an entity with its initial attributes as one change. It
// does not read the entity back (bulk loads create hundreds of thousands);
// a caller that answers with it calls Get.
func (tx *Tx) Create(n entity.NewEntity) error {
	if err := entity.ValidateName(n.Name); err != nil {
		return err
	}
	d, err := tx.driver(n.Driver)
	if err != nil {
		return err
	}
	attrs := make([]entity.Attr, len(n.Attrs))
	for i, a := range n.Attrs {
		if attrs[i], err = tx.normalize(d, a); err != nil {
			return fmt.Errorf("attribute #%d: %w", i+1, err)
		}
	}
	after := createChange{Name: n.Name, Driver: d.Name, Kind: d.Kind, Attrs: attrs}
	id, err := tx.newEntityID()
	if err != nil {
		return err
	}
	cid, err := tx.record(entity.OpCreate, &entRow{id: id, name: n.Name}, nil, nil, after)
	if err != nil {
		return err
	}
	// The unique index on current names is the check: looking the name up
	// first would walk the same index twice for every create.
	res, err := tx.exec("create entity", `INSERT INTO entities(id, name, driver, kind, version, created_at, updated_at, since)
		VALUES (?,?,?,?,1,?,?,?)`, id, n.Name, d.Name, string(d.Kind), tx.now, tx.now, cid)
	if schema.IsUniqueViolation(err) {
		// Take back the change just recorded; the id stays unused.
		if _, derr := tx.exec("create entity", "DELETE FROM changes WHERE id = ?", cid); derr != nil {
			return derr
		}
		return entity.Errorf(entity.KindConflict, "an entity named %q already exists", n.Name)
	}
	if err != nil {
		return err
	}
	rid, err := res.LastInsertId()
	if err != nil {
		return entity.Internal("create entity", err)
	}
	// What follows a create in a bulk load (placing it, cabling it) looks
	// the new entity up by name: the cache answers without a query.
	if tx.rows == nil {
		tx.rows = map[string]*entRow{}
	}
	if tx.created == nil {
		tx.created = map[int64]int64{}
	}
	tx.created[id] = cid
	tx.rows[n.Name] = &entRow{rid: rid, id: id, version: 1, since: cid, name: n.Name, driver: d.Name, kind: d.Kind, created: tx.now, updated: tx.now}
	seen := make(map[string]bool, len(attrs))
	for _, a := range attrs {
		k := attrIdentity(a)
		if seen[k] {
			return entity.Errorf(entity.KindConflict, "attribute %s is given twice", a)
		}
		seen[k] = true
	}
	if err := tx.insertAttrs(id, attrs, cid); err != nil {
		return err
	}
	tx.trackCreated(id, d.Name, attrs)
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

func attrIdentity(a entity.Attr) string {
	n := "-"
	if a.Number != nil {
		n = fmt.Sprint(*a.Number)
	}
	return a.Key + "\x00" + a.Subkey + "\x00" + n + "\x00" + a.Value.Text
}

// normalize validates an attribute against the driver's declared keys and
// converts its value to the declared type (a string "42" for an int key).
func (tx *Tx) normalize(d *drivers.Driver, a entity.Attr) (entity.Attr, error) {
	if err := entity.ValidateKey("key", a.Key); err != nil {
		return a, err
	}
	if a.Subkey != "" {
		if err := entity.ValidateKey("subkey", a.Subkey); err != nil {
			return a, err
		}
	}
	if a.Number != nil && *a.Number < 0 {
		return a, entity.Errorf(entity.KindInvalid, "attribute %s: number must not be negative", a.Key)
	}
	if a.Value.Type == "" {
		a.Value.Type = entity.TypeString
	}
	a.From = ""
	canon, err := entity.ParseValue(a.Value.Type, a.Value.Text)
	if err != nil {
		return a, entity.Errorf(entity.KindInvalid, "attribute %s: %v", a.Key, err)
	}
	a.Value = canon
	spec, ok := d.Attrs[a.Key]
	if !ok {
		return a, nil
	}
	want := entity.ValueType(spec.Type)
	if spec.Type == drivers.TypeCIDR {
		want = entity.TypeString
	}
	if a.Value.Type != want {
		if a.Value.Type != entity.TypeString && !(a.Value.Type == entity.TypeInt && want == entity.TypeString) {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s of a %s must be %s, not %s", a.Key, d.Name, spec.Type, a.Value.Type)
		}
		v, err := entity.ParseValue(want, a.Value.Text)
		if err != nil {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s of a %s must be %s: %v", a.Key, d.Name, spec.Type, err.(*entity.Error).Message)
		}
		a.Value = v
	}
	if spec.Type == drivers.TypeCIDR {
		p, err := netip.ParsePrefix(strings.TrimSpace(a.Value.Text))
		if err != nil {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s: %q is not a network in CIDR form (10.0.3.0/24, 2001:db8::/64)", a.Key, a.Value.Text)
		}
		if p.Masked() != p {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s: %s has host bits set; the network is %s", a.Key, p, p.Masked())
		}
		if p, err = canonicalPrefix(p); err != nil {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s: %v", a.Key, err)
		}
		a.Value = entity.String(p.String())
	}
	if spec.Min != nil {
		if i, ok := a.Value.Int64(); ok && i < *spec.Min {
			return a, entity.Errorf(entity.KindInvalid, "attribute %s of a %s must be at least %d, not %d", a.Key, d.Name, *spec.Min, i)
		}
	}
	return a, nil
}

func (tx *Tx) insertAttr(entityID int64, a entity.Attr, cid int64) error {
	return tx.insertAttrs(entityID, []entity.Attr{a}, cid)
}

// attrInsertChunk is how many attribute rows one INSERT carries: a server
// is created with half a dozen attributes, and one statement for all of
// them costs little more than one for each.
const attrInsertChunk = 16

// attrInsertSQL[n] inserts n attribute rows.
var attrInsertSQL = func() (q [attrInsertChunk + 1]string) {
	for n := 1; n <= attrInsertChunk; n++ {
		q[n] = "INSERT INTO attrs(entity_id, key, subkey, number, type, value, num, ip, ref, since) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?),", n), ",")
	}
	return q
}()

// insertAttrs adds attribute rows for change cid.
func (tx *Tx) insertAttrs(entityID int64, attrs []entity.Attr, cid int64) error {
	tx.attrWritten(entityID, cid)
	const cols = 10
	args := make([]any, 0, cols*min(len(attrs), attrInsertChunk))
	flush := func(n int) error {
		if n == 0 {
			return nil
		}
		_, err := tx.exec("add attribute", attrInsertSQL[n], args...)
		args = args[:0]
		return err
	}
	n := 0
	for _, a := range attrs {
		if a.Key == "cidr" && tx.created[entityID] != cid {
			// The block may be in a cached list of child blocks with its
			// old prefix. (A block being created, by change cid, is in no
			// list.)
			tx.forgetBlocks()
		}
		var num, ip, ref any
		switch a.Value.Type {
		case entity.TypeInt:
			num, _ = a.Value.Int64()
		case entity.TypeIP:
			addr, _ := a.Value.Addr()
			b := addr.As16()
			ip = b[:]
		case entity.TypeRef:
			var id int64
			err := tx.queryRow("SELECT id FROM entities WHERE name = ? AND until IS NULL", a.Value.Text).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return entity.Errorf(entity.KindInvalid, "attribute %s refers to %q, which does not exist", a.Key, a.Value.Text)
			} else if err != nil {
				return entity.Internal("resolve reference", err)
			}
			ref = id
		}
		var number any
		if a.Number != nil {
			number = *a.Number
			// An explicit number moves the auto-numbering past it, so that
			// "next number" never hands out one already used.
			if _, err := tx.exec("number attribute", `INSERT INTO attr_numbers(entity_id, key, next) VALUES (?,?,?)
				ON CONFLICT(entity_id, key) DO UPDATE SET next = max(next, excluded.next)`, entityID, a.Key, *a.Number+1); err != nil {
				return err
			}
		}
		args = append(args, entityID, a.Key, a.Subkey, number, string(a.Value.Type), a.Value.Text, num, ip, ref, cid)
		if n++; n == attrInsertChunk {
			if err := flush(n); err != nil {
				return err
			}
			n = 0
		}
	}
	return flush(n)
}

// AddAttr appends one value to an entity's attributes. Adding a value that
// is already there (same key, subkey, number and value) is a conflict.
func (tx *Tx) AddAttr(name string, a entity.Attr) (entity.Attr, error) {
	return tx.addAttr(name, a, false)
}

// AddNumberedAttr appends a value under the next number of its key: 0, 1,
// 2, ... for each (entity, key), never reusing a number, even after deletes.
func (tx *Tx) AddNumberedAttr(name string, a entity.Attr) (entity.Attr, error) {
	return tx.addAttr(name, a, true)
}

func (tx *Tx) addAttr(name string, a entity.Attr, autoNumber bool) (entity.Attr, error) {
	r, err := tx.row(name)
	if err != nil {
		return a, err
	}
	d, err := tx.driver(r.driver)
	if err != nil {
		return a, err
	}
	if autoNumber {
		a.Number = nil
	}
	if a, err = tx.normalize(d, a); err != nil {
		return a, err
	}
	if err := tx.guardBlockAttr(r, a.Key); err != nil {
		return a, err
	}
	if autoNumber {
		var next int64
		if err := tx.queryRow(`INSERT INTO attr_numbers(entity_id, key, next) VALUES (?,?,1)
			ON CONFLICT(entity_id, key) DO UPDATE SET next = next + 1 RETURNING next - 1`, r.id, a.Key).Scan(&next); err != nil {
			return a, entity.Internal("number attribute", err)
		}
		a.Number = entity.N(next)
	} else {
		sub := a.Subkey
		v := a.Value.Text
		q, args := attrWhere(entity.AttrSelector{Key: a.Key, Subkey: &sub, Value: &v})
		if a.Number != nil {
			q += " AND number = ?"
			args = append(args, *a.Number)
		} else {
			q += " AND number IS NULL"
		}
		var one int
		err := tx.queryRow("SELECT 1 FROM attrs WHERE entity_id = ? AND until IS NULL AND "+q+" LIMIT 1", append([]any{r.id}, args...)...).Scan(&one)
		if err == nil {
			return a, entity.Errorf(entity.KindConflict, "%s already has %s", name, a)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return a, entity.Internal("add attribute", err)
		}
	}
	cid, err := tx.record(entity.OpAttrAdd, r, nil, nil, a)
	if err != nil {
		return a, err
	}
	if err := tx.insertAttr(r.id, a, cid); err != nil {
		return a, err
	}
	if err := tx.followHeight(r, a.Key, cid); err != nil {
		return a, err
	}
	return a, tx.bump(r, cid)
}

// selected returns the current values sel picks.
func (tx *Tx) selected(r *entRow, sel entity.AttrSelector) ([]entity.Attr, error) {
	all, err := tx.s.attrsOf(tx.ctx, cached{tx}, r.id, 0, sel.Key, sel.Subkey)
	if err != nil {
		return nil, err
	}
	var matched []entity.Attr
	for _, a := range all {
		if sel.Number != nil && (a.Number == nil || *a.Number != *sel.Number) {
			continue
		}
		if sel.Value != nil && a.Value.Text != *sel.Value {
			continue
		}
		matched = append(matched, a)
	}
	return matched, nil
}

// sameAttrs reports whether two lists hold the same values, in any order.
func sameAttrs(a, b []entity.Attr) bool {
	if len(a) != len(b) {
		return false
	}
	ids := func(l []entity.Attr) []string {
		out := make([]string, len(l))
		for i, x := range l {
			out[i] = attrIdentity(x) + "\x00" + string(x.Value.Type)
		}
		sort.Strings(out)
		return out
	}
	x, y := ids(a), ids(b)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// closeAttrs ends the current rows matching sel and returns what they held.
func (tx *Tx) closeAttrs(r *entRow, sel entity.AttrSelector, cid int64) ([]entity.Attr, error) {
	matched, err := tx.selected(r, sel)
	if err != nil {
		return nil, err
	}
	if len(matched) == 0 {
		return nil, nil
	}
	tx.attrWritten(r.id, cid)
	if sel.Key == "cidr" {
		tx.forgetBlocks()
	}
	q, args := attrWhere(sel)
	_, err = tx.exec("remove attribute", "UPDATE attrs SET until = ? WHERE entity_id = ? AND until IS NULL AND "+q, append([]any{cid, r.id}, args...)...)
	return matched, err
}

// SetAttr replaces every value selected by sel (its key, and subkey and
// number when given) with values, as one change.
func (tx *Tx) SetAttr(name string, sel entity.AttrSelector, values []entity.Value) ([]entity.Attr, error) {
	r, err := tx.row(name)
	if err != nil {
		return nil, err
	}
	after, err := tx.prepareSet(r, sel, values)
	if err != nil {
		return nil, err
	}
	// Setting exactly the values there are changes nothing: no change
	// is recorded and no version moves (Clusto's testSetAttrAlreadySet).
	if cur, err := tx.selected(r, sel); err != nil {
		return nil, err
	} else if sameAttrs(cur, after) {
		return after, nil
	}
	cid, err := tx.record(entity.OpAttrSet, r, nil, nil, after)
	if err != nil {
		return nil, err
	}
	before, err := tx.replaceAttrs(r, sel, after, cid)
	if err != nil {
		return nil, err
	}
	if err := tx.setBefore(cid, before); err != nil {
		return nil, err
	}
	if err := tx.followHeight(r, sel.Key, cid); err != nil {
		return nil, err
	}
	return after, tx.bump(r, cid)
}

// prepareSet validates the values that will replace those selected by sel.
func (tx *Tx) prepareSet(r *entRow, sel entity.AttrSelector, values []entity.Value) ([]entity.Attr, error) {
	if len(values) == 0 {
		return nil, entity.Errorf(entity.KindInvalid, "attr set %s needs at least one value (use attr del to remove a key)", sel.Key)
	}
	d, err := tx.driver(r.driver)
	if err != nil {
		return nil, err
	}
	if err := tx.guardBlockAttr(r, sel.Key); err != nil {
		return nil, err
	}
	var after []entity.Attr
	seen := map[string]bool{}
	for _, v := range values {
		a := entity.Attr{Key: sel.Key, Number: sel.Number, Value: v}
		if sel.Subkey != nil {
			a.Subkey = *sel.Subkey
		}
		if a, err = tx.normalize(d, a); err != nil {
			return nil, err
		}
		if seen[a.Value.Text] {
			return nil, entity.Errorf(entity.KindInvalid, "value %q is given twice for %s", a.Value.Text, sel.Key)
		}
		seen[a.Value.Text] = true
		after = append(after, a)
	}
	return after, nil
}

// replaceAttrs ends the values selected by sel and writes after, as part
// of change cid, returning the values it ended.
func (tx *Tx) replaceAttrs(r *entRow, sel entity.AttrSelector, after []entity.Attr, cid int64) ([]entity.Attr, error) {
	sel.Value = nil
	before, err := tx.closeAttrs(r, sel, cid)
	if err != nil {
		return nil, err
	}
	for _, a := range after {
		if err := tx.insertAttr(r.id, a, cid); err != nil {
			return nil, err
		}
	}
	return before, nil
}

// Claim records that an entity was handed out (by a query allocation) as
// one change, op allocate, and sets the given attributes, each replacing
// every value of its key. why is stored with the change (the query).
func (tx *Tx) Claim(name string, set []entity.Attr, why string) error {
	r, err := tx.row(name)
	if err != nil {
		return err
	}
	var after []entity.Attr
	for _, a := range set {
		vals, err := tx.prepareSet(r, entity.AttrSelector{Key: a.Key}, []entity.Value{a.Value})
		if err != nil {
			return err
		}
		after = append(after, vals...)
	}
	cid, err := tx.record(entity.OpAllocate, r, nil, nil, map[string]any{"query": why, "set": after})
	if err != nil {
		return err
	}
	var before []entity.Attr
	for _, a := range after {
		old, err := tx.replaceAttrs(r, entity.AttrSelector{Key: a.Key}, []entity.Attr{a}, cid)
		if err != nil {
			return err
		}
		before = append(before, old...)
	}
	if err := tx.setBefore(cid, map[string]any{"attrs": before}); err != nil {
		return err
	}
	for _, a := range after {
		if err := tx.followHeight(r, a.Key, cid); err != nil {
			return err
		}
	}
	return tx.bump(r, cid)
}

// DelAttr removes the values selected by sel; it is not_found when none match.
func (tx *Tx) DelAttr(name string, sel entity.AttrSelector) ([]entity.Attr, error) {
	if err := entity.ValidateKey("key", sel.Key); err != nil {
		return nil, err
	}
	r, err := tx.row(name)
	if err != nil {
		return nil, err
	}
	if err := tx.guardBlockAttr(r, sel.Key); err != nil {
		return nil, err
	}
	cid, err := tx.record(entity.OpAttrDel, r, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	removed, err := tx.closeAttrs(r, sel, cid)
	if err != nil {
		return nil, err
	}
	if len(removed) == 0 {
		return nil, entity.Errorf(entity.KindNotFound, "%s has no attribute %s", name, sel)
	}
	if err := tx.setBefore(cid, removed); err != nil {
		return nil, err
	}
	if err := tx.followHeight(r, sel.Key, cid); err != nil {
		return nil, err
	}
	return removed, tx.bump(r, cid)
}

// Rename gives an entity a new name; references to it follow.
func (tx *Tx) Rename(oldName, newName string) error {
	if err := entity.ValidateName(newName); err != nil {
		return err
	}
	r, err := tx.row(oldName)
	if err != nil {
		return err
	}
	if oldName == newName {
		return entity.Errorf(entity.KindInvalid, "%s already has that name", oldName)
	}
	if _, err := tx.row(newName); err == nil {
		return entity.Errorf(entity.KindConflict, "an entity named %q already exists", newName)
	} else if !entity.IsKind(err, entity.KindNotFound) {
		return err
	}
	cid, err := tx.record(entity.OpRename, r, nil, map[string]string{"name": oldName}, map[string]string{"name": newName})
	if err != nil {
		return err
	}
	tx.forget(oldName)
	r.name = newName
	if err := tx.bumpRenamed(r, cid); err != nil {
		return err
	}
	// References hold the target's name as their text: reissue them.
	refs, err := tx.referrers(r.id)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if _, err := tx.exec("rename reference", "UPDATE attrs SET until = ? WHERE rid = ?", cid, ref.rid); err != nil {
			return err
		}
		if _, err := tx.exec("rename reference", `INSERT INTO attrs(entity_id, key, subkey, number, type, value, ref, since)
			SELECT entity_id, key, subkey, number, type, ?, ref, ? FROM attrs WHERE rid = ?`, newName, cid, ref.rid); err != nil {
			return err
		}
		if err := tx.bump(ref.owner, cid); err != nil {
			return err
		}
	}
	return nil
}

// bumpRenamed is bump for a row whose name changed in memory.
func (tx *Tx) bumpRenamed(r *entRow, cid int64) error {
	if _, err := tx.exec("rename entity", "UPDATE entities SET until = ? WHERE rid = ?", cid, r.rid); err != nil {
		return err
	}
	// References to it were rewritten: other entities' attributes changed.
	tx.forgetBlocks()
	if err := tx.untrackAll(); err != nil {
		return err
	}
	var rid int64
	if err := tx.queryRow(`INSERT INTO entities(id, name, driver, kind, version, created_at, updated_at, since)
		VALUES (?,?,?,?,?,?,?,?) RETURNING rid`, r.id, r.name, r.driver, string(r.kind), r.version+1, r.created, tx.now, cid).Scan(&rid); err != nil {
		return entity.Internal("rename entity", err)
	}
	r.rid, r.since, r.version = rid, cid, r.version+1
	return nil
}

type referrer struct {
	rid   int64
	owner *entRow
}

// referrers lists the current attribute rows that reference entity id.
func (tx *Tx) referrers(id int64) ([]referrer, error) {
	rows, err := tx.query("SELECT a.rid, "+entCols+` FROM attrs a JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
		WHERE a.ref = ? AND a.until IS NULL`, id)
	if err != nil {
		return nil, entity.Internal("find references", err)
	}
	defer rows.Close()
	var out []referrer
	owners := map[int64]*entRow{}
	for rows.Next() {
		var ref referrer
		var r entRow
		var kind string
		if err := rows.Scan(&ref.rid, &r.rid, &r.id, &r.name, &r.driver, &kind, &r.version, &r.created, &r.updated, &r.since); err != nil {
			return nil, entity.Internal("find references", err)
		}
		r.kind = entity.Kind(kind)
		if o, ok := owners[r.id]; ok {
			ref.owner = o
		} else {
			ref.owner = &r
			owners[r.id] = &r
		}
		out = append(out, ref)
	}
	return out, rows.Err()
}

// Delete removes an entity. While it still contains things, has members,
// holds links or is referenced by allocations it is a conflict, unless
// cascade is set: then its children and members are detached (not
// deleted), its links unplugged, and references to it removed.
func (tx *Tx) Delete(name string, cascade bool) error {
	// The before-image below reads the entity back, which flushes versions.
	if err := tx.flushVersions(); err != nil {
		return err
	}
	r, err := tx.row(name)
	if err != nil {
		return err
	}
	var children, links int
	if err := tx.queryRow(`SELECT
		(SELECT count(*) FROM connections WHERE a = ?1 AND type IN ('contains','member') AND until IS NULL),
		(SELECT count(*) FROM connections WHERE a = ?1 AND type = 'link' AND until IS NULL)`, r.id).Scan(&children, &links); err != nil {
		return entity.Internal("delete entity", err)
	}
	allocs, err := tx.countAllocations(r.id)
	if err != nil {
		return err
	}
	if !cascade && children+links+allocs > 0 {
		var parts []string
		if children > 0 {
			parts = append(parts, fmt.Sprintf("%d children or members", children))
		}
		if links > 0 {
			parts = append(parts, fmt.Sprintf("%d links", links))
		}
		if allocs > 0 {
			parts = append(parts, fmt.Sprintf("%d allocations", allocs))
		}
		return entity.Errorf(entity.KindConflict, "%s still holds %s; remove them first or delete with cascade", name, strings.Join(parts, ", ")).
			With("children", children).With("links", links).With("allocations", allocs)
	}
	before, err := tx.Get(name)
	if err != nil {
		return err
	}
	cid, err := tx.record(entity.OpDelete, r, nil, before, nil)
	if err != nil {
		return err
	}
	// Entities on the other side of a connection or a reference change too.
	touched := map[int64]bool{}
	rows, err := tx.query(`SELECT DISTINCT CASE WHEN a = ?1 THEN b ELSE a END FROM connections
		WHERE (a = ?1 OR b = ?1) AND until IS NULL`, r.id)
	if err != nil {
		return entity.Internal("delete entity", err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return entity.Internal("delete entity", err)
		}
		touched[id] = true
	}
	rows.Close()
	refs, err := tx.referrers(r.id)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if _, err := tx.exec("delete reference", "UPDATE attrs SET until = ? WHERE rid = ?", cid, ref.rid); err != nil {
			return err
		}
		touched[ref.owner.id] = true
	}
	if _, err := tx.exec("delete entity", "UPDATE connections SET until = ?1 WHERE (a = ?2 OR b = ?2) AND until IS NULL", cid, r.id); err != nil {
		return err
	}
	tx.forgetBlocks()
	if err := tx.untrackAll(); err != nil {
		return err
	}
	if _, err := tx.exec("delete entity", "UPDATE attrs SET until = ? WHERE entity_id = ? AND until IS NULL", cid, r.id); err != nil {
		return err
	}
	if _, err := tx.exec("delete entity", "UPDATE entities SET until = ? WHERE id = ? AND until IS NULL", cid, r.id); err != nil {
		return err
	}
	tx.forget(name)
	if err := tx.releaseAllocations(r.id); err != nil {
		return err
	}
	delete(touched, r.id)
	return tx.bumpIDs(touched, cid)
}

func (tx *Tx) bumpIDs(ids map[int64]bool, cid int64) error {
	for id := range ids {
		o, err := scanEntRow(tx.queryRow("SELECT "+entCols+" FROM entities e WHERE e.id = ? AND e.until IS NULL", id))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return entity.Internal("update entity", err)
		}
		if err := tx.bump(o, cid); err != nil {
			return err
		}
	}
	return nil
}

// Now returns the transaction's timestamp.
func (tx *Tx) Now() time.Time { return parseTime(tx.now) }

// attrWhere is the SQL condition on attrs rows that sel selects, with its arguments.
func attrWhere(sel entity.AttrSelector) (string, []any) {
	q := "key = ?"
	args := []any{sel.Key}
	if sel.Subkey != nil {
		q += " AND subkey = ?"
		args = append(args, *sel.Subkey)
	}
	if sel.Number != nil {
		q += " AND number = ?"
		args = append(args, *sel.Number)
	}
	if sel.Value != nil {
		q += " AND value = ?"
		args = append(args, *sel.Value)
	}
	return q, args
}
