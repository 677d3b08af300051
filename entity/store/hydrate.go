package store

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/clusto/clusto/entity"
)

// Reading many entities at once. A page of N entities read one by one
// costs five statements per entity (the row, attributes, parents,
// children, links); here it costs five statements for the whole page,
// each given every id at once as one JSON array (json_each), so that the
// statement text, and its prepared plan, is the same whatever the page
// size.

// maxGetMany bounds one GetMany: a page is at most query.MaxLimit (1000).
const maxGetMany = 10000

// GetMany reads the named entities as they were just after change at (0:
// now), in one read snapshot, in the order of names. A name without an
// entity (deleted since a query found it) is left out; a name given twice
// is read once, in its first place.
func (s *Store) GetMany(ctx context.Context, names []string, at int64) ([]*entity.Entity, error) {
	if at < 0 {
		return nil, entity.Errorf(entity.KindInvalid, "change number %d must not be negative", at)
	}
	if len(names) == 0 {
		return []*entity.Entity{}, nil
	}
	var out []*entity.Entity
	err := s.readTx(ctx, func(q Reader) error {
		var err error
		out, err = s.loadMany(ctx, q, names, at)
		return err
	})
	return out, err
}

// NotFoundAmong is the error for the first of names that GetMany did not
// return in got, worded as GetAt words it: for callers that need every
// name (a page found as of a change, an export).
func NotFoundAmong(names []string, got []*entity.Entity, at int64) error {
	found := make(map[string]bool, len(got))
	for _, e := range got {
		found[e.Name] = true
	}
	for _, n := range names {
		if found[n] {
			continue
		}
		if at > 0 {
			return entity.Errorf(entity.KindNotFound, "no entity named %q as of change %d", n, at)
		}
		return entity.Errorf(entity.KindNotFound, "no entity named %q", n)
	}
	return nil
}

