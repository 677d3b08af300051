package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/clusto/clusto/drivers"
	"github.com/clusto/clusto/entity"
)

// The rules on drivers, attributes, references, containment, links, pools,
// name managers and history. (Racks are in inv_racks.go, address blocks in
// inv_blocks.go.)

// deadSQL selects the entities the transaction deleted: those whose row
// it ended without a current one after (?: its first change).
const deadSQL = `SELECT DISTINCT x.id FROM entities x INDEXED BY entities_ended WHERE x.until >= ?
	AND NOT EXISTS (SELECT 1 FROM entities y WHERE y.id = x.id AND y.until IS NULL)`

// scan is one read of rows of a table: its FROM (the table and alias,
// with how to reach the rows) and WHERE, with the arguments.
type scan struct {
	from, where string
	args        []any
}

// suspects returns the reads of the current rows of table (alias) that a
// transaction could have left pointing at a deleted entity: the rows it
// wrote (a range of the primary key), and the older rows naming, in any
// of cols, an entity it deleted. A row comes to point at a deleted entity
// only when it is written or when that entity is deleted. For the whole
// inventory: every current row, in one read.
func (c *checker) suspects(alias, table string, cols ...string) []scan {
	if !c.scoped {
		return []scan{{table + " " + alias, alias + ".until IS NULL", nil}}
	}
	start := c.startRid[table]
	if !c.didMake("deletes") {
		// No entity was deleted: only rows written can point at one.
		return []scan{{table + " " + alias + " NOT INDEXED", alias + ".rid > ? AND " + alias + ".until IS NULL", []any{start}}}
	}
	var dead []string
	args := []any{start}
	for _, col := range cols {
		dead = append(dead, "SELECT x.rid FROM ("+deadSQL+") d CROSS JOIN "+table+" x ON x."+col+" = d.id AND x.until IS NULL")
		args = append(args, c.firstCid)
	}
	return []scan{
		{table + " " + alias + " NOT INDEXED", alias + ".rid > ? AND " + alias + ".until IS NULL", []any{start}},
		{table + " " + alias, alias + ".until IS NULL AND " + alias + ".rid <= ? AND " + alias + ".rid IN (" + strings.Join(dead, " UNION ") + ")", args},
	}
}

// newConnEnds is SQL for the entities at either end of connections of
// type ?1 the transaction made (?2: connections' start rowid).
const newConnEnds = `SELECT x.a AS id FROM connections x NOT INDEXED WHERE x.rid > ?2 AND x.type = ?1 UNION SELECT x.b FROM connections x NOT INDEXED WHERE x.rid > ?2 AND x.type = ?1`

