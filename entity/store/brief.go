package store

import (
	"encoding/json"

	"github.com/clusto/clusto/entity"
)

// GetBrief reads the named entities as the transaction sees them, each
// with its name, driver, kind and version and only the attributes whose
// key is one of keys (in the order Get gives them); no relations, no
// links. It is two statements for them all, for pages that draw many
// entities and show a few facts of each (a row of racks: 800 devices,
// their status and model), where GetMany's five statements would read
// their parents, children and cables for nothing. A name without an
// entity is left out; the rest come in the order of names.
func (tx *Tx) GetBrief(names, keys []string) ([]*entity.Entity, error) {
	if len(names) > maxGetMany {
		return nil, entity.Errorf(entity.KindTooLarge, "%d entities asked for at once; the limit is %d", len(names), maxGetMany)
	}
	for _, n := range names {
		if err := entity.ValidateName(n); err != nil {
			return nil, err
		}
	}
	if err := tx.flushVersions(); err != nil {
		return nil, err
	}
	nameList, err := json.Marshal(names)
	if err != nil {
		return nil, entity.Internal("read entities", err)
	}
	if keys == nil {
		keys = []string{}
	}
	keyList, err := json.Marshal(keys)
	if err != nil {
		return nil, entity.Internal("read entities", err)
	}
	byName := map[string]*entity.Entity{}
	rows, err := tx.query(`SELECT e.name, e.driver, e.kind, e.version FROM entities e
		WHERE e.name IN (SELECT value FROM json_each(?)) AND e.until IS NULL`, string(nameList))
	if err != nil {
		return nil, entity.Internal("read entities", err)
	}
	for rows.Next() {
		e := &entity.Entity{Attrs: []entity.Attr{}, Parents: []entity.Relation{}, Children: []entity.Relation{}, Links: []entity.Link{}}
		if err := rows.Scan(&e.Name, &e.Driver, &e.Kind, &e.Version); err != nil {
			rows.Close()
			return nil, entity.Internal("read entities", err)
		}
		byName[e.Name] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("read entities", err)
	}
	rows, err = tx.query(`SELECT e.name, a.key, a.subkey, a.number, a.type, a.value
		FROM entities e JOIN attrs a ON a.entity_id = e.id AND a.until IS NULL
		WHERE e.name IN (SELECT value FROM json_each(?)) AND e.until IS NULL AND a.key IN (SELECT value FROM json_each(?))
		ORDER BY e.name, a.key, a.subkey, a.number, a.rid`, string(nameList), string(keyList))
	if err != nil {
		return nil, entity.Internal("read attributes", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		a, err := scanAttr(rows, &name)
		if err != nil {
			return nil, entity.Internal("read attributes", err)
		}
		if e := byName[name]; e != nil {
			e.Attrs = append(e.Attrs, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("read attributes", err)
	}
	return inNameOrder(names, byName), nil
}
