package entity

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/clusto/clusto/drivers"
)

// The rules on drivers, attributes, references, containment, links, pools,
// name managers and history. (Racks are in inv_racks.go, address blocks in
// inv_blocks.go.)

// touching returns a condition that row alias of table (a versioned table
// with entity-id columns cols) is current and names an entity in scope in
// any of cols. For the whole inventory it is every current row. Each
// branch goes through its column's index on current rows. It suits rows
// an entity has few of (links, by the ports its driver declares).
func (c *checker) touching(alias, table string, cols ...string) string {
	if !c.scoped {
		return alias + ".until IS NULL"
	}
	var parts []string
	for _, col := range cols {
		parts = append(parts, "SELECT x.rid FROM temp.inv_scope s CROSS JOIN "+table+" x ON x."+col+" = s.id AND x.until IS NULL")
	}
	return alias + ".until IS NULL AND " + alias + ".rid IN (" + strings.Join(parts, " UNION ") + ")"
}

// written returns a condition that row alias of table is current and was
// written by the transaction for an entity in scope in column col, found
// through hist, the table's index on (col, since): the cost is what the
// transaction wrote, not what the entity holds (a holder of thousands of
// addresses given one more). For the whole inventory: every current row.
func (c *checker) written(alias, table, col, hist string) (string, []any) {
	if !c.scoped {
		return alias + ".until IS NULL", nil
	}
	return alias + ".until IS NULL AND " + alias + ".rid IN (SELECT x.rid FROM " + table + " x INDEXED BY " + hist +
		" WHERE x." + col + " IN (SELECT id FROM temp.inv_scope) AND x.since >= ?)", []any{c.firstCid}
}

// deadScope selects the entities in scope that are not current: those the
// transaction deleted.
const deadScope = `SELECT s.id FROM temp.inv_scope s WHERE NOT EXISTS (SELECT 1 FROM entities e WHERE e.id = s.id AND e.until IS NULL)`

// suspect returns a condition selecting the current rows of table (alias)
// that a transaction could have left pointing at a deleted entity: the
// rows naming, in any of cols, an entity it deleted, and the rows it wrote
// (for an entity in scope in histCol, through hist). A row comes to point
// at a deleted entity only when that entity is deleted or when the row is
// written.
func (c *checker) suspect(alias, table, hist, histCol string, cols ...string) (string, []any) {
	if !c.scoped {
		return alias + ".until IS NULL", nil
	}
	var parts []string
	for _, col := range cols {
		parts = append(parts, "SELECT x.rid FROM ("+deadScope+") d CROSS JOIN "+table+" x ON x."+col+" = d.id AND x.until IS NULL")
	}
	parts = append(parts, "SELECT x.rid FROM "+table+" x INDEXED BY "+hist+" WHERE x."+histCol+" IN (SELECT id FROM temp.inv_scope) AND x.since >= ?")
	return alias + ".until IS NULL AND " + alias + ".rid IN (" + strings.Join(parts, " UNION ") + ")", []any{c.firstCid}
}

func testKnownDriver(c *checker) error {
	known, err := json.Marshal(c.drivers.Names())
	if err != nil {
		return Internal("check "+c.rule, err)
	}
	return c.sqlRule(`SELECT 'is of driver ' || e.driver || ', which is not registered (is the server started with the drivers file that defines it?)', e.name
		FROM entities e WHERE e.until IS NULL AND `+c.in("e.id")+` AND e.driver NOT IN (SELECT value FROM json_each(?)) ORDER BY e.name`, string(known))
}