// loadMany is GetMany inside a read transaction.
func (s *Store) loadMany(ctx context.Context, q Reader, names []string, at int64) ([]*entity.Entity, error) {
	if len(names) > maxGetMany {
		return nil, entity.Errorf(entity.KindTooLarge, "%d entities asked for at once; the limit is %d", len(names), maxGetMany)
	}
	for _, n := range names {
		if err := entity.ValidateName(n); err != nil {
			return nil, err
		}
	}
	nameList, err := json.Marshal(names)
	if err != nil {
		return nil, entity.Internal("read entities", err)
	}
	vis, vargs := Visible("e", at)
	rows, err := q.QueryContext(ctx, "SELECT "+entCols+" FROM entities e WHERE e.name IN (SELECT value FROM json_each(?)) AND "+vis,
		append([]any{string(nameList)}, vargs...)...)
	if err != nil {
		return nil, entity.Internal("read entities", err)
	}
	byName := map[string]*entity.Entity{}
	byID := map[int64]*entity.Entity{}
	drivers := map[int64]string{}
	var ids []int64
	for rows.Next() {
		r, err := scanEntRow(rows)
		if err != nil {
			rows.Close()
			return nil, entity.Internal("read entities", err)
		}
		e := &entity.Entity{ID: r.id, Name: r.name, Driver: r.driver, Kind: r.kind, Version: r.version,
			CreatedAt: parseTime(r.created), UpdatedAt: parseTime(r.updated),
			Attrs: []entity.Attr{}, Parents: []entity.Relation{}, Children: []entity.Relation{}, Links: []entity.Link{}}
		byName[r.name], byID[r.id], drivers[r.id] = e, e, r.driver
		ids = append(ids, r.id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("read entities", err)
	}
	if len(ids) > 0 {
		idList, err := json.Marshal(ids)
		if err != nil {
			return nil, entity.Internal("read entities", err)
		}
		if err := s.attrsOfMany(ctx, q, string(idList), at, byID); err != nil {
			return nil, err
		}
		for _, up := range []bool{true, false} {
			if err := s.relationsOfMany(ctx, q, string(idList), at, up, byID); err != nil {
				return nil, err
			}
		}
		if err := s.linksOfMany(ctx, q, string(idList), at, byID); err != nil {
			return nil, err
		}
		for id, e := range byID {
			s.sortPorts(drivers[id], e.Links)
		}
	}
	return inNameOrder(names, byName), nil
}

// inNameOrder is the entities of byName in the order of names, each once
// (a name given twice in its first place), those not found left out. It
// empties byName.
func inNameOrder(names []string, byName map[string]*entity.Entity) []*entity.Entity {
	out := make([]*entity.Entity, 0, len(byName))
	for _, n := range names {
		if e, ok := byName[n]; ok {
			out = append(out, e)
			delete(byName, n)
		}
	}
	return out
}

// scanAttr reads an attribute from a row of (lead columns...,) key,
// subkey, number, type, value: the columns attrsOf and attrsOfMany select.
func scanAttr(sc interface{ Scan(...any) error }, lead ...any) (entity.Attr, error) {
	var a entity.Attr
	var num sql.NullInt64
	var typ string
	if err := sc.Scan(append(lead, &a.Key, &a.Subkey, &num, &typ, &a.Value.Text)...); err != nil {
		return entity.Attr{}, err
	}
	a.Value.Type = entity.ValueType(typ)
	if num.Valid {
		a.Number = entity.N(num.Int64)
	}
	return a, nil
}

// scanRelation reads a relation from a row of (lead columns...,) type,
// name, driver, position, height: the columns relations and
// relationsOfMany select.
func scanRelation(sc interface{ Scan(...any) error }, lead ...any) (entity.Relation, error) {
	var r entity.Relation
	var pos, h sql.NullInt64
	if err := sc.Scan(append(lead, &r.Type, &r.Name, &r.Driver, &pos, &h)...); err != nil {
		return entity.Relation{}, err
	}
	if pos.Valid {
		r.Position = entity.N(pos.Int64)
	}
	if h.Valid {
		r.Height = entity.N(h.Int64)
	}
	return r, nil
}

// attrsOfMany fills the attributes of the entities of ids (a JSON array),
// in the order attrsOf gives them.
func (s *Store) attrsOfMany(ctx context.Context, q Reader, ids string, at int64, byID map[int64]*entity.Entity) error {
	vis, vargs := Visible("a", at)
	rows, err := q.QueryContext(ctx, "SELECT a.entity_id, a.key, a.subkey, a.number, a.type, a.value FROM attrs a WHERE a.entity_id IN (SELECT value FROM json_each(?)) AND "+vis+
		" ORDER BY a.entity_id, a.key, a.subkey, a.number, a.rid", append([]any{ids}, vargs...)...)
	if err != nil {
		return entity.Internal("read attributes", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		a, err := scanAttr(rows, &id)
		if err != nil {
			return entity.Internal("read attributes", err)
		}
		if e := byID[id]; e != nil {
			e.Attrs = append(e.Attrs, a)
		}
	}
	if err := rows.Err(); err != nil {
		return entity.Internal("read attributes", err)
	}
	return nil
}

// relationsOfMany fills the parents (up) or the children of the entities
// of ids, in the order relations gives them.
func (s *Store) relationsOfMany(ctx context.Context, q Reader, ids string, at int64, up bool, byID map[int64]*entity.Entity) error {
	self, other := "c.a", "c.b"
	order := "c.a, c.type, c.position IS NULL, c.position, e.name"
	if up {
		self, other = "c.b", "c.a"
		order = "c.b, c.type, e.name"
	}
	cvis, cargs := Visible("c", at)
	evis, eargs := Visible("e", at)
	query := "SELECT " + self + ", c.type, e.name, e.driver, c.position, c.height FROM connections c JOIN entities e ON e.id = " + other + " AND " + evis +
		" WHERE " + self + " IN (SELECT value FROM json_each(?)) AND c.type IN ('contains','member') AND " + cvis + " ORDER BY " + order
	rows, err := q.QueryContext(ctx, query, append(append(eargs, ids), cargs...)...)
	if err != nil {
		return entity.Internal("read connections", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		r, err := scanRelation(rows, &id)
		if err != nil {
			return entity.Internal("read connections", err)
		}
		e := byID[id]
		if e == nil {
			continue
		}
		if up {
			e.Parents = append(e.Parents, r)
		} else {
			e.Children = append(e.Children, r)
		}
	}
	if err := rows.Err(); err != nil {
		return entity.Internal("read connections", err)
	}
	return nil
}

// linksOfMany fills the links of the entities of ids (sorted by the
// caller, per driver).
func (s *Store) linksOfMany(ctx context.Context, q Reader, ids string, at int64, byID map[int64]*entity.Entity) error {
	cvis, cargs := Visible("c", at)
	evis, eargs := Visible("e", at)
	rows, err := q.QueryContext(ctx, "SELECT c.a, c.a_port, c.port_type, e.name, c.b_port FROM connections c JOIN entities e ON e.id = c.b AND "+evis+
		" WHERE c.a IN (SELECT value FROM json_each(?)) AND c.type = 'link' AND "+cvis, append(append(eargs, ids), cargs...)...)
	if err != nil {
		return entity.Internal("read links", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var l entity.Link
		if err := rows.Scan(&id, &l.Port, &l.Type, &l.Peer, &l.PeerPort); err != nil {
			return entity.Internal("read links", err)
		}
		if e := byID[id]; e != nil {
			e.Links = append(e.Links, l)
		}
	}
	if err := rows.Err(); err != nil {
		return entity.Internal("read links", err)
	}
	return nil
}
