package store

import (
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// Sites lists one level of the containment tree with what lies under each
// place (entity.Site): with parent "", the tops of the tree (the sites,
// entities of a driver that is never contained, such as a datacenter, and
// racks standing in no place); else the things physically inside parent.
// In name order.
//
// It is two statements: a walk down the containment from each place that
// stops at racks (their contents are counted, not walked), then, per rack,
// the things in it and the units they take, as Elevation counts them (a
// placement running off the top counts up to the top unit; one outside
// the rack not at all). A view keeps the second's answers for the racks
// no commit has changed since (rackUseCache): on the 100k inventory the
// walk to 2,326 racks costs about 20 ms, counting what they hold (95,000
// rows) about 100 ms more.
func (tx *Tx) Sites(parent string) ([]entity.Site, error) {
	var args []any
	// ud lists the drivers with rack units and their default units, from
	// the registry; a rack's own units attribute overrides its driver's.
	var ud, tops []string
	for _, d := range tx.s.drivers.All() {
		if d.Units > 0 {
			ud = append(ud, "(?, ?)")
			args = append(args, d.Name, d.Units)
		}
		if d.Kind == drivers.Equipment && (len(d.Parents) == 0 || d.Units > 0) {
			tops = append(tops, d.Name)
		}
	}
	if len(ud) == 0 {
		ud = append(ud, "(NULL, NULL)")
	}
	var level string
	if parent == "" {
		if len(tops) == 0 {
			return []entity.Site{}, nil
		}
		level = `SELECT e.id, e.name, e.driver FROM entities e WHERE e.until IS NULL AND e.driver IN (?` + strings.Repeat(", ?", len(tops)-1) + `)
			AND NOT EXISTS (SELECT 1 FROM connections c WHERE c.b = e.id AND c.type = 'contains' AND c.until IS NULL)`
		for _, t := range tops {
			args = append(args, t)
		}
	} else {
		p, err := tx.row(parent)
		if err != nil {
			return nil, err
		}
		level = `SELECT e.id, e.name, e.driver FROM connections c JOIN entities e ON e.id = c.b AND e.until IS NULL
			WHERE c.a = ? AND c.type = 'contains' AND c.until IS NULL`
		args = append(args, p.id)
	}
	args = append(args, maxDepth)
	// units is the rack units of the entity aliased e, NULL when it is no
	// rack: its newest units value, else its driver's (Tx.units).
	units := func(e string) string {
		return `(SELECT coalesce((SELECT a.num FROM attrs a WHERE a.entity_id = ` + e + `.id AND a.key = 'units' AND a.until IS NULL AND a.num IS NOT NULL
			ORDER BY a.rid DESC LIMIT 1), ud.units) FROM ud WHERE ud.driver = ` + e + `.driver)`
	}
	// The places of the level (a name), then the racks under each (no
	// name): root, rack, units.
	q := `WITH RECURSIVE
		ud(driver, units) AS (VALUES ` + strings.Join(ud, ", ") + `),
		node(id, name, driver) AS (` + level + `),
		walk(root, id, units, depth) AS (
			SELECT n.id, n.id, ` + units("n") + `, 0 FROM node n
			UNION ALL
			SELECT w.root, c.b, ` + units("e") + `, w.depth + 1
			FROM walk w JOIN connections c ON c.a = w.id AND c.type = 'contains' AND c.until IS NULL
			JOIN entities e ON e.id = c.b AND e.until IS NULL
			WHERE w.units IS NULL AND w.depth < ?
		)
		SELECT n.id, n.name, n.driver, EXISTS (SELECT 1 FROM connections c WHERE c.a = n.id AND c.type = 'contains' AND c.until IS NULL), NULL, NULL
		FROM node n
		UNION ALL
		SELECT w.root, NULL, NULL, NULL, w.id, w.units FROM walk w WHERE w.units IS NOT NULL`
	rows, err := tx.query(q, args...)
	if err != nil {
		return nil, entity.Internal("read sites", err)
	}
	byID := map[int64]*entity.Site{}
	var order []*entity.Site
	type under struct{ root, rack, units int64 }
	var racks []under
	for rows.Next() {
		var id int64
		var name, driver sql.NullString
		var kids sql.NullBool
		var rack, units sql.NullInt64
		if err := rows.Scan(&id, &name, &driver, &kids, &rack, &units); err != nil {
			rows.Close()
			return nil, entity.Internal("read sites", err)
		}
		if name.Valid {
			s := &entity.Site{Name: name.String, Driver: driver.String, Children: kids.Bool}
			byID[id] = s
			order = append(order, s)
			continue
		}
		racks = append(racks, under{id, rack.Int64, units.Int64})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, entity.Internal("read sites", err)
	}
	use := map[int64]rackUse{}
	var missing [][2]int64
	for _, r := range racks {
		if u, ok := tx.cachedRackUse(r.rack, r.units); ok {
			use[r.rack] = u
		} else {
			missing = append(missing, [2]int64{r.rack, r.units})
		}
	}
	if err := tx.readRackUse(missing, use); err != nil {
		return nil, err
	}
	for _, r := range racks {
		s, u := byID[r.root], use[r.rack]
		if s == nil {
			continue
		}
		if r.rack == r.root {
			s.Rack = true
		}
		s.Racks++
		s.Units += r.units
		s.Devices += u.devices
		s.Used += u.used
	}
	slices.SortFunc(order, func(a, b *entity.Site) int { return strings.Compare(a.Name, b.Name) })
	out := make([]entity.Site, len(order))
	for i, s := range order {
		out[i] = *s
	}
	return out, nil
}

// rackUse is what one rack holds: the things in it and the units they
// take, for the rack's units.
type rackUse struct{ units, devices, used int64 }

// readRackUse reads the use of the racks of ids ([id, units] pairs) into
// use, in one statement, and keeps it for later views.
func (tx *Tx) readRackUse(ids [][2]int64, use map[int64]rackUse) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return entity.Internal("read racks", err)
	}
	rows, err := tx.query(`WITH r(id, units) AS (SELECT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]') FROM json_each(?) j)
		SELECT r.id, r.units,
			(SELECT count(*) FROM connections c WHERE c.a = r.id AND c.type = 'contains' AND c.until IS NULL),
			(SELECT coalesce(sum(min(c.position + c.height - 1, r.units) - c.position + 1), 0) FROM connections c
				WHERE c.a = r.id AND c.type = 'contains' AND c.until IS NULL AND c.position BETWEEN 1 AND r.units AND c.height >= 1)
		FROM r`, string(list))
	if err != nil {
		return entity.Internal("read racks", err)
	}
	defer rows.Close()
	got := map[int64]rackUse{}
	for rows.Next() {
		var id int64
		var u rackUse
		if err := rows.Scan(&id, &u.units, &u.devices, &u.used); err != nil {
			return entity.Internal("read racks", err)
		}
		use[id], got[id] = u, u
	}
	if err := rows.Err(); err != nil {
		return entity.Internal("read racks", err)
	}
	if tx.view {
		tx.s.rackUse.put(tx.rackGen, got)
	}
	return nil
}