// ruleKeys are the attribute keys the rules read, each with the drivers
// whose rules read it. The rules take one value of each: a second would
// leave it to chance which one counts.
var ruleKeys = map[string]func(d *drivers.Driver) bool{
	"units":     func(d *drivers.Driver) bool { return d.Units > 0 },
	"height":    func(d *drivers.Driver) bool { return d.Placeable() },
	"cidr":      func(d *drivers.Driver) bool { return d.Name == "ipblock" },
	"gateway":   func(d *drivers.Driver) bool { return d.Name == "ipblock" },
	"exclusive": func(d *drivers.Driver) bool { return d.Name == "pool" },
	"unique":    func(d *drivers.Driver) bool { return d.Name == "pool" },
	"basename":  func(d *drivers.Driver) bool { return d.Name == "namemanager" },
	"digits":    func(d *drivers.Driver) bool { return d.Name == "namemanager" },
	"next":      func(d *drivers.Driver) bool { return d.Name == "namemanager" },
}

// ruleKeyList is ruleKeys' names as a JSON array, for SQL.
var ruleKeyList = func() string {
	var keys []string
	for k := range ruleKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b, _ := json.Marshal(keys)
	return string(b)
}()

func testSingleValue(c *checker) error {
	return c.rows(`SELECT e.name, e.driver, a.key, count(*), group_concat(a.value, ', ') FROM attrs a JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
		WHERE a.until IS NULL AND `+c.in("a.entity_id")+` AND a.key IN (SELECT value FROM json_each(?))
		GROUP BY a.entity_id, a.key HAVING count(*) > 1 ORDER BY e.name, a.key`, []any{ruleKeyList}, func(r *sql.Rows) error {
		var name, driver, key, values string
		var n int
		if err := r.Scan(&name, &driver, &key, &n, &values); err != nil {
			return err
		}
		if d := c.driverOf(driver); d != nil && ruleKeys[key](d) {
			c.report(fmt.Sprintf("%s has %d values of %s (%s); the rules read one", name, n, key, values), []string{name}, map[string]any{"key": key, "values": n})
		}
		return nil
	})
}

func testAttrTypes(c *checker) error {
	cond, args := c.written("a", "attrs", "entity_id", "attrs_hist")
	return c.rows(`SELECT e.name, e.driver, a.key, a.type, a.value, a.num FROM attrs a JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
		WHERE `+cond+` ORDER BY e.name, a.rid`, args, func(r *sql.Rows) error {
		var name, driver, key, typ, value string
		var num sql.NullInt64
		if err := r.Scan(&name, &driver, &key, &typ, &value, &num); err != nil {
			return err
		}
		d := c.driverOf(driver)
		if d == nil {
			return nil
		}
		spec, ok := d.Attrs[key]
		if !ok {
			return nil
		}
		want := spec.Type
		if want == drivers.TypeCIDR {
			want = drivers.TypeString
		}
		vals := map[string]any{"key": key, "type": typ, "value": value}
		switch {
		case typ != want:
			c.report(fmt.Sprintf("%s of %s is a %s value (%s), but a %s's %s is %s", key, name, typ, value, driver, key, spec.Type), []string{name}, vals)
		case spec.Min != nil && num.Valid && num.Int64 < *spec.Min:
			c.report(fmt.Sprintf("%s of %s is %d, below the %s driver's minimum of %d", key, name, num.Int64, driver, *spec.Min), []string{name}, vals)
		}
		return nil
	})
}

