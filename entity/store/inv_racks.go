package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
)

// Rack units: a child placed in a container with units (a rack, a
// chassis) takes units position .. position+height-1, which must lie in
// 1..units and overlap no other child. units is the container's `units`
// attribute, else its driver's default. The bounds are compared without
// overflow: a height of 2^63-1 at position 2 is outside any rack, not a
// negative number.

// placement is one child placed (or given a height) in a container.
type placement struct {
	container, child int64
	childName        string
	position, height sql.NullInt64
}

// container is a container's identity and size, as the rules see it.
type container struct {
	name, driver string
	units        int64 // 0: it holds nothing at positions
	known        bool  // its driver is registered
}

// rackData is what the rack rules read, loaded once per check.
type rackData struct {
	placements []placement // by container, then position
	containers map[int64]*container
}

func (c *checker) racks() (*rackData, error) {
	if c.rackCache != nil {
		return c.rackCache, nil
	}
	scope, args := "1", []any(nil)
	if c.scoped {
		// The containers a placement was made in (a height written moves
		// the placement: a new row too), and those whose units changed.
		scope = `c.a IN (SELECT x.a FROM connections x NOT INDEXED WHERE x.rid > ?1 AND x.type = 'contains'
			UNION SELECT x.entity_id FROM attrs x NOT INDEXED WHERE x.rid > ?2 AND x.key = 'units'
			UNION SELECT x.entity_id FROM attrs x INDEXED BY attrs_ended WHERE x.until >= ?3 AND x.key = 'units')`
		args = []any{c.startRid["connections"], c.startRid["attrs"], c.firstCid}
	}
	d := &rackData{containers: map[int64]*container{}}
	err := c.rows(`SELECT c.a, c.b, coalesce(e.name, '#' || c.b), c.position, c.height FROM connections c LEFT JOIN entities e ON e.id = c.b AND e.until IS NULL
		WHERE c.type = 'contains' AND c.until IS NULL AND (c.position IS NOT NULL OR c.height IS NOT NULL) AND `+scope+`
		ORDER BY c.a, c.position, c.b`, args, func(r *sql.Rows) error {
		var p placement
		if err := r.Scan(&p.container, &p.child, &p.childName, &p.position, &p.height); err != nil {
			return err
		}
		d.placements = append(d.placements, p)
		d.containers[p.container] = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(d.containers))
	for id := range d.containers {
		ids = append(ids, id)
	}
	list, _ := json.Marshal(ids)
	err = c.rows(`SELECT e.id, e.name, e.driver,
			(SELECT a.num FROM attrs a INDEXED BY attrs_cur_entity WHERE a.entity_id = e.id AND a.key = 'units' AND a.until IS NULL AND a.num IS NOT NULL ORDER BY a.rid DESC LIMIT 1)
		FROM entities e WHERE e.id IN (SELECT value FROM json_each(?)) AND e.until IS NULL`, []any{string(list)}, func(r *sql.Rows) error {
		var id int64
		var k container
		var units sql.NullInt64
		if err := r.Scan(&id, &k.name, &k.driver, &units); err != nil {
			return err
		}
		if drv := c.driverOf(k.driver); drv != nil {
			k.known = true
			if drv.Units > 0 {
				k.units = int64(drv.Units)
				if units.Valid {
					k.units = units.Int64
				}
			}
		}
		d.containers[id] = &k
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.rackCache = d
	return d, nil
}

// fits reports whether a placement lies inside units 1..units, and if not why.
func fits(p placement, units int64) (string, bool) {
	switch {
	case !p.position.Valid:
		return "has a height but no position", false
	case !p.height.Valid:
		return fmt.Sprintf("is at unit %d with no height", p.position.Int64), false
	case units < 1:
		return fmt.Sprintf("is at unit %d, but its container has no rack units", p.position.Int64), false
	case p.position.Int64 < 1 || p.position.Int64 > units:
		return fmt.Sprintf("is at unit %d, outside units 1-%d", p.position.Int64, units), false
	case p.height.Int64 < 1:
		return fmt.Sprintf("has height %d; a height is at least 1", p.height.Int64), false
	case p.height.Int64 > units-p.position.Int64+1: // units-position+1 cannot overflow: both are in 1..units
		return fmt.Sprintf("at unit %d with height %d runs past unit %d, the top", p.position.Int64, p.height.Int64, units), false
	}
	return "", true
}

func testRackFit(c *checker) error {
	d, err := c.racks()
	if err != nil {
		return err
	}
	for _, p := range d.placements {
		k := d.containers[p.container]
		if k == nil || !k.known {
			continue // a deleted or unknown container: live-references or known-driver says so
		}
		if why, ok := fits(p, k.units); !ok {
			c.report(fmt.Sprintf("%s in %s (a %s with %d units) %s", p.childName, k.name, k.driver, k.units, why), []string{p.childName, k.name},
				map[string]any{"position": nullable(p.position), "height": nullable(p.height), "units": k.units})
		}
	}
	return nil
}

func testRackOverlap(c *checker) error {
	d, err := c.racks()
	if err != nil {
		return err
	}
	// Placements come by container, then position. Within a container the
	// one reaching highest so far is what the next must start above.
	var top *placement
	var topEnd int64
	for i := range d.placements {
		p := &d.placements[i]
		k := d.containers[p.container]
		if top != nil && top.container != p.container {
			top = nil
		}
		if k == nil || !k.known {
			continue
		}
		if _, ok := fits(*p, k.units); !ok {
			continue // rack-fit reports it; its end is not a number to compare
		}
		pos, end := p.position.Int64, p.position.Int64+p.height.Int64-1
		if top != nil && pos <= topEnd {
			c.report(fmt.Sprintf("units %d-%d of %s (%s) overlap units %d-%d (%s)", pos, end, k.name, p.childName, top.position.Int64, topEnd, top.childName),
				[]string{k.name, top.childName, p.childName}, map[string]any{"units": []int64{max(pos, top.position.Int64), min(end, topEnd)}})
		}
		if top == nil || end > topEnd {
			top, topEnd = p, end
		}
	}
	return nil
}

func nullable(n sql.NullInt64) any {
	if n.Valid {
		return n.Int64
	}
	return nil
}