// cachedRackUse is the kept use of rack id, when a view may use it: a
// write transaction reads what it has itself changed.
func (tx *Tx) cachedRackUse(id, units int64) (rackUse, bool) {
	if !tx.view {
		return rackUse{}, false
	}
	return tx.s.rackUse.get(id, units)
}

// rackUseCache keeps each rack's use (rackUse) for the current state. A
// commit drops the racks whose answer it changed (a rack's answer holds
// its children with their positions and heights, and its units), and a
// drivers reload all of them (the store's commit hook, as for the
// server's entity cache). A view that began before a commit may have read
// a rack as it was: the generation, which every commit's drop moves, makes
// put refuse what a view read if any drop came after it began.
type rackUseCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[int64]rackUse
}

// rackUseMax bounds the racks kept; past it the cache starts again.
const rackUseMax = 1 << 20

func (c *rackUseCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *rackUseCache) get(id, units int64) (rackUse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.m[id]
	return u, ok && u.units == units
}

func (c *rackUseCache) put(gen uint64, use map[int64]rackUse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m)+len(use) > rackUseMax {
		c.m = make(map[int64]rackUse, len(use))
	}
	for id, u := range use {
		c.m[id] = u
	}
}

// invalidate is the commit hook: it drops the changed entities (all of
// them for nil) and moves the generation.
func (c *rackUseCache) invalidate(changed []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if changed == nil {
		c.m = nil
		return
	}
	for _, id := range changed {
		delete(c.m, id)
	}
}