func testLiveReferences(c *checker) error {
	cond, args := c.suspect("c", "connections", "conn_hist_a", "a", "a", "b")
	if err := c.sqlRule(`SELECT c.type || ' connection between ' || coalesce(ea.name, '#' || c.a) || ' and ' || coalesce(eb.name, '#' || c.b) || ' involves a deleted entity',
			coalesce(ea.name, '#' || c.a) || ',' || coalesce(eb.name, '#' || c.b)
		FROM connections c LEFT JOIN entities ea ON ea.id = c.a AND ea.until IS NULL LEFT JOIN entities eb ON eb.id = c.b AND eb.until IS NULL
		WHERE `+cond+` AND (ea.rid IS NULL OR eb.rid IS NULL)`, args...); err != nil {
		return err
	}
	cond, args = c.suspect("a", "attrs", "attrs_hist", "entity_id", "entity_id")
	if err := c.sqlRule(`SELECT 'attribute ' || a.key || ' belongs to deleted entity #' || a.entity_id, '#' || a.entity_id
		FROM attrs a LEFT JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
		WHERE `+cond+` AND e.rid IS NULL`, args...); err != nil {
		return err
	}
	cond, args = c.suspect("a", "attrs", "attrs_hist", "entity_id", "ref")
	if err := c.sqlRule(`SELECT 'attribute ' || a.key || ' of ' || coalesce(e.name, '#' || a.entity_id) || ' refers to deleted entity #' || a.ref, coalesce(e.name, '#' || a.entity_id)
		FROM attrs a LEFT JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
		WHERE `+cond+` AND a.ref IS NOT NULL AND NOT EXISTS (SELECT 1 FROM entities t WHERE t.id = a.ref AND t.until IS NULL)`, args...); err != nil {
		return err
	}
	cond, args = c.suspect("i", "ip_allocations", "ipalloc_hist", "block_id", "block_id", "entity_id")
	return c.sqlRule(`SELECT 'address allocation from ' || coalesce(b.name, '#' || i.block_id) || ' to ' || coalesce(h.name, '#' || i.entity_id) || ' involves a deleted entity',
			coalesce(b.name, '#' || i.block_id) || ',' || coalesce(h.name, '#' || i.entity_id)
		FROM ip_allocations i LEFT JOIN entities b ON b.id = i.block_id AND b.until IS NULL LEFT JOIN entities h ON h.id = i.entity_id AND h.until IS NULL
		WHERE `+cond+` AND (b.rid IS NULL OR h.rid IS NULL)`, args...)
}

func testOneParent(c *checker) error {
	return c.sqlRule(`SELECT 'has ' || count(*) || ' physical parents: ' || group_concat(coalesce(p.name, '#' || c.a), ', '), coalesce(e.name, '#' || c.b)
		FROM connections c LEFT JOIN entities e ON e.id = c.b AND e.until IS NULL LEFT JOIN entities p ON p.id = c.a AND p.until IS NULL
		WHERE c.type = 'contains' AND c.until IS NULL AND ` + c.in("c.b") + ` GROUP BY c.b HAVING count(*) > 1`)
}

func testParentAllowed(c *checker) error {
	// A containment can become disallowed only when it is made, or when
	// the drivers change: a reload scopes every entity of a changed
	// driver and counts all their rows as written.
	cond, args := c.written("c", "connections", "b", "conn_hist_b")
	return c.rows(`SELECT p.name, p.driver, e.name, e.driver FROM connections c
		JOIN entities p ON p.id = c.a AND p.until IS NULL JOIN entities e ON e.id = c.b AND e.until IS NULL
		WHERE c.type = 'contains' AND `+cond+` ORDER BY p.name, e.name`, args, func(r *sql.Rows) error {
		var parent, pdriver, child, cdriver string
		if err := r.Scan(&parent, &pdriver, &child, &cdriver); err != nil {
			return err
		}
		pd, cd := c.driverOf(pdriver), c.driverOf(cdriver)
		if pd == nil || cd == nil || pd.Kind == drivers.Group || pd.MayContain(cd) {
			return nil
		}
		allowed := "nothing"
		if len(cd.Parents) > 0 {
			allowed = strings.Join(cd.Parents, ", ")
		}
		c.report(fmt.Sprintf("%s (a %s) is in %s (a %s); a %s may go in: %s", child, cdriver, parent, pdriver, cdriver, allowed), []string{child, parent}, nil)
		return nil
	})
}

func testContainsLoop(c *checker) error { return c.loops("contains") }

func testMemberLoop(c *checker) error { return c.loops("member") }