func testKnownDriver(c *checker) error {
	known, err := json.Marshal(c.drivers.Names())
	if err != nil {
		return entity.Internal("check "+c.rule, err)
	}
	cond, args := c.newRows("e", "entities")
	return c.sqlRule(`SELECT 'is of driver ' || e.driver || ', which is not registered (is the server started with the drivers file that defines it?)', e.name
		FROM entities e WHERE e.until IS NULL AND `+cond+` AND e.driver NOT IN (SELECT value FROM json_each(?)) ORDER BY e.name`, append(args, string(known))...)
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
	// A second value comes only with a value written.
	from, args := "attrs a", []any{ruleKeyList}
	if c.scoped {
		from = `(SELECT DISTINCT x.entity_id, x.key FROM attrs x NOT INDEXED WHERE x.rid > ?2 AND x.until IS NULL AND x.key IN (SELECT value FROM json_each(?1))) p
			CROSS JOIN attrs a ON a.entity_id = p.entity_id AND a.key = p.key`
		args = append(args, c.startRid["attrs"])
	}
	return c.rows(`SELECT e.name, e.driver, a.key, count(*), group_concat(a.value, ', ') FROM `+from+` JOIN entities e ON e.id = a.entity_id AND e.until IS NULL
		WHERE a.until IS NULL AND a.key IN (SELECT value FROM json_each(?1))
		GROUP BY a.entity_id, a.key HAVING count(*) > 1 ORDER BY e.name, a.key`, args, func(r *sql.Rows) error {
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

func testAttrTypes(c *checker) error { return c.attrPass() }

// attrPass reads, once per check, the attributes that attr-type and
// live-references look at (all current ones, or at commit those the
// transaction wrote and those of or referring to an entity it deleted),
// and reports the problems of both rules.
func (c *checker) attrPass() error {
	if c.attrsDone {
		return nil
	}
	c.attrsDone = true
	newOnly := c.startRid["attrs"]
	for _, sc := range c.suspects("a", "attrs", "entity_id", "ref") {
		if err := c.attrRows(sc, newOnly); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) attrRows(sc scan, newOnly int64) error {
	return c.rows(`SELECT a.rid, a.entity_id, a.key, a.type, a.value, a.num, coalesce(a.ref, 0) FROM `+sc.from+` WHERE `+sc.where, sc.args, func(r *sql.Rows) error {
		var rid, id, ref int64
		var key, typ, value string
		var num sql.NullInt64
		if err := r.Scan(&rid, &id, &key, &typ, &value, &num, &ref); err != nil {
			return err
		}
		owner, err := c.entity(id)
		if err != nil {
			return err
		}
		name, driver, live, refLive := owner.name, owner.driver, owner.live, true
		if ref != 0 {
			target, err := c.entity(ref)
			if err != nil {
				return err
			}
			refLive = target.live
		}
		if !live {
			c.reportAs("live-references", fmt.Sprintf("attribute %s belongs to deleted entity %s", key, name), []string{name}, nil)
			return nil
		}
		if !refLive {
			c.reportAs("live-references", fmt.Sprintf("attribute %s of %s refers to deleted entity #%d", key, name, ref), []string{name}, nil)
		}
		if rid <= newOnly {
			return nil // not written now: its type was judged when it was
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
			c.reportAs("attr-type", fmt.Sprintf("%s of %s is a %s value (%s), but a %s's %s is %s", key, name, typ, value, driver, key, spec.Type), []string{name}, vals)
		case spec.Min != nil && num.Valid && num.Int64 < *spec.Min:
			c.reportAs("attr-type", fmt.Sprintf("%s of %s is %d, below the %s driver's minimum of %d", key, name, num.Int64, driver, *spec.Min), []string{name}, vals)
		}
		return nil
	})
}

func testLiveReferences(c *checker) error {
	if err := c.connPass(); err != nil {
		return err
	}
	if err := c.attrPass(); err != nil {
		return err
	}
	for _, sc := range c.suspects("i", "ip_allocations", "block_id", "entity_id") {
		err := c.rows(`SELECT i.block_id, i.entity_id FROM `+sc.from+` WHERE `+sc.where, sc.args, func(r *sql.Rows) error {
			var block, holder int64
			if err := r.Scan(&block, &holder); err != nil {
				return err
			}
			b, err := c.entity(block)
			if err != nil {
				return err
			}
			h, err := c.entity(holder)
			if err != nil {
				return err
			}
			if !b.live || !h.live {
				c.report(fmt.Sprintf("address allocation from %s to %s involves a deleted entity", b.name, h.name), []string{b.name, h.name}, nil)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func testOneParent(c *checker) error {
	cond, args := "1", []any(nil)
	if c.scoped {
		cond, args = "c.b IN (SELECT x.b FROM connections x NOT INDEXED WHERE x.rid > ? AND x.type = 'contains')", []any{c.startRid["connections"]}
	}
	return c.sqlRule(`SELECT 'has ' || count(*) || ' physical parents: ' || group_concat(coalesce(p.name, '#' || c.a), ', '), coalesce(e.name, '#' || c.b)
		FROM connections c LEFT JOIN entities e ON e.id = c.b AND e.until IS NULL LEFT JOIN entities p ON p.id = c.a AND p.until IS NULL
		WHERE c.type = 'contains' AND c.until IS NULL AND `+cond+` GROUP BY c.b HAVING count(*) > 1`, args...)
}

func testParentAllowed(c *checker) error { return c.connPass() }

func testContainsLoop(c *checker) error { return c.loops("contains") }

func testMemberLoop(c *checker) error { return c.loops("member") }

// loops finds entities that are their own ancestor through connections
// of type typ. Only an entity that both has a parent and holds something
// can be on a loop, and a loop that a transaction made passes through an
// entity it touched; for each such candidate the walk goes up (each
// (start, node) pair once, so it ends).
func (c *checker) loops(typ string) error {
	// A loop a transaction made runs through a connection it made.
	from, args := `entities k INDEXED BY entities_cur_id WHERE k.until IS NULL AND`, []any{typ}
	if c.scoped {
		from, args = `(`+newConnEnds+`) k WHERE`, []any{typ, c.startRid["connections"]}
	}
	var cands []int64
	err := c.rows(`SELECT k.id FROM `+from+` EXISTS (SELECT 1 FROM connections x WHERE x.b = k.id AND x.type = ?1 AND x.until IS NULL)
		AND EXISTS (SELECT 1 FROM connections x WHERE x.a = k.id AND x.type = ?1 AND x.until IS NULL)`, args, func(r *sql.Rows) error {
		var id int64
		cands = append(cands, id)
		return r.Scan(&cands[len(cands)-1])
	})
	if err != nil || len(cands) == 0 {
		return err
	}
	list, err := json.Marshal(cands)
	if err != nil {
		return entity.Internal("check "+c.rule, err)
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
		if typ == entity.Member {
			what = "is a member of itself through the groups it is in"
		}
		c.report(fmt.Sprintf("%s %s", c.name(id), what), []string{c.name(id)}, nil)
		return nil
	})
}

func testPortOneLink(c *checker) error { return c.connPass() }

func testLinkBothEnds(c *checker) error { return c.connPass() }

func testLinkPorts(c *checker) error { return c.connPass() }

// poolMember is a member of two or more pools, with its pools in name
// order and their flags.
type poolMember struct {
	name  string
	pools []poolFlags
}

// poolMembers reads the members of two or more pools that the pool rules
// look at: every such member, or at commit those that joined a pool in
// the transaction and all members of a pool whose exclusive or unique
// flag it wrote or ended. Read once for both rules.
func (c *checker) poolMembers() ([]poolMember, error) {
	if c.poolsLoaded {
		return c.pools, nil
	}
	var args []any
	things := `SELECT x.b AS id FROM connections x WHERE x.type = 'member' AND x.until IS NULL`
	if c.scoped {
		things = `SELECT x.b AS id FROM connections x NOT INDEXED WHERE x.rid > ?1 AND x.type = 'member'
			UNION SELECT y.b FROM (SELECT f.entity_id AS id FROM attrs f NOT INDEXED WHERE f.rid > ?2 AND f.key IN ('exclusive', 'unique')
				UNION SELECT f.entity_id FROM attrs f INDEXED BY attrs_ended WHERE f.until >= ?3 AND f.key IN ('exclusive', 'unique')) g
			CROSS JOIN connections y ON y.a = g.id AND y.type = 'member' AND y.until IS NULL`
		args = []any{c.startRid["connections"], c.startRid["attrs"], c.firstCid}
	}
	members := `SELECT k.id FROM (` + things + `) k CROSS JOIN connections x ON x.b = k.id AND x.type = 'member' AND x.until IS NULL
		CROSS JOIN entities g ON g.id = x.a AND g.until IS NULL AND g.driver = 'pool' GROUP BY k.id HAVING count(DISTINCT x.a) > 1`
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
		if n := len(c.pools); n == 0 || c.pools[n-1].name != m {
			c.pools = append(c.pools, poolMember{name: m})
		}
		last := &c.pools[len(c.pools)-1]
		last.pools = append(last.pools, p)
		return nil
	})
	c.poolsLoaded = err == nil
	return c.pools, err
}

type poolFlags struct {
	name              string
	exclusive, unique bool
}

func testPoolExclusive(c *checker) error {
	ms, err := c.poolMembers()
	for _, m := range ms {
		var names []string
		for _, p := range m.pools {
			names = append(names, p.name)
		}
		for _, p := range m.pools {
			if p.exclusive {
				c.report(fmt.Sprintf("%s is in exclusive pool %s and in other pools too (%s)", m.name, p.name, strings.Join(names, ", ")), append([]string{m.name}, names...), nil)
				break
			}
		}
	}
	return err
}

func testPoolUnique(c *checker) error {
	ms, err := c.poolMembers()
	for _, m := range ms {
		var unique []string
		for _, p := range m.pools {
			if p.unique {
				unique = append(unique, p.name)
			}
		}
		if len(unique) > 1 {
			c.report(fmt.Sprintf("%s is in %d unique pools (%s); a thing may be in one", m.name, len(unique), strings.Join(unique, ", ")), append([]string{m.name}, unique...), nil)
		}
	}
	return err
}

func testNameCounter(c *checker) error {
	cond, args := "1", []any(nil)
	if c.scoped {
		cond = `e.id IN (SELECT x.entity_id FROM attrs x NOT INDEXED WHERE x.rid > ? AND x.key = 'next'
			UNION SELECT x.entity_id FROM attrs x INDEXED BY attrs_ended WHERE x.until >= ? AND x.key = 'next')`
		args = []any{c.startRid["attrs"], c.firstCid}
	}
	return c.sqlRule(`SELECT 'next is ' || coalesce(cur, 'unset (1)') || ' but was ' || held || ' before: numbers below that may have been handed out', name,
			json_object('next', coalesce(cur, 1), 'held', held)
		FROM (SELECT e.name,
			(SELECT a.num FROM attrs a INDEXED BY attrs_cur_entity WHERE a.entity_id = e.id AND a.key = 'next' AND a.until IS NULL AND a.num IS NOT NULL ORDER BY a.rid DESC LIMIT 1) AS cur,
			(SELECT max(a.num) FROM attrs a WHERE a.entity_id = e.id AND a.key = 'next') AS held
			FROM entities e WHERE e.driver = 'namemanager' AND e.until IS NULL AND `+cond+`)
		WHERE held > coalesce(cur, 1) ORDER BY name`, args...)
}

func testHistory(c *checker) error {
	cond, args := "1", []any(nil)
	if c.scoped {
		cond, args = "rid IN (SELECT rid FROM entities NOT INDEXED WHERE rid > ?)", []any{c.startRid["entities"]}
	}
	if err := c.sqlRule(`SELECT 'has ' || count(*) || ' current rows', group_concat(name) FROM entities WHERE until IS NULL AND id IN (SELECT id FROM entities WHERE `+cond+`)
		GROUP BY id HAVING count(*) > 1`, args...); err != nil {
		return err
	}
	// At commit the rows to look at are those the transaction wrote and
	// those it ended.
	ended := map[string]string{"entities": "entities_ended", "attrs": "attrs_ended", "connections": "conn_ended", "ip_allocations": "ipalloc_ended"}
	var order []string
	args = nil
	for _, t := range []string{"entities", "attrs", "connections", "ip_allocations"} {
		from := []string{"SELECT since, until FROM " + t}
		if c.scoped {
			from = []string{"SELECT since, until FROM " + t + " NOT INDEXED WHERE rid > ?", "SELECT since, until FROM " + t + " INDEXED BY " + ended[t] + " WHERE until >= ?"}
			args = append(args, c.startRid[t], c.firstCid)
		}
		for _, f := range from {
			order = append(order, "SELECT '"+t+"' AS t, since, until FROM ("+f+")")
		}
	}
	rows := strings.Join(order, " UNION ALL ")
	// One read of the rows serves two checks, each row tried against both
	// (k): it ends before it starts; it refers to a change not yet made.
	if err := c.sqlRule(`SELECT CASE k
			WHEN 1 THEN 'a row of ' || t || ' ends (change ' || until || ') before it starts (change ' || since || ')'
			ELSE 'a row of ' || t || ' refers to change ' || max(since, coalesce(until, 0)) || ', newer than the newest change' END, ''
		FROM (`+rows+`) CROSS JOIN (SELECT 1 AS k UNION ALL SELECT 2) CROSS JOIN (SELECT coalesce(max(id), 0) AS newest FROM changes)
		WHERE (k = 1 AND until IS NOT NULL AND until < since) OR (k = 2 AND max(since, coalesce(until, 0)) > newest)
		ORDER BY k`, args...); err != nil {
		return err
	}
	chain, chainArgs := "1", []any(nil)
	if c.scoped {
		chain, chainArgs = "n.rid IN (SELECT rid FROM entities NOT INDEXED WHERE rid > ?)", []any{c.startRid["entities"]}
	}
	return c.sqlRule(`SELECT 'version ' || v.version || ' ends at change ' || coalesce(v.until, 'none') || ' but version ' || n.version || ' starts at ' || n.since, n.name
		FROM entities n JOIN entities v ON v.rid = (SELECT p.rid FROM entities p WHERE p.id = n.id AND p.since < n.since ORDER BY p.since DESC LIMIT 1)
		WHERE `+chain+` AND (v.version != n.version - 1 OR v.until IS NOT n.since)`, chainArgs...)
}
