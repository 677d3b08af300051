package store

import (
	"database/sql"
	"sort"

	"github.com/clusto/clusto/entity"
)

type placed struct {
	name, driver string
	pos, height  int64
}

func (tx *Tx) placedChildren(rackID int64) ([]placed, []string, error) {
	rows, err := tx.query(`SELECT e.name, e.driver, c.position, c.height FROM connections c JOIN entities e ON e.id = c.b AND e.until IS NULL
		WHERE c.a = ? AND c.type = 'contains' AND c.until IS NULL ORDER BY c.position, e.name`, rackID)
	if err != nil {
		return nil, nil, entity.Internal("read rack", err)
	}
	defer rows.Close()
	var out []placed
	var unplaced []string
	for rows.Next() {
		var p placed
		var pos, h sql.NullInt64
		if err := rows.Scan(&p.name, &p.driver, &pos, &h); err != nil {
			return nil, nil, entity.Internal("read rack", err)
		}
		if !pos.Valid {
			unplaced = append(unplaced, p.name)
			continue
		}
		p.pos, p.height = pos.Int64, h.Int64
		out = append(out, p)
	}
	return out, unplaced, rows.Err()
}

// AllocateRackUnits places an entity in a rack: exactly at Position, or at
// the lowest contiguous free range of its height. Running off the top or
// overlapping another device is a conflict; a full rack is `exhausted`. It
// is one change (op allocate) and the same containment Insert records.
func (tx *Tx) AllocateRackUnits(req entity.RackRequest) (entity.Relation, error) {
	p, err := tx.row(req.Rack)
	if err != nil {
		return entity.Relation{}, err
	}
	c, err := tx.row(req.Entity)
	if err != nil {
		return entity.Relation{}, err
	}
	pd, err := tx.driver(p.driver)
	if err != nil {
		return entity.Relation{}, err
	}
	cd, err := tx.driver(c.driver)
	if err != nil {
		return entity.Relation{}, err
	}
	units, err := tx.units(p, pd)
	if err != nil {
		return entity.Relation{}, err
	}
	if units == 0 {
		return entity.Relation{}, entity.Errorf(entity.KindInvalid, "%s is a %s, which has no rack units", p.name, pd.Name)
	}
	h, err := tx.height(c, cd, req.Height)
	if err != nil {
		return entity.Relation{}, err
	}
	pos := req.Position
	if pos != nil {
		if !fitsUnits(*pos, h, units) {
			return entity.Relation{}, entity.Errorf(entity.KindConflict, "%s at unit %d with height %d does not fit in %s, which has units 1-%d", c.name, *pos, h, p.name, units).
				With("units", units)
		}
	} else {
		kids, _, err := tx.placedChildren(p.id)
		if err != nil {
			return entity.Relation{}, err
		}
		free, ok := lowestGap(kids, units, h)
		if !ok {
			return entity.Relation{}, entity.Errorf(entity.KindConflict, "%s has no %d contiguous free units for %s", p.name, h, c.name).WithCode(entity.ReasonExhausted)
		}
		pos = &free
	}
	if err := tx.contain(p, c, pd, cd, entity.Placement{Position: pos, Height: &h}, entity.OpAllocate); err != nil {
		return entity.Relation{}, err
	}
	return entity.Relation{Type: entity.Contains, Name: p.name, Driver: p.driver, Position: pos, Height: &h}, nil
}

// lowestGap finds the lowest position where h units are free.
func lowestGap(kids []placed, units, h int64) (int64, bool) {
	sort.Slice(kids, func(i, j int) bool { return kids[i].pos < kids[j].pos })
	cand := int64(1)
	for _, k := range kids {
		if k.pos >= cand+h {
			break
		}
		if end := k.pos + k.height; end > cand {
			cand = end
		}
	}
	return cand, fitsUnits(cand, h, units)
}

// Elevation lists every unit of a rack from the top down, free or held.
func (tx *Tx) Elevation(rack string) (*entity.Elevation, error) {
	p, err := tx.row(rack)
	if err != nil {
		return nil, err
	}
	pd, err := tx.driver(p.driver)
	if err != nil {
		return nil, err
	}
	units, err := tx.units(p, pd)
	if err != nil {
		return nil, err
	}
	if units == 0 {
		return nil, entity.Errorf(entity.KindInvalid, "%s is a %s, which has no rack units", p.name, pd.Name)
	}
	kids, unplaced, err := tx.placedChildren(p.id)
	if err != nil {
		return nil, err
	}
	el := &entity.Elevation{Rack: p.name, Units: units, Rows: make([]entity.Unit, 0, units), Unplaced: unplaced}
	if el.Unplaced == nil {
		el.Unplaced = []string{}
	}
	held := map[int64]placed{}
	for _, k := range kids {
		if !fitsUnits(k.pos, k.height, units) {
			// Only a file edited behind the store's back holds such a
			// placement (clustod check names it); draw what lies inside.
			if k.pos < 1 || k.pos > units || k.height < 1 {
				continue
			}
			k.height = units - k.pos + 1
		}
		for u := k.pos; u <= k.pos+k.height-1; u++ {
			held[u] = k
		}
	}
	for u := units; u >= 1; u-- {
		k, ok := held[u]
		if !ok {
			el.Rows = append(el.Rows, entity.Unit{Unit: u, Free: true})
			el.Free++
			continue
		}
		el.Rows = append(el.Rows, entity.Unit{Unit: u, Device: k.name, Driver: k.driver, Base: k.pos, Height: k.height})
	}
	return el, nil
}