// loops finds entities that are their own ancestor through connections
// of type typ. Only an entity that both has a parent and holds something
// can be on a loop, and a loop that a transaction made passes through an
// entity it touched; for each such candidate the walk goes up (each
// (start, node) pair once, so it ends).
func (c *checker) loops(typ string) error {
	from := `temp.inv_scope k`
	if !c.scoped {
		from = `entities k INDEXED BY entities_cur_id WHERE k.until IS NULL AND`
	} else {
		from += ` WHERE`
	}
	var cands []int64
	err := c.rows(`SELECT k.id FROM `+from+` EXISTS (SELECT 1 FROM connections x WHERE x.b = k.id AND x.type = ?1 AND x.until IS NULL)
		AND EXISTS (SELECT 1 FROM connections x WHERE x.a = k.id AND x.type = ?1 AND x.until IS NULL)`, []any{typ}, func(r *sql.Rows) error {
		var id int64
		cands = append(cands, id)
		return r.Scan(&cands[len(cands)-1])
	})
	if err != nil || len(cands) == 0 {
		return err
	}
	list, err := json.Marshal(cands)
	if err != nil {
		return Internal("check "+c.rule, err)
	}
	return c.rows(`WITH RECURSIVE
		up(start, id) AS (SELECT k.value, x.a FROM json_each(?2) k CROSS JOIN connections x ON x.b = k.value AND x.type = ?1 AND x.until IS NULL
			UNION SELECT up.start, x.a FROM up CROSS JOIN connections x ON x.b = up.id AND x.type = ?1 AND x.until IS NULL)
		SELECT DISTINCT up.start FROM up WHERE up.id = up.start ORDER BY up.start`, []any{typ, string(list)}, func(r *sql.Rows) error {
		var id int64
		if err := r.Scan(&id); err != nil {
			return err
		}
		what := "contains itself through its containers"
		if typ == Member {
			what = "is a member of itself through the groups it is in"
		}
		c.report(fmt.Sprintf("%s %s", c.name(id), what), []string{c.name(id)}, nil)
		return nil
	})
}

func testPortOneLink(c *checker) error {
	return c.sqlRule(`SELECT 'port ' || c.a_port || ' of ' || coalesce(e.name, '#' || c.a) || ' carries ' || count(*) || ' links', coalesce(e.name, '#' || c.a)
		FROM connections c LEFT JOIN entities e ON e.id = c.a AND e.until IS NULL
		WHERE c.type = 'link' AND c.until IS NULL AND ` + c.in("c.a") + ` GROUP BY c.a, c.a_port HAVING count(*) > 1`)
}

func testLinkBothEnds(c *checker) error {
	return c.sqlRule(`SELECT 'link ' || coalesce(e.name, '#' || c.a) || ':' || c.a_port || ' -> ' || coalesce(p.name, '#' || c.b) || ':' || c.b_port || ' has no reverse row',
			coalesce(e.name, '#' || c.a) || ',' || coalesce(p.name, '#' || c.b)
		FROM connections c LEFT JOIN entities e ON e.id = c.a AND e.until IS NULL LEFT JOIN entities p ON p.id = c.b AND p.until IS NULL
		WHERE c.type = 'link' AND ` + c.touching("c", "connections", "a", "b") + ` AND NOT EXISTS (SELECT 1 FROM connections r WHERE r.type = 'link' AND r.until IS NULL
		AND r.a = c.b AND r.b = c.a AND r.a_port = c.b_port AND r.b_port = c.a_port AND r.port_type IS c.port_type)`)
}

