package store

import (
	"database/sql"
	"strings"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// Sites lists one level of the containment tree with what lies under each
// place (entity.Site): with parent "", the tops of the tree (the sites,
// entities of a driver that is never contained, such as a datacenter, and
// racks standing in no place); else the things physically inside parent.
// In name order.
//
// It reads the whole subtree of each place in one statement: a walk down
// the containment that stops at racks (whose contents are counted, not
// walked), then per rack the things in it and the units they take, as
// Elevation counts them (a placement running off the top counts up to the
// top unit; one outside the rack not at all).
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
		),
		rack(root, id, units, devices, used) AS (
			SELECT w.root, w.id, w.units,
				(SELECT count(*) FROM connections c WHERE c.a = w.id AND c.type = 'contains' AND c.until IS NULL),
				(SELECT coalesce(sum(min(c.position + c.height - 1, w.units) - c.position + 1), 0) FROM connections c
					WHERE c.a = w.id AND c.type = 'contains' AND c.until IS NULL AND c.position BETWEEN 1 AND w.units AND c.height >= 1)
			FROM walk w WHERE w.units IS NOT NULL
		)
		SELECT n.name, n.driver,
			` + units("n") + ` IS NOT NULL,
			EXISTS (SELECT 1 FROM connections c WHERE c.a = n.id AND c.type = 'contains' AND c.until IS NULL),
			count(r.id), coalesce(sum(r.devices), 0), coalesce(sum(r.units), 0), coalesce(sum(r.used), 0)
		FROM node n LEFT JOIN rack r ON r.root = n.id
		GROUP BY n.id ORDER BY n.name`
	rows, err := tx.query(q, args...)
	if err != nil {
		return nil, entity.Internal("read sites", err)
	}
	defer rows.Close()
	out := []entity.Site{}
	for rows.Next() {
		var s entity.Site
		var rack, kids sql.NullBool
		if err := rows.Scan(&s.Name, &s.Driver, &rack, &kids, &s.Racks, &s.Devices, &s.Units, &s.Used); err != nil {
			return nil, entity.Internal("read sites", err)
		}
		s.Rack, s.Children = rack.Bool, kids.Bool
		out = append(out, s)
	}
	return out, rows.Err()
}
