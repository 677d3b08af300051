package store

// Creating, renaming and deleting entities inside a write transaction.

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
	"github.com/clusto/clusto/schema"
)

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
	// What it is connected to shows its name in their lists.
	if err := tx.noteNeighbours(r.id); err != nil {
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

// noteNeighbours notes as changed every entity connected to id.
func (tx *Tx) noteNeighbours(id int64) error {
	rows, err := tx.query(`SELECT CASE WHEN a = ?1 THEN b ELSE a END FROM connections WHERE (a = ?1 OR b = ?1) AND until IS NULL`, id)
	if err != nil {
		return entity.Internal("rename entity", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return entity.Internal("rename entity", err)
		}
		tx.noteChanged(n)
	}
	if err := rows.Err(); err != nil {
		return entity.Internal("rename entity", err)
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