func testLinkPorts(c *checker) error {
	return c.rows(`SELECT e.name, e.driver, c.a_port, coalesce(c.port_type, ''), p.name FROM connections c
		JOIN entities e ON e.id = c.a AND e.until IS NULL JOIN entities p ON p.id = c.b AND p.until IS NULL
		WHERE c.type = 'link' AND `+c.touching("c", "connections", "a", "b")+` ORDER BY e.name, c.a_port`, nil, func(r *sql.Rows) error {
		var name, driver, port, typ, peer string
		if err := r.Scan(&name, &driver, &port, &typ, &peer); err != nil {
			return err
		}
		d := c.driverOf(driver)
		if d == nil {
			return nil
		}
		p, ok := d.Port(port)
		switch {
		case !ok:
			c.report(fmt.Sprintf("%s is linked on port %s, which a %s does not have", name, port, driver), []string{name, peer}, map[string]any{"port": port})
		case p.Type != typ:
			c.report(fmt.Sprintf("port %s of %s is a %s port but carries a %s link", port, name, p.Type, typ), []string{name, peer}, map[string]any{"port": port})
		}
		return nil
	})
}

// poolMembers reads, for every member of two or more pools that is in
// scope or in a pool in scope, its pools in name order with their flags.
func (c *checker) poolMembers(fn func(member string, pools []poolFlags)) error {
	// The things to look at: those in two or more pools among every
	// member, or at commit among the members in scope and all members of
	// a pool in scope whose exclusive or unique flag the transaction wrote.
	var args []any
	things := `SELECT x.b AS id FROM connections x WHERE x.type = 'member' AND x.until IS NULL`
	if c.scoped {
		things = `SELECT id FROM temp.inv_scope
			UNION SELECT y.b FROM (SELECT s.id FROM temp.inv_scope s WHERE EXISTS (SELECT 1 FROM attrs f INDEXED BY attrs_hist
				WHERE f.entity_id = s.id AND f.key IN ('exclusive', 'unique') AND (f.since >= ?1 OR f.until >= ?1))) f
			CROSS JOIN connections y ON y.a = f.id AND y.type = 'member' AND y.until IS NULL`
		args = []any{c.firstCid}
	}
	members := `SELECT k.id FROM (` + things + `) k CROSS JOIN connections x ON x.b = k.id AND x.type = 'member' AND x.until IS NULL
		CROSS JOIN entities g ON g.id = x.a AND g.until IS NULL AND g.driver = 'pool' GROUP BY k.id HAVING count(DISTINCT x.a) > 1`
	var cur string
	var pools []poolFlags
	err := c.rows(`SELECT m.name, g.name,
			EXISTS (SELECT 1 FROM attrs a INDEXED BY attrs_cur_entity WHERE a.entity_id = g.id AND a.key = 'exclusive' AND a.value = 'true' AND a.until IS NULL),
			EXISTS (SELECT 1 FROM attrs a INDEXED BY attrs_cur_entity WHERE a.entity_id = g.id AND a.key = 'unique' AND a.value = 'true' AND a.until IS NULL)
		FROM (`+members+`) mm CROSS JOIN connections c ON c.b = mm.id AND c.type = 'member' AND c.until IS NULL
		JOIN entities g ON g.id = c.a AND g.until IS NULL AND g.driver = 'pool' JOIN entities m ON m.id = c.b AND m.until IS NULL
		ORDER BY m.name, g.name`, args, func(r *sql.Rows) error {
		var m string
		var p poolFlags
		if err := r.Scan(&m, &p.name, &p.exclusive, &p.unique); err != nil {
			return err
		}
		if m != cur && cur != "" {
			fn(cur, pools)
			pools = nil
		}
		cur = m
		pools = append(pools, p)
		return nil
	})
	if err == nil && cur != "" {
		fn(cur, pools)
	}
	return err
}

type poolFlags struct {
	name              string
	exclusive, unique bool
}

func testPoolExclusive(c *checker) error {
	return c.poolMembers(func(m string, pools []poolFlags) {
		var names []string
		for _, p := range pools {
			names = append(names, p.name)
		}
		for _, p := range pools {
			if p.exclusive {
				c.report(fmt.Sprintf("%s is in exclusive pool %s and in other pools too (%s)", m, p.name, strings.Join(names, ", ")), append([]string{m}, names...), nil)
				return
			}
		}
	})
}

func testPoolUnique(c *checker) error {
	return c.poolMembers(func(m string, pools []poolFlags) {
		var unique []string
		for _, p := range pools {
			if p.unique {
				unique = append(unique, p.name)
			}
		}
		if len(unique) > 1 {
			c.report(fmt.Sprintf("%s is in %d unique pools (%s); a thing may be in one", m, len(unique), strings.Join(unique, ", ")), append([]string{m}, unique...), nil)
		}
	})
}

func testNameCounter(c *checker) error {
	return c.sqlRule(`SELECT 'next is ' || coalesce(cur, 'unset (1)') || ' but was ' || held || ' before: numbers below that may have been handed out', name,
			json_object('next', coalesce(cur, 1), 'held', held)
		FROM (SELECT e.name,
			(SELECT a.num FROM attrs a INDEXED BY attrs_cur_entity WHERE a.entity_id = e.id AND a.key = 'next' AND a.until IS NULL AND a.num IS NOT NULL ORDER BY a.rid DESC LIMIT 1) AS cur,
			(SELECT max(a.num) FROM attrs a WHERE a.entity_id = e.id AND a.key = 'next') AS held
			FROM entities e WHERE e.driver = 'namemanager' AND e.until IS NULL AND ` + c.in("e.id") + `)
		WHERE held > coalesce(cur, 1) ORDER BY name`)
}

func testHistory(c *checker) error {
	if err := c.sqlRule(`SELECT 'has ' || count(*) || ' current rows', group_concat(name) FROM entities WHERE until IS NULL AND ` + c.in("id") + ` GROUP BY id HAVING count(*) > 1`); err != nil {
		return err
	}
	// At commit the rows to look at are those the transaction wrote; the
	// rows it ended, it ended with its own change numbers, after they began.
	tables := []struct{ table, col, hist string }{
		{"entities", "id", "entities_hist_id"}, {"attrs", "entity_id", "attrs_hist"},
		{"connections", "a", "conn_hist_a"}, {"ip_allocations", "block_id", "ipalloc_hist"},
	}
	var order, future []string
	var args []any
	for _, t := range tables {
		from, where := t.table, "1"
		if c.scoped {
			from += " INDEXED BY " + t.hist
			where = t.col + " IN (SELECT id FROM temp.inv_scope) AND since >= ?"
			args = append(args, c.firstCid)
		}
		order = append(order, "SELECT '"+t.table+"' AS t, since, until FROM "+from+" WHERE "+where)
		future = append(future, "SELECT '"+t.table+"' AS t, max(since, coalesce(until, 0)) AS x FROM "+from+" WHERE "+where)
	}
	if err := c.sqlRule(`SELECT 'a row of ' || t || ' ends (change ' || until || ') before it starts (change ' || since || ')', '' FROM (
		`+strings.Join(order, " UNION ALL ")+`) WHERE until IS NOT NULL AND until < since`, args...); err != nil {
		return err
	}
	chain, chainArgs := "1", []any(nil)
	if c.scoped {
		chain, chainArgs = "n.id IN (SELECT id FROM temp.inv_scope) AND n.since >= ?", []any{c.firstCid}
	}
	if err := c.sqlRule(`SELECT 'version ' || v.version || ' ends at change ' || coalesce(v.until, 'none') || ' but version ' || n.version || ' starts at ' || n.since, n.name
		FROM entities n INDEXED BY entities_hist_id JOIN entities v ON v.rid = (SELECT p.rid FROM entities p WHERE p.id = n.id AND p.since < n.since ORDER BY p.since DESC LIMIT 1)
		WHERE `+chain+` AND (v.version != n.version - 1 OR v.until IS NOT n.since)`, chainArgs...); err != nil {
		return err
	}
	return c.sqlRule(`SELECT 'a row of ' || t || ' refers to change ' || x || ', newer than the newest change', '' FROM (
		`+strings.Join(future, " UNION ALL ")+`) WHERE x > (SELECT coalesce(max(id), 0) FROM changes)`, args...)
}
